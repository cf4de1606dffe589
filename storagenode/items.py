"""ITEM requests at a storage node (``proto.kinds``): single-item writes decided at the leader, and reads.

A write at the leader: check the partition (table id, hash inside the range), wait until the leader has
applied everything from before its election (``GroupHost.write_barrier``), read the latest image (applied
store plus this leader's pending overlay), decide with ``dynamo.writes``, propose the effect, and answer
once it is applied. Reads: strongly consistent ones at the leader under its lease, eventually consistent
ones from any replica's applied store. A read answers the stored bytes as they are when nothing has to be
projected or measured.

Operations register in ``ItemService.ops``; Query, Scan and the batch operations plug in there (issue 6).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client.core import CounterMetricFamily, Metric

from dynamo import keycodec, writes
from dynamo.capacity import (
    ConsumedCapacity,
    ReturnConsumedCapacity,
    get_item_units,
    read_units,
    write_item_units,
)
from dynamo.errors import (
    ConditionalCheckFailedException,
    DynamoError,
    InternalServerError,
    TransactionConflictException,
    UnknownOperationException,
    ValidationException,
)
from dynamo.expressions import ExpressionContext, attributes_to_get_projection, parse_projection, project
from dynamo.indexes import index_write_charges
from dynamo.size import check_item_size, item_size
from dynamo.ttl import expired_value
from paxos.errors import LeaseNotReady, NotLeader, PaxosError, ProposalDropped
from runtime.logs import get_logger
from runtime.transport import Message
from storagenode.admission import AdmissionLimits, PartitionAdmission, UnitKind, read_charge, write_charge
from storagenode.locks import LOCK_MAGIC, PREPARED, committed_view, decode_lock, is_lock
from storagenode.partition import Effect, Item, decode_item, encode_effects, encode_item
from storagenode.streams import Stamp, StreamService

if TYPE_CHECKING:
    from storagenode.node import Hosted, StorageNode

log = get_logger("storagenode.items")
MSG_MISSING_KEY = "One of the required keys was not given a value"
MSG_KEY_SCHEMA = "The provided key element does not match the schema"
MSG_TRANSACTION_CONFLICT = "Transaction is ongoing for the item"
OK_EMPTY = b'{"ok":{}}'
MIN_WRITE_UNITS = 1.0  # what any write costs at least: its estimate when admitted


class Answer(Exception):
    """Unwinds a handler with a non-``ok`` answer (redirect, stale, unavailable)."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.body = body


def redirect(hint: str) -> Answer:
    return Answer({"redirect": hint})


def unavailable(why: str, *, not_applied: bool = False) -> Answer:
    """``not_applied``: the write was surely not proposed, so the router may send it elsewhere."""
    body: dict[str, Any] = {"unavailable": why}
    if not_applied:
        body["not_applied"] = True
    return Answer(body)


def throttled(kind: UnitKind) -> Answer:
    """The partition is over its ``kind`` limit: the request was not served (a write surely not applied)."""
    return Answer({"throttled": kind.value, "not_applied": True})


Handler = Callable[["Hosted", dict[str, Any]], Awaitable[bytes]]


