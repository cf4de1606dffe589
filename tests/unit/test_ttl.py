"""Time to live: which items have expired (pure), and UpdateTimeToLive / DescribeTimeToLive as the control
plane plans and answers them, with DynamoDB's messages and order of checks."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_plane.metadata import Metadata, encode_command
from control_plane.tables import MSG_TTL_COOLDOWN, describe_ttl, plan_update_ttl
from dynamo.errors import ResourceNotFoundException, ValidationException
from dynamo.ttl import MAX_EXPIRED_AGE_S, expired_value
from tests.unit.test_metadata import create, nine_nodes

NOW = 1_800_000_000.0


@pytest.mark.parametrize("value, expired", [
    ({"N": str(int(NOW) - 1)}, True),
    ({"N": f"{NOW - 0.5}"}, True),  # fractions of a second are numbers too
    ({"N": str(int(NOW))}, False),  # not before now
    ({"N": str(int(NOW) + 60)}, False),
    ({"N": str(int(NOW) * 1000)}, False),  # milliseconds: far in the future
    ({"N": str(int(NOW - MAX_EXPIRED_AGE_S))}, True),
    ({"N": str(int(NOW - MAX_EXPIRED_AGE_S) - 1)}, False),  # more than five years ago: ignored
    ({"N": "-5"}, False),
    ({"N": "1E+400"}, False),
    ({"S": str(int(NOW) - 1)}, False),  # a String is ignored
    ({"NS": [str(int(NOW) - 1)]}, False),
    ({"M": {"t": {"N": "1"}}}, False),
])
def test_expired_value(value: dict[str, Any], expired: bool) -> None:
    item = {"pk": {"S": "a"}, "exp": value}
    assert (expired_value(item, "exp", NOW) is not None) == expired
    if expired:
        assert expired_value(item, "exp", NOW) == value["N"]


def test_only_the_top_level_attribute_counts() -> None:
    assert expired_value({"pk": {"S": "a"}}, "exp", NOW) is None
    assert expired_value({"m": {"M": {"exp": {"N": "1"}}}}, "exp", NOW) is None
    assert expired_value(None, "exp", NOW) is None


@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
def test_expiry_is_a_window_of_five_years_before_now(seconds: float) -> None:
    got = expired_value({"exp": {"N": repr(seconds)}}, "exp", NOW)
    assert (got is not None) == (NOW - MAX_EXPIRED_AGE_S <= seconds < NOW)


def table(meta: Metadata) -> Metadata:
    create(meta, "Tab", 2)
    meta.apply(meta.applied_index + 1, encode_command("set_table_status", name="Tab", status="ACTIVE"))
    return meta


def update(meta: Metadata, enabled: bool, attribute: str, now_s: float, cooldown_s: float = 3600.0) -> Any:
    command = plan_update_ttl(meta, {"TableName": "Tab", "TimeToLiveSpecification": {
        "Enabled": enabled, "AttributeName": attribute}}, now_s=now_s, cooldown_s=cooldown_s)
    return meta.apply(meta.applied_index + 1, command)


def test_enable_describe_disable_with_dynamodbs_messages() -> None:
    meta = table(nine_nodes())
    assert describe_ttl(meta, {"TableName": "Tab"}) == {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}
    with pytest.raises(ValidationException, match="^TimeToLive is already disabled$"):
        update(meta, False, "exp", NOW)
    version = meta.map_version
    update(meta, True, "exp", NOW)
    assert meta.map_version == version + 1 and meta.to_map()["tables"]["Tab"]["ttl"] == "exp"
    assert describe_ttl(meta, {"TableName": "Tab"}) == {
        "TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": "exp"}}
    # What the request says is checked before the cooldown.
    with pytest.raises(ValidationException, match="^TimeToLive is already enabled$"):
        update(meta, True, "exp", NOW + 1)
    with pytest.raises(ValidationException,
                       match="^TimeToLive is active on a different AttributeName: current AttributeName is exp$"):
        update(meta, True, "other", NOW + 1)
    with pytest.raises(ValidationException, match="current AttributeName is exp"):
        update(meta, False, "other", NOW + 1)
    with pytest.raises(ValidationException, match=f"^{MSG_TTL_COOLDOWN}$"):
        update(meta, False, "exp", NOW + 3599)
    update(meta, False, "exp", NOW + 3600)
    assert "ttl" not in meta.to_map()["tables"]["Tab"]
    assert describe_ttl(meta, {"TableName": "Tab"})["TimeToLiveDescription"] == {"TimeToLiveStatus": "DISABLED"}
    update(meta, True, "other", NOW + 7200, cooldown_s=1.0)
    again = Metadata.restore(meta.snapshot())
    assert again.tables["Tab"].ttl_attribute == "other" and again.tables["Tab"].ttl_changed_at == NOW + 7200
    raw = orjson.loads(meta.snapshot())
    for t in raw["tables"]:
        del t["ttl"]  # written before time to live existed
    assert Metadata.restore(orjson.dumps(raw)).tables["Tab"].ttl_attribute == ""


def test_bad_requests() -> None:
    meta = table(nine_nodes())
    with pytest.raises(ResourceNotFoundException, match="Table: Nope not found"):
        plan_update_ttl(meta, {"TableName": "Nope", "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "e"}},
                        now_s=NOW, cooldown_s=1.0)
    with pytest.raises(ValidationException, match="timeToLiveSpecification.enabled' failed to satisfy constraint: "
                                                  "Member must not be null"):
        plan_update_ttl(meta, {"TableName": "Tab", "TimeToLiveSpecification": {"AttributeName": "e"}},
                        now_s=NOW, cooldown_s=1.0)
    with pytest.raises(ValidationException, match="Member must have length less than or equal to 255"):
        plan_update_ttl(meta, {"TableName": "Tab", "TimeToLiveSpecification": {"Enabled": True,
                                                                               "AttributeName": "e" * 256}},
                        now_s=NOW, cooldown_s=1.0)
    with pytest.raises(ResourceNotFoundException):
        describe_ttl(meta, {"TableName": "Nope"})


def test_continuous_backups_say_there_are_none_and_enabling_them_is_refused() -> None:
    from control_plane.tables import NO_BACKUPS, describe_continuous_backups, update_continuous_backups
    from dynamo.errors import TableNotFoundException

    meta = table(nine_nodes())
    assert describe_continuous_backups(meta, {"TableName": "Tab"}) == NO_BACKUPS
    assert NO_BACKUPS["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"] == {
        "PointInTimeRecoveryStatus": "DISABLED"}
    off = {"TableName": "Tab", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": False}}
    assert update_continuous_backups(meta, off) == NO_BACKUPS
    with pytest.raises(ValidationException, match="Cannot specify RecoveryPeriodInDays when disabling"):
        update_continuous_backups(meta, {"TableName": "Tab", "PointInTimeRecoverySpecification": {
            "PointInTimeRecoveryEnabled": False, "RecoveryPeriodInDays": 7}})
    with pytest.raises(ValidationException, match="does not support point-in-time recovery"):
        update_continuous_backups(meta, {"TableName": "Tab", "PointInTimeRecoverySpecification": {
            "PointInTimeRecoveryEnabled": True}})
    with pytest.raises(TableNotFoundException, match="^Table not found: Nope$"):
        describe_continuous_backups(meta, {"TableName": "Nope"})
    with pytest.raises(TableNotFoundException):
        update_continuous_backups(meta, {**off, "TableName": "Nope"})
