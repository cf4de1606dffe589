"""DynamoDB Streams' API at the router: ListStreams, DescribeStream, GetShardIterator and GetRecords
(``X-Amz-Target: DynamoDBStreams_20120810.*``, at the same endpoint as DynamoDB's own API).

Streams and shards are read from the partition map the router follows (``TableRoute.streams`` and
``closed``, kept by the control plane); a name the map does not know refreshes it once, since a stream
enabled a moment ago may not be in this router's map yet. Records are read from the partition that holds
the shard (``storagenode.streams``): the shard's own partition while it is open, any partition inside its
hash range once it split (each child holds a copy of its ancestors' records). A shard iterator carries the
stream, the shard and the next sequence number to read; it expires 15 minutes after it was handed out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dynamo import streams as ds
from dynamo.errors import (
    ExpiredIteratorException,
    ResourceNotFoundException,
    ValidationException,
)
from dynamo.requests.tables import table_arn
from router.backend import Request, RequestContext, Response
from router.routing import TableRoute

if TYPE_CHECKING:
    from router.cluster import ClusterBackend

_STREAM = tuple[int, str, int]  # (enabled ms, view type, disabled ms or 0)


_INVALID = "One or more parameter values were invalid: "


def _limit(request: Request, maximum: int, message: str) -> int:
    limit = int(request.get("Limit") or maximum)
    if limit > maximum:
        raise ValidationException(_INVALID + message)
    return limit


class StreamsApi:
    def __init__(self, backend: ClusterBackend, clock_ms: Callable[[], int] | None = None) -> None:
        self.backend = backend
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))

    # ---- finding streams and shards --------------------------------------------------------------------

    async def _table(self, name: str) -> TableRoute | None:
        route = self.backend.routing.table(name)
        if route is None:
            await self.backend.refresh_once()
            route = self.backend.routing.table(name)
        return route

    async def _stream(self, arn: str, missing: str) -> tuple[TableRoute, _STREAM]:
        """The table and the stream an ARN names, or ResourceNotFound with the ``missing`` message (whatever
        is wrong with the ARN, as DynamoDB Local answers)."""
        parsed = ds.parse_stream_arn(arn)
        if parsed is not None:
            name, enabled_ms = parsed
            for attempt in range(2):
                route = self.backend.routing.table(name)
                found = None if route is None else next((s for s in route.streams if s[0] == enabled_ms), None)
                if route is not None and found is not None:
                    return route, found
                if attempt == 0:
                    await self.backend.refresh_once()
        raise ResourceNotFoundException(missing)

    @staticmethod
    def _shards(route: TableRoute, stream: _STREAM) -> list[ds.Shard]:
        partitions = [(p.partition_id, p.parent, p.lo, p.hi) for p in route.partitions]
        return ds.stream_shards(stream[0], stream[2], partitions, route.closed)

    def _shard(self, route: TableRoute, stream: _STREAM, text: str, missing: str) -> ds.Shard:
        parsed = ds.parse_shard_id(text)
        if parsed is not None and parsed[0] == stream[0]:
            for shard in self._shards(route, stream):
                if shard.partition == parsed[1]:
                    return shard
        raise ResourceNotFoundException(missing)

    def _arn(self, route: TableRoute, enabled_ms: int, ctx: RequestContext) -> str:
        return ds.stream_arn(table_arn(ctx.region, route.name), enabled_ms)

    # ---- the operations ----------------------------------------------------------------------------------

    async def list_streams(self, request: Request, ctx: RequestContext) -> Response:
        limit = _limit(request, ds.MAX_LIST_LIMIT, f"Limit cannot be greater than the maximum allowed size: {ds.MAX_LIST_LIMIT}")
        name = request.get("TableName")
        if name is not None:
            route = await self._table(name)
            routes = [route] if route is not None else []  # no such table: no streams (as DynamoDB Local answers)
        else:
            routes = list(self.backend.routing.map.tables.values())
        # In ARN order; the start is compared as a string, so it need not name a stream that still exists.
        arns = sorted((self._arn(route, stream[0], ctx), route.name, stream[0]) for route in routes
                      for stream in route.streams)
        start = request.get("ExclusiveStartStreamArn")
        if start is not None:
            arns = [one for one in arns if one[0] > start]
        page = arns[:limit]
        answer: Response = {"Streams": [{"StreamArn": arn, "TableName": table, "StreamLabel": ds.stream_label(ms)}
                                        for arn, table, ms in page]}
        if len(arns) > limit:
            answer["LastEvaluatedStreamArn"] = page[-1][0]
        return answer

    async def describe_stream(self, request: Request, ctx: RequestContext) -> Response:
        arn = request["StreamArn"]
        limit = _limit(request, ds.MAX_LIST_LIMIT, f"Limit cannot be greater than the maximum: {ds.MAX_LIST_LIMIT}")
        route, stream = await self._stream(arn, f"Requested resource not found: Stream: {arn} not found")
        shards = self._shards(route, stream)
        shard_filter = request.get("ShardFilter")
        if shard_filter is not None and shard_filter.get("Type") == "CHILD_SHARDS":
            parent = ds.parse_shard_id(shard_filter.get("ShardId") or "")
            shards = [s for s in shards if parent is not None and s.parent and s.parent == parent[1]]
        start = request.get("ExclusiveStartShardId")
        if start is not None:
            after = [i for i, s in enumerate(shards) if ds.shard_id(stream[0], s.partition) == start]
            shards = shards[after[0] + 1:] if after else []
        page = shards[:limit]
        description: dict[str, Any] = {
            "StreamArn": arn,
            "StreamLabel": ds.stream_label(stream[0]),
            "StreamStatus": "DISABLED" if stream[2] else "ENABLED",
            "StreamViewType": stream[1],
            "CreationRequestDateTime": stream[0] / 1000.0,
            "TableName": route.name,
            "KeySchema": [{"AttributeName": name, "KeyType": key_type} for name, key_type in route.key_schema],
            "Shards": [shard.to_wire(stream[0]) for shard in page],
        }
        if len(shards) > limit:
            description["LastEvaluatedShardId"] = ds.shard_id(stream[0], page[-1].partition)
        return {"StreamDescription": description}

    async def get_shard_iterator(self, request: Request, ctx: RequestContext) -> Response:
        arn = request["StreamArn"]
        kind = request["ShardIteratorType"]
        text = request.get("SequenceNumber")
        seq: int | None = None
        if kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
            seq = ds.parse_seq(text) if text is not None else None
            if seq is None:
                raise ValidationException(_INVALID + "Invalid SequenceNumber")
        elif text is not None:
            raise ValidationException(_INVALID + "SequenceNumber should not be passed for this iterator type")
        route, stream = await self._stream(arn, "Stream does not exist")
        shard = self._shard(route, stream, request["ShardId"], "Shard does not exist")
        if kind == "TRIM_HORIZON":
            position = shard.start_seq
        elif kind == "LATEST":
            if shard.end_seq is not None:
                position = shard.end_seq + 1
            else:
                answer = await self.backend.stream_call("StreamPosition", route, shard, {})
                position = int(answer["Next"])
        else:
            assert seq is not None
            if seq < shard.start_seq or (shard.end_seq is not None and seq > shard.end_seq):
                raise ValidationException("Invalid SequenceNumber for the shard")
            position = seq + 1 if kind == "AFTER_SEQUENCE_NUMBER" else seq
        iterator = ds.ShardIterator(arn, request["ShardId"], position, self._clock_ms())
        return {"ShardIterator": iterator.encode()}

    async def get_records(self, request: Request, ctx: RequestContext) -> Response:
        iterator = ds.ShardIterator.decode(request["ShardIterator"])
        if iterator is None:
            raise ValidationException("Invalid ShardIterator")
        now_ms = self._clock_ms()
        if abs(now_ms - iterator.issued_ms) > ds.ITERATOR_LIFETIME_MS:  # (a forged one from the future too)
            raise ExpiredIteratorException(
                f"Iterator expired. The iterator was created at time {iterator.issued_ms} while right now it is "
                f"{now_ms} which is further in future than the tolerated delay of {ds.ITERATOR_LIFETIME_MS} "
                "milliseconds.")
        limit = _limit(request, ds.MAX_GET_RECORDS, f"Limit should be less than or equal to {ds.MAX_GET_RECORDS}")
        route, stream = await self._stream(iterator.stream_arn, "Stream does not exist")
        shard = self._shard(route, stream, iterator.shard, "Invalid ShardId in ShardIterator")
        answer = await self.backend.stream_call("StreamRead", route, shard, {
            "label": stream[0], "from": iterator.next_seq, "limit": limit})
        records = [ds.api_record(stored, seq, stream[1], ctx.region, ds.event_id(route.table_id, shard.partition, seq))
                   for seq, stored in answer["Records"]]
        result: Response = {"Records": records}
        closed = shard.end_seq is not None or stream[2] != 0
        if not (closed and answer["End"]):
            result["NextShardIterator"] = ds.ShardIterator(iterator.stream_arn, iterator.shard, int(answer["Next"]),
                                                           now_ms).encode()
        return result