class ItemService:
    def __init__(self, node: StorageNode) -> None:
        self.node = node
        self.host = node.host
        self._effect_ids = itertools.count(1)
        self.requests: dict[tuple[str, str], int] = {}  # (operation, outcome) -> count, for metrics
        admin = node.config.admin
        self.admission_limits = AdmissionLimits(admin.partition_max_wcu, admin.partition_max_rcu,
                                                admin.partition_burst_s)
        # (table, partition id, "read" | "write") -> requests throttled, for metrics (kept after a replica
        # goes: a counter never goes backwards; one entry per partition ever hosted here)
        self.throttles: dict[tuple[str, int, str], int] = {}
        self.ttl_deleted: dict[str, int] = {}  # table -> items this node's leaders deleted by time to live
        self.ops: dict[str, Handler] = {
            "PutItem": self.write,
            "UpdateItem": self.write,
            "DeleteItem": self.write,
            "GetItem": self.get_item,
        }
        from storagenode.reads import Reads  # Query, Scan and the batch operations (imports this module)

        self.reads = Reads(self)
        from storagenode.txn import TxnService  # transactions' items (imports this module)

        self.txn = TxnService(self)
        self.streams = StreamService(self)

    def entry(self, hosted: Hosted, proposal_id: int, effects: list[Effect], *, ttl: bool = False) -> bytes:
        """The log entry of ``effects``: stamped for the table's stream while it is on, so that every
        replica writes the same stream records (``storagenode.streams``)."""
        data = encode_effects(proposal_id, effects)
        stream = self.node.streams.get(hosted.table_id)
        if stream is None:
            return data
        return Stamp(stream[0], stream[1], int(time.time() * 1000), ttl).encode(data)

    def handle(self, message: Message) -> bytes | Awaitable[bytes]:
        """Answer one ITEM request. A GetItem that needs no waiting (eventually consistent, or strongly
        consistent under this leader's lease) is answered here and now: no task, no extra loop turn."""
        op: Any = "?"
        try:
            req = orjson.loads(message.payload)
            op = req.get("op")
            handler = self.ops.get(op)
            if handler is None:
                raise UnknownOperationException(f"a storage node does not serve {op!r}")
            node = self.node
            hosted = node.partition_for(message.group)
            if hosted is None or req.get("table_id") != hosted.table_id:
                raise Answer({"stale": node.map_version})
            if not self.host.serves_reads(hosted.group):
                raise unavailable("the replica is receiving a snapshot", not_applied=True)
            if op == "GetItem" and (not _consistent(req) or self.host.can_read_locally(hosted.group)):
                answer = self._read_item(hosted, req)
                if isinstance(answer, bytes):
                    return self._answered(message.group, op, req, answer)
                return self._serve(message.group, op, req, lambda _h, _r: answer, hosted)
        except Exception as exc:  # noqa: BLE001 - _failed answers the expected ones and re-raises the rest
            return self._failed(message.group, op, exc)
        return self._serve(message.group, op, req, handler, hosted)

    async def _serve(self, group: str, op: str, req: dict[str, Any], handler: Handler, hosted: Hosted) -> bytes:
        try:
            return self._answered(group, op, req, await handler(hosted, req))
        except Exception as exc:  # noqa: BLE001 - as in handle
            return self._failed(group, op, exc)

    def _answered(self, group: str, op: str, req: dict[str, Any], body: bytes) -> bytes:
        if not req.get("consistent") and body.startswith(b'{"ok":'):
            # An eventually consistent read served by a follower names the leader: routers send such
            # reads to the leader when they know it (fresher answers, fewer streams to batch over).
            leader = self.host.leader_of(group)
            if leader and leader != self.node.name:
                body = body[:-1] + b',"leader":' + orjson.dumps(leader) + b"}"
        self._count(op, "ok")
        return body

    def _failed(self, group: str, op: Any, exc: Exception) -> bytes:
        """The answer for an expected failure; anything else is re-raised (the transport reports it)."""
        if isinstance(exc, Answer):
            self._count(op, next(iter(exc.body)))
            return orjson.dumps(exc.body)
        self._count(op, "error")
        if isinstance(exc, DynamoError):
            return orjson.dumps({"error": exc.to_body()})
        if isinstance(exc, orjson.JSONDecodeError | KeyError | TypeError | AttributeError):
            log.warning("malformed item request", group=group, error=repr(exc))
            return orjson.dumps({"error": InternalServerError("malformed internal request").to_body()})
        raise exc

    def _count(self, op: Any, outcome: str) -> None:
        counter = (op if op in self.ops else "other", outcome)
        self.requests[counter] = self.requests.get(counter, 0) + 1

    # ---- admission (storagenode.admission) -------------------------------------------------------------

    def admit(self, hosted: Hosted, kind: UnitKind, estimate_units: float, hashes: Iterable[int]) -> None:
        """Admit a request this replica serves, charging ``estimate_units`` now, or raise the ``throttled``
        answer. Either way its demand counts as heat, and ``hashes`` (the keys' partition hashes) as recent
        traffic for a split point. Call where the replica is known to serve it (after the leader checks)."""
        machine = hosted.machine
        now_s = machine.clock()
        gate = machine.admission
        if gate is None:
            gate = machine.admission = PartitionAdmission(self.admission_limits, now_s)
            limits = self.admission_limits
            machine.heat.read_weight = limits.write_units_per_s / limits.read_units_per_s
        heat = machine.heat
        heat.record(now_s, estimate_units, read=kind is UnitKind.READ)
        for hash64 in hashes:
            heat.note(hash64)
        if not gate.admit(kind, now_s, estimate_units):
            counter = (hosted.table, hosted.partition_id, kind.value)
            self.throttles[counter] = self.throttles.get(counter, 0) + 1
            raise throttled(kind)

    def settle(self, hosted: Hosted, kind: UnitKind, estimate_units: float, actual_units: float) -> None:
        """An admitted request's actual units are known: charge the rest (the bucket may go into debt)."""
        if actual_units == estimate_units:
            return
        machine = hosted.machine
        gate = machine.admission
        assert gate is not None, "settled before admitted"
        now_s = machine.clock()
        gate.settle(kind, now_s, estimate_units, actual_units)
        machine.heat.record(now_s, actual_units - estimate_units, read=kind is UnitKind.READ)

    def collect_metrics(self) -> Iterable[Metric]:
        """Prometheus families (``Metrics.add_collector``); runs on the exporter's thread, so it only reads."""
        family = CounterMetricFamily("ddb_storage_throttled_requests",
                                     "requests a partition replica throttled (over its per-partition limit)",
                                     labels=["table", "partition", "kind"])
        for (table, pid, kind), count in list(self.throttles.items()):
            family.add_metric([table, str(pid), kind], count)
        yield family
        trimmed = CounterMetricFamily("ddb_storage_stream_records_trimmed",
                                      "stream records this node deleted as older than the stream keeps them")
        trimmed.add_metric([], float(self.streams.trimmed))
        yield trimmed
        expired = CounterMetricFamily("ddb_storage_ttl_deleted_items",
                                      "expired items deleted by time to live (DynamoDB's TimeToLiveDeletedItemCount)",
                                      labels=["table"])
        for table, count in list(self.ttl_deleted.items()):
            expired.add_metric([table], count)
        yield expired

    # ---- helpers -------------------------------------------------------------------------------------

    def _locate(self, hosted: Hosted, key: Item) -> bytes:
        """The storage key of ``key`` (the router checked it against the schema; this re-checks cheaply,
        since a wrong key here would store an item where no read finds it)."""
        data = hosted.data
        schema = data.schema
        if len(key) != (1 if schema.range_name is None else 2):
            raise ValidationException(MSG_KEY_SCHEMA)
        for name, key_type in ((schema.hash_name, schema.hash_type), (schema.range_name, schema.range_type)):
            if name is None:
                continue
            value = key.get(name)
            if value is None:
                raise ValidationException(MSG_KEY_SCHEMA)
            if not isinstance(value, dict) or len(value) != 1 or key_type not in value:
                raise ValidationException(MSG_KEY_SCHEMA)
        hash64 = data.hash_of(key)
        if not data.covers(hash64):
            raise Answer({"stale": self.node.map_version})
        return data.storage_key(key, hash64)

    async def _wait(self, future: asyncio.Future[Any], timeout_ms: int, what: str, *,
                    not_applied: bool = False) -> Any:
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout_ms / 1000.0)
        except TimeoutError:
            raise unavailable(f"{what}: timed out", not_applied=not_applied) from None
        except NotLeader as exc:
            raise redirect(exc.leader_hint) from None
        except PaxosError as exc:
            raise unavailable(f"{what}: {exc}", not_applied=not_applied) from None

    async def leader_ready(self, hosted: Hosted) -> None:
        """Wait until this leader has applied everything from before its election (or redirect): what a
        write must see before it decides. ``write`` does the same inline, on the hot path."""
        try:
            barrier = self.host.write_barrier(hosted.group)
        except NotLeader as exc:
            raise redirect(exc.leader_hint) from None
        if not barrier.done():
            await self._wait(barrier, self.node.node_config.leader_ready_wait_ms, "the new leader is catching up",
                             not_applied=True)

    async def _settle(self, hosted: Hosted, key: bytes) -> None:
        """Wait until this leader's pending write to ``key`` is applied, before answering from it."""
        future = hosted.last_proposal.get(key)
        if future is not None:
            await self._wait(future, self.node.node_config.write_timeout_ms, "an earlier write to this item")

    # ---- writes ----------------------------------------------------------------------------------------

    async def write(self, hosted: Hosted, req: dict[str, Any]) -> bytes:
        op: str = req["op"]
        request: dict[str, Any] = req["request"]
        data = hosted.data
        if op == "PutItem":
            try:
                key = data.schema.key_of(request["Item"])
            except KeyError:
                raise ValidationException(MSG_MISSING_KEY) from None
        else:
            key = request["Key"]
        skey = self._locate(hosted, key)
        prepared = writes.prepare(op, request, key)
        cfg = self.node.node_config
        try:
            barrier = self.host.write_barrier(hosted.group)
        except NotLeader as exc:
            raise redirect(exc.leader_hint) from None
        if not barrier.done():
            await self._wait(barrier, cfg.leader_ready_wait_ms, "the new leader is catching up", not_applied=True)
        self.admit(hosted, UnitKind.WRITE, MIN_WRITE_UNITS, (keycodec.key_hash(skey),))
        old_raw = data.read_latest(skey)
        if old_raw is not None and old_raw[:1] == LOCK_MAGIC:
            self.settle(hosted, UnitKind.WRITE, MIN_WRITE_UNITS, 0.0)
            raise TransactionConflictException(MSG_TRANSACTION_CONFLICT)
        pending = data.has_pending(skey)
        mode = request.get("ReturnConsumedCapacity") or "NONE"
        # A plain PutItem decides nothing from the old item: keep its bytes for the log, skip decoding them.
        blind = op == "PutItem" and prepared.condition is None and prepared.return_values == "NONE" and mode == "NONE"
        old = None if blind else decode_item(old_raw)
        try:
            outcome = writes.decide(prepared, old)
        except ConditionalCheckFailedException:
            self.settle(hosted, UnitKind.WRITE, MIN_WRITE_UNITS, write_charge(old_raw, None))
            if pending:
                await self._settle(hosted, skey)
            raise
        new_item = outcome.new_item
        if not outcome.changed:
            self.settle(hosted, UnitKind.WRITE, MIN_WRITE_UNITS, write_charge(old_raw, None))
            if pending:
                await self._settle(hosted, skey)
            return self._write_answer(hosted, request, outcome.attributes, old, new_item)
        if op == "UpdateItem" and new_item is not None:
            check_item_size(new_item, update=True)
        effect = Effect(skey, encode_item(new_item) if new_item is not None else None, old_raw)
        self.settle(hosted, UnitKind.WRITE, MIN_WRITE_UNITS, write_charge(old_raw, effect.new))
        proposal_id = next(self._effect_ids)
        try:
            future = self.host.propose(hosted.group, self.entry(hosted, proposal_id, [effect]))
        except NotLeader as exc:
            raise redirect(exc.leader_hint) from None
        except ProposalDropped:
            raise unavailable("too many writes in flight on this partition", not_applied=True) from None
        data.note_proposed(proposal_id, [effect])
        hosted.last_proposal[skey] = future
        future.add_done_callback(lambda f: _forget(hosted.last_proposal, skey, f))
        if self.node.config.debug.ack_before_quorum:
            # A deliberately broken cluster (runtime.config.DebugSettings): acknowledge before the quorum.
            future.add_done_callback(_consume)
            return self._write_answer(hosted, request, outcome.attributes, old, new_item)
        await self._wait(future, cfg.write_timeout_ms, "the write may or may not have been applied")
        return self._write_answer(hosted, request, outcome.attributes, old, new_item)

    async def expire(self, hosted: Hosted, skey: bytes, attribute: str, value: str, now_s: float) -> bool:
        """Delete an item that time to live found expired, if it still is (its TTL attribute still holds
        ``value``, read from this leader's latest image: an update since the sweep keeps the item). Free, as
        DynamoDB's TTL deletes are: no admission, no heat. True if the delete was applied."""
        try:
            barrier = self.host.write_barrier(hosted.group)
        except NotLeader:
            return False
        if not barrier.done() or hosted.data.frozen:
            return False
        old_raw = hosted.data.read_latest(skey)
        if is_lock(old_raw):
            return False  # a transaction holds the item: a later sweep looks again
        old = decode_item(old_raw)
        if old is None or (old.get(attribute) or {}).get("N") != value or expired_value(old, attribute, now_s) is None:
            return False
        effect = Effect(skey, None, old_raw)
        proposal_id = next(self._effect_ids)
        try:
            future = self.host.propose(hosted.group, self.entry(hosted, proposal_id, [effect], ttl=True))
        except PaxosError:
            return False
        hosted.data.note_proposed(proposal_id, [effect])
        hosted.last_proposal[skey] = future
        future.add_done_callback(lambda f: _forget(hosted.last_proposal, skey, f))
        try:
            await self._wait(future, self.node.node_config.write_timeout_ms, "a time-to-live delete")
        except Answer:
            return False  # not known to be applied: a later sweep finds the item again if it was not
        self.ttl_deleted[hosted.table] = self.ttl_deleted.get(hosted.table, 0) + 1
        return True

    def _write_answer(self, hosted: Hosted, request: dict[str, Any], attributes: Item | None, old: Item | None,
                      new: Item | None) -> bytes:
        mode = request.get("ReturnConsumedCapacity") or "NONE"
        if attributes is None and mode == "NONE":
            return OK_EMPTY
        body: dict[str, Any] = {}
        if attributes is not None:
            body["Attributes"] = attributes
        if mode != "NONE":
            units = write_item_units(item_size(old) if old is not None else None,
                                     item_size(new) if new is not None else None)
            indexes = self.node.table_indexes.get(hosted.table_id, ())
            local, global_ = index_write_charges(indexes, hosted.data.schema.dynamo(), old, new) if indexes else ({}, {})
            consumed = ConsumedCapacity(hosted.table, units, local, global_)
            body["ConsumedCapacity"] = consumed.to_json(ReturnConsumedCapacity(mode))
        return orjson.dumps({"ok": body})

    # ---- reads -----------------------------------------------------------------------------------------

    async def _consistent_read_barrier(self, hosted: Hosted) -> None:
        host = self.host
        if host.can_read_locally(hosted.group):
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.node.node_config.leader_ready_wait_ms / 1000.0
        tick_s = host.config.tick_ms / 1000.0
        while True:
            try:
                barrier = host.read_barrier(hosted.group)
            except NotLeader as exc:
                raise redirect(exc.leader_hint) from None
            except LeaseNotReady:
                if loop.time() >= deadline:
                    raise unavailable("the leader's lease is not ready yet") from None
                await asyncio.sleep(tick_s)
                continue
            remaining_ms = max(1, int((deadline - loop.time()) * 1000))
            await self._wait(barrier, remaining_ms, "strongly consistent read")
            return

    async def get_item(self, hosted: Hosted, req: dict[str, Any]) -> bytes:
        if _consistent(req):
            await self._consistent_read_barrier(hosted)
        answer = self._read_item(hosted, req)
        return answer if isinstance(answer, bytes) else await answer

    def _read_item(self, hosted: Hosted, req: dict[str, Any]) -> bytes | Awaitable[bytes]:
        """GetItem from the applied state, once any consistency barrier is passed. A strongly consistent read
        of an item that an undecided transaction holds first learns the transaction's fate (an awaitable)."""
        request: dict[str, Any] = req["request"]
        skey = self._locate(hosted, request["Key"])
        consistent = _consistent(req)
        estimate = read_units(0, consistent=consistent)
        self.admit(hosted, UnitKind.READ, estimate, (keycodec.key_hash(skey),))
        raw = hosted.data.read_stored(skey)
        if raw is not None and raw[:1] == LOCK_MAGIC:
            if consistent and decode_lock(raw).state == PREPARED:
                return self._read_locked(hosted, request, skey, estimate)
            raw = committed_view(raw)
        return self._item_answer(hosted, request, raw, consistent, estimate)

    async def _read_locked(self, hosted: Hosted, request: dict[str, Any], skey: bytes, estimate: float) -> bytes:
        raw = await self.txn.consistent_view(hosted, skey)
        return self._item_answer(hosted, request, raw, True, estimate)

    def _item_answer(self, hosted: Hosted, request: dict[str, Any], raw: bytes | None, consistent: bool,
                     estimate: float) -> bytes:
        self.settle(hosted, UnitKind.READ, estimate, read_charge(raw, consistent=consistent))
        mode = request.get("ReturnConsumedCapacity") or "NONE"
        projection = None
        if request.get("ProjectionExpression") is not None:
            ctx = ExpressionContext(request.get("ExpressionAttributeNames"), None)
            projection = parse_projection(request["ProjectionExpression"], ctx)
            ctx.check_all_used()
        elif request.get("AttributesToGet") is not None:
            projection = attributes_to_get_projection(request["AttributesToGet"])
        if projection is None and mode == "NONE":
            # the hot path: the stored bytes are the answer's item, as they are
            return OK_EMPTY if raw is None else b'{"ok":{"Item":' + raw + b"}}"
        item = decode_item(raw)
        body: dict[str, Any] = {}
        if item is not None:
            body["Item"] = project(item, projection) if projection is not None else item
        if mode != "NONE":
            units = get_item_units(item_size(item) if item is not None else None, consistent=consistent)
            body["ConsumedCapacity"] = ConsumedCapacity(hosted.table, units).to_json(ReturnConsumedCapacity(mode))
        return orjson.dumps({"ok": body})


def _consistent(req: dict[str, Any]) -> bool:
    return bool(req.get("consistent", req["request"].get("ConsistentRead", False)))


def _forget(proposals: dict[bytes, asyncio.Future[Any]], key: bytes, future: asyncio.Future[Any]) -> None:
    if proposals.get(key) is future:
        del proposals[key]
    if not future.cancelled():
        future.exception()  # retrieved: an Indeterminate nobody awaited any more is not an error to log


def forget_all(proposals: dict[bytes, Any], keys: list[bytes], future: Any) -> None:
    """``_forget`` for the keys of one proposal of several effects."""
    for key in keys:
        if proposals.get(key) is future:
            del proposals[key]
    if not future.cancelled():
        future.exception()


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve a result nobody waits for, so asyncio does not report it as never retrieved."""
    if not future.cancelled():
        future.exception()
