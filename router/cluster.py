"""The router's cluster backend: table operations to the control plane, item operations to partitions.

Table operations (CreateTable, DescribeTable, ...) are ``Kind.CONTROL`` requests to the control-plane
leader: the router starts at the last leader it heard of, follows ``redirect`` answers and, when a
control-plane node cannot be reached, tries the next one; attempts and time are bounded.

Item operations are checked here against the table's key schema before anything is routed (values
normalised, key extracted, item size, expressions parsed), so a bad request never costs a network round
trip. The partition-key hash picks the partition from the cached map (``router.routing``); the request
goes as ``Kind.ITEM`` to the partition's leader (writes and strongly consistent reads), or, for
eventually consistent reads, to the leader when known and else to any replica (whose answer names the
leader). Answers steer the retry loop:

* ``redirect`` -> remember the named leader and ask it; an empty name means an election is running, so
  back off briefly and try another replica;
* ``stale`` -> the map is out of date (a split, a move): refresh it and route again;
* ``unavailable`` or a transport failure -> try the next replica, with a short backoff once every replica
  was tried (writes only when the node says ``not_applied``, or the request surely never left).

Every request has a deadline (``request_deadline_ms``); past it the client gets
``ServiceUnavailableException`` (HTTP 503), which every AWS SDK retries. A write whose fate is unknown
(sent, then the connection broke or the answer timed out) is never re-sent by the router, since resending
a conditional or counting write could apply it twice or fail a condition it met: the client gets
``InternalServerError`` (500, also retried by SDKs, exactly as DynamoDB reports its own unknown outcomes).

A background task keeps the map fresh by long-polling ``get_map`` with the version held; requests that
meet a stale answer or an unknown table ask for a refresh themselves (one fetch in flight at a time).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from dynamo.capacity import (
    ConsumedCapacity,
    ReturnConsumedCapacity,
    batch_get_units,
    batch_write_units,
    consumed_capacity_list,
    query_units,
)
from dynamo.errors import (
    DynamoError,
    InternalServerError,
    ProvisionedThroughputExceededException,
    ResourceNotFoundException,
    ServiceUnavailableException,
    ThrottlingException,
    ValidationException,
)
from dynamo.expressions import ExpressionContext, parse_projection
from dynamo.hashing import HASH_SPACE, partition_hash
from dynamo.indexes import (
    IndexRead,
    check_index_read,
    check_projected,
    check_select,
    index_query_start,
    index_scan_start,
)
from dynamo.items import check_index_keys, extract_key, key_identity, validate_key
from dynamo.keycodec import hash_range, successor
from dynamo.queries import (
    MAX_BATCH_GET_RESPONSE_BYTES,
    MAX_PAGE_BYTES,
    last_evaluated_key,
    parse_batch_get,
    parse_query,
    parse_scan,
    query_range,
    query_start,
    scan_range,
    scan_start,
)
from dynamo.size import check_item_size, item_size
from dynamo.streams import Shard
from dynamo.writes import prepare
from proto.kinds import ControlOp, Kind, error_from_body
from router.backend import BaseBackend, Request, RequestContext, Response, method_name
from router.routing import PartitionMap, Routing, RoutingConfig, TableRoute
from router.statements import StatementRunner, TransactionStatements
from router.streams import StreamsApi
from router.transactions import TransactionCoordinator
from runtime.transport import PeerUnavailable, TransportError

log = logging.getLogger("ddb.router.cluster")

CONTROL_GROUP = "cp"
MSG_NOT_FOUND = "Requested resource not found"
MSG_NO_MAP = "The router has no partition map yet; retry shortly"
MSG_PARTITION_UNAVAILABLE = "The partition holding this key is unavailable right now; retry shortly"
MSG_CONTROL_UNAVAILABLE = "The control plane is unavailable right now; retry shortly"
MSG_UNKNOWN_OUTCOME = "Internal server error"
MSG_DUPLICATE_KEYS = "Provided list of item keys contains duplicates"
# What DynamoDB answers when a partition of an on-demand table is over its limit (a provisioned table gets
# ProvisionedThroughputExceededException with its default message).
MSG_THROTTLED_ON_DEMAND = (
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your "
    "table or index so please try again shortly. If exceptions persist, check if you have a hot key: "
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html")


class Requester(Protocol):
    """What the backend needs of ``runtime.transport.Transport``."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    def request(self, peer: str, group: str, kind: int, payload: bytes,
                timeout_ms: float | None = None) -> asyncio.Future[bytes]: ...


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """Deadlines, attempts and backoff of the router's requests into the cluster."""

    request_deadline_ms: int = 5_000  # an item request, all attempts included
    attempt_timeout_ms: int = 1_000  # one item request to one replica (a healthy one answers in ms)
    max_attempts: int = 32  # per item request (redirects and retries count)
    control_deadline_ms: int = 10_000  # a table operation, all attempts included
    control_attempt_timeout_ms: int = 4_000
    max_control_attempts: int = 12
    retry_backoff_min_ms: int = 10
    retry_backoff_max_ms: int = 250
    map_poll_wait_ms: int = 10_000  # how long the control plane may hold a get_map long poll
    map_fetch_margin_ms: int = 2_000  # added to the wait for the call's own timeout
    map_poll_min_interval_ms: int = 100  # floor between polls, should a control plane answer at once
    refresh_wait_ms: int = 300  # how long an on-demand refresh lets the control plane wait for news
    failed_node_ttl_ms: int = 2_000  # a replica that failed is tried last for this long
    batch_deadline_ms: int = 2_500  # one partition's part of a batch; past it, its keys are left unprocessed
    batch_regroup_rounds: int = 3  # a batch regroups its parts after map changes (splits) at most this often
    max_scan_steps: int = 1_024  # partitions one Scan page may visit (a bound, far above any real table)
    # A transaction that met only other transactions' locks (nothing applied) is tried again this many times,
    # after 10, 20, 40 ms..., before it answers TransactionConflict: locks are held for a few replication
    # rounds, often less than a client's own retry would wait.
    transaction_conflict_retries: int = 3

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            assert getattr(self, name) > 0, f"{name} must be positive"
        assert self.retry_backoff_min_ms <= self.retry_backoff_max_ms


