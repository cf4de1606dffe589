"""Table operations at the control-plane leader: DynamoDB's rules, the command to propose, the answer.

Each operation is split the same way: ``plan_*`` checks the request against the applied metadata and returns
the command to propose (or raises the DynamoError DynamoDB gives); once applied, ``answer_*`` turns the
state machine's result into DynamoDB's response. Everything chosen outside the log (ids, placement, time,
UUIDs) is decided here and carried in the command, so applying it stays deterministic on every replica.

No I/O: the app passes the clock's reading and a fresh UUID in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from control_plane.metadata import Metadata, MetadataError, TableInfo, encode_command
from dynamo.errors import (
    DynamoError,
    LimitExceededException,
    ResourceInUseException,
    ResourceNotFoundException,
    TableNotFoundException,
    ValidationException,
)
from dynamo.requests import validate_request
from dynamo.requests.misc import MAX_TAGS_PER_RESOURCE
from dynamo.requests.tables import (
    ACCOUNT_ID,
    MAX_GLOBAL_SECONDARY_INDEXES,
    MAX_LIST_TABLES_LIMIT,
    table_description,
)
from dynamo.streams import stream_label

DEFAULT_REGION = "us-east-1"
# DynamoDB's default quotas per account and region: tables, and table operations under way at once.
MAX_TABLES = 2500
MAX_TABLES_IN_TRANSITION = 500
_TABLE_ARN = re.compile(r"^arn:[a-z0-9-]+:dynamodb:[a-z0-9-]*:[0-9]*:table/(?P<name>[a-zA-Z0-9_.-]{3,255})$")
_INVALID = "One or more parameter values were invalid: "
# (item count, size in bytes) of a table, from the storage nodes' latest reports.
Usage = Callable[[TableInfo], tuple[int, int]]


def _no_usage(table: TableInfo) -> tuple[int, int]:
    return 0, 0


def not_found(name: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"Requested resource not found: Table: {name} not found")


def as_dynamo_error(err: MetadataError) -> DynamoError:
    """The DynamoDB error for a command the state machine refused."""
    if err.kind == "ResourceInUse":
        return ResourceInUseException(err.message)
    if err.kind == "ResourceNotFound":
        return ResourceNotFoundException(err.message)
    if err.kind == "LimitExceeded":
        return LimitExceededException(err.message)
    return ValidationException(err.message)


def _in_use(table: TableInfo) -> ResourceInUseException | None:
    """DynamoDB refuses to change a table while it is being created, updated or deleted."""
    doing = {"CREATING": "created", "UPDATING": "updated", "DELETING": "deleted"}.get(table.status)
    if doing is None:
        return None
    return ResourceInUseException(f"Attempt to change a resource which is still in use: Table is being {doing}: "
                                  f"{table.name}")


def _table(meta: Metadata, name: str) -> TableInfo:
    table = meta.tables.get(name)
    if table is None:
        raise not_found(name)
    return table


def describe(table: TableInfo, region: str, usage: Usage = _no_usage, status: str | None = None) -> dict[str, Any]:
    """DynamoDB's TableDescription of a table, as of the applied metadata."""
    items, size = usage(table)
    description = table_description(
        table.spec, region=region, table_id=table.table_uuid, creation_date_time=table.created_at,
        status=status or table.status, item_count=items, table_size_bytes=size,
        latest_stream_label=stream_label(table.streams[-1][0]) if table.streams else None,
    )
    throughput = description["ProvisionedThroughput"]
    for key in ("LastIncreaseDateTime", "LastDecreaseDateTime"):
        if key in table.history:
            throughput[key] = table.history[key]
    switched = table.history.get("LastUpdateToPayPerRequestDateTime")
    if switched is not None:
        description["BillingModeSummary"]["LastUpdateToPayPerRequestDateTime"] = switched
    return description


# ---- CreateTable ------------------------------------------------------------------------------------------


