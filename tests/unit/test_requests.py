"""Request validation: DynamoDB's exact words, its order, its aggregation."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo.errors import DynamoError, SerializationException, ValidationException
from dynamo.requests import OPERATIONS, SPECS, is_operation, validate_request
from dynamo.requests.shapes import MAX_REPORTED_ERRORS

KS_HASH = [{"AttributeName": "pk", "KeyType": "HASH"}]
AD_PK = [{"AttributeName": "pk", "AttributeType": "S"}]
PT = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}


def create(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "TableName": "table",
        "AttributeDefinitions": AD_PK,
        "KeySchema": KS_HASH,
        "ProvisionedThroughput": PT,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def error_of(operation: str, body: Any) -> DynamoError:
    with pytest.raises(DynamoError) as caught:
        validate_request(operation, body)
    return caught.value


def message(operation: str, body: Any) -> str:
    return error_of(operation, body).message


# ---- pass 1: types ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "TRUE_VALUE cannot be converted to String"),
        (False, "FALSE_VALUE cannot be converted to String"),
        (23, "NUMBER_VALUE cannot be converted to String"),
        (2147483648, "NUMBER_VALUE cannot be converted to String"),
        (34.56, "DECIMAL_VALUE cannot be converted to String"),
        # JSON 1.0 is a decimal token to the reader, as in an AttributeValue (dynamo.values).
        (1.0, "DECIMAL_VALUE cannot be converted to String"),
        ([], "Unrecognized collection type class java.lang.String"),
        ({}, "Start of structure or map found where not expected"),
    ],
)
def test_string_field_of_wrong_type(value: Any, expected: str) -> None:
    error = error_of("CreateTable", create(TableName=value))
    assert isinstance(error, SerializationException)
    assert error.message == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("23", "STRING_VALUE cannot be converted to Long"),
        (True, "TRUE_VALUE cannot be converted to Long"),
        ([], "Unrecognized collection type class java.lang.Long"),
        ({}, "Start of structure or map found where not expected"),
    ],
)
def test_long_field_of_wrong_type(value: Any, expected: str) -> None:
    body = create(ProvisionedThroughput={"ReadCapacityUnits": value, "WriteCapacityUnits": 1})
    assert message("CreateTable", body) == expected


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("KeySchema", "23", "Unexpected field type"),
        ("KeySchema", {}, "Start of structure or map found where not expected"),
        ("KeySchema", ["23"], "Unexpected value type in payload"),
        (
            "KeySchema",
            [[]],
            "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.KeySchemaElement",
        ),
        ("ProvisionedThroughput", "23", "Unexpected field type"),
        (
            "ProvisionedThroughput",
            [],
            "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.ProvisionedThroughput",
        ),
    ],
)
def test_collections_of_wrong_type(field: str, value: Any, expected: str) -> None:
    assert message("CreateTable", create(**{field: value})) == expected


def test_map_given_a_list() -> None:
    assert message("PutItem", {"TableName": "abc", "Item": []}) == (
        "Unrecognized collection type java.util.Map<java.lang.String, "
        "com.amazonaws.dynamodb.v20120810.AttributeValue>"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, "NUMBER_VALUE cannot be converted to Boolean"),
        (1.5, "DECIMAL_VALUE cannot be converted to Boolean"),
        ("yes", "'YES' can not be converted to an Boolean"),
        ([], "Unrecognized collection type class java.lang.Boolean"),
    ],
)
def test_boolean_field_of_wrong_type(value: Any, expected: str) -> None:
    assert message("GetItem", {"TableName": "abc", "Key": {}, "ConsistentRead": value}) == expected


def test_boolean_text_and_decimal_longs_are_converted() -> None:
    request = validate_request("GetItem", {"TableName": "abc", "Key": {}, "ConsistentRead": "TRUE"})
    assert request["ConsistentRead"] is True
    request = validate_request("Scan", {"TableName": "abc", "Limit": 2.7})
    assert request["Limit"] == 2


def test_type_errors_come_before_constraint_errors() -> None:
    # TableName is both too short and KeySchema of the wrong type: the type error wins.
    assert isinstance(error_of("CreateTable", create(TableName="a", KeySchema="x")), SerializationException)


def test_unknown_and_null_fields_are_dropped() -> None:
    request = validate_request("DescribeTable", {"TableName": "abc", "Bogus": 1, "Other": None})
    assert request == {"TableName": "abc"}
    assert validate_request("GetItem", {"TableName": "abc", "Key": {}, "ConsistentRead": None}) == {
        "TableName": "abc",
        "Key": {},
    }


@pytest.mark.parametrize("body", [[], "x", 7, None])
def test_body_that_is_not_an_object(body: Any) -> None:
    assert isinstance(error_of("ListTables", body), SerializationException)


# ---- pass 2: constraints, aggregated ---------------------------------------------------------------------


def test_create_table_missing_name_has_its_own_message() -> None:
    assert (
        message("CreateTable", {})
        == "The parameter 'TableName' is required but was not present in the request"
    )


def test_create_table_null_members_in_dynamodb_order() -> None:
    assert message("CreateTable", {"TableName": "abc;"}) == (
        "3 validation errors detected: "
        "Value null at 'attributeDefinitions' failed to satisfy constraint: Member must not be null; "
        "Value 'abc;' at 'tableName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; "
        "Value null at 'keySchema' failed to satisfy constraint: Member must not be null"
    )


def test_create_table_short_name() -> None:
    assert message("CreateTable", create(TableName="ab")) == (
        "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 3"
    )


def test_create_table_long_name() -> None:
    name = "n" * 256
    assert message("CreateTable", create(TableName=name)) == (
        f"1 validation error detected: Value '{name}' at 'tableName' failed to satisfy constraint: "
        "Member must have length less than or equal to 255"
    )


def test_empty_provisioned_throughput() -> None:
    assert message(
        "CreateTable", {"TableName": "abc", "AttributeDefinitions": [], "ProvisionedThroughput": {}}
    ) == (
        "3 validation errors detected: "
        "Value null at 'provisionedThroughput.writeCapacityUnits' failed to satisfy constraint: "
        "Member must not be null; "
        "Value null at 'provisionedThroughput.readCapacityUnits' failed to satisfy constraint: "
        "Member must not be null; "
        "Value null at 'keySchema' failed to satisfy constraint: Member must not be null"
    )


def test_low_capacity_and_empty_key_schema() -> None:
    body = {
        "TableName": "abc",
        "AttributeDefinitions": [],
        "KeySchema": [],
        "ProvisionedThroughput": {"ReadCapacityUnits": -1, "WriteCapacityUnits": -1},
    }
    assert message("CreateTable", body) == (
        "3 validation errors detected: "
        "Value '-1' at 'provisionedThroughput.writeCapacityUnits' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1; "
        "Value '-1' at 'provisionedThroughput.readCapacityUnits' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1; "
        "Value '[]' at 'keySchema' failed to satisfy constraint: Member must have length greater than or equal to 1"
    )


def test_key_schema_members_are_numbered_from_one_and_rendered_as_java_does() -> None:
    body = create(
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
            {"AttributeName": "extra", "KeyType": "RANGE"},
        ]
    )
    assert message("CreateTable", body) == (
        "1 validation error detected: Value '[KeySchemaElement(attributeName=pk, keyType=HASH), "
        "KeySchemaElement(attributeName=sk, keyType=RANGE), KeySchemaElement(attributeName=extra, "
        "keyType=RANGE)]' at 'keySchema' failed to satisfy constraint: Member must have length less than or "
        "equal to 2"
    )
    assert message("CreateTable", create(KeySchema=[{"AttributeName": "pk", "KeyType": "INVALID"}])) == (
        "1 validation error detected: Value 'INVALID' at 'keySchema.1.member.keyType' failed to satisfy "
        "constraint: Member must satisfy enum value set: [HASH, RANGE]"
    )


def test_attribute_type_must_be_a_key_type() -> None:
    for bad in ("SS", "BOOL", "M", "INVALID"):
        assert message(
            "CreateTable", create(AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": bad}])
        ) == (
            f"1 validation error detected: Value '{bad}' at 'attributeDefinitions.1.member.attributeType' "
            "failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]"
        )


def test_attribute_definition_member_nulls() -> None:
    assert message("CreateTable", create(AttributeDefinitions=[{}])) == (
        "2 validation errors detected: "
        "Value null at 'attributeDefinitions.1.member.attributeName' failed to satisfy constraint: "
        "Member must not be null; "
        "Value null at 'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: "
        "Member must not be null"
    )


def test_at_most_ten_errors_are_reported() -> None:
    body = create(AttributeDefinitions=[{} for _ in range(8)])
    text = message("CreateTable", body)
    assert text.startswith(f"{MAX_REPORTED_ERRORS} validation errors detected: ")
    assert text.count("failed to satisfy constraint") == MAX_REPORTED_ERRORS


def test_data_plane_table_name_bounds() -> None:
    assert message("PutItem", {"Item": {}}) == (
        "1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null"
    )
    assert message("PutItem", {"TableName": "bad table!@#", "Item": {}}) == (
        "1 validation error detected: Value 'bad table!@#' at 'tableName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
    )
    assert "Member must have length greater than or equal to 1" in message(
        "PutItem", {"TableName": "", "Item": {}}
    )
    # A two-letter name is legal for item operations (the table may simply not exist).
    assert validate_request("GetItem", {"TableName": "ab", "Key": {}})["TableName"] == "ab"


def test_limit_must_be_positive() -> None:
    assert message("Query", {"TableName": "abc", "Limit": 0, "KeyConditionExpression": "a = :a"}) == (
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"
    )


def test_list_tables_constraints_aggregate() -> None:
    assert message("ListTables", {"Limit": 2147483647, "ExclusiveStartTableName": "89hls;;f;d"}) == (
        "2 validation errors detected: "
        "Value '89hls;;f;d' at 'exclusiveStartTableName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; "
        "Value '2147483647' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 100"
    )


def test_return_values_enum() -> None:
    assert message("UpdateItem", {"TableName": "abc", "Key": {}, "ReturnValues": "SOME"}) == (
        "1 validation error detected: Value 'SOME' at 'returnValues' failed to satisfy constraint: "
        "Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]"
    )
    assert message("PutItem", {"TableName": "abc", "Item": {}, "ReturnValues": "ALL_NEW"}) == (
        "Return values set to invalid value"
    )


def test_map_members_are_named_by_key() -> None:
    body = {"RequestItems": {"tab": {}}}
    assert message("BatchGetItem", body) == (
        "1 validation error detected: Value null at 'requestItems.tab.member.keys' failed to satisfy "
        "constraint: Member must not be null"
    )


# ---- CreateTable semantics -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"ProvisionedThroughput": None},
            "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be "
            "specified when BillingMode is PROVISIONED",
        ),
        (
            {"BillingMode": "PROVISIONED", "ProvisionedThroughput": None},
            "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be "
            "specified when BillingMode is PROVISIONED",
        ),
        (
            {"BillingMode": "PAY_PER_REQUEST"},
            "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be "
            "specified when BillingMode is PAY_PER_REQUEST",
        ),
        (
            {"ProvisionedThroughput": {"ReadCapacityUnits": 1000000000001, "WriteCapacityUnits": 1}},
            "Given value 1000000000001 for ReadCapacityUnits is out of bounds",
        ),
        (
            {
                "KeySchema": [
                    {"AttributeName": "a", "KeyType": "HASH"},
                    {"AttributeName": "a", "KeyType": "HASH"},
                ],
                "AttributeDefinitions": [],
            },
            "Invalid KeySchema: Some index key attribute have no definition",
        ),
        (
            {
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "pk", "KeyType": "RANGE"},
                ]
            },
            "Invalid KeySchema: Some index key attribute have no definition",
        ),
        (
            {"KeySchema": [{"AttributeName": "c", "KeyType": "HASH"}]},
            "One or more parameter values were invalid: Some index key attributes are not defined in "
            "AttributeDefinitions. Keys: [c], AttributeDefinitions: [pk]",
        ),
        (
            {"KeySchema": [{"AttributeName": "pk", "KeyType": "RANGE"}]},
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
        ),
        (
            {
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "HASH"},
                ],
                "AttributeDefinitions": AD_PK + [{"AttributeName": "sk", "AttributeType": "N"}],
            },
            "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
        ),
        (
            {"AttributeDefinitions": AD_PK + [{"AttributeName": "other", "AttributeType": "N"}]},
            "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match "
            "number of attributes defined in AttributeDefinitions",
        ),
        (
            {"StreamSpecification": {"StreamEnabled": False, "StreamViewType": "NEW_AND_OLD_IMAGES"}},
            "One or more parameter values were invalid: Table is being created with a stream disabled, "
            "UpdateViewType should not be specified",
        ),
        (
            {"AttributeDefinitions": AD_PK + [{"AttributeName": "pk", "AttributeType": "N"}]},
            "One or more parameter values were invalid: Duplicate AttributeName in AttributeDefinitions: pk",
        ),
    ],
)
def test_create_table_semantics(overrides: dict[str, Any], expected: str) -> None:
    error = error_of("CreateTable", create(**overrides))
    assert isinstance(error, ValidationException)
    assert error.message == expected


KS_RANGE = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
AD_RANGE = AD_PK + [
    {"AttributeName": "sk", "AttributeType": "S"},
    {"AttributeName": "x", "AttributeType": "N"},
]


def lsi(name: str = "idx", keys: tuple[str, str] = ("pk", "x"), projection: Any = None) -> dict[str, Any]:
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": keys[0], "KeyType": "HASH"},
            {"AttributeName": keys[1], "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"} if projection is None else projection,
    }


def test_valid_tables_pass_unchanged() -> None:
    body = create(KeySchema=KS_RANGE, AttributeDefinitions=AD_RANGE, LocalSecondaryIndexes=[lsi()])
    assert validate_request("CreateTable", body) == body
    gsi = {
        "IndexName": "gsi1",
        "KeySchema": [{"AttributeName": "x", "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }
    body = create(
        KeySchema=KS_RANGE,
        AttributeDefinitions=AD_RANGE,
        BillingMode="PAY_PER_REQUEST",
        ProvisionedThroughput=None,
        GlobalSecondaryIndexes=[gsi],
    )
    assert validate_request("CreateTable", body) == body


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"KeySchema": KS_HASH, "AttributeDefinitions": AD_RANGE, "LocalSecondaryIndexes": [lsi()]},
            "One or more parameter values were invalid: Table KeySchema does not have a range key, which is "
            "required when specifying a LocalSecondaryIndex",
        ),
        (
            {"LocalSecondaryIndexes": [lsi(keys=("sk", "x"))]},
            "One or more parameter values were invalid: Index KeySchema does not have the same leading hash key "
            "as table KeySchema for index: idx. index hash key: sk, table hash key: pk",
        ),
        (
            {"LocalSecondaryIndexes": [lsi(), lsi()]},
            "One or more parameter values were invalid: Duplicate index name: idx",
        ),
        (
            {"LocalSecondaryIndexes": [lsi(projection={"ProjectionType": "ALL", "NonKeyAttributes": ["a"]})]},
            "One or more parameter values were invalid: ProjectionType is ALL, but NonKeyAttributes is specified",
        ),
        (
            {"LocalSecondaryIndexes": [lsi(projection={"ProjectionType": "INCLUDE"})]},
            "One or more parameter values were invalid: ProjectionType is INCLUDE, but NonKeyAttributes is not "
            "specified",
        ),
        (
            {"LocalSecondaryIndexes": [lsi(projection={})]},
            "One or more parameter values were invalid: Unknown ProjectionType: null",
        ),
        (
            {"LocalSecondaryIndexes": []},
            "One or more parameter values were invalid: List of LocalSecondaryIndexes is empty",
        ),
        (
            {"LocalSecondaryIndexes": [lsi(keys=("pk", "zz"))]},
            "One or more parameter values were invalid: Some index key attributes are not defined in "
            "AttributeDefinitions. Keys: [pk, zz], AttributeDefinitions: [pk, sk, x]",
        ),
        (
            {
                "GlobalSecondaryIndexes": [
                    {
                        "IndexName": "gsi1",
                        "KeySchema": [{"AttributeName": "x", "KeyType": "HASH"}],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                ]
            },
            "One or more parameter values were invalid: ProvisionedThroughput must be specified for index: gsi1",
        ),
        (
            {"LocalSecondaryIndexes": [lsi(f"idx{i}") for i in range(6)]},
            "One or more parameter values were invalid: Number of LocalSecondaryIndexes exceeds per-table limit of 5",
        ),
    ],
)
def test_create_table_index_semantics(overrides: dict[str, Any], expected: str) -> None:
    body = create(KeySchema=KS_RANGE, AttributeDefinitions=AD_RANGE)
    body.update(overrides)
    assert message("CreateTable", body) == expected


def test_index_name_constraints_are_aggregated() -> None:
    body = create(KeySchema=KS_RANGE, AttributeDefinitions=AD_RANGE, LocalSecondaryIndexes=[lsi("a;")])
    assert message("CreateTable", body) == (
        "2 validation errors detected: "
        "Value 'a;' at 'localSecondaryIndexes.1.member.indexName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; "
        "Value 'a;' at 'localSecondaryIndexes.1.member.indexName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 3"
    )


# ---- item operations -------------------------------------------------------------------------------------


def test_mixing_expressions_and_legacy_parameters() -> None:
    body = {
        "TableName": "abc",
        "Item": {"pk": {"S": "x"}},
        "Expected": {"pk": {"Exists": False}},
        "ConditionExpression": "attribute_not_exists(pk)",
    }
    assert message("PutItem", body) == (
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {Expected} Expression parameters: {ConditionExpression}"
    )


def test_expression_values_without_expression() -> None:
    # DynamoDB names the expressions that could have used the values (dynalite's tests, run on the service).
    body = {"TableName": "abc", "Item": {"pk": {"S": "x"}}, "ExpressionAttributeValues": {":v": {"S": "u"}}}
    assert message("PutItem", body) == (
        "ExpressionAttributeValues can only be specified when using expressions: ConditionExpression is null"
    )
    body = {"TableName": "abc", "Key": {"pk": {"S": "x"}}, "ExpressionAttributeValues": {":v": {"S": "u"}}}
    assert message("UpdateItem", body) == (
        "ExpressionAttributeValues can only be specified when using expressions: "
        "UpdateExpression and ConditionExpression are null"
    )
    body = {"TableName": "abc", "ProjectionExpression": "a", "ExpressionAttributeValues": {":v": {"S": "u"}}}
    assert message("Query", body) == (
        "ExpressionAttributeValues can only be specified when using expressions: "
        "FilterExpression and KeyConditionExpression are null"
    )
    assert message("Scan", body) == (
        "ExpressionAttributeValues can only be specified when using expressions: FilterExpression is null"
    )
    body = {"TableName": "abc", "Key": {"pk": {"S": "x"}}, "ExpressionAttributeNames": {"#n": "a"}}
    assert message("GetItem", body) == "ExpressionAttributeNames can only be specified when using expressions"


def test_placeholder_maps_are_checked_as_expressions_check_them() -> None:
    body = {"TableName": "abc", "Key": {"pk": {"S": "x"}}, "UpdateExpression": "SET #a = :v"}
    names = {**body, "ExpressionAttributeNames": {"a": "x"}, "ExpressionAttributeValues": {":v": {"S": "u"}}}
    assert message("UpdateItem", names) == 'ExpressionAttributeNames contains invalid key: Syntax error; key: "a"'
    # Every key is checked before any value (dynalite's order, pinned against the service).
    values = {**body, "ExpressionAttributeValues": {":v": {"SS": []}, "w": {"S": "u"}}}
    assert message("UpdateItem", values) == 'ExpressionAttributeValues contains invalid key: Syntax error; key: "w"'


def test_mixing_lists_parameters_in_dynamodb_order() -> None:
    legacy = {
        "AttributesToGet": ["a"],
        "QueryFilter": {"a": {"ComparisonOperator": "NULL"}},
        "ConditionalOperator": "OR",
    }
    expressions = {"ProjectionExpression": "a", "FilterExpression": "a = :v", "KeyConditionExpression": "p = :v"}
    body = {"TableName": "abc", **legacy, **expressions, "ExpressionAttributeValues": {":v": {"S": "u"}}}
    key_conditions = {"p": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "u"}]}}
    assert message("Query", {**body, "KeyConditions": key_conditions}) == (
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {AttributesToGet, QueryFilter, ConditionalOperator, KeyConditions} "
        "Expression parameters: {ProjectionExpression, FilterExpression, KeyConditionExpression}"
    )
    # KeyConditions without a KeyConditionExpression is not counted as mixing.
    del body["KeyConditionExpression"]
    assert message("Query", {**body, "KeyConditions": key_conditions}) == (
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {AttributesToGet, QueryFilter, ConditionalOperator} "
        "Expression parameters: {ProjectionExpression, FilterExpression}"
    )


def test_query_needs_a_key_condition() -> None:
    assert message("Query", {"TableName": "abc"}) == (
        "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request."
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"Segment": 0},
            "The TotalSegments parameter is required but was not present in the request when Segment parameter "
            "is present",
        ),
        (
            {"TotalSegments": 2},
            "The Segment parameter is required but was not present in the request when parameter TotalSegments "
            "is present",
        ),
        (
            {"Segment": 1, "TotalSegments": 1},
            "The Segment parameter is zero-based and must be less than parameter TotalSegments: "
            "Segment: 1 is not less than TotalSegments: 1",
        ),
    ],
)
def test_scan_segments(fields: dict[str, int], expected: str) -> None:
    assert message("Scan", {"TableName": "abc", **fields}) == expected


def test_attribute_values_go_through_the_value_call_point() -> None:
    assert message("PutItem", {"TableName": "abc", "Item": {"a": {}}}) == (
        "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
    )
    assert message("PutItem", {"TableName": "abc", "Item": {"a": {"S": "x", "N": "1"}}}) == (
        "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
    )


def test_select_enum_in_dynamodb_order_and_specific_attributes() -> None:
    assert message(
        "Query", {"TableName": "abc", "KeyConditionExpression": "a = :a", "Select": "INVALID_VALUE"}
    ) == (
        "1 validation error detected: Value 'INVALID_VALUE' at 'select' failed to satisfy constraint: Member must "
        "satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
    )
    specific = (
        "Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES"
    )
    query = {"TableName": "abc", "KeyConditionExpression": "a = :a", "Select": "SPECIFIC_ATTRIBUTES"}
    assert message("Query", query) == "1 validation error detected: " + specific
    assert message("Scan", {"TableName": "abc", "Select": "SPECIFIC_ATTRIBUTES"}) == specific


def test_request_items_table_names_are_map_key_constraints() -> None:
    assert message("BatchGetItem", {"RequestItems": {"bad!name": {"Keys": [{"pk": {"S": "a"}}]}}}) == (
        '1 validation error detected: Value \'{"bad!name":{"Keys":[{"pk":{"S":"a"}}]}}\' at '
        "'requestItems' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length "
        "less than or equal to 255, Member must have length greater than or equal to 3, Member must satisfy "
        "regular expression pattern: [a-zA-Z0-9_.-]+]"
    )
    text = message(
        "BatchWriteItem", {"RequestItems": {"ab": [{"DeleteRequest": {"Key": {"pk": {"S": "a"}}}}]}}
    )
    assert "Map keys must satisfy constraint" in text


def test_batch_write_list_bounds_are_reported_on_the_map() -> None:
    writes = [{"PutRequest": {"Item": {"pk": {"S": str(i)}}}} for i in range(26)]
    text = message("BatchWriteItem", {"RequestItems": {"tab": writes}})
    assert text.startswith("1 validation error detected: Value '{tab=[WriteRequest(")
    assert text.endswith(
        "' at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: "
        "[Member must have length less than or equal to 25, Member must have length greater than or equal to 1]"
    )


def test_batch_get_may_not_mix_projection_styles_across_tables() -> None:
    body = {
        "RequestItems": {
            "one": {"Keys": [{"pk": {"S": "a"}}], "ProjectionExpression": "pk"},
            "two": {"Keys": [{"pk": {"S": "b"}}], "AttributesToGet": ["pk"]},
        }
    }
    assert message("BatchGetItem", body).startswith(
        "Can not use both expression and non-expression parameters"
    )


def test_batch_limits() -> None:
    keys = [{"pk": {"S": str(i)}} for i in range(60)]
    body = {
        "RequestItems": {"t1x": {"Keys": keys}, "t2x": {"Keys": [{"pk": {"S": str(i)}} for i in range(60)]}}
    }
    assert message("BatchGetItem", body) == "Too many items requested for the BatchGetItem call"
    write = {"PutRequest": {"Item": {"pk": {"S": "a"}}}}
    body = {"RequestItems": {"t1x": [write] * 20, "t2x": [write] * 20}}
    assert message("BatchWriteItem", body) == "Too many items requested for the BatchWriteItem call"
    duplicated = {"RequestItems": {"t1x": {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "a"}}]}}}
    assert message("BatchGetItem", duplicated) == "Provided list of item keys contains duplicates"


def test_transact_write_needs_exactly_one_action() -> None:
    put = {"Item": {"pk": {"S": "a"}}, "TableName": "abc"}
    body = {"TransactItems": [{"Put": put, "Delete": {"Key": {"pk": {"S": "a"}}, "TableName": "abc"}}]}
    assert (
        message("TransactWriteItems", body)
        == "TransactItems can only contain one of Check, Put, Update or Delete"
    )
    assert (
        validate_request("TransactWriteItems", {"TransactItems": [{"Put": put}]})["TransactItems"][0]["Put"]
        == put
    )


# ---- properties ------------------------------------------------------------------------------------------

json_scalars = st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False))


@settings(max_examples=60, deadline=None)
@given(
    value=st.one_of(
        json_scalars,
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )
)
def test_any_non_string_table_name_is_a_serialization_error(value: Any) -> None:
    for operation in ("DescribeTable", "DeleteTable", "GetItem"):
        assert isinstance(error_of(operation, {"TableName": value, "Key": {}}), SerializationException)


@settings(max_examples=60, deadline=None)
@given(name=st.text(alphabet="abcXYZ019_.-;! ", min_size=0, max_size=300))
def test_table_name_errors_counted_and_listed(name: str) -> None:
    expected = []
    if re.fullmatch(r"[a-zA-Z0-9_.-]+", name) is None:
        expected.append("Member must satisfy regular expression pattern")
    if len(name) < 3:
        expected.append("Member must have length greater than or equal to 3")
    if len(name) > 255:
        expected.append("Member must have length less than or equal to 255")
    if not expected:
        assert validate_request("DescribeTable", {"TableName": name}) == {"TableName": name}
        return
    text = message("DescribeTable", {"TableName": name})
    noun = "error" if len(expected) == 1 else "errors"
    assert text.startswith(f"{len(expected)} validation {noun} detected: ")
    positions = [text.index(part) for part in expected]
    assert positions == sorted(positions)


@settings(max_examples=40, deadline=None)
@given(
    bad=st.lists(
        st.sampled_from([{}, {"AttributeName": "a"}, {"AttributeType": "S"}]), min_size=1, max_size=8
    )
)
def test_aggregated_count_matches_listed_failures(bad: list[dict[str, str]]) -> None:
    text = message("CreateTable", create(AttributeDefinitions=bad))
    missing = sum(2 - len(entry) for entry in bad)
    reported = min(missing, MAX_REPORTED_ERRORS)
    assert text.startswith(f"{reported} validation error")
    assert text.count("Member must not be null") == reported


def test_every_specified_operation_is_a_known_operation() -> None:
    assert set(SPECS) <= set(OPERATIONS)
    for required in (
        "CreateTable",
        "PutItem",
        "Query",
        "TransactWriteItems",
        "DescribeLimits",
        "ExecuteStatement",
    ):
        assert required in SPECS
    # DynamoDB Streams' operations come with their own target prefix, and only with it
    assert not is_operation("GetRecords") and is_operation("GetRecords", "DynamoDBStreams_20120810")
    assert not is_operation("PutItem", "DynamoDBStreams_20120810") and not is_operation("PutItem", "Other_1")
    assert validate_request("GetRecords", {"ShardIterator": "x"}) == {"ShardIterator": "x"}
    with pytest.raises(ValidationException, match="Member must have value greater than or equal to 1"):
        validate_request("GetRecords", {"ShardIterator": "x", "Limit": 0})


def test_operations_without_spec_pass_objects_through() -> None:
    assert validate_request("ListBackups", {"TableName": "x", "Anything": 1}) == {
        "TableName": "x",
        "Anything": 1,
    }
    assert isinstance(error_of("ListBackups", []), SerializationException)


# ---- robustness: any mutation of a valid request is answered with a DynamoDB error, never a crash ---------

VALID_BODIES: dict[str, dict[str, Any]] = {
    "CreateTable": {
        "TableName": "table",
        "AttributeDefinitions": AD_RANGE,
        "KeySchema": KS_RANGE,
        "ProvisionedThroughput": PT,
        "LocalSecondaryIndexes": [lsi()],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "gsi1",
                "KeySchema": [{"AttributeName": "x", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["a"]},
                "ProvisionedThroughput": PT,
            }
        ],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        "Tags": [{"Key": "k", "Value": "v"}],
    },
    "UpdateTable": {
        "TableName": "table",
        "AttributeDefinitions": AD_RANGE,
        "GlobalSecondaryIndexUpdates": [
            {
                "Create": {
                    "IndexName": "gsi2",
                    "KeySchema": [{"AttributeName": "x", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            }
        ],
    },
    "PutItem": {
        "TableName": "t",
        "Item": {"pk": {"S": "a"}, "m": {"M": {"x": {"L": [{"N": "1"}]}}}},
        "ConditionExpression": "attribute_not_exists(pk)",
        "ExpressionAttributeValues": {":v": {"S": "x"}},
    },
    "UpdateItem": {
        "TableName": "t",
        "Key": {"pk": {"S": "a"}},
        "AttributeUpdates": {"a": {"Action": "PUT", "Value": {"N": "1"}}},
        "Expected": {"a": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}]}},
    },
    "Query": {
        "TableName": "t",
        "KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]}},
        "ExclusiveStartKey": {"pk": {"S": "a"}},
        "Limit": 5,
        "Select": "COUNT",
    },
    "Scan": {
        "TableName": "t",
        "Segment": 0,
        "TotalSegments": 2,
        "ScanFilter": {"a": {"ComparisonOperator": "NULL"}},
    },
    "BatchGetItem": {"RequestItems": {"tab": {"Keys": [{"pk": {"S": "a"}}], "ProjectionExpression": "a"}}},
    "BatchWriteItem": {
        "RequestItems": {
            "tab": [
                {"PutRequest": {"Item": {"pk": {"S": "a"}}}},
                {"DeleteRequest": {"Key": {"pk": {"S": "b"}}}},
            ]
        }
    },
    "TransactGetItems": {"TransactItems": [{"Get": {"TableName": "t", "Key": {"pk": {"S": "a"}}}}]},
    "TransactWriteItems": {
        "TransactItems": [
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}}}},
            {
                "Update": {
                    "TableName": "t",
                    "Key": {"pk": {"S": "b"}},
                    "UpdateExpression": "SET a = :a",
                    "ExpressionAttributeValues": {":a": {"N": "1"}},
                }
            },
            {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "c"}}, "ConditionExpression": "a = b"}},
        ]
    },
    "TagResource": {"ResourceArn": "arn:x", "Tags": [{"Key": "k", "Value": "v"}]},
    "UpdateTimeToLive": {
        "TableName": "table",
        "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "ttl"},
    },
    "ExecuteStatement": {"Statement": "SELECT * FROM t", "Parameters": [{"S": "x"}]},
}

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 3),
        st.floats(-2, 2),
        st.sampled_from(["", "HASH", "S", "pk", "abc"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["S", "pk", "Key", "x"]), inner, max_size=2),
    ),
    max_leaves=6,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, member in value.items():
            found.extend(paths(member, (*prefix, key)))
    elif isinstance(value, list):
        for index, member in enumerate(value):
            found.extend(paths(member, (*prefix, index)))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = replaced(value[path[0]], path[1:], new)
    return copy


def test_null_list_members_are_constraint_errors() -> None:
    assert message("CreateTable", create(KeySchema=[None])) == (
        "1 validation error detected: Value null at 'keySchema.1.member' failed to satisfy constraint: "
        "Member must not be null"
    )


def test_valid_bodies_are_valid() -> None:
    for operation, body in VALID_BODIES.items():
        validate_request(operation, body)


@pytest.mark.parametrize("operation", sorted(VALID_BODIES))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_mutated_requests_fail_only_with_dynamodb_errors(data: st.DataObject, operation: str) -> None:
    body = VALID_BODIES[operation]
    mutated = body
    for _ in range(data.draw(st.integers(1, 2))):
        path = data.draw(st.sampled_from(paths(mutated)[1:]))
        mutated = replaced(mutated, path, data.draw(st.one_of(st.none(), json_values)))
    try:
        validate_request(operation, mutated)
    except DynamoError:
        pass