class ClusterBackend(BaseBackend):
    """The ``router.backend.Backend`` of a ddb cluster. ``start()`` it inside the event loop."""

    def __init__(self, transport: Requester, control_nodes: Sequence[str], config: BackendConfig | None = None
                 ) -> None:
        assert control_nodes, "a cluster has at least one control-plane node"
        self._transport = transport
        self._config = config or BackendConfig()
        self._control_nodes = list(control_nodes)
        self._control_leader: str | None = None
        self._map_source = 0  # index of the control-plane node maps are fetched from
        self.routing = Routing(RoutingConfig(failed_node_ttl_ms=self._config.failed_node_ttl_ms))
        self._map_changed: asyncio.Event | None = None
        self._fetch: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        # Counters read by metrics collectors (plain integers on the hot path).
        self.stats: dict[str, int] = {
            "item_requests": 0, "item_attempts": 0, "redirects": 0, "stale": 0, "unavailable": 0,
            "transport_errors": 0, "deadline_exceeded": 0, "unknown_outcome": 0, "map_updates": 0,
            "control_requests": 0, "throttled": 0,
        }
        self.transactions = TransactionCoordinator(self)
        self.streams = StreamsApi(self)

    # ---- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._map_changed = asyncio.Event()
        self._poller = asyncio.get_running_loop().create_task(self._poll_map(), name="router-map-poll")

    async def stop(self) -> None:
        for task in (self._poller, self._fetch):
            if task is not None:
                task.cancel()
        for task in (self._poller, self._fetch):
            if task is not None:
                try:
                    await task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping
                    pass
        self._poller = self._fetch = None

    @property
    def map_version(self) -> int:
        return self.routing.version

    async def wait_for_map(self, timeout_ms: float) -> bool:
        """Wait (bounded) until a first map is held; answer whether one is."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000.0
        while self.routing.version < 0:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await self._wait_map_change(remaining)
        return True

    # ---- the partition map ---------------------------------------------------------------------------

    def install_map(self, data: dict[str, Any]) -> bool:
        """Install a map as the control plane serves it (if newer than the one held)."""
        if not self.routing.update(PartitionMap.from_wire(data)):
            return False
        self.stats["map_updates"] += 1
        event = self._map_changed
        if event is not None:
            event.set()
            self._map_changed = asyncio.Event()
        return True

    async def _wait_map_change(self, timeout_s: float) -> None:
        if self._map_changed is None:
            self._map_changed = asyncio.Event()
        try:
            await asyncio.wait_for(self._map_changed.wait(), timeout_s)
        except TimeoutError:
            pass

    async def _fetch_map(self, wait_ms: int) -> None:
        """One get_map call (since the version held); moves to the next control-plane node on failure."""
        config = self._config
        node = self._control_nodes[self._map_source % len(self._control_nodes)]
        payload = orjson.dumps({"op": ControlOp.GET_MAP.value, "since": self.routing.version, "wait_ms": wait_ms})
        try:
            raw = await self._transport.request(node, CONTROL_GROUP, Kind.CONTROL, payload,
                                                wait_ms + config.map_fetch_margin_ms)
            answer = orjson.loads(raw)
        except (TransportError, orjson.JSONDecodeError) as exc:
            self._map_source += 1
            raise _MapFetchFailed(f"get_map from {node}: {exc}") from exc
        if "ok" in answer:
            self.install_map(answer["ok"])
            return
        self._map_source += 1
        raise _MapFetchFailed(f"get_map from {node} answered {sorted(answer)}")

    async def refresh_map(self, newer_than: int, deadline: float, *, once: bool = False) -> bool:
        """Fetch maps until one newer than ``newer_than`` is held or the deadline (loop time) passes.

        ``once``: stop after the first answer, newer or not (the control plane answers at once, without
        waiting for news): to check whether a table the map lacks exists by now. Concurrent callers share
        one fetch in flight.
        """
        loop = asyncio.get_running_loop()
        backoff_ms = self._config.retry_backoff_min_ms
        while self.routing.version <= newer_than:
            remaining_s = deadline - loop.time()
            if remaining_s <= 0:
                return False
            fetch = self._fetch
            if fetch is None or fetch.done():
                wait_ms = 0 if once or self.routing.version < newer_than else int(
                    min(self._config.refresh_wait_ms, remaining_s * 1000))
                fetch = self._fetch = loop.create_task(self._fetch_map(wait_ms))
                fetch.add_done_callback(_consume_failure)
            try:
                await asyncio.wait_for(asyncio.shield(fetch), remaining_s)
            except TimeoutError:
                return False
            except _MapFetchFailed as exc:
                log.info("map refresh failed: %s", exc)
                await asyncio.sleep(min(backoff_ms / 1000.0, max(0.0, deadline - loop.time())))
                backoff_ms = min(backoff_ms * 2, self._config.retry_backoff_max_ms)
                continue
            if once:
                break
        return self.routing.version > newer_than

    async def _poll_map(self) -> None:
        """Keep the map fresh: long-poll the control plane with the version held, forever."""
        config = self._config
        loop = asyncio.get_running_loop()
        backoff_ms = config.retry_backoff_min_ms
        while True:
            started = loop.time()
            before = self.routing.version
            try:
                await self._fetch_map(config.map_poll_wait_ms)
            except _MapFetchFailed as exc:
                log.debug("map poll failed: %s", exc)
                await asyncio.sleep(backoff_ms / 1000.0)
                backoff_ms = min(backoff_ms * 2, config.retry_backoff_max_ms * 4)
                continue
            backoff_ms = config.retry_backoff_min_ms
            elapsed_ms = (loop.time() - started) * 1000.0
            if self.routing.version == before and elapsed_ms < config.map_poll_min_interval_ms:
                await asyncio.sleep((config.map_poll_min_interval_ms - elapsed_ms) / 1000.0)

    # ---- the control plane ---------------------------------------------------------------------------

    async def _control(self, op: ControlOp, fields: dict[str, Any]) -> Any:
        """One request to the control-plane leader; answers its ``ok`` or raises the error it sent."""
        config = self._config
        loop = asyncio.get_running_loop()
        deadline = loop.time() + config.control_deadline_ms / 1000.0
        payload = orjson.dumps({"op": op.value, **fields})
        nodes = self._control_nodes
        target = self._control_leader or nodes[0]
        backoff_ms = config.retry_backoff_min_ms
        last = "no attempt"
        self.stats["control_requests"] += 1
        for _ in range(config.max_control_attempts):
            remaining_ms = (deadline - loop.time()) * 1000.0
            if remaining_ms <= 0:
                break
            try:
                raw = await self._transport.request(target, CONTROL_GROUP, Kind.CONTROL, payload,
                                                    min(config.control_attempt_timeout_ms, remaining_ms))
                answer = orjson.loads(raw)
            except (TransportError, orjson.JSONDecodeError) as exc:
                last = f"{target}: {exc}"
                if self._control_leader == target:
                    self._control_leader = None
                target = nodes[(nodes.index(target) + 1) % len(nodes)]
            else:
                if "ok" in answer:
                    self._control_leader = target
                    return answer["ok"]
                if "error" in answer:
                    raise error_from_body(answer["error"])
                leader = answer.get("redirect")
                last = f"{target}: redirect to {leader!r}"
                if leader and leader in nodes and leader != target:
                    self._control_leader = target = leader
                    continue  # a fresh leader: ask it at once
                self._control_leader = None
                target = nodes[(nodes.index(target) + 1) % len(nodes)]
            await asyncio.sleep(min(backoff_ms, max(0.0, (deadline - loop.time()) * 1000.0)) / 1000.0)
            backoff_ms = min(backoff_ms * 2, config.retry_backoff_max_ms)
        log.warning("control request %s failed: %s", op.value, last)
        raise ServiceUnavailableException(MSG_CONTROL_UNAVAILABLE)

    async def _forward(self, op: ControlOp, request: Request, ctx: RequestContext) -> Response:
        """A table operation the control-plane leader answers, given the validated request as it is."""
        result: Response = await self._control(op, {"request": request, "region": ctx.region})
        return result

    async def create_table(self, request: Request, ctx: RequestContext) -> Response:
        return await self._forward(ControlOp.CREATE_TABLE, request, ctx)

    async def describe_table(self, request: Request, ctx: RequestContext) -> Response:
        result: Response = await self._control(ControlOp.DESCRIBE_TABLE,
                                               {"name": request["TableName"], "region": ctx.region})
        return result

    async def list_tables(self, request: Request, ctx: RequestContext) -> Response:
        return await self._forward(ControlOp.LIST_TABLES, request, ctx)

    async def delete_table(self, request: Request, ctx: RequestContext) -> Response:
        result: Response = await self._control(ControlOp.DELETE_TABLE,
                                               {"name": request["TableName"], "region": ctx.region})
        return result

    async def update_table(self, request: Request, ctx: RequestContext) -> Response:
        result = await self._forward(ControlOp.UPDATE_TABLE, request, ctx)
        if "GlobalSecondaryIndexUpdates" in request:
            described = result["TableDescription"].get("GlobalSecondaryIndexes") or ()
            await self._await_indexes(request["TableName"], {index["IndexName"] for index in described})
        return result

    async def _await_indexes(self, name: str, wanted: set[str]) -> None:
        """Answer an UpdateTable that adds or deletes a GSI once this router's map shows the change, so the
        client's next Query finds the index (a GSI is ACTIVE at once). Bounded: a lagging map still answers."""
        loop = asyncio.get_running_loop()
        config = self._config
        deadline = loop.time() + config.request_deadline_ms / 1000.0
        while True:
            route = self.routing.table(name)
            if route is not None and {index.name for index in route.indexes if index.is_global} == wanted:
                return
            if loop.time() >= deadline:
                log.warning("UpdateTable of %s answered before this router's map shows its indexes", name)
                return
            await self.refresh_map(self.routing.version, min(deadline, loop.time() + config.refresh_wait_ms / 1000.0))

    async def tag_resource(self, request: Request, ctx: RequestContext) -> Response:
        return await self._forward(ControlOp.TAG_RESOURCE, request, ctx)

    async def untag_resource(self, request: Request, ctx: RequestContext) -> Response:
        return await self._forward(ControlOp.UNTAG_RESOURCE, request, ctx)

    async def list_tags_of_resource(self, request: Request, ctx: RequestContext) -> Response:
        return await self._forward(ControlOp.LIST_TAGS, request, ctx)

    async def update_time_to_live(self, request: Request, ctx: RequestContext) -> Response:
        return await self._forward(ControlOp.UPDATE_TTL, request, ctx)

    async def describe_time_to_live(self, request: Request, ctx: RequestContext) -> Response:
        return await self._forward(ControlOp.DESCRIBE_TTL, request, ctx)

    async def describe_continuous_backups(self, request: Request, ctx: RequestContext) -> Response:
        return await self._forward(ControlOp.DESCRIBE_BACKUPS, request, ctx)

    async def update_continuous_backups(self, request: Request, ctx: RequestContext) -> Response:
        return await self._forward(ControlOp.UPDATE_BACKUPS, request, ctx)

    # ---- DynamoDB Streams (router.streams) ------------------------------------------------------------

    async def list_streams(self, request: Request, ctx: RequestContext) -> Response:
        return await self.streams.list_streams(request, ctx)

    async def describe_stream(self, request: Request, ctx: RequestContext) -> Response:
        return await self.streams.describe_stream(request, ctx)

    async def get_shard_iterator(self, request: Request, ctx: RequestContext) -> Response:
        return await self.streams.get_shard_iterator(request, ctx)

    async def get_records(self, request: Request, ctx: RequestContext) -> Response:
        return await self.streams.get_records(request, ctx)

    async def refresh_once(self) -> None:
        """Wait briefly for a newer map than the one held (a name it does not know may be brand new)."""
        loop = asyncio.get_running_loop()
        await self.refresh_map(self.routing.version, loop.time() + self._config.refresh_wait_ms / 1000.0)

    async def stream_call(self, op: str, table: TableRoute, shard: Shard, extra: dict[str, Any]) -> Response:
        """A read of a shard's records at the leader of the partition holding its start (its own partition,
        or a descendant of it that holds a copy)."""
        fields = {"shard": shard.partition, "lo": str(shard.lo), "hi": str(shard.hi), **extra}
        return await self._route(op, table, None, {}, strong=True, write=False, hash64=shard.lo, extra=fields)

    # ---- item operations -----------------------------------------------------------------------------

    async def put_item(self, request: Request, ctx: RequestContext) -> Response:
        return await self._write("PutItem", request)

    async def update_item(self, request: Request, ctx: RequestContext) -> Response:
        return await self._write("UpdateItem", request)

    async def delete_item(self, request: Request, ctx: RequestContext) -> Response:
        return await self._write("DeleteItem", request)

    async def _write(self, op: str, request: Request) -> Response:
        """One single-item write, sent to its partition's leader. The front door (``dynamo.requests``)
        validated the request and normalised its values in place; what needs the table's schema is checked
        here, and the expressions are parsed before any routing, so a bad request costs no round trip."""
        prepare(op, request, {})
        table = await self._serving_table(request["TableName"])
        if op == "PutItem":
            item = request["Item"]
            key = extract_key(item, table.key)
            check_item_size(item)
            if table.indexes:
                check_index_keys(item, table.indexes)
        else:
            key = request["Key"]
            validate_key(key, table.key)
        return await self._route(op, table, key, request, strong=True, write=True)

    async def get_item(self, request: Request, ctx: RequestContext) -> Response:
        key = request["Key"]
        names = request.get("ExpressionAttributeNames")
        if names is not None or request.get("ProjectionExpression") is not None:
            expressions = ExpressionContext(names, None)
            if request.get("ProjectionExpression") is not None:
                parse_projection(request["ProjectionExpression"], expressions)
            expressions.check_all_used()
        table = await self._serving_table(request["TableName"])
        validate_key(key, table.key)
        consistent = bool(request.get("ConsistentRead"))
        return await self._route("GetItem", table, key, request, strong=consistent, write=False)

    # ---- Query, Scan and the batch operations --------------------------------------------------------

    async def query(self, request: Request, ctx: RequestContext) -> Response:
        table, index = await self._table_and_index(request)
        if index is not None:
            return await self._query_index(table, index, request)
        key = table.key
        condition, _ = parse_query(request, key)  # validation; the storage node applies the filter
        hash64, rng = query_range(table.table_id, key, condition)
        reverse = request.get("ScanIndexForward") is False
        if request.get("ExclusiveStartKey") is not None:
            rng = query_start(table.table_id, key, condition, rng, request["ExclusiveStartKey"], reverse)
        consistent = bool(request.get("ConsistentRead"))
        parts: list[Response] = []
        if not rng.empty:
            parts.append(await self._route("Query", table, None, request, strong=consistent, write=False,
                                           hash64=hash64, extra={
                                               "start": rng.start.hex(), "end": rng.end.hex(), "reverse": reverse,
                                               "limit": request.get("Limit"), "max_bytes": MAX_PAGE_BYTES}))
        return _page(table, request, parts, consistent)

    async def transact_write_items(self, request: Request, ctx: RequestContext) -> Response:
        return await self.transactions.write(request)

    async def transact_get_items(self, request: Request, ctx: RequestContext) -> Response:
        return await self.transactions.get(request)

    async def execute_statement(self, request: Request, ctx: RequestContext) -> Response:
        return await self._statements().execute(request, ctx)

    async def batch_execute_statement(self, request: Request, ctx: RequestContext) -> Response:
        return await self._statements().execute_batch(request, ctx)

    async def execute_transaction(self, request: Request, ctx: RequestContext) -> Response:
        return await TransactionStatements(self._statements()).execute(request, ctx)

    def _statements(self) -> StatementRunner:
        return StatementRunner(lambda operation: getattr(self, method_name(operation)), self._serving_table)

    async def _table_and_index(self, request: Request) -> tuple[TableRoute, IndexRead | None]:
        """The table a Query or Scan reads, and the index it names. An index this router's map does not
        know makes it wait briefly for a newer map first: UpdateTable may have just added it."""
        table = await self._serving_table(request["TableName"])
        name = request.get("IndexName")
        if name is not None and not any(one.name == name for one in table.indexes):
            loop = asyncio.get_running_loop()
            await self.refresh_map(self.routing.version, loop.time() + self._config.refresh_wait_ms / 1000.0,
                                   once=True)
            table = await self._serving_table(request["TableName"])
        return table, _index(table, request)

    async def _query_index(self, table: TableRoute, index: IndexRead, request: Request) -> Response:
        """A Query on an index: an LSI's entries are in the partition of their item collection; a GSI's may
        be in any partition, so every partition answers its share and the shares are merged in index order."""
        condition, plan = parse_query(request, index.key)
        check_select(index, request)
        check_projected(index, plan)
        reverse = request.get("ScanIndexForward") is False
        after: tuple[bytes, bytes] | None = None
        if request.get("ExclusiveStartKey") is not None:
            after = index_query_start(index, table.table_id, condition, request["ExclusiveStartKey"])
        consistent = bool(request.get("ConsistentRead"))
        limit: int | None = request.get("Limit")
        extra = {"index": index.to_wire(), "reverse": reverse, "limit": limit, "max_bytes": MAX_PAGE_BYTES,
                 "after": None if after is None else [after[0].hex(), after[1].hex()]}
        if index.is_global:
            shares = await self._every_partition("IndexQuery", table, request, extra)
        else:
            hash_type = table.key.hash_type
            hash64 = partition_hash(hash_type, condition.hash_value[hash_type])
            shares = [await self._route("IndexQuery", table, None, request, strong=consistent, write=False,
                                        hash64=hash64, extra=extra)]
        return _index_page(table, index, request, shares, reverse, limit, consistent)

    async def _every_partition(self, op: str, table: TableRoute, request: Request,
                               extra: dict[str, Any]) -> list[Response]:
        """One read of every partition of the table, all in parallel, whose answers cover the hash space
        exactly once. A partition that split meanwhile answers for less than the map held said: the map is
        refreshed by then, and the round is asked again with it."""
        config = self._config
        route = table
        for _ in range(config.max_attempts):
            answers = await asyncio.gather(*(
                self._route(op, route, None, request, strong=False, write=False, hash64=part.lo, extra=extra)
                for part in route.partitions))
            spans = sorted((int(answer["Lo"]), int(answer["Hi"])) for answer in answers)
            at = 0
            for lo, hi in spans:
                if lo != at:
                    break
                at = hi
            if at == HASH_SPACE and len(spans) == len(answers):
                return answers
            newer = self.routing.table(table.name)
            if newer is None or not newer.serving:
                raise ResourceNotFoundException(MSG_NOT_FOUND)
            if newer.partitions == route.partitions:
                await self.refresh_map(self.routing.version, asyncio.get_running_loop().time()
                                       + config.refresh_wait_ms / 1000.0)
                newer = self.routing.table(table.name) or newer
            route = newer
        raise ServiceUnavailableException(MSG_PARTITION_UNAVAILABLE)

    async def scan(self, request: Request, ctx: RequestContext) -> Response:
        """One page: the segment's hash range, partition after partition, until Limit, 1 MB or its end."""
        table, index = await self._table_and_index(request)
        plan = parse_scan(request)  # validation; the storage nodes apply the filter
        if index is not None:
            check_select(index, request)
            check_projected(index, plan)
        lo, hi = scan_range(request.get("Segment"), request.get("TotalSegments"))
        segment = hash_range(table.table_id, lo, hi)
        at_hash, start = lo, segment.start
        if request.get("ExclusiveStartKey") is not None:
            start_key = request["ExclusiveStartKey"]
            if index is not None:
                start_key = index_scan_start(index, start_key)
            at_hash, last = scan_start(table.table_id, table.key, start_key,
                                       request.get("Segment"), request.get("TotalSegments"))
            start = successor(last)
        consistent = bool(request.get("ConsistentRead"))
        limit: int | None = request.get("Limit")
        budget = MAX_PAGE_BYTES
        parts: list[Response] = []
        for _ in range(self._config.max_scan_steps):
            part = await self._route("Scan", table, None, request, strong=consistent, write=False, hash64=at_hash,
                                     extra={"start": start.hex(), "end": segment.end.hex(), "reverse": False,
                                            "limit": limit, "max_bytes": budget,
                                            "index": None if index is None else index.to_wire()})
            parts.append(part)
            part_hi = int(part["Hi"])
            if "LastKey" in part or part_hi >= hi:
                break
            if limit is not None:
                limit -= int(part["ScannedCount"])
                assert limit > 0, "a part that reached the limit names its last key"
            budget -= int(part["Read"])
            assert budget > 0, "a part that reached the byte budget names its last key"
            at_hash, start = part_hi, hash_range(table.table_id, part_hi, hi).start
        else:
            raise ServiceUnavailableException(MSG_PARTITION_UNAVAILABLE)
        return _page(table, request, parts, consistent, index)

    async def batch_get_item(self, request: Request, ctx: RequestContext) -> Response:
        """Keys grouped by partition, one request per partition, all in parallel; a partition that cannot
        answer in time leaves its keys in UnprocessedKeys."""
        mode = request.get("ReturnConsumedCapacity") or "NONE"
        entries: dict[str, dict[str, Any]] = request["RequestItems"]
        work: list[_Work] = []
        part_requests: dict[str, dict[str, Any]] = {}
        for name, entry in entries.items():
            table = await self._serving_table(name)
            parse_batch_get(entry)
            seen: set[tuple[str, ...]] = set()
            for raw_key in entry["Keys"]:
                key = validate_key(raw_key, table.key)
                identity = key_identity(key, table.key)
                if identity in seen:
                    raise ValidationException(MSG_DUPLICATE_KEYS)
                seen.add(identity)
                work.append((table, key, key))
            part_requests[name] = {**{k: v for k, v in entry.items() if k in _BATCH_GET_FIELDS},
                                   "ReturnConsumedCapacity": mode}
        done, left = await self._fan_out("BatchGetItem", "keys", work, part_requests)
        responses: dict[str, list[dict[str, Any]]] = {name: [] for name in entries}
        unprocessed: dict[str, list[dict[str, Any]]] = {}
        consumed: list[ConsumedCapacity] = []
        response_bytes = 0
        for table, keys, result in done:
            items: list[dict[str, Any]] = result["Items"]
            size = sum(item_size(one) for one in items)
            if response_bytes + size > MAX_BATCH_GET_RESPONSE_BYTES:
                unprocessed.setdefault(table.name, []).extend(keys)  # the response is full: the rest waits
                continue
            response_bytes += size
            responses[table.name].extend(items)
            if mode != "NONE":
                consistent = bool(part_requests[table.name].get("ConsistentRead"))
                consumed.append(ConsumedCapacity(table.name,
                                                 batch_get_units(result.get("Sizes") or [], consistent=consistent)))
        for table, key in left:
            unprocessed.setdefault(table.name, []).append(key)
        body: Response = {"Responses": responses, "UnprocessedKeys": {
            name: {**{k: v for k, v in entries[name].items() if k != "Keys"}, "Keys": keys}
            for name, keys in unprocessed.items()}}
        capacity = consumed_capacity_list(consumed, ReturnConsumedCapacity(mode))
        if capacity is not None:
            body["ConsumedCapacity"] = capacity
        return body

    async def batch_write_item(self, request: Request, ctx: RequestContext) -> Response:
        """Writes grouped by partition, one log entry per partition, all in parallel. Puts and deletes are
        blind, so a part whose outcome is unknown may safely be sent again: it goes to UnprocessedItems."""
        mode = request.get("ReturnConsumedCapacity") or "NONE"
        entries: dict[str, list[dict[str, Any]]] = request["RequestItems"]
        work: list[_Work] = []
        for name, writes in entries.items():
            table = await self._serving_table(name)
            seen: set[tuple[str, ...]] = set()
            for write in writes:
                put = write.get("PutRequest")
                if put is not None:
                    item = put["Item"]
                    key = extract_key(item, table.key, batch_write=True)
                    check_item_size(item)
                    if table.indexes:
                        check_index_keys(item, table.indexes)
                    write = {"PutRequest": {"Item": item}}
                else:
                    key = validate_key(write["DeleteRequest"]["Key"], table.key)
                    write = {"DeleteRequest": {"Key": key}}
                identity = key_identity(key, table.key)
                if identity in seen:
                    raise ValidationException(MSG_DUPLICATE_KEYS)
                seen.add(identity)
                work.append((table, key, write))
        part_requests = {name: {"ReturnConsumedCapacity": mode} for name in entries}
        done, left = await self._fan_out("BatchWriteItem", "writes", work, part_requests)
        consumed: list[ConsumedCapacity] = []
        if mode != "NONE":
            for table, _, result in done:
                sizes = [(old, new) for old, new in result.get("Sizes") or []]
                consumed.append(ConsumedCapacity(table.name, batch_write_units(sizes), result.get("Local") or {},
                                                 result.get("Global") or {}))
        unprocessed: dict[str, list[dict[str, Any]]] = {}
        for table, write in left:
            unprocessed.setdefault(table.name, []).append(write)
        body: Response = {"UnprocessedItems": unprocessed}
        capacity = consumed_capacity_list(consumed, ReturnConsumedCapacity(mode))
        if capacity is not None:
            body["ConsumedCapacity"] = capacity
        return body

    async def _fan_out(self, op: str, field: str, work: list[_Work], part_requests: dict[str, dict[str, Any]]
                       ) -> tuple[list[tuple[TableRoute, list[Any], Response]], list[tuple[TableRoute, Any]]]:
        """Send a batch's entries (table, key, wire entry) grouped by partition, the parts in parallel.

        Answers the parts done (table, their wire entries, the node's answer) and the entries left
        unprocessed (a partition unavailable past ``batch_deadline_ms``, or missing from the map). A part a
        node refuses as stale after the map changed (a split) is regrouped by the new map and sent again,
        for at most ``batch_regroup_rounds`` rounds. Nothing done at all: a retryable 503.
        """
        config = self._config
        done: list[tuple[TableRoute, list[Any], Response]] = []
        left: list[tuple[TableRoute, Any]] = []
        throttles: list[DynamoError] = []  # parts throttled (their entries are in ``left`` too)
        unserved = 0  # entries left for any other reason
        for _ in range(config.batch_regroup_rounds):
            groups: dict[tuple[str, int], tuple[TableRoute, list[tuple[dict[str, Any], Any]]]] = {}
            for table, key, entry in work:
                route = self.routing.table(table.name) or table
                part = route.partition_for(partition_hash(route.key.hash_type, key[route.key.hash_name][route.key.hash_type]))
                if part is None:
                    left.append((route, entry))
                    unserved += 1
                    continue
                groups.setdefault((route.name, part.partition_id), (route, []))[1].append((key, entry))
            parts = list(groups.values())
            results = await asyncio.gather(*(
                self._route(op, route, pairs[0][0], part_requests[route.name],
                            strong=op == "BatchWriteItem" or bool(part_requests[route.name].get("ConsistentRead")),
                            write=False, extra={field: [entry for _, entry in pairs]},
                            deadline_ms=config.batch_deadline_ms, regroup=True)
                for route, pairs in parts), return_exceptions=True)
            work = []
            for (route, pairs), result in zip(parts, results, strict=True):
                if isinstance(result, _Regroup):
                    work.extend((route, key, entry) for key, entry in pairs)
                elif _throttled(result):
                    assert isinstance(result, DynamoError)
                    throttles.append(result)
                    left.extend((route, entry) for _, entry in pairs)
                elif _retryable(result):
                    unserved += len(pairs)
                    left.extend((route, entry) for _, entry in pairs)
                elif isinstance(result, BaseException):
                    raise result
                else:
                    entries = [entry for _, entry in pairs]
                    unread = set(result.get("Unprocessed") or ())  # a part whose answer filled up
                    left.extend((route, entries[index]) for index in sorted(unread))
                    unserved += len(unread)
                    done.append((route, [e for i, e in enumerate(entries) if i not in unread], result))
            if not work:
                break
        left.extend((table, entry) for table, _, entry in work)
        unserved += len(work)
        if left and not done and throttles and not unserved:
            # Every part was throttled: the whole call fails with the throttling error, as DynamoDB does.
            raise throttles[0]
        if left and not done:
            raise ServiceUnavailableException(MSG_PARTITION_UNAVAILABLE)
        return done, left

    async def _serving_table(self, name: str) -> TableRoute:
        """The table's route if it serves item operations now; ResourceNotFound otherwise (as DynamoDB
        answers for missing, CREATING and DELETING tables). A miss refreshes the map once first: the
        table may have become ACTIVE a moment ago."""
        table = self.routing.table(name)
        if table is not None and table.serving:
            return table
        loop = asyncio.get_running_loop()
        config = self._config
        if self.routing.version < 0:
            # No map yet (the router is starting): wait a little, then answer a retryable error.
            await self.wait_for_map(min(config.request_deadline_ms, config.refresh_wait_ms * 4))
            if self.routing.version < 0:
                raise ServiceUnavailableException(MSG_NO_MAP)
        else:
            # Wait briefly for a newer map rather than asking once: the replica asked may lag the
            # control-plane leader that has just told the client the table is ACTIVE.
            version = self.routing.version
            await self.refresh_map(version, loop.time() + config.refresh_wait_ms / 1000.0)
        table = self.routing.table(name)
        if table is None or not table.serving:
            raise ResourceNotFoundException(MSG_NOT_FOUND)
        return table

    async def _route(self, op: str, table: TableRoute, key: dict[str, Any] | None, request: Request, *,
                     strong: bool, write: bool, hash64: int | None = None, extra: dict[str, Any] | None = None,
                     deadline_ms: float | None = None, regroup: bool = False) -> Response:
        """Send one item request to the right replica, following redirects and refreshing the map.

        The partition is the one holding ``key``'s hash, or ``hash64`` when given (Scan); ``extra`` fields
        join the ITEM payload (a Query's range, a batch's keys). ``regroup``: a batch part answered
        ``stale`` raises ``_Regroup`` once a newer map is held, since its keys may now span partitions.
        """
        config = self._config
        loop = self._transport.loop  # cached: asyncio.get_running_loop() costs a getpid() system call
        deadline = loop.time() + (deadline_ms or config.request_deadline_ms) / 1000.0
        name = table.name
        if hash64 is None:
            assert key is not None
            hash_name, hash_type = table.key.hash_name, table.key.hash_type
            hash64 = partition_hash(hash_type, key[hash_name][hash_type])
        routing = self.routing
        backoff_ms = config.retry_backoff_min_ms
        tried: set[str] = set()
        redirect_to: str | None = None
        payload = b""
        payload_for: tuple[int, int] = (-1, -1)  # (map version, table id) the payload was encoded for
        last = "no attempt"
        self.stats["item_requests"] += 1
        for _ in range(config.max_attempts):
            now = loop.time()
            if now >= deadline:
                break
            route = routing.table(name)
            if route is None or not route.serving:
                raise ResourceNotFoundException(MSG_NOT_FOUND)
            part = route.partition_for(hash64)
            if part is None:
                last = "no partition covers the key in the map held"
                await self.refresh_map(routing.version, deadline)
                continue
            if payload_for != (routing.version, route.table_id):
                payload = orjson.dumps({
                    "op": op, "table": name, "table_id": route.table_id, "map_version": routing.version,
                    "hash": hash64, "consistent": strong, "request": request, **(extra or {}),
                })
                payload_for = (routing.version, route.table_id)
            now_ms = now * 1000.0
            if redirect_to is not None and redirect_to in part.replicas:
                target = redirect_to
            else:
                untried = [r for r in routing.order(part, strong, now_ms) if r not in tried]
                if not untried:
                    # Every replica was tried once: pause, then start a new round.
                    tried.clear()
                    await self._pause(backoff_ms, deadline)
                    backoff_ms = min(backoff_ms * 2, config.retry_backoff_max_ms)
                    continue
                target = untried[0]
            redirect_to = None
            remaining_ms = (deadline - now) * 1000.0
            self.stats["item_attempts"] += 1
            try:
                future = self._transport.request(target, part.group, Kind.ITEM, payload,
                                                 min(config.attempt_timeout_ms, remaining_ms))
            except TransportError as exc:  # not sent at all: safe to try elsewhere
                self.stats["transport_errors"] += 1
                last = f"{target}: {exc}"
                routing.node_failed(target, now_ms)
                routing.forget_leader(part, target)
                tried.add(target)
                continue
            try:
                answer = orjson.loads(await future)
            except (TransportError, orjson.JSONDecodeError) as exc:
                self.stats["transport_errors"] += 1
                last = f"{target}: {exc}"
                routing.node_failed(target, loop.time() * 1000.0)
                routing.forget_leader(part, target)
                tried.add(target)
                if write and not _surely_not_delivered(exc):
                    self.stats["unknown_outcome"] += 1
                    log.warning("%s on %s: outcome unknown (%s)", op, name, last)
                    raise InternalServerError(MSG_UNKNOWN_OUTCOME) from None
                continue
            ok = answer.get("ok")
            if ok is not None:
                routing.node_ok(target)
                if strong:
                    routing.set_leader(part, target)
                elif "leader" in answer:
                    routing.set_leader(part, answer["leader"])
                result: Response = ok
                return result
            error = answer.get("error")
            if error is not None:
                routing.node_ok(target)
                raise error_from_body(error)
            if "redirect" in answer:
                self.stats["redirects"] += 1
                leader = answer["redirect"]
                last = f"{target}: redirect to {leader!r}"
                tried.add(target)
                # A redirect to a replica that just failed us names a leader its peers have not yet given
                # up on (an election is under way): wait for the new leader instead of timing out again.
                if (leader and leader in part.replicas and leader != target
                        and not routing.is_suspect(leader, loop.time() * 1000.0)):
                    routing.set_leader(part, leader)
                    if leader not in tried:
                        redirect_to = leader
                        continue
                elif leader and leader not in part.replicas:
                    # A leader our map does not list: the replica set changed (a repair). Refresh.
                    held = routing.version
                    await self.refresh_map(held, min(deadline, loop.time() + config.refresh_wait_ms / 1000.0))
                    if routing.version != held:
                        tried.clear()
                        continue
                else:
                    routing.forget_leader(part, target)
                # No leader known (an election is running) or a redirect loop: back off a little.
                await self._pause(backoff_ms, deadline)
                backoff_ms = min(backoff_ms * 2, config.retry_backoff_max_ms)
                continue
            if "stale" in answer:
                self.stats["stale"] += 1
                node_version = int(answer["stale"])
                last = f"{target}: stale map (node at version {node_version}, router at {routing.version})"
                held = routing.version
                await self.refresh_map(held, min(deadline, loop.time() + config.refresh_wait_ms / 1000.0))
                if regroup and routing.version != held:
                    raise _Regroup()
                if routing.version == held:
                    # The node is behind us, or the control-plane replica we asked lags: let them catch up
                    # (and ask another control-plane replica next time if the node knows a newer map).
                    if node_version > held:
                        self._map_source += 1
                    tried.add(target)
                    await self._pause(backoff_ms, deadline)
                    backoff_ms = min(backoff_ms * 2, config.retry_backoff_max_ms)
                else:
                    tried.clear()
                continue
            if "throttled" in answer:  # the partition is over its limit; nothing was served or applied
                routing.node_ok(target)
                self.stats["throttled"] += 1
                raise throttling_error(route, str(answer["throttled"]))
            # "unavailable" (no quorum, lease not ready) or an answer we do not understand.
            self.stats["unavailable"] += 1
            why = answer.get("unavailable", answer)
            last = f"{target}: {why!r}"
            if write and answer.get("not_applied") is not True:
                self.stats["unknown_outcome"] += 1
                log.warning("%s on %s: outcome unknown (%s)", op, name, last)
                raise InternalServerError(f"{MSG_UNKNOWN_OUTCOME}: the write may or may not have been applied ({why})")
            tried.add(target)
            if strong:
                routing.forget_leader(part, target)
        self.stats["deadline_exceeded"] += 1
        log.warning("%s on %s gave up: %s", op, name, last)
        raise ServiceUnavailableException(MSG_PARTITION_UNAVAILABLE)

    @staticmethod
    async def _pause(backoff_ms: float, deadline: float) -> None:
        remaining_s = deadline - asyncio.get_running_loop().time()
        if remaining_s > 0:
            await asyncio.sleep(min(backoff_ms / 1000.0, remaining_s))