def plan_create(meta: Metadata, request: dict[str, Any], *, partitions: int, now_s: float, table_uuid: str,
                avoid: frozenset[str] = frozenset()) -> bytes:
    """Validate (the router did already, but the log must never hold a table that breaks our invariants),
    check the name and the quota, place the partitions (off the ``avoid`` nodes where an AZ has others)."""
    spec = validate_request("CreateTable", request)
    name = spec["TableName"]
    if name in meta.tables:
        raise ResourceInUseException(f"Table already exists: {name}")
    if len(meta.tables) >= MAX_TABLES:
        raise LimitExceededException(f"Subscriber limit exceeded: There is a limit of {MAX_TABLES} tables per "
                                     "subscriber")
    if sum(t.status != "ACTIVE" for t in meta.tables.values()) >= MAX_TABLES_IN_TRANSITION:
        raise LimitExceededException(f"Subscriber limit exceeded: Only {MAX_TABLES_IN_TRANSITION} tables can be "
                                     "created, updated, or deleted simultaneously")
    try:
        placement = meta.place_partitions(partitions, avoid)
    except MetadataError as err:
        raise as_dynamo_error(err) from None
    tags = {tag["Key"]: tag["Value"] for tag in spec.get("Tags", ())}
    stored = {key: value for key, value in spec.items() if key != "Tags"}
    return encode_command("create_table", name=name, spec=stored, placement=placement, created_at=now_s,
                          table_uuid=table_uuid, tags=tags)


# ---- DescribeTable, ListTables ------------------------------------------------------------------------------


def describe_table(meta: Metadata, name: str, region: str, usage: Usage = _no_usage) -> dict[str, Any]:
    return {"Table": describe(_table(meta, name), region, usage)}


def list_tables(meta: Metadata, request: dict[str, Any]) -> dict[str, Any]:
    request = validate_request("ListTables", request)
    names = sorted(meta.tables)
    start = request.get("ExclusiveStartTableName")
    if start is not None:
        names = [name for name in names if name > start]
    limit = request.get("Limit", MAX_LIST_TABLES_LIMIT)
    page = names[:limit]
    response: dict[str, Any] = {"TableNames": page}
    if len(names) > limit:
        response["LastEvaluatedTableName"] = page[-1]
    return response


# ---- DeleteTable --------------------------------------------------------------------------------------------


def plan_delete(meta: Metadata, name: str) -> bytes:
    table = _table(meta, name)
    busy = _in_use(table)
    if busy is not None and table.status != "UPDATING":
        raise busy
    if table.spec.get("DeletionProtectionEnabled"):
        raise ValidationException("Resource cannot be deleted as it is currently protected against deletion. "
                                  "Disable deletion protection first.")
    return encode_command("delete_table", name=name, table_id=table.table_id)


# ---- UpdateTable --------------------------------------------------------------------------------------------

_RECORDED = ("StreamSpecification", "SSESpecification", "TableClass", "DeletionProtectionEnabled",
             "OnDemandThroughput")


