"""Pure validation of DynamoDB requests, operation by operation, in DynamoDB's order and words.

``validate_request(operation, body)`` takes the parsed JSON body of one request and returns the cleaned
request (unknown and null fields dropped), or raises ``SerializationException`` (a field of the wrong JSON
type) or ``ValidationException`` (constraints, aggregated the DynamoDB way, then per-operation rules).
What needs the table's schema (key attributes, expression paths) is checked later, by whoever holds it.
"""

from __future__ import annotations

from typing import Any

from dynamo.errors import SerializationException
from dynamo.requests import batches, items, misc, streams, tables
from dynamo.requests.shapes import RequestSpec

API_VERSION = "DynamoDB_20120810"
# Every operation of DynamoDB's 2012-08-10 API: a name outside this list is UnknownOperationException.
OPERATIONS: tuple[str, ...] = (
    "BatchExecuteStatement",
    "BatchGetItem",
    "BatchWriteItem",
    "CreateBackup",
    "CreateGlobalTable",
    "CreateTable",
    "DeleteBackup",
    "DeleteItem",
    "DeleteResourcePolicy",
    "DeleteTable",
    "DescribeBackup",
    "DescribeContinuousBackups",
    "DescribeContributorInsights",
    "DescribeEndpoints",
    "DescribeExport",
    "DescribeGlobalTable",
    "DescribeGlobalTableSettings",
    "DescribeImport",
    "DescribeKinesisStreamingDestination",
    "DescribeLimits",
    "DescribeTable",
    "DescribeTableReplicaAutoScaling",
    "DescribeTimeToLive",
    "DisableKinesisStreamingDestination",
    "EnableKinesisStreamingDestination",
    "ExecuteStatement",
    "ExecuteTransaction",
    "ExportTableToPointInTime",
    "GetItem",
    "GetResourcePolicy",
    "ImportTable",
    "ListBackups",
    "ListContributorInsights",
    "ListExports",
    "ListGlobalTables",
    "ListImports",
    "ListTables",
    "ListTagsOfResource",
    "PutItem",
    "PutResourcePolicy",
    "Query",
    "RestoreTableFromBackup",
    "RestoreTableToPointInTime",
    "Scan",
    "TagResource",
    "TransactGetItems",
    "TransactWriteItems",
    "UntagResource",
    "UpdateContinuousBackups",
    "UpdateContributorInsights",
    "UpdateGlobalTable",
    "UpdateGlobalTableSettings",
    "UpdateItem",
    "UpdateKinesisStreamingDestination",
    "UpdateTable",
    "UpdateTableReplicaAutoScaling",
    "UpdateTimeToLive",
)

SPECS: dict[str, RequestSpec] = {
    "CreateTable": tables.CREATE_TABLE,
    "DescribeTable": tables.DESCRIBE_TABLE,
    "DeleteTable": tables.DELETE_TABLE,
    "ListTables": tables.LIST_TABLES,
    "UpdateTable": tables.UPDATE_TABLE,
    "PutItem": items.PUT_ITEM,
    "GetItem": items.GET_ITEM,
    "UpdateItem": items.UPDATE_ITEM,
    "DeleteItem": items.DELETE_ITEM,
    "Query": items.QUERY,
    "Scan": items.SCAN,
    "BatchGetItem": batches.BATCH_GET_ITEM,
    "BatchWriteItem": batches.BATCH_WRITE_ITEM,
    "TransactGetItems": batches.TRANSACT_GET_ITEMS,
    "TransactWriteItems": batches.TRANSACT_WRITE_ITEMS,
    "TagResource": misc.TAG_RESOURCE,
    "UntagResource": misc.UNTAG_RESOURCE,
    "ListTagsOfResource": misc.LIST_TAGS_OF_RESOURCE,
    "DescribeTimeToLive": misc.DESCRIBE_TIME_TO_LIVE,
    "UpdateTimeToLive": misc.UPDATE_TIME_TO_LIVE,
    "DescribeContinuousBackups": misc.DESCRIBE_CONTINUOUS_BACKUPS,
    "UpdateContinuousBackups": misc.UPDATE_CONTINUOUS_BACKUPS,
    "DescribeEndpoints": misc.DESCRIBE_ENDPOINTS,
    "DescribeLimits": misc.DESCRIBE_LIMITS,
    "ExecuteStatement": misc.EXECUTE_STATEMENT,
    "BatchExecuteStatement": misc.BATCH_EXECUTE_STATEMENT,
    "ExecuteTransaction": misc.EXECUTE_TRANSACTION,
}
assert set(SPECS) <= set(OPERATIONS), sorted(set(SPECS) - set(OPERATIONS))
assert not set(streams.OPERATIONS) & set(OPERATIONS)
_ALL_SPECS = {**SPECS, **streams.SPECS}

_KNOWN = frozenset(OPERATIONS)
_APIS = {API_VERSION: _KNOWN, streams.API_VERSION: frozenset(streams.OPERATIONS)}


def is_operation(name: str, api: str = API_VERSION) -> bool:
    """Whether ``name`` is an operation of ``api`` (DynamoDB's, or DynamoDB Streams' whose requests come to
    the same endpoint with their own ``X-Amz-Target`` prefix)."""
    return name in _APIS.get(api, ())


def validate_request(operation: str, body: Any) -> dict[str, Any]:
    """Validate one request of a known ``operation``. Operations without a spec pass through unchanged (an
    object is still required), so their handler sees what the client sent."""
    assert operation in _KNOWN or operation in streams.OPERATIONS, operation
    spec = _ALL_SPECS.get(operation)
    if spec is None:
        if not isinstance(body, dict):
            raise SerializationException("")
        return body
    return spec.validate(body)


__all__ = ["API_VERSION", "OPERATIONS", "SPECS", "is_operation", "validate_request"]