class _MapFetchFailed(Exception):
    pass


class _Regroup(Exception):
    """A batch part met a partition map change: its entries go back to be grouped again."""


_Work = tuple[TableRoute, dict[str, Any], Any]  # a batch entry: its table, its key, what goes on the wire


_BATCH_GET_FIELDS = ("ConsistentRead", "ProjectionExpression", "ExpressionAttributeNames", "AttributesToGet")


def _index(table: TableRoute, request: Request) -> IndexRead | None:
    """The index a Query or Scan names (None: the table itself), checked for what it cannot serve."""
    name = request.get("IndexName")
    if name is None:
        return None
    for one in table.indexes:
        if one.name == name:
            index = IndexRead.from_schema(one, table.key)
            check_index_read(index, request)
            return index
    raise ValidationException(f"The table does not have the specified index: {name}")


def throttling_error(table: TableRoute, kind: str) -> DynamoError:
    """DynamoDB's answer for a request a partition throttled (``kind``: "read" or "write"): on-demand
    tables get ThrottlingException, provisioned ones ProvisionedThroughputExceededException (both HTTP 400,
    retried by SDKs), each naming the reason as DynamoDB's ThrottlingReasons do."""
    reasons = [{"reason": f"Table{'Read' if kind == 'read' else 'Write'}KeyRangeThroughputExceeded"}]
    if table.on_demand:
        return ThrottlingException(MSG_THROTTLED_ON_DEMAND, ThrottlingReasons=reasons)
    return ProvisionedThroughputExceededException(ThrottlingReasons=reasons)