def plan_update(meta: Metadata, request: dict[str, Any], *, now_s: float) -> bytes | None:
    """The command recording what UpdateTable changes, or None when it changes nothing (DynamoDB still
    answers such a request, e.g. PAY_PER_REQUEST re-sent to an on-demand table, with the description)."""
    request = validate_request("UpdateTable", request)
    name = request["TableName"]
    table = _table(meta, name)
    busy = _in_use(table)
    if busy is not None:
        raise busy
    index_changes = _plan_index_updates(table.spec, request)
    others = [key for key in request if key not in ("TableName", "AttributeDefinitions", "DeletionProtectionEnabled")]
    if "DeletionProtectionEnabled" in request and others:
        raise ValidationException("DeletionProtection modification must be the only operation in the request")
    stream = request.get("StreamSpecification")
    stream_change: dict[str, Any] | None = None
    if stream is not None:
        if not stream["StreamEnabled"] and table.stream is None:
            raise ValidationException(f"Table has no stream to disable: TableName: {name}")
        if stream["StreamEnabled"] and table.stream is not None:
            raise ValidationException(f"Table already has an enabled stream: TableName: {name}")
        stream_change = {"enabled": bool(stream["StreamEnabled"]), "view": stream.get("StreamViewType", ""),
                         "at_ms": round(now_s * 1000)}
    sse = request.get("SSESpecification")
    if sse is not None and not sse.get("Enabled", True) and not (table.spec.get("SSESpecification") or {}).get(
            "Enabled"):
        raise ValidationException(_INVALID + "Table is already encrypted by default")
    current_mode = table.spec.get("BillingMode", "PROVISIONED")
    mode = request.get("BillingMode", current_mode)
    throughput = request.get("ProvisionedThroughput")
    changes: dict[str, Any] = {}
    remove: list[str] = []
    history: dict[str, float] = {}
    if index_changes is not None:
        for key, value in index_changes.items():
            if value is None:
                remove.append(key)
            else:
                changes[key] = value
    if mode == "PAY_PER_REQUEST":
        if throughput is not None:
            raise ValidationException(_INVALID + "Neither ReadCapacityUnits nor WriteCapacityUnits can be "
                                      "specified when BillingMode is PAY_PER_REQUEST")
        if current_mode != "PAY_PER_REQUEST":
            changes["BillingMode"] = "PAY_PER_REQUEST"
            remove.append("ProvisionedThroughput")
            history["LastUpdateToPayPerRequestDateTime"] = now_s
    else:
        if throughput is None and ("BillingMode" in request or current_mode != "PROVISIONED"):
            raise ValidationException(_INVALID + "ProvisionedThroughput must be specified when BillingMode is "
                                      "PROVISIONED")
        if throughput is not None:
            old = table.spec.get("ProvisionedThroughput") if current_mode == "PROVISIONED" else None
            if old is not None:
                _check_throughput_changes(old, throughput)
                up = any(throughput[u] > old[u] for u in ("ReadCapacityUnits", "WriteCapacityUnits"))
                down = any(throughput[u] < old[u] for u in ("ReadCapacityUnits", "WriteCapacityUnits"))
                if up:
                    history["LastIncreaseDateTime"] = now_s
                if down:
                    history["LastDecreaseDateTime"] = now_s
            changes["ProvisionedThroughput"] = {
                "ReadCapacityUnits": throughput["ReadCapacityUnits"],
                "WriteCapacityUnits": throughput["WriteCapacityUnits"],
            }
            if current_mode != "PROVISIONED":
                changes["BillingMode"] = "PROVISIONED"
    for key in _RECORDED:
        if key in request and table.spec.get(key) != request[key]:
            changes[key] = request[key]
    if not changes and not remove and stream_change is None:
        return None
    return encode_command("update_table", name=name, changes=changes, remove=remove, history=history,
                          **({"stream": stream_change} if stream_change is not None else {}))


