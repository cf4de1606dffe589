"""Multi-item operations' requests: BatchGetItem, BatchWriteItem, TransactGetItems, TransactWriteItems."""

from __future__ import annotations

from typing import Any

from dynamo.errors import ValidationException
from dynamo.expressions.legacy import check_no_mixing
from dynamo.requests import attributes
from dynamo.requests.common import (
    ATTRIBUTES_TO_GET,
    EXPRESSION_ATTRIBUTE_NAMES,
    EXPRESSION_ATTRIBUTE_VALUES,
    KEY,
    MODEL,
    NAME_PATTERN,
    RETURN_CONSUMED_CAPACITY,
    RETURN_ITEM_COLLECTION_METRICS,
    RETURN_VALUES_ON_CONDITION_CHECK_FAILURE,
    TABLE_NAME,
    check_expression_parameters,
)
from dynamo.requests.shapes import RequestSpec, boolean, item, list_of, map_of, string, struct

MAX_BATCH_GET_KEYS = 100
MAX_BATCH_WRITE_REQUESTS = 25
MAX_TRANSACT_ITEMS = 100
# RequestItems' keys are table names; DynamoDB lists these bounds when one breaks them.
_TABLE_NAME_KEY = string(pattern=NAME_PATTERN, min_length=3, max_length=255)

_KEYS_AND_ATTRIBUTES = struct(
    "KeysAndAttributes",
    ("AttributesToGet", ATTRIBUTES_TO_GET),
    ("Keys", list_of(item(), not_null=True, min_length=1, max_length=MAX_BATCH_GET_KEYS)),
    ("ConsistentRead", boolean()),
    ("ProjectionExpression", string()),
    ("ExpressionAttributeNames", EXPRESSION_ATTRIBUTE_NAMES),
    value=True,
)


def _check_batch_get(request: dict[str, Any]) -> None:
    entries = request["RequestItems"].values()
    # The legacy and expression projections may not be mixed even across tables.
    projections = {name: True for entry in entries for name in ("AttributesToGet", "ProjectionExpression") if name in entry}
    check_no_mixing(projections, "BatchGetItem")
    total = 0
    for entry in entries:
        check_expression_parameters(entry, "BatchGetItem")
        seen: set[bytes] = set()
        for key in entry["Keys"]:
            attributes.validate_key(key)
            fingerprint = _fingerprint(key)
            if fingerprint in seen:
                raise ValidationException("Provided list of item keys contains duplicates")
            seen.add(fingerprint)
        total += len(entry["Keys"])
    if total > MAX_BATCH_GET_KEYS:
        raise ValidationException("Too many items requested for the BatchGetItem call")


def _fingerprint(key: dict[str, Any]) -> bytes:
    # Keys are small; a canonical text of the sorted key is enough to spot duplicates without the codec.
    return repr(sorted(key.items())).encode()


BATCH_GET_ITEM = RequestSpec(
    struct(
        "BatchGetItemInput",
        (
            "RequestItems",
            map_of(
                _KEYS_AND_ATTRIBUTES,
                MODEL + "KeysAndAttributes",
                not_null=True,
                min_length=1,
                max_length=MAX_BATCH_GET_KEYS,
                keys=_TABLE_NAME_KEY,
            ),
        ),
        ("ReturnConsumedCapacity", RETURN_CONSUMED_CAPACITY),
    ),
    semantic=(_check_batch_get,),
)

_WRITE_REQUEST = struct(
    "WriteRequest",
    ("DeleteRequest", struct("DeleteRequest", ("Key", KEY))),
    ("PutRequest", struct("PutRequest", ("Item", item(not_null=True)))),
    value=True,
)


def _check_batch_write(request: dict[str, Any]) -> None:
    total = 0
    for writes in request["RequestItems"].values():
        for write in writes:
            present = [name for name in ("PutRequest", "DeleteRequest") if write.get(name) is not None]
            if len(present) != 1:
                raise ValidationException(
                    "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the "
                    "supported datatypes"
                    if present
                    else "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
                )
            if present[0] == "PutRequest":
                attributes.validate_item(write["PutRequest"]["Item"])
            else:
                attributes.validate_key(write["DeleteRequest"]["Key"])
        total += len(writes)
    if total > MAX_BATCH_WRITE_REQUESTS:
        raise ValidationException("Too many items requested for the BatchWriteItem call")


