"""The TableDescription DynamoDB answers with, built from a validated CreateTable request."""

from __future__ import annotations

from typing import Any

from dynamo.requests import validate_request
from dynamo.requests.tables import table_arn, table_description

KEYS = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
DEFINITIONS = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "N"},
    {"AttributeName": "g", "AttributeType": "B"},
]
TABLE_ID = "8a7b5c1e-0000-4000-8000-000000000001"


def created(**extra: Any) -> dict[str, Any]:
    body = {"TableName": "Music", "KeySchema": KEYS[:1], "AttributeDefinitions": DEFINITIONS[:1]}
    body.update(extra)
    return validate_request("CreateTable", body)


def test_provisioned_table() -> None:
    request = created(ProvisionedThroughput={"ReadCapacityUnits": 3, "WriteCapacityUnits": 4})
    description = table_description(
        request, region="eu-west-1", table_id=TABLE_ID, creation_date_time=1700000000.5, status="CREATING"
    )
    assert description == {
        "AttributeDefinitions": DEFINITIONS[:1],
        "TableName": "Music",
        "KeySchema": KEYS[:1],
        "TableStatus": "CREATING",
        "CreationDateTime": 1700000000.5,
        "ProvisionedThroughput": {
            "NumberOfDecreasesToday": 0,
            "ReadCapacityUnits": 3,
            "WriteCapacityUnits": 4,
        },
        "TableSizeBytes": 0,
        "ItemCount": 0,
        "TableArn": "arn:aws:dynamodb:eu-west-1:000000000000:table/Music",
        "TableId": TABLE_ID,
        "BillingModeSummary": {"BillingMode": "PROVISIONED"},
        "DeletionProtectionEnabled": False,
    }


def test_on_demand_table_with_indexes_stream_and_options() -> None:
    request = created(
        KeySchema=KEYS,
        AttributeDefinitions=DEFINITIONS,
        BillingMode="PAY_PER_REQUEST",
        LocalSecondaryIndexes=[
            {
                "IndexName": "bySk",
                "KeySchema": [KEYS[0], {"AttributeName": "g", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byG",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["title"]},
            }
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        SSESpecification={"Enabled": True},
        TableClass="STANDARD_INFREQUENT_ACCESS",
        DeletionProtectionEnabled=True,
    )
    description = table_description(
        request,
        region="us-east-1",
        table_id=TABLE_ID,
        creation_date_time=1.0,
        item_count=7,
        table_size_bytes=700,
        latest_stream_label="2024-01-01T00:00:00.000",
    )
    arn = table_arn("us-east-1", "Music")
    assert description["ProvisionedThroughput"] == {
        "NumberOfDecreasesToday": 0,
        "ReadCapacityUnits": 0,
        "WriteCapacityUnits": 0,
    }
    assert description["BillingModeSummary"] == {
        "BillingMode": "PAY_PER_REQUEST",
        "LastUpdateToPayPerRequestDateTime": 1.0,
    }
    assert (description["ItemCount"], description["TableSizeBytes"]) == (7, 700)
    (local,) = description["LocalSecondaryIndexes"]
    assert local["IndexArn"] == f"{arn}/index/bySk" and "IndexStatus" not in local
    (glob,) = description["GlobalSecondaryIndexes"]
    assert glob["IndexStatus"] == "ACTIVE" and glob["IndexArn"] == f"{arn}/index/byG"
    assert glob["ProvisionedThroughput"]["ReadCapacityUnits"] == 0
    assert glob["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["title"]}
    assert description["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    assert description["LatestStreamArn"] == f"{arn}/stream/2024-01-01T00:00:00.000"
    assert description["SSEDescription"] == {"Status": "ENABLED", "SSEType": "KMS"}
    assert description["TableClassSummary"] == {"TableClass": "STANDARD_INFREQUENT_ACCESS"}
    assert description["DeletionProtectionEnabled"] is True


def test_disabled_stream_is_not_described() -> None:
    request = created(BillingMode="PAY_PER_REQUEST", StreamSpecification={"StreamEnabled": False})
    description = table_description(request, region="us-east-1", table_id=TABLE_ID, creation_date_time=1.0)
    assert "StreamSpecification" not in description and "LatestStreamArn" not in description
