"""Per-partition admission control (storagenode.admission): token buckets with debt, and the unit counts of
stored items."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo.capacity import read_units, write_item_units
from dynamo.errors import ValidationException
from dynamo.size import item_size
from dynamo.values import validate_item
from runtime.config import AdminPolicy, ConfigError
from storagenode.admission import (
    AdmissionLimits,
    PartitionAdmission,
    TokenBucket,
    UnitKind,
    read_charge,
    stored_size,
    write_charge,
)
from storagenode.partition import HeatMeter
from tests.unit.test_size import json_values

# A request: (seconds since the previous one, its actual units, units estimated when admitted).
requests = st.lists(st.tuples(st.floats(0, 0.5), st.integers(1, 40), st.sampled_from([0.5, 1.0])),
                    max_size=300)


@settings(max_examples=150, deadline=None)
@given(st.floats(1, 500), st.floats(0.1, 5), requests)
def test_a_bucket_never_admits_more_than_its_rate_over_time_plus_burst(rate: float, burst_s: float,
                                                                      arrivals: list[tuple[float, int, float]]) -> None:
    """Served one at a time (each settled before the next): at any moment, the units of every admitted
    request stay within rate x elapsed + burst, plus the last admitted request's own units (admitted while
    the bucket was positive, charged afterwards)."""
    gate = PartitionAdmission(AdmissionLimits(rate, rate, burst_s), now_s=0.0)
    now = 0.0
    admitted_units = 0.0
    for gap, units, estimate in arrivals:
        now += gap
        if gate.admit(UnitKind.WRITE, now, estimate):
            gate.settle(UnitKind.WRITE, now, estimate, units)
            admitted_units += units
            assert admitted_units <= rate * now + rate * burst_s + units + 1e-6
    assert gate.throttled[UnitKind.READ] == 0  # the other bucket is untouched


@settings(max_examples=100, deadline=None)
@given(st.floats(1, 200), st.lists(st.tuples(st.floats(0, 0.2), st.integers(1, 8)), max_size=200),
       st.integers(1, 20))
def test_in_flight_requests_cannot_all_slip_in_on_one_positive_bucket(
        rate: float, arrivals: list[tuple[float, int]], in_flight: int) -> None:
    """Many requests admitted before any of them is settled: each was charged its estimate (the minimum it
    costs) when admitted, so their count stays within rate x elapsed + burst + 1."""
    bucket = TokenBucket(rate, 1.0, 0.0)
    now = 0.0
    admitted = 0
    for gap, burst in arrivals:
        now += gap
        admitted += sum(bucket.take(now, 1.0) for _ in range(min(burst, in_flight)))
        assert admitted <= rate * now + rate * 1.0 + 1


def test_debt_throttles_until_the_refill_pays_it_off() -> None:
    bucket = TokenBucket(10.0, 1.0, 0.0)
    assert bucket.take(0.0, 1.0)
    bucket.charge(0.0, 49.0)  # a big item: 50 units in all, 40 more than the bucket held
    assert bucket.level(0.0) == pytest.approx(-40.0)
    assert not bucket.take(3.9, 1.0)  # 39 units refilled: still in debt
    assert bucket.take(4.05, 1.0)  # paid off: positive again, admitted
    assert not bucket.take(4.05, 1.0)


def test_a_refund_never_fills_a_bucket_past_its_burst() -> None:
    bucket = TokenBucket(10.0, 2.0, 0.0)
    assert bucket.take(0.0, 1.0)
    bucket.charge(0.0, -100.0)  # the estimate was far above the actual cost
    assert bucket.level(0.0) == 20.0
    assert bucket.level(100.0) == 20.0  # idle capacity is kept for burst_s seconds only
    assert bucket.level(-5.0) == 20.0  # a clock reading from the past adds nothing


def test_reads_and_writes_have_their_own_buckets() -> None:
    gate = PartitionAdmission(AdmissionLimits(1.0, 3.0, 1.0), now_s=0.0)
    assert gate.admit(UnitKind.WRITE, 0.0, 1.0)
    assert not gate.admit(UnitKind.WRITE, 0.0, 1.0)
    assert gate.admit(UnitKind.READ, 0.0, 2.0) and gate.admit(UnitKind.READ, 0.0, 2.0)
    assert not gate.admit(UnitKind.READ, 0.0, 0.5)
    assert gate.throttled == {UnitKind.WRITE: 1, UnitKind.READ: 1}


def test_the_burst_is_a_validated_policy_field() -> None:
    assert AdminPolicy().partition_burst_s == 1.0
    for bad in (0, -1.0, 301):
        with pytest.raises(ConfigError, match="partition_burst_s"):
            AdminPolicy(partition_burst_s=bad)


# ---- units of stored items ---------------------------------------------------------------------------------

def _valid(item: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return validate_item(item)
    except ValidationException:
        return None


# Small items, some padded past one write or read unit, in their validated (stored) form.
items = st.builds(
    lambda attrs, pad: {**attrs, **({"pad": {"S": "p" * pad}} if pad else {})},
    st.dictionaries(st.text(min_size=1, max_size=20), json_values, min_size=1, max_size=8),
    st.one_of(st.just(0), st.integers(1, 9000)),
).map(_valid).filter(lambda item: item is not None)


@settings(max_examples=200, deadline=None)
@given(items)
def test_a_stored_item_is_never_smaller_than_its_dynamodb_size(item: dict[str, Any]) -> None:
    """What lets a charge skip decoding small images."""
    assert item_size(item) <= len(orjson.dumps(item))


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.none(), items), st.one_of(st.none(), items), st.booleans())
def test_charges_match_dynamodbs_capacity_units(old: dict[str, Any] | None, new: dict[str, Any] | None,
                                                consistent: bool) -> None:
    old_raw = None if old is None else orjson.dumps(old)
    new_raw = None if new is None else orjson.dumps(new)
    expected = write_item_units(item_size(old) if old else None, item_size(new) if new else None)
    assert write_charge(old_raw, new_raw) == expected
    assert read_charge(old_raw, consistent=consistent) == read_units(item_size(old), consistent=consistent)


def test_big_images_are_measured_exactly() -> None:
    item = {"pk": {"S": "k"}, "b": {"B": "QUJD" * 1100}}  # 3,300 raw bytes as 4,400 base64 characters
    raw = orjson.dumps(item)
    assert len(raw) > 4096 and stored_size(raw, 4096) == item_size(item) == 3304
    assert write_charge(None, raw) == 4.0 and read_charge(raw, consistent=True) == 1.0
    assert stored_size(b'{"pk":{"S":"k"}}', 1024) == 16  # within one unit: not decoded, same unit count


# ---- heat ---------------------------------------------------------------------------------------------------


def test_heat_is_the_busier_of_writes_and_weighted_reads() -> None:
    meter = HeatMeter(window_s=2, read_weight=1 / 3)
    for t in range(3):
        meter.record(10.0 + t, 10, 7)
        meter.record(10.0 + t, 90, 8, read=True)
    assert meter.write_rate(12.5) == 10.0 and meter.read_rate(12.5) == 90.0
    assert meter.rate(12.5) == 30.0  # 90 read units a second weigh as much as 30 write units
    meter.record(12.6, -5)  # a correction (an estimate above the actual units)
    assert meter.write_rate(12.7) == 7.5
    assert meter.split_point(0, 100) == 8