def _plan_index_updates(spec: dict[str, Any], request: dict[str, Any]) -> dict[str, Any] | None:
    """The spec fields GlobalSecondaryIndexUpdates changes (None as a value: the field goes), or None.

    An index is derived from the table's items when read (dynamo.indexes), so a new GSI is ACTIVE at once
    (there is nothing to backfill) and a deleted one is gone at once."""
    updates = request.get("GlobalSecondaryIndexUpdates")
    if updates is None:
        return None
    if not updates:
        raise ValidationException(_INVALID + "List of GlobalSecondaryIndexUpdates is empty")
    indexes: list[dict[str, Any]] = list(spec.get("GlobalSecondaryIndexes") or ())
    local = {index["IndexName"] for index in spec.get("LocalSecondaryIndexes") or ()}
    named: set[str] = set()
    for update in updates:
        name = next(iter(update.values()))["IndexName"]
        if name in named:
            raise ValidationException(_INVALID + "Only one global secondary index update per index is allowed "
                                      f"simultaneously. Index: {name}")
        named.add(name)
    if sum(1 for update in updates if "Create" in update or "Delete" in update) > 1:
        raise LimitExceededException("Subscriber limit exceeded: Only 1 online index can be created or deleted "
                                     "simultaneously per table")
    definitions: dict[str, str] = {d["AttributeName"]: d["AttributeType"] for d in spec["AttributeDefinitions"]}
    for update in updates:
        if "Update" in update:
            raise ValidationException("ddb does not support GlobalSecondaryIndexUpdates.Update yet (an index's "
                                      "throughput follows its table's)")
        if "Delete" in update:
            name = update["Delete"]["IndexName"]
            if not any(index["IndexName"] == name for index in indexes):
                raise ValidationException(f"Cannot delete an index that is not a GlobalSecondaryIndex: {name}")
            indexes = [index for index in indexes if index["IndexName"] != name]
            continue
        create = update["Create"]
        name = create["IndexName"]
        if name in local or any(index["IndexName"] == name for index in indexes):
            raise ValidationException("Attempting to create an index which already exists")
        given = {d["AttributeName"]: d["AttributeType"] for d in request.get("AttributeDefinitions") or ()}
        for element in create["KeySchema"]:
            attribute = element["AttributeName"]
            if attribute in definitions and attribute in given and definitions[attribute] != given[attribute]:
                raise ValidationException(
                    _INVALID + f"Cannot change the type of attribute {attribute} from {definitions[attribute]} to "
                    f"{given[attribute]}: it keys the table or another index")
            definitions.setdefault(attribute, given[attribute])
        throughput = create.get("ProvisionedThroughput")
        on_demand = spec.get("BillingMode") == "PAY_PER_REQUEST"
        if on_demand and throughput is not None:
            raise ValidationException(_INVALID + "ProvisionedThroughput should not be specified for index: "
                                      f"{name} when BillingMode is PAY_PER_REQUEST")
        if not on_demand and throughput is None:
            raise ValidationException(_INVALID + f"ProvisionedThroughput must be specified for index: {name}")
        if len(indexes) >= MAX_GLOBAL_SECONDARY_INDEXES:
            raise LimitExceededException(
                f"GlobalSecondaryIndex count exceeds the per-table limit of {MAX_GLOBAL_SECONDARY_INDEXES}")
        indexes.append({key: create[key] for key in ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")
                        if key in create})
    # Only the attributes some key uses stay defined, as DynamoDB describes them.
    used = {element["AttributeName"] for element in spec["KeySchema"]}
    for index in [*indexes, *(spec.get("LocalSecondaryIndexes") or ())]:
        used.update(element["AttributeName"] for element in index["KeySchema"])
    return {
        "GlobalSecondaryIndexes": indexes or None,
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": kind}
                                 for name, kind in definitions.items() if name in used],
    }


def _check_throughput_changes(old: dict[str, Any], new: dict[str, Any]) -> None:
    if old["ReadCapacityUnits"] == new["ReadCapacityUnits"] and old["WriteCapacityUnits"] == new["WriteCapacityUnits"]:
        raise ValidationException(
            "The provisioned throughput for the table will not change. The requested value equals the current "
            f"value. Current ReadCapacityUnits provisioned for the table: {old['ReadCapacityUnits']}. Requested "
            f"ReadCapacityUnits: {new['ReadCapacityUnits']}. Current WriteCapacityUnits provisioned for the table: "
            f"{old['WriteCapacityUnits']}. Requested WriteCapacityUnits: {new['WriteCapacityUnits']}. Refer to the "
            "Amazon DynamoDB Developer Guide for current limits and how to request higher limits.")


# ---- tags ---------------------------------------------------------------------------------------------------


MSG_TTL_COOLDOWN = "Time to live has been modified multiple times within a fixed interval"


def plan_update_ttl(meta: Metadata, request: dict[str, Any], *, now_s: float, cooldown_s: float) -> bytes:
    """UpdateTimeToLive, checked in DynamoDB's order: the request's shape, the table, the attribute against
    the one in force, then whether TTL changed less than ``cooldown_s`` ago (DynamoDB: an hour)."""
    request = validate_request("UpdateTimeToLive", request)
    table = _table(meta, request["TableName"])
    busy = _in_use(table)
    if busy is not None:
        raise busy
    spec = request["TimeToLiveSpecification"]
    enabled, attribute = spec["Enabled"], spec["AttributeName"]
    current = table.ttl_attribute
    if current and current != attribute:
        raise ValidationException(f"TimeToLive is active on a different AttributeName: current AttributeName is {current}")
    if enabled and current:
        raise ValidationException("TimeToLive is already enabled")
    if not enabled and not current:
        raise ValidationException("TimeToLive is already disabled")
    if table.ttl_changed_at and now_s - table.ttl_changed_at < cooldown_s:
        raise ValidationException(MSG_TTL_COOLDOWN)
    return encode_command("update_ttl", name=table.name, table_id=table.table_id,
                          attribute=attribute if enabled else "", at=now_s)


