"""Item operations' requests: PutItem, GetItem, UpdateItem, DeleteItem, Query, Scan.

Expression SYNTAX is checked by ``dynamo.expressions`` where the table's schema is known; here only the
request shape and the rules that need no table.
"""

from __future__ import annotations

from typing import Any

from dynamo.errors import ValidationException
from dynamo.requests import attributes
from dynamo.requests.common import (
    ATTRIBUTE_UPDATES,
    ATTRIBUTES_TO_GET,
    CONDITIONAL_OPERATOR,
    CONDITIONS,
    EXPECTED,
    EXPRESSION_ATTRIBUTE_NAMES,
    EXPRESSION_ATTRIBUTE_VALUES,
    INDEX_NAME,
    KEY,
    RETURN_CONSUMED_CAPACITY,
    RETURN_ITEM_COLLECTION_METRICS,
    RETURN_VALUES,
    RETURN_VALUES_ON_CONDITION_CHECK_FAILURE,
    SELECT,
    TABLE_NAME,
    check_expression_parameters,
    check_legacy_values,
    invalid,
)
from dynamo.requests.shapes import RequestSpec, Shape, boolean, integer, item, string, struct

MAX_TOTAL_SEGMENTS = 1_000_000

# Runs of fields the single-item writes share, in DynamoDB's field order (its order for aggregated errors).
_WRITE_OPTIONS: tuple[tuple[str, Shape], ...] = (
    ("ReturnConsumedCapacity", RETURN_CONSUMED_CAPACITY),
    ("ReturnItemCollectionMetrics", RETURN_ITEM_COLLECTION_METRICS),
    ("ReturnValues", string(enum=RETURN_VALUES)),
    ("TableName", TABLE_NAME),
)
_CONDITION: tuple[tuple[str, Shape], ...] = (
    ("ConditionExpression", string()),
    ("ExpressionAttributeNames", EXPRESSION_ATTRIBUTE_NAMES),
    ("ExpressionAttributeValues", EXPRESSION_ATTRIBUTE_VALUES),
    ("ReturnValuesOnConditionCheckFailure", RETURN_VALUES_ON_CONDITION_CHECK_FAILURE),
)


def _check_return_values_old_only(request: dict[str, Any]) -> None:
    if request.get("ReturnValues", "NONE") not in ("NONE", "ALL_OLD"):
        raise ValidationException("Return values set to invalid value")


def _check_put_item(request: dict[str, Any]) -> None:
    _check_return_values_old_only(request)
    check_expression_parameters(request, "PutItem")
    check_legacy_values(request, "Expected")
    attributes.validate_item(request["Item"])


PUT_ITEM = RequestSpec(
    struct(
        "PutItemInput",
        ("Expected", EXPECTED),
        *_WRITE_OPTIONS,
        ("Item", item(not_null=True)),
        ("ConditionalOperator", CONDITIONAL_OPERATOR),
        *_CONDITION,
    ),
    semantic=(_check_put_item,),
)


def _check_delete_item(request: dict[str, Any]) -> None:
    _check_return_values_old_only(request)
    check_expression_parameters(request, "DeleteItem")
    check_legacy_values(request, "Expected")
    attributes.validate_key(request["Key"])


DELETE_ITEM = RequestSpec(
    struct(
        "DeleteItemInput",
        ("Expected", EXPECTED),
        *_WRITE_OPTIONS,
        ("Key", KEY),
        ("ConditionalOperator", CONDITIONAL_OPERATOR),
        *_CONDITION,
    ),
    semantic=(_check_delete_item,),
)


def _check_get_item(request: dict[str, Any]) -> None:
    check_expression_parameters(request, "GetItem")
    attributes.validate_key(request["Key"])


GET_ITEM = RequestSpec(
    struct(
        "GetItemInput",
        ("AttributesToGet", ATTRIBUTES_TO_GET),
        ("ReturnConsumedCapacity", RETURN_CONSUMED_CAPACITY),
        ("TableName", TABLE_NAME),
        ("Key", KEY),
        ("ConsistentRead", boolean()),
        ("ProjectionExpression", string()),
        ("ExpressionAttributeNames", EXPRESSION_ATTRIBUTE_NAMES),
    ),
    semantic=(_check_get_item,),
)


def _check_update_item(request: dict[str, Any]) -> None:
    check_expression_parameters(request, "UpdateItem")
    check_legacy_values(request, "Expected")
    for update in (request.get("AttributeUpdates") or {}).values():
        if isinstance(update, dict) and update.get("Value") is not None:
            attributes.validate_value(update["Value"])
    attributes.validate_key(request["Key"])


UPDATE_ITEM = RequestSpec(
    struct(
        "UpdateItemInput",
        ("Expected", EXPECTED),
        ("AttributeUpdates", ATTRIBUTE_UPDATES),
        *_WRITE_OPTIONS,
        ("Key", KEY),
        ("ConditionalOperator", CONDITIONAL_OPERATOR),
        ("UpdateExpression", string()),
        *_CONDITION,
    ),
    semantic=(_check_update_item,),
)