def _throttled(result: object) -> bool:
    """A batch part a partition throttled: its entries come back unprocessed."""
    return isinstance(result, (ThrottlingException, ProvisionedThroughputExceededException))


def _retryable(result: object) -> bool:
    """A batch part that failed for want of a partition (unavailable, outcome unknown): its keys are left
    unprocessed rather than failing the whole batch."""
    return isinstance(result, (ServiceUnavailableException, InternalServerError))


def _page(table: TableRoute, request: Request, parts: list[Response], consistent: bool,
          index: IndexRead | None = None) -> Response:
    """A Query or Scan answer from the storage nodes' page parts, in read order."""
    items: list[dict[str, Any]] = []
    count = scanned = size = 0
    last: str | None = None
    last_entry: dict[str, Any] | None = None
    for part in parts:
        items.extend(part["Items"])
        count += int(part["Count"])
        scanned += int(part["ScannedCount"])
        size += int(part.get("Size", 0))
        last = part.get("LastKey")
        last_entry = part.get("LastIndexKey")
    body: Response = {}
    if request.get("Select") != "COUNT":
        body["Items"] = items
    body["Count"] = count
    body["ScannedCount"] = scanned
    if last_entry is not None:
        body["LastEvaluatedKey"] = last_entry
    elif last is not None:
        body["LastEvaluatedKey"] = last_evaluated_key(bytes.fromhex(last), table.key)
    _add_capacity(body, table, index, request, size, consistent)
    return body


