"""Requests of DynamoDB Streams' API (``X-Amz-Target: DynamoDBStreams_20120810.*``): ListStreams,
DescribeStream, GetShardIterator and GetRecords, with the bounds of its service model."""

from __future__ import annotations

from dynamo.requests.common import NAME_PATTERN
from dynamo.requests.shapes import RequestSpec, integer, string, struct

API_VERSION = "DynamoDBStreams_20120810"
SHARD_ITERATOR_TYPES = ("TRIM_HORIZON", "LATEST", "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER")
SHARD_FILTER_TYPES = ("CHILD_SHARDS",)

_STREAM_ARN = string(min_length=37, max_length=1024)
_SHARD_ID = string(min_length=28, max_length=65)
_LIMIT = integer(min_value=1)

LIST_STREAMS = RequestSpec(struct(
    "ListStreamsInput",
    ("TableName", string(pattern=NAME_PATTERN, min_length=3, max_length=255)),
    ("Limit", _LIMIT),
    ("ExclusiveStartStreamArn", _STREAM_ARN),
))
DESCRIBE_STREAM = RequestSpec(struct(
    "DescribeStreamInput",
    ("StreamArn", string(not_null=True, min_length=37, max_length=1024)),
    ("Limit", _LIMIT),
    ("ExclusiveStartShardId", _SHARD_ID),
    ("ShardFilter", struct("ShardFilter", ("Type", string(enum=SHARD_FILTER_TYPES)), ("ShardId", _SHARD_ID))),
))
GET_SHARD_ITERATOR = RequestSpec(struct(
    "GetShardIteratorInput",
    ("StreamArn", string(not_null=True, min_length=37, max_length=1024)),
    ("ShardId", string(not_null=True, min_length=28, max_length=65)),
    ("ShardIteratorType", string(not_null=True, enum=SHARD_ITERATOR_TYPES)),
    ("SequenceNumber", string(min_length=21, max_length=40)),
))
GET_RECORDS = RequestSpec(struct(
    "GetRecordsInput",
    ("ShardIterator", string(not_null=True, min_length=1, max_length=2048)),
    ("Limit", _LIMIT),
))

SPECS = {
    "ListStreams": LIST_STREAMS,
    "DescribeStream": DESCRIBE_STREAM,
    "GetShardIterator": GET_SHARD_ITERATOR,
    "GetRecords": GET_RECORDS,
}
OPERATIONS = tuple(SPECS)