MSG_SPECIFIC_ATTRIBUTES = (
    "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES"
)


def _check_select(request: dict[str, Any], projection_names: tuple[str, ...], specific_prefix: str) -> None:
    select = request.get("Select")
    projected = [name for name in projection_names if name in request]
    if select == "SPECIFIC_ATTRIBUTES" and not projected:
        # Query wraps this one in the validation envelope, Scan does not.
        raise ValidationException(specific_prefix + MSG_SPECIFIC_ATTRIBUTES)
    if select is not None and select != "SPECIFIC_ATTRIBUTES" and projected:
        what = "ProjectionExpression" if "ProjectionExpression" in projected else "AttributesToGet"
        raise ValidationException(f"Cannot specify the {what} when choosing to get {select}")
    if select == "ALL_PROJECTED_ATTRIBUTES" and "IndexName" not in request:
        raise invalid("Select type ALL_PROJECTED_ATTRIBUTES is not allowed when querying a table")


def _check_query(request: dict[str, Any]) -> None:
    # Parameter styles first: DynamoDB reports stray ExpressionAttributeValues before a missing key
    # condition (dynalite's query tests, run against the service).
    check_expression_parameters(request, "Query")
    if "KeyConditions" not in request and "KeyConditionExpression" not in request:
        raise ValidationException(
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request."
        )
    _check_select(request, ("AttributesToGet", "ProjectionExpression"), "1 validation error detected: ")
    check_legacy_values(request, "KeyConditions", "QueryFilter")
    if "ExclusiveStartKey" in request:
        attributes.validate_key(request["ExclusiveStartKey"])


QUERY = RequestSpec(
    struct(
        "QueryInput",
        ("AttributesToGet", ATTRIBUTES_TO_GET),
        ("QueryFilter", CONDITIONS),
        ("ConditionalOperator", CONDITIONAL_OPERATOR),
        ("ConsistentRead", boolean()),
        ("ExclusiveStartKey", item()),
        ("IndexName", INDEX_NAME),
        ("KeyConditions", CONDITIONS),
        ("Limit", integer(min_value=1)),
        ("ReturnConsumedCapacity", RETURN_CONSUMED_CAPACITY),
        ("ScanIndexForward", boolean()),
        ("Select", string(enum=SELECT)),
        ("TableName", TABLE_NAME),
        ("ProjectionExpression", string()),
        ("FilterExpression", string()),
        ("KeyConditionExpression", string()),
        ("ExpressionAttributeNames", EXPRESSION_ATTRIBUTE_NAMES),
        ("ExpressionAttributeValues", EXPRESSION_ATTRIBUTE_VALUES),
    ),
    semantic=(_check_query,),
)


def _check_scan(request: dict[str, Any]) -> None:
    segment = request.get("Segment")
    total = request.get("TotalSegments")
    if segment is not None and total is None:
        raise ValidationException(
            "The TotalSegments parameter is required but was not present in the request when Segment parameter "
            "is present"
        )
    if total is not None and segment is None:
        raise ValidationException(
            "The Segment parameter is required but was not present in the request when parameter TotalSegments "
            "is present"
        )
    if segment is not None and total is not None and segment >= total:
        raise ValidationException(
            "The Segment parameter is zero-based and must be less than parameter TotalSegments: "
            f"Segment: {segment} is not less than TotalSegments: {total}"
        )
    check_expression_parameters(request, "Scan")
    _check_select(request, ("AttributesToGet", "ProjectionExpression"), "")
    check_legacy_values(request, "ScanFilter")
    if "ExclusiveStartKey" in request:
        attributes.validate_key(request["ExclusiveStartKey"])


SCAN = RequestSpec(
    struct(
        "ScanInput",
        ("AttributesToGet", ATTRIBUTES_TO_GET),
        ("ExclusiveStartKey", item()),
        ("Limit", integer(min_value=1)),
        ("TotalSegments", integer(min_value=1, max_value=MAX_TOTAL_SEGMENTS)),
        ("ScanFilter", CONDITIONS),
        ("Segment", integer(min_value=0, max_value=MAX_TOTAL_SEGMENTS - 1)),
        ("ReturnConsumedCapacity", RETURN_CONSUMED_CAPACITY),
        ("TableName", TABLE_NAME),
        ("ConditionalOperator", CONDITIONAL_OPERATOR),
        ("Select", string(enum=SELECT)),
        ("IndexName", INDEX_NAME),
        ("ConsistentRead", boolean()),
        ("ProjectionExpression", string()),
        ("FilterExpression", string()),
        ("ExpressionAttributeNames", EXPRESSION_ATTRIBUTE_NAMES),
        ("ExpressionAttributeValues", EXPRESSION_ATTRIBUTE_VALUES),
    ),
    semantic=(_check_scan,),
)