def _add_capacity(body: Response, table: TableRoute, index: IndexRead | None, request: Request, size: int,
                  consistent: bool) -> None:
    mode = request.get("ReturnConsumedCapacity") or "NONE"
    if mode == "NONE":
        return
    units = query_units([size], consistent=consistent)
    if index is None:
        consumed = ConsumedCapacity(table.name, units)
    elif index.is_global:
        consumed = ConsumedCapacity(table.name, global_indexes={index.name: units})
    else:
        consumed = ConsumedCapacity(table.name, local_indexes={index.name: units})
    body["ConsumedCapacity"] = consumed.to_json(ReturnConsumedCapacity(mode))


def _index_page(table: TableRoute, index: IndexRead, request: Request, shares: list[Response], reverse: bool,
                limit: int | None, consistent: bool) -> Response:
    """A Query page on an index from the partitions' shares, merged in index order (positions are hex
    strings, which sort as their bytes do), then cut at Limit and the 1 MB budget. Each share holds its
    partition's first entries up to the same Limit and budget, so every entry of the page is in some
    share: the entries before it are fewer and smaller than the page's, in its partition too."""
    cands: list[list[Any]] = []
    more = False
    for share in shares:
        cands.extend(share["Cands"])
        more |= bool(share["More"])
    cands.sort(key=lambda cand: cand[0], reverse=reverse)
    taken = 0
    size = 0
    while taken < len(cands) and (limit is None or taken < limit) and size < MAX_PAGE_BYTES:
        size += int(cands[taken][3])
        taken += 1
    page = cands[:taken]
    body: Response = {}
    if request.get("Select") != "COUNT":
        body["Items"] = [cand[2] for cand in page if cand[1]]
    body["Count"] = sum(1 for cand in page if cand[1])
    body["ScannedCount"] = taken
    full = more or taken < len(cands) or (limit is not None and taken >= limit) or size >= MAX_PAGE_BYTES
    if full and page:
        body["LastEvaluatedKey"] = page[-1][4]
    _add_capacity(body, table, index, request, size, consistent)
    return body


def _consume_failure(task: asyncio.Task[None]) -> None:
    """A shared fetch whose waiters gave up still ends; its failure is logged by them, not by asyncio."""
    if not task.cancelled():
        task.exception()


def _surely_not_delivered(exc: Exception) -> bool:
    """A request that failed this way never reached the peer (so resending it cannot apply it twice)."""
    return isinstance(exc, PeerUnavailable) and exc.detail == "cannot connect"


