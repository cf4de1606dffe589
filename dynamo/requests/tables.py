"""Table operations' requests (CreateTable, UpdateTable, DeleteTable, DescribeTable, ListTables) and the
TableDescription DynamoDB answers with."""

from __future__ import annotations

from typing import Any

from dynamo.errors import ValidationException
from dynamo.requests.common import (
    ATTRIBUTE_DEFINITION,
    ATTRIBUTE_DEFINITIONS,
    BILLING_MODES,
    CREATE_TABLE_NAME,
    INDEX_NAME_NOT_NULL,
    KEY_SCHEMA,
    NAME_PATTERN,
    ON_DEMAND_THROUGHPUT,
    PROJECTION,
    PROVISIONED_THROUGHPUT,
    SSE_SPECIFICATION,
    STREAM_SPECIFICATION,
    TABLE_CLASSES,
    TABLE_NAME_FOR_TABLES,
    TAG,
    invalid,
)
from dynamo.requests.shapes import RequestSpec, boolean, integer, list_of, string, struct

MAX_CAPACITY_UNITS = 1_000_000_000_000
MAX_LOCAL_SECONDARY_INDEXES = 5
MAX_GLOBAL_SECONDARY_INDEXES = 20
MAX_LIST_TABLES_LIMIT = 100
ACCOUNT_ID = "000000000000"

# Field runs the index shapes share, in DynamoDB's order.
_INDEX_KEYS = (("IndexName", INDEX_NAME_NOT_NULL), ("KeySchema", KEY_SCHEMA), ("Projection", PROJECTION))
_INDEX_THROUGHPUT = (("ProvisionedThroughput", PROVISIONED_THROUGHPUT), ("OnDemandThroughput", ON_DEMAND_THROUGHPUT))
LOCAL_SECONDARY_INDEX = struct("LocalSecondaryIndex", *_INDEX_KEYS, value=True)
GLOBAL_SECONDARY_INDEX = struct("GlobalSecondaryIndex", *_INDEX_KEYS, *_INDEX_THROUGHPUT, value=True)

# Field order is DynamoDB's: it decides the order of aggregated validation messages.
CREATE_TABLE_SHAPE = struct(
    "CreateTableInput",
    ("AttributeDefinitions", ATTRIBUTE_DEFINITIONS),
    ("TableName", CREATE_TABLE_NAME),
    ("ProvisionedThroughput", PROVISIONED_THROUGHPUT),
    ("KeySchema", KEY_SCHEMA),
    ("LocalSecondaryIndexes", list_of(LOCAL_SECONDARY_INDEX)),
    ("GlobalSecondaryIndexes", list_of(GLOBAL_SECONDARY_INDEX)),
    ("BillingMode", string(enum=BILLING_MODES)),
    ("StreamSpecification", STREAM_SPECIFICATION),
    ("SSESpecification", SSE_SPECIFICATION),
    ("Tags", list_of(TAG)),
    ("TableClass", string(enum=TABLE_CLASSES)),
    ("DeletionProtectionEnabled", boolean()),
    ("OnDemandThroughput", ON_DEMAND_THROUGHPUT),
    ("ResourcePolicy", string()),
)


def _names(elements: list[dict[str, Any]]) -> list[str]:
    return [element["AttributeName"] for element in elements]


def _check_throughput(throughput: dict[str, Any] | None) -> None:
    if throughput is None:
        return
    for unit in ("ReadCapacityUnits", "WriteCapacityUnits"):
        if throughput[unit] > MAX_CAPACITY_UNITS:
            raise ValidationException(f"Given value {throughput[unit]} for {unit} is out of bounds")


def _check_billing(request: dict[str, Any]) -> None:
    mode = request.get("BillingMode", "PROVISIONED")
    throughput = request.get("ProvisionedThroughput")
    if mode == "PROVISIONED" and throughput is None:
        raise invalid(
            "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED"
        )
    if mode == "PAY_PER_REQUEST" and throughput is not None:
        raise invalid(
            "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"
        )
    _check_throughput(throughput)


def _check_definitions(request: dict[str, Any]) -> None:
    seen: set[str] = set()
    for name in _names(request["AttributeDefinitions"]):
        if name in seen:
            raise invalid(f"Duplicate AttributeName in AttributeDefinitions: {name}")
        seen.add(name)


def _undefined_keys(keys: list[str], definitions: list[str]) -> ValidationException:
    return invalid(
        "Some index key attributes are not defined in AttributeDefinitions. "
        f"Keys: [{', '.join(keys)}], AttributeDefinitions: [{', '.join(definitions)}]"
    )