BATCH_WRITE_ITEM = RequestSpec(
    struct(
        "BatchWriteItemInput",
        (
            "RequestItems",
            map_of(
                list_of(_WRITE_REQUEST, min_length=1, max_length=MAX_BATCH_WRITE_REQUESTS),
                "java.util.List<" + MODEL + "WriteRequest>",
                not_null=True,
                min_length=1,
                max_length=MAX_BATCH_WRITE_REQUESTS,
                keys=_TABLE_NAME_KEY,
                values_reported_on_map=True,
            ),
        ),
        ("ReturnConsumedCapacity", RETURN_CONSUMED_CAPACITY),
        ("ReturnItemCollectionMetrics", RETURN_ITEM_COLLECTION_METRICS),
    ),
    semantic=(_check_batch_write,),
)

_GET = struct(
    "Get",
    ("Key", KEY),
    ("TableName", TABLE_NAME),
    ("ProjectionExpression", string()),
    ("ExpressionAttributeNames", EXPRESSION_ATTRIBUTE_NAMES),
)


def _check_transact_get(request: dict[str, Any]) -> None:
    for entry in request["TransactItems"]:
        attributes.validate_key(entry["Get"]["Key"])


TRANSACT_GET_ITEMS = RequestSpec(
    struct(
        "TransactGetItemsInput",
        (
            "TransactItems",
            list_of(
                struct("TransactGetItem", ("Get", struct("Get", *_GET.fields, not_null=True)), value=True),
                not_null=True,
                min_length=1,
                max_length=MAX_TRANSACT_ITEMS,
            ),
        ),
        ("ReturnConsumedCapacity", RETURN_CONSUMED_CAPACITY),
    ),
    semantic=(_check_transact_get,),
)

_CONDITIONAL = (
    ("ExpressionAttributeNames", EXPRESSION_ATTRIBUTE_NAMES),
    ("ExpressionAttributeValues", EXPRESSION_ATTRIBUTE_VALUES),
    ("ReturnValuesOnConditionCheckFailure", RETURN_VALUES_ON_CONDITION_CHECK_FAILURE),
)
_TRANSACT_WRITE_ITEM = struct(
    "TransactWriteItem",
    (
        "ConditionCheck",
        struct(
            "ConditionCheck",
            ("Key", KEY),
            ("TableName", TABLE_NAME),
            ("ConditionExpression", string(not_null=True)),
            *_CONDITIONAL,
        ),
    ),
    (
        "Put",
        struct(
            "Put",
            ("Item", item(not_null=True)),
            ("TableName", TABLE_NAME),
            ("ConditionExpression", string()),
            *_CONDITIONAL,
        ),
    ),
    (
        "Delete",
        struct(
            "Delete",
            ("Key", KEY),
            ("TableName", TABLE_NAME),
            ("ConditionExpression", string()),
            *_CONDITIONAL,
        ),
    ),
    (
        "Update",
        struct(
            "Update",
            ("Key", KEY),
            ("UpdateExpression", string(not_null=True)),
            ("TableName", TABLE_NAME),
            ("ConditionExpression", string()),
            *_CONDITIONAL,
        ),
    ),
    value=True,
)


def _check_transact_write(request: dict[str, Any]) -> None:
    for entry in request["TransactItems"]:
        present = [name for name in ("ConditionCheck", "Put", "Delete", "Update") if name in entry]
        if len(present) != 1:
            raise ValidationException("TransactItems can only contain one of Check, Put, Update or Delete")
        action = entry[present[0]]
        check_expression_parameters(action, present[0])
        if "Item" in action:
            attributes.validate_item(action["Item"])
        else:
            attributes.validate_key(action["Key"])


TRANSACT_WRITE_ITEMS = RequestSpec(
    struct(
        "TransactWriteItemsInput",
        (
            "TransactItems",
            list_of(_TRANSACT_WRITE_ITEM, not_null=True, min_length=1, max_length=MAX_TRANSACT_ITEMS),
        ),
        ("ReturnConsumedCapacity", RETURN_CONSUMED_CAPACITY),
        ("ReturnItemCollectionMetrics", RETURN_ITEM_COLLECTION_METRICS),
        ("ClientRequestToken", string(min_length=1, max_length=36)),
    ),
    semantic=(_check_transact_write,),
)
