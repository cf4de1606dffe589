"""Shapes and checks shared by several operations' requests."""

from __future__ import annotations

from typing import Any

from dynamo.errors import INVALID_PARAMETERS, ValidationException
from dynamo.expressions.context import check_expression_names, check_expression_value_keys
from dynamo.expressions.legacy import COMPARISON_OPERATORS, check_no_mixing
from dynamo.requests import attributes
from dynamo.requests.shapes import (
    attribute_value,
    boolean,
    item,
    list_of,
    long,
    map_of,
    string,
    struct,
)

NAME_PATTERN = "[a-zA-Z0-9_.-]+"
MODEL = "com.amazonaws.dynamodb.v20120810."

# CreateTable and the other table operations hold table names to 3..255; item operations report only the
# 1..255 bounds (their TableName may in time also be an ARN), as observed on DynamoDB.
TABLE_NAME_FOR_TABLES = string(not_null=True, pattern=NAME_PATTERN, min_length=3, max_length=255)
TABLE_NAME = string(not_null=True, pattern=NAME_PATTERN, min_length=1, max_length=255)
CREATE_TABLE_NAME = string(pattern=NAME_PATTERN, min_length=3, max_length=255)
INDEX_NAME = string(pattern=NAME_PATTERN, min_length=3, max_length=255)
INDEX_NAME_NOT_NULL = string(not_null=True, pattern=NAME_PATTERN, min_length=3, max_length=255)
ATTRIBUTE_NAME = string(not_null=True, min_length=1, max_length=255)
RESOURCE_ARN = string(not_null=True, min_length=1, max_length=1283)

KEY_TYPES = ("HASH", "RANGE")
SCALAR_ATTRIBUTE_TYPES = ("B", "N", "S")
PROJECTION_TYPES = ("ALL", "INCLUDE", "KEYS_ONLY")
BILLING_MODES = ("PROVISIONED", "PAY_PER_REQUEST")
STREAM_VIEW_TYPES = ("NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY")
TABLE_CLASSES = ("STANDARD", "STANDARD_INFREQUENT_ACCESS")
# Enum sets are listed in DynamoDB's own order: it prints them in its messages.
RETURN_VALUES = ("ALL_NEW", "UPDATED_OLD", "ALL_OLD", "NONE", "UPDATED_NEW")
SELECT = ("SPECIFIC_ATTRIBUTES", "COUNT", "ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES")
KEY_SCHEMA_ELEMENT = struct(
    "KeySchemaElement",
    ("AttributeName", ATTRIBUTE_NAME),
    ("KeyType", string(not_null=True, enum=KEY_TYPES)),
    value=True,
)
KEY_SCHEMA = list_of(KEY_SCHEMA_ELEMENT, not_null=True, min_length=1, max_length=2)
ATTRIBUTE_DEFINITION = struct(
    "AttributeDefinition",
    ("AttributeName", ATTRIBUTE_NAME),
    ("AttributeType", string(not_null=True, enum=SCALAR_ATTRIBUTE_TYPES)),
    value=True,
)
ATTRIBUTE_DEFINITIONS = list_of(ATTRIBUTE_DEFINITION, not_null=True)
PROVISIONED_THROUGHPUT = struct(
    "ProvisionedThroughput",
    ("WriteCapacityUnits", long(not_null=True, min_value=1)),
    ("ReadCapacityUnits", long(not_null=True, min_value=1)),
)
ON_DEMAND_THROUGHPUT = struct(
    "OnDemandThroughput",
    ("MaxReadRequestUnits", long()),
    ("MaxWriteRequestUnits", long()),
)
PROJECTION = struct(
    "Projection",
    ("ProjectionType", string(enum=PROJECTION_TYPES)),
    ("NonKeyAttributes", list_of(string(min_length=1, max_length=255), min_length=1, max_length=20)),
    not_null=True,
)
STREAM_SPECIFICATION = struct(
    "StreamSpecification",
    ("StreamEnabled", boolean(not_null=True)),
    ("StreamViewType", string(enum=STREAM_VIEW_TYPES)),
    value=True,
)
SSE_SPECIFICATION = struct(
    "SSESpecification",
    ("Enabled", boolean()),
    ("SSEType", string(enum=("AES256", "KMS"))),
    ("KMSMasterKeyId", string()),
)
TAG = struct(
    "Tag",
    ("Key", string(not_null=True, min_length=1, max_length=128)),
    ("Value", string(not_null=True, min_length=0, max_length=256)),
    value=True,
)

RETURN_CONSUMED_CAPACITY = string(enum=("INDEXES", "TOTAL", "NONE"))
RETURN_ITEM_COLLECTION_METRICS = string(enum=("SIZE", "NONE"))
RETURN_VALUES_ON_CONDITION_CHECK_FAILURE = string(enum=("ALL_OLD", "NONE"))
CONDITIONAL_OPERATOR = string(enum=("AND", "OR"))
EXPRESSION_ATTRIBUTE_NAMES = map_of(string(), "java.lang.String")
EXPRESSION_ATTRIBUTE_VALUES = map_of(attribute_value(), MODEL + "AttributeValue")
ATTRIBUTES_TO_GET = list_of(string(), min_length=1)
KEY = item(not_null=True)

EXPECTED = map_of(
    struct(
        "ExpectedAttributeValue",
        ("Exists", boolean()),
        ("Value", attribute_value()),
        ("ComparisonOperator", string(enum=COMPARISON_OPERATORS)),
        ("AttributeValueList", list_of(attribute_value())),
        value=True,
    ),
    MODEL + "ExpectedAttributeValue",
)
CONDITIONS = map_of(
    struct(
        "Condition",
        ("AttributeValueList", list_of(attribute_value())),
        ("ComparisonOperator", string(not_null=True, enum=COMPARISON_OPERATORS)),
        value=True,
    ),
    MODEL + "Condition",
)
ATTRIBUTE_UPDATES = map_of(
    struct(
        "AttributeValueUpdate",
        ("Value", attribute_value()),
        ("Action", string(enum=("ADD", "PUT", "DELETE"))),
        value=True,
    ),
    MODEL + "AttributeValueUpdate",
)


def invalid(message: str) -> ValidationException:
    return ValidationException(INVALID_PARAMETERS + message)


def check_expression_parameters(request: dict[str, Any], operation: str) -> None:
    """DynamoDB refuses a request that mixes the legacy parameters with expressions, or gives placeholders
    without an expression (``operation`` as ``dynamo.expressions.legacy.PARAMETER_STYLES`` names it), and
    placeholder maps that are empty or hold invalid keys, names or values (the same rules
    ``ExpressionContext`` applies)."""
    check_no_mixing(request, operation)
    names = request.get("ExpressionAttributeNames")
    if names is not None:
        check_expression_names(names)
    values = request.get("ExpressionAttributeValues")
    if values is not None:
        check_expression_value_keys(values)
        attributes.validate_expression_values(values)  # normalises them in place


def check_legacy_values(request: dict[str, Any], *names: str) -> None:
    """AttributeValues inside the legacy parameters (Expected, KeyConditions, ...) go to the value validator."""
    for name in names:
        for entry in (request.get(name) or {}).values():
            if not isinstance(entry, dict):
                continue
            if entry.get("Value") is not None:
                attributes.validate_value(entry["Value"])
            for value in entry.get("AttributeValueList") or ():
                attributes.validate_value(value)