def _check_key_roles(key_schema: list[dict[str, Any]], keys: list[str]) -> None:
    """The key elements' names and types, after their definitions were checked (table and index alike)."""
    if len(keys) == 2 and keys[0] == keys[1]:
        raise ValidationException(
            "Both the Hash Key and the Range Key element in the KeySchema have the same name"
        )
    if key_schema[0]["KeyType"] != "HASH":
        raise ValidationException("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
    if len(key_schema) == 2 and key_schema[1]["KeyType"] != "RANGE":
        raise ValidationException("Invalid KeySchema: The second KeySchemaElement is not a RANGE key type")


def _check_key_schema(key_schema: list[dict[str, Any]], definitions: list[str]) -> None:
    keys = _names(key_schema)
    if len(keys) == 2 and (
        any(key not in definitions for key in keys) or (keys[0] == keys[1] and len(definitions) == 1)
    ):
        raise ValidationException("Invalid KeySchema: Some index key attribute have no definition")
    if len(keys) == 1 and keys[0] not in definitions:
        raise _undefined_keys(keys, definitions)
    _check_key_roles(key_schema, keys)


def _check_index_common(index: dict[str, Any], definitions: list[str]) -> None:
    keys = _names(index["KeySchema"])
    if any(key not in definitions for key in keys):
        raise _undefined_keys(keys, definitions)
    _check_key_roles(index["KeySchema"], keys)


def _check_projection(index: dict[str, Any]) -> None:
    projection = index["Projection"]
    projection_type = projection.get("ProjectionType")
    if projection_type is None:
        raise invalid("Unknown ProjectionType: null")
    if "NonKeyAttributes" in projection and projection_type != "INCLUDE":
        raise invalid(f"ProjectionType is {projection_type}, but NonKeyAttributes is specified")
    if "NonKeyAttributes" not in projection and projection_type == "INCLUDE":
        raise invalid("ProjectionType is INCLUDE, but NonKeyAttributes is not specified")


def _check_unique_name(index: dict[str, Any], seen: set[str]) -> None:
    name = index["IndexName"]
    if name in seen:
        raise invalid(f"Duplicate index name: {name}")
    seen.add(name)


def _check_local_indexes(request: dict[str, Any], definitions: list[str], seen: set[str]) -> None:
    indexes = request.get("LocalSecondaryIndexes")
    if indexes is None:
        return
    if not indexes:
        raise invalid("List of LocalSecondaryIndexes is empty")
    table_keys = request["KeySchema"]
    if len(table_keys) != 2:
        raise invalid(
            "Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex"
        )
    table_hash = table_keys[0]["AttributeName"]
    for index in indexes:
        _check_index_common(index, definitions)
        name = index["IndexName"]
        if len(index["KeySchema"]) != 2:
            raise invalid(f"Index KeySchema does not have a range key for index: {name}")
        index_hash = index["KeySchema"][0]["AttributeName"]
        if index_hash != table_hash:
            raise invalid(
                "Index KeySchema does not have the same leading hash key as table KeySchema for index: "
                f"{name}. index hash key: {index_hash}, table hash key: {table_hash}"
            )
        _check_projection(index)
        _check_unique_name(index, seen)
    if len(indexes) > MAX_LOCAL_SECONDARY_INDEXES:
        raise invalid(
            f"Number of LocalSecondaryIndexes exceeds per-table limit of {MAX_LOCAL_SECONDARY_INDEXES}"
        )


def _check_global_indexes(request: dict[str, Any], definitions: list[str], seen: set[str]) -> None:
    indexes = request.get("GlobalSecondaryIndexes")
    if indexes is None:
        return
    if not indexes:
        raise invalid("List of GlobalSecondaryIndexes is empty")
    mode = request.get("BillingMode", "PROVISIONED")
    for index in indexes:
        _check_index_common(index, definitions)
        _check_projection(index)
        _check_unique_name(index, seen)
        name = index["IndexName"]
        throughput = index.get("ProvisionedThroughput")
        if mode == "PROVISIONED" and throughput is None:
            raise invalid(f"ProvisionedThroughput must be specified for index: {name}")
        if mode == "PAY_PER_REQUEST" and throughput is not None:
            raise invalid(
                f"ProvisionedThroughput should not be specified for index: {name} when BillingMode is PAY_PER_REQUEST"
            )
        _check_throughput(throughput)
    if len(indexes) > MAX_GLOBAL_SECONDARY_INDEXES:
        raise invalid(
            f"GlobalSecondaryIndex count exceeds the per-table limit of {MAX_GLOBAL_SECONDARY_INDEXES}"
        )


def _check_create_table(request: dict[str, Any]) -> None:
    _check_billing(request)
    _check_definitions(request)
    definitions = _names(request["AttributeDefinitions"])
    _check_key_schema(request["KeySchema"], definitions)
    has_indexes = "LocalSecondaryIndexes" in request or "GlobalSecondaryIndexes" in request
    if not has_indexes and len(request["KeySchema"]) != len(definitions):
        raise invalid(
            "Number of attributes in KeySchema does not exactly match number of attributes defined in "
            "AttributeDefinitions"
        )
    seen: set[str] = set()
    _check_local_indexes(request, definitions, seen)
    _check_global_indexes(request, definitions, seen)
    if has_indexes:
        used = set(_names(request["KeySchema"]))
        for kind in ("LocalSecondaryIndexes", "GlobalSecondaryIndexes"):
            for index in request.get(kind, ()):
                used.update(_names(index["KeySchema"]))
        if any(name not in used for name in definitions):
            raise invalid(
                "Some AttributeDefinitions are not used. "
                f"AttributeDefinitions: [{', '.join(definitions)}], keys used: [{', '.join(sorted(used))}]"
            )
    stream = request.get("StreamSpecification")
    if stream is not None and stream["StreamEnabled"] and "StreamViewType" not in stream:
        # Wording not yet observed on DynamoDB; modelled on the disabled case below, which is.
        raise invalid("Table is being created with a stream enabled, but StreamViewType is not specified")
    if stream is not None and not stream["StreamEnabled"] and "StreamViewType" in stream:
        raise invalid("Table is being created with a stream disabled, UpdateViewType should not be specified")


CREATE_TABLE = RequestSpec(CREATE_TABLE_SHAPE, required=("TableName",), semantic=(_check_create_table,))

DESCRIBE_TABLE = RequestSpec(struct("DescribeTableInput", ("TableName", TABLE_NAME_FOR_TABLES)))
DELETE_TABLE = RequestSpec(struct("DeleteTableInput", ("TableName", TABLE_NAME_FOR_TABLES)))
LIST_TABLES = RequestSpec(
    struct(
        "ListTablesInput",
        ("ExclusiveStartTableName", string(pattern=NAME_PATTERN, min_length=3, max_length=255)),
        ("Limit", integer(min_value=1, max_value=MAX_LIST_TABLES_LIMIT)),
    )
)

_GSI_UPDATE = struct(
    "GlobalSecondaryIndexUpdate",
    (
        "Update",
        struct("UpdateGlobalSecondaryIndexAction", ("IndexName", INDEX_NAME_NOT_NULL), *_INDEX_THROUGHPUT),
    ),
    ("Create", struct("CreateGlobalSecondaryIndexAction", *_INDEX_KEYS, *_INDEX_THROUGHPUT)),
    ("Delete", struct("DeleteGlobalSecondaryIndexAction", ("IndexName", INDEX_NAME_NOT_NULL))),
    value=True,
)


def _check_update_table(request: dict[str, Any]) -> None:
    changes = [
        name
        for name in (
            "ProvisionedThroughput",
            "BillingMode",
            "GlobalSecondaryIndexUpdates",
            "StreamSpecification",
            "SSESpecification",
            "TableClass",
            "DeletionProtectionEnabled",
            "OnDemandThroughput",
            "ReplicaUpdates",
        )
        if name in request
    ]
    if not changes:
        raise ValidationException(
            "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates "
            "or SSESpecification or ReplicaUpdates is required"
        )
    if request.get("BillingMode") == "PAY_PER_REQUEST" and "ProvisionedThroughput" in request:
        raise invalid(
            "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"
        )
    _check_throughput(request.get("ProvisionedThroughput"))
    stream = request.get("StreamSpecification")
    # DynamoDB Local's words (DynamoDB's own for UpdateTable not yet observed)
    if stream is not None and stream["StreamEnabled"] and "StreamViewType" not in stream:
        raise ValidationException("Invalid StreamViewType: Stream ViewType must not be null or empty when enabling "
                                  "streams.")
    if stream is not None and not stream["StreamEnabled"] and "StreamViewType" in stream:
        raise ValidationException("Invalid StreamViewType: Stream StreamEnabled was false but a StreamViewType was "
                                  "present.")
    for update in request.get("GlobalSecondaryIndexUpdates", ()):
        actions = [name for name in ("Update", "Create", "Delete") if name in update]
        if len(actions) != 1:
            raise invalid("One of GlobalSecondaryIndexUpdate.Update, Create or Delete must be specified")
        create = update.get("Create")
        if create is not None:
            definitions = _names(request.get("AttributeDefinitions", []))
            _check_index_common(create, definitions)
            _check_projection(create)


UPDATE_TABLE = RequestSpec(
    struct(
        "UpdateTableInput",
        ("AttributeDefinitions", list_of(ATTRIBUTE_DEFINITION)),
        ("TableName", TABLE_NAME_FOR_TABLES),
        ("ProvisionedThroughput", PROVISIONED_THROUGHPUT),
        ("BillingMode", string(enum=BILLING_MODES)),
        ("GlobalSecondaryIndexUpdates", list_of(_GSI_UPDATE)),
        ("StreamSpecification", STREAM_SPECIFICATION),
        ("SSESpecification", SSE_SPECIFICATION),
        ("TableClass", string(enum=TABLE_CLASSES)),
        ("DeletionProtectionEnabled", boolean()),
        ("OnDemandThroughput", ON_DEMAND_THROUGHPUT),
    ),
    semantic=(_check_update_table,),
)


# ---- the TableDescription DynamoDB answers CreateTable / DescribeTable / DeleteTable with ----------------


def table_arn(region: str, table_name: str, account_id: str = ACCOUNT_ID) -> str:
    return f"arn:aws:dynamodb:{region}:{account_id}:table/{table_name}"


def _throughput_description(throughput: dict[str, Any] | None) -> dict[str, Any]:
    # An on-demand table reports zero provisioned units.
    return {
        "NumberOfDecreasesToday": 0,
        "ReadCapacityUnits": throughput["ReadCapacityUnits"] if throughput else 0,
        "WriteCapacityUnits": throughput["WriteCapacityUnits"] if throughput else 0,
    }


def table_description(
    request: dict[str, Any],
    *,
    region: str,
    table_id: str,
    creation_date_time: float,
    status: str = "ACTIVE",
    item_count: int = 0,
    table_size_bytes: int = 0,
    account_id: str = ACCOUNT_ID,
    latest_stream_label: str | None = None,
) -> dict[str, Any]:
    """DynamoDB's TableDescription for a table created by the validated CreateTable ``request``.

    ``creation_date_time`` is seconds since the epoch (the wire form); ``table_id`` a UUID string. Index
    statistics are reported as zero until indexes are built.
    """
    name = request["TableName"]
    arn = table_arn(region, name, account_id)
    mode = request.get("BillingMode", "PROVISIONED")
    description: dict[str, Any] = {
        "AttributeDefinitions": request["AttributeDefinitions"],
        "TableName": name,
        "KeySchema": request["KeySchema"],
        "TableStatus": status,
        "CreationDateTime": creation_date_time,
        "ProvisionedThroughput": _throughput_description(request.get("ProvisionedThroughput")),
        "TableSizeBytes": table_size_bytes,
        "ItemCount": item_count,
        "TableArn": arn,
        "TableId": table_id,
        "BillingModeSummary": {"BillingMode": mode},
        "DeletionProtectionEnabled": request.get("DeletionProtectionEnabled", False),
    }
    if mode == "PAY_PER_REQUEST":
        description["BillingModeSummary"]["LastUpdateToPayPerRequestDateTime"] = creation_date_time
    if "LocalSecondaryIndexes" in request:
        description["LocalSecondaryIndexes"] = [
            {
                "IndexName": index["IndexName"],
                "KeySchema": index["KeySchema"],
                "Projection": index["Projection"],
                "IndexSizeBytes": 0,
                "ItemCount": 0,
                "IndexArn": f"{arn}/index/{index['IndexName']}",
            }
            for index in request["LocalSecondaryIndexes"]
        ]
    if "GlobalSecondaryIndexes" in request:
        description["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index["IndexName"],
                "KeySchema": index["KeySchema"],
                "Projection": index["Projection"],
                "IndexStatus": status if status in ("CREATING", "ACTIVE") else "ACTIVE",
                "ProvisionedThroughput": _throughput_description(index.get("ProvisionedThroughput")),
                "IndexSizeBytes": 0,
                "ItemCount": 0,
                "IndexArn": f"{arn}/index/{index['IndexName']}",
            }
            for index in request["GlobalSecondaryIndexes"]
        ]
    stream = request.get("StreamSpecification")
    if stream is not None and stream["StreamEnabled"]:
        description["StreamSpecification"] = stream
    if latest_stream_label is not None:  # the newest stream, on or off (readable for 24 hours after)
        description["LatestStreamLabel"] = latest_stream_label
        description["LatestStreamArn"] = f"{arn}/stream/{latest_stream_label}"
    sse = request.get("SSESpecification")
    if sse is not None and sse.get("Enabled"):
        description["SSEDescription"] = {"Status": "ENABLED", "SSEType": sse.get("SSEType", "KMS")}
    if "TableClass" in request:
        description["TableClassSummary"] = {"TableClass": request["TableClass"]}
    if "OnDemandThroughput" in request:
        description["OnDemandThroughput"] = request["OnDemandThroughput"]
    return description