def describe_ttl(meta: Metadata, request: dict[str, Any]) -> dict[str, Any]:
    request = validate_request("DescribeTimeToLive", request)
    table = _table(meta, request["TableName"])
    if not table.ttl_attribute:
        return {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}
    return {"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": table.ttl_attribute}}


# ddb keeps no backups: no point-in-time recovery, no on-demand backups (both on the roadmap).
NO_BACKUPS = {"ContinuousBackupsDescription": {"ContinuousBackupsStatus": "DISABLED",
                                               "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"}}}


def describe_continuous_backups(meta: Metadata, request: dict[str, Any]) -> dict[str, Any]:
    """What DynamoDB says of a table without backups (tools such as Terraform read it after CreateTable)."""
    request = validate_request("DescribeContinuousBackups", request)
    if request["TableName"] not in meta.tables:
        raise TableNotFoundException(f"Table not found: {request['TableName']}")
    return NO_BACKUPS


def update_continuous_backups(meta: Metadata, request: dict[str, Any]) -> dict[str, Any]:
    """Disabling point-in-time recovery, which is off, answers as DynamoDB does; enabling it is refused, as
    ddb cannot restore (yet): a clear error rather than a status no restore could honour."""
    request = validate_request("UpdateContinuousBackups", request)
    if request["TableName"] not in meta.tables:
        raise TableNotFoundException(f"Table not found: {request['TableName']}")
    spec = request["PointInTimeRecoverySpecification"]
    if spec["PointInTimeRecoveryEnabled"]:
        raise ValidationException("ddb does not support point-in-time recovery yet")
    if "RecoveryPeriodInDays" in spec:
        raise ValidationException("Invalid Request: Cannot specify RecoveryPeriodInDays when disabling "
                                  "point-in-time recovery.")
    return NO_BACKUPS


def table_of_arn(meta: Metadata, arn: str) -> TableInfo:
    """The table a ResourceArn names. Only table ARNs carry tags (index and stream ARNs do not)."""
    match = _TABLE_ARN.match(arn)
    if match is None:
        raise ValidationException(f"Invalid TableArn: Invalid ResourceArn provided as input {arn}")
    table = meta.tables.get(match["name"])
    if table is None:
        raise ResourceNotFoundException(f"Requested resource not found: ResourceArn: {arn} not found")
    return table


def plan_tag(meta: Metadata, request: dict[str, Any]) -> bytes:
    request = validate_request("TagResource", request)
    table = table_of_arn(meta, request["ResourceArn"])
    if table.status == "CREATING":
        busy = _in_use(table)
        assert busy is not None
        raise busy
    add = {tag["Key"]: tag["Value"] for tag in request["Tags"]}
    if len(set(table.tags) | set(add)) > MAX_TAGS_PER_RESOURCE:
        raise LimitExceededException(f"The number of tags exceeds the limit of {MAX_TAGS_PER_RESOURCE}")
    return encode_command("tag", name=table.name, add=add)


def plan_untag(meta: Metadata, request: dict[str, Any]) -> bytes:
    request = validate_request("UntagResource", request)
    table = table_of_arn(meta, request["ResourceArn"])
    return encode_command("tag", name=table.name, remove=list(request["TagKeys"]))


def list_tags(meta: Metadata, request: dict[str, Any]) -> dict[str, Any]:
    request = validate_request("ListTagsOfResource", request)
    table = table_of_arn(meta, request["ResourceArn"])
    return {"Tags": [{"Key": key, "Value": value} for key, value in sorted(table.tags.items())]}


__all__ = ["ACCOUNT_ID", "DEFAULT_REGION", "MAX_TABLES", "MAX_TABLES_IN_TRANSITION", "Usage", "as_dynamo_error", "describe", "describe_table",
           "list_tables", "list_tags", "not_found", "plan_create", "plan_delete", "plan_tag", "plan_untag",
           "plan_update", "table_of_arn"]
