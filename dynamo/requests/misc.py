"""Requests of the smaller operations: tags, time to live, backups, endpoints, limits, PartiQL."""

from __future__ import annotations

from typing import Any

from dynamo.errors import ValidationException
from dynamo.requests import attributes
from dynamo.requests.common import (
    RESOURCE_ARN,
    RETURN_CONSUMED_CAPACITY,
    RETURN_VALUES_ON_CONDITION_CHECK_FAILURE,
    TABLE_NAME_FOR_TABLES,
    TAG,
)
from dynamo.requests.shapes import RequestSpec, attribute_value, boolean, integer, list_of, string, struct

MAX_TAGS_PER_RESOURCE = 50
MAX_STATEMENT_LENGTH = 8192


def _check_tag_count(request: dict[str, Any]) -> None:
    if len(request["Tags"]) > MAX_TAGS_PER_RESOURCE:
        raise ValidationException(f"The number of tags exceeds the limit of {MAX_TAGS_PER_RESOURCE}")


TAG_RESOURCE = RequestSpec(
    struct("TagResourceInput", ("ResourceArn", RESOURCE_ARN), ("Tags", list_of(TAG, not_null=True))),
    semantic=(_check_tag_count,),
)
UNTAG_RESOURCE = RequestSpec(
    struct(
        "UntagResourceInput",
        ("ResourceArn", RESOURCE_ARN),
        ("TagKeys", list_of(string(min_length=1, max_length=128), not_null=True)),
    )
)
LIST_TAGS_OF_RESOURCE = RequestSpec(
    struct("ListTagsOfResourceInput", ("ResourceArn", RESOURCE_ARN), ("NextToken", string()))
)

DESCRIBE_TIME_TO_LIVE = RequestSpec(struct("DescribeTimeToLiveInput", ("TableName", TABLE_NAME_FOR_TABLES)))
UPDATE_TIME_TO_LIVE = RequestSpec(
    struct(
        "UpdateTimeToLiveInput",
        ("TableName", TABLE_NAME_FOR_TABLES),
        (
            "TimeToLiveSpecification",
            struct(
                "TimeToLiveSpecification",
                ("Enabled", boolean(not_null=True)),
                ("AttributeName", string(not_null=True, min_length=1, max_length=255)),
                not_null=True,
            ),
        ),
    )
)

DESCRIBE_CONTINUOUS_BACKUPS = RequestSpec(
    struct("DescribeContinuousBackupsInput", ("TableName", TABLE_NAME_FOR_TABLES))
)
UPDATE_CONTINUOUS_BACKUPS = RequestSpec(
    struct(
        "UpdateContinuousBackupsInput",
        ("TableName", TABLE_NAME_FOR_TABLES),
        (
            "PointInTimeRecoverySpecification",
            struct(
                "PointInTimeRecoverySpecification",
                ("PointInTimeRecoveryEnabled", boolean(not_null=True)),
                ("RecoveryPeriodInDays", integer(min_value=1, max_value=35)),
                not_null=True,
            ),
        ),
    )
)

DESCRIBE_ENDPOINTS = RequestSpec(struct("DescribeEndpointsRequest"))
DESCRIBE_LIMITS = RequestSpec(struct("DescribeLimitsInput"))


def _check_statement_parameters(request: dict[str, Any]) -> None:
    for value in request.get("Parameters", ()):
        attributes.validate_value(value)


EXECUTE_STATEMENT = RequestSpec(
    struct(
        "ExecuteStatementInput",
        ("Statement", string(not_null=True, min_length=1, max_length=MAX_STATEMENT_LENGTH)),
        ("Parameters", list_of(attribute_value(), min_length=1)),
        ("ConsistentRead", boolean()),
        ("NextToken", string(min_length=1, max_length=32768)),
        ("ReturnConsumedCapacity", RETURN_CONSUMED_CAPACITY),
        ("Limit", integer(min_value=1)),
        ("ReturnValuesOnConditionCheckFailure", RETURN_VALUES_ON_CONDITION_CHECK_FAILURE),
    ),
    semantic=(_check_statement_parameters,),
)


MAX_BATCH_STATEMENTS = 25


def _check_batch_statement_parameters(request: dict[str, Any]) -> None:
    for statement in request["Statements"]:
        for value in statement.get("Parameters", ()):
            attributes.validate_value(value)


BATCH_EXECUTE_STATEMENT = RequestSpec(
    struct(
        "BatchExecuteStatementInput",
        ("Statements", list_of(struct(
            "BatchStatementRequest",
            ("Statement", string(not_null=True, min_length=1, max_length=MAX_STATEMENT_LENGTH)),
            ("Parameters", list_of(attribute_value(), min_length=1)),
            ("ConsistentRead", boolean()),
            ("ReturnValuesOnConditionCheckFailure", RETURN_VALUES_ON_CONDITION_CHECK_FAILURE),
            value=True,
        ), not_null=True, min_length=1, max_length=MAX_BATCH_STATEMENTS)),
        ("ReturnConsumedCapacity", RETURN_CONSUMED_CAPACITY),
    ),
    semantic=(_check_batch_statement_parameters,),
)


MAX_TRANSACTION_STATEMENTS = 100


def _check_transaction_parameters(request: dict[str, Any]) -> None:
    for statement in request["TransactStatements"]:
        for value in statement.get("Parameters", ()):
            attributes.validate_value(value)


EXECUTE_TRANSACTION = RequestSpec(
    struct(
        "ExecuteTransactionInput",
        ("TransactStatements", list_of(struct(
            "ParameterizedStatement",
            ("Statement", string(not_null=True, min_length=1, max_length=MAX_STATEMENT_LENGTH)),
            ("Parameters", list_of(attribute_value(), min_length=1)),
            ("ReturnValuesOnConditionCheckFailure", RETURN_VALUES_ON_CONDITION_CHECK_FAILURE),
            value=True,
        ), not_null=True, min_length=1, max_length=MAX_TRANSACTION_STATEMENTS)),
        ("ClientRequestToken", string(min_length=1, max_length=36)),
        ("ReturnConsumedCapacity", RETURN_CONSUMED_CAPACITY),
    ),
    semantic=(_check_transaction_parameters,),
)
