"""TransactWriteItems and TransactGetItems: the router coordinates, the partitions' leaders decide.

A TransactWriteItems whose items all live in one partition is one ``TxnPrepare`` with ``single``: the
leader checks every condition and logs all the effects in one entry. Otherwise the router runs a two-phase
commit over the partitions (``storagenode.txn`` has the protocol and the recovery):

1. prepare the primary item's partition (the first action's), then every other partition in parallel;
   any cancellation reason, or a partition that cannot answer, aborts what was prepared;
2. commit the primary's partition, turning the primary's lock ``COMMITTED``: this is the commit point;
3. commit the other partitions, then clean the primary up, and answer.

Before step 2 completes nothing can commit, so any failure there leaves the transaction not applied. A
router that dies after it leaves locks that the partitions' leaders resolve from the primary.

A TransactGetItems reads every item strongly consistently, partition by partition in parallel; an item an
undecided transaction holds cancels it (TransactionConflict). Over several partitions it reads them all a
second time: every item unchanged and unlocked in both rounds means the values of the first round all held
at once (when the first round ended), so the answer is a serializable snapshot.

``ClientRequestToken`` makes a TransactWriteItems idempotent for ``TOKEN_TTL_S``, in this router: a repeat
with the same parameters answers as the first did, with other parameters IdempotentParameterMismatch, and
while the first still runs TransactionInProgress.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from dynamo import transactions as tx
from dynamo.capacity import (
    ConsumedCapacity,
    ReturnConsumedCapacity,
    consumed_capacity_list,
    read_units,
    write_item_units,
)
from dynamo.errors import (
    DynamoError,
    IdempotentParameterMismatchException,
    InternalServerError,
    TransactionCanceledException,
    TransactionInProgressException,
    ValidationException,
)
from dynamo.expressions import ExpressionContext, parse_projection, project
from dynamo.hashing import partition_hash
from dynamo.items import check_index_keys
from dynamo.size import check_item_size, item_size
from router.backend import Request, Response
from router.routing import TableRoute

if TYPE_CHECKING:
    from router.cluster import ClusterBackend

log = logging.getLogger("router.transactions")
TOKEN_TTL_S = 600.0  # DynamoDB keeps a ClientRequestToken for 10 minutes
MAX_TOKENS = 10_000  # tokens remembered at once (the oldest go first)
CONFLICT_PAUSE_S = 0.01  # the first pause before a transaction that met only locks is tried again
MAX_PLAN_ROUNDS = 3  # plans of a transaction's partitions, when a split changes them under it
MSG_NOT_APPLIED = "The transaction was not applied: a partition could not answer in time; retry it"
MSG_TOKEN_MISMATCH = ("Request token was used in a previous request with different parameters; use a different "
                      "ClientRequestToken")
MSG_TOKEN_IN_PROGRESS = "Transaction with the given request token is already in progress"
MSG_UNKNOWN_OUTCOME = "The transaction may or may not have been applied: a partition could not answer in time"


class _Part:
    """The actions (or gets) of one transaction that one partition serves."""

    def __init__(self, table: TableRoute, partition_id: int) -> None:
        self.table = table
        self.partition_id = partition_id
        self.positions: list[int] = []
        self.keys: list[dict[str, Any]] = []
        self.wire: list[dict[str, Any]] = []


class TransactionCoordinator:
    def __init__(self, backend: ClusterBackend, clock: Callable[[], float] = time.monotonic) -> None:
        self.backend = backend
        self.clock = clock
        # ClientRequestToken -> (expiry, the request's parameters, the answer)
        self._tokens: OrderedDict[str, tuple[float, bytes, Response]] = OrderedDict()
        self._running: dict[str, bytes] = {}  # token -> parameters, of transactions under way
        # outcomes: committed (over several partitions), single (one partition, one log entry), canceled,
        # failed (an error: not applied, or its outcome unknown); and conflict_retries, of either operation
        self.stats = {"committed": 0, "single": 0, "canceled": 0, "failed": 0, "conflict_retries": 0}

    # ---- TransactWriteItems ------------------------------------------------------------------------------

    async def write(self, request: Request) -> Response:
        try:
            return await self._idempotent(request)
        except TransactionCanceledException:
            self.stats["canceled"] += 1
            raise

    async def _idempotent(self, request: Request) -> Response:
        token = request.get("ClientRequestToken")
        if token is None:
            return await self._patiently(lambda: self._write(request))
        params = orjson.dumps({k: v for k, v in request.items() if k != "ClientRequestToken"},
                              option=orjson.OPT_SORT_KEYS)
        now = self.clock()
        while self._tokens and next(iter(self._tokens.values()))[0] <= now:
            self._tokens.popitem(last=False)
        seen = self._tokens.get(token)
        if seen is not None:
            if seen[1] != params:
                raise IdempotentParameterMismatchException(MSG_TOKEN_MISMATCH)
            return seen[2]
        running = self._running.get(token)
        if running is not None:
            if running != params:
                raise IdempotentParameterMismatchException(MSG_TOKEN_MISMATCH)
            raise TransactionInProgressException(MSG_TOKEN_IN_PROGRESS)
        self._running[token] = params
        try:
            answer = await self._patiently(lambda: self._write(request))
        finally:
            del self._running[token]
        self._tokens[token] = (self.clock() + TOKEN_TTL_S, params, answer)
        while len(self._tokens) > MAX_TOKENS:
            self._tokens.popitem(last=False)
        return answer

    async def _patiently(self, attempt: Callable[[], Awaitable[Response]]) -> Response:
        """``attempt()``, again after a short pause while it is cancelled by conflicts alone (locks of
        transactions under way, nothing applied), up to ``transaction_conflict_retries`` times."""
        retries = self.backend._config.transaction_conflict_retries
        pause_s = CONFLICT_PAUSE_S
        for _ in range(retries):
            try:
                return await attempt()
            except TransactionCanceledException as exc:
                codes = {reason["Code"] for reason in exc.extra["CancellationReasons"]}
                if codes != {"None", "TransactionConflict"} and codes != {"TransactionConflict"}:
                    raise
            self.stats["conflict_retries"] += 1
            await asyncio.sleep(pause_s * random.uniform(0.5, 1.5))
            pause_s *= 2
        return await attempt()

    async def _write(self, request: Request) -> Response:
        actions = [tx.Action.of(entry, position) for position, entry in enumerate(request["TransactItems"])]
        tables: list[TableRoute] = []
        keys: list[dict[str, Any]] = []
        mismatched: dict[int, dict[str, Any]] = {}
        for action in actions:
            table = await self.backend._serving_table(action.body["TableName"])
            try:
                key = tx.action_key(action.kind, action.body, table.key)
            except tx.KeyTypeMismatch as exc:
                mismatched[action.position] = tx.reason(exc)
                key = action.body.get("Key") or {}
            if action.kind == "Put":
                item = action.body["Item"]
                check_item_size(item)
                if table.indexes and action.position not in mismatched:
                    check_index_keys(item, table.indexes)
            tx.check_expressions(action, key)
            tables.append(table)
            keys.append(key)
        if mismatched:
            raise self._canceled(mismatched, len(actions))
        tx.check_distinct([tx.item_identity(t.name, k) for t, k in zip(tables, keys, strict=True)])
        tx.check_payload([a.body["Item"] if a.kind == "Put" else k for a, k in zip(actions, keys, strict=True)])
        hashes = [_hash_of(t, k) for t, k in zip(tables, keys, strict=True)]
        primary = {"t": tables[0].table_id, "h": str(hashes[0]), "key": keys[0]}
        everything = [[t.table_id, str(h), k] for t, h, k in zip(tables, hashes, keys, strict=True)]
        wire = [{"kind": a.kind, "body": a.body, **({"primary": True} if a.position == 0 else {})} for a in actions]
        mode = ReturnConsumedCapacity(request.get("ReturnConsumedCapacity") or "NONE")
        items = _Items(tables, keys, hashes, wire)
        for _ in range(MAX_PLAN_ROUNDS):
            parts = self._plan(items)
            if parts is None:
                await self._refresh()
                continue
            txn = os.urandom(16).hex()
            fields = {"txn": txn, "primary": primary, "all": everything,
                      "capacity": mode is not ReturnConsumedCapacity.NONE}
            try:
                if len(parts) == 1:
                    try:
                        results = [await self._prepare(parts[0], fields, single=True)]
                    except _Canceled as exc:
                        raise self._canceled(exc.reasons, len(actions)) from None
                    self.stats["single"] += 1
                else:
                    results = await self._two_phase(txn, items, parts, fields)
                    self.stats["committed"] += 1
            except _Replan:
                await self._refresh()
                continue
            except TransactionCanceledException:
                raise
            except DynamoError:
                self.stats["failed"] += 1  # not applied (throttled, unavailable), or its outcome unknown
                raise
            return _write_answer(parts, results, actions, tables, mode)
        raise InternalServerError(MSG_NOT_APPLIED)

    def _plan(self, items: _Items, positions: list[int] | None = None) -> list[_Part] | None:
        """The items (those at ``positions``, or all) grouped by the partition holding them in the map held,
        in order of their first item (so the primary's part comes first); None if the map has no partition
        for some item."""
        parts: dict[tuple[int, int], _Part] = {}
        routing = self.backend.routing
        for position in positions if positions is not None else range(len(items.keys)):
            table = items.tables[position]
            route = routing.table(table.name) or table
            found = route.partition_for(items.hashes[position])
            if found is None:
                return None
            part = parts.setdefault((route.table_id, found.partition_id), _Part(route, found.partition_id))
            part.positions.append(position)
            part.keys.append(items.keys[position])
            part.wire.append(items.wire[position])
        return list(parts.values())

    async def _refresh(self) -> None:
        backend = self.backend
        loop = asyncio.get_running_loop()
        await backend.refresh_map(backend.routing.version, loop.time() + backend._config.refresh_wait_ms / 1000.0)

    async def _send(self, op: str, part: _Part, extra: dict[str, Any], *, write: bool) -> Response:
        from router.cluster import _Regroup  # noqa: PLC0415 - the backend's module imports this one

        try:
            return await self.backend._route(op, part.table, part.keys[0], {}, strong=True, write=write,
                                             extra=extra, regroup=True)
        except _Regroup:
            raise _Replan() from None

    async def _prepare(self, part: _Part, fields: dict[str, Any], *, single: bool = False) -> Response:
        answer = await self._send("TxnPrepare", part, {**fields, "actions": part.wire, "single": single},
                                  write=True)
        if "Cancel" in answer:
            raise _Canceled({position: reason for position, reason in zip(part.positions, answer["Cancel"],
                                                                          strict=True)})
        return answer

    async def _finish(self, txn: str, part: _Part, decision: str, keys: list[dict[str, Any]] | None = None,
                      keep: dict[str, Any] | None = None) -> list[str]:
        extra: dict[str, Any] = {"txn": txn, "decision": decision, "keys": keys if keys is not None else part.keys}
        if keep is not None:
            extra["keep"] = keep
        answer = await self._send("TxnFinish", part, extra, write=True)
        states: list[str] = answer["States"]
        return states

    async def _two_phase(self, txn: str, items: _Items, parts: list[_Part], fields: dict[str, Any]) -> list[Response]:
        first, others = parts[0], parts[1:]
        assert 0 in first.positions
        count = len(items.keys)
        results: list[Response | BaseException]
        try:
            results = [await self._prepare(first, fields)]
        except _Canceled as exc:
            raise self._canceled(exc.reasons, count) from None
        except DynamoError as exc:
            await self._abort(txn, parts[:1])
            if isinstance(exc, InternalServerError):
                raise InternalServerError(MSG_NOT_APPLIED) from None
            raise
        results += await asyncio.gather(*(self._prepare(part, fields) for part in others), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self._abort(txn, parts)
            reasons: dict[int, dict[str, Any]] = {}
            for failure in failures:
                if isinstance(failure, _Canceled):
                    reasons.update(failure.reasons)
            if reasons:
                raise self._canceled(reasons, count)
            failure = failures[0]
            if isinstance(failure, _Replan):
                raise failure
            if isinstance(failure, DynamoError) and not isinstance(failure, InternalServerError):
                raise failure  # throttling, or a partition unavailable: nothing was applied
            if not isinstance(failure, DynamoError):
                raise failure
            raise InternalServerError(MSG_NOT_APPLIED)
        # The commit point: the primary's lock turns COMMITTED (or the primary says it was aborted, by a
        # partition that found the transaction's locks held too long). An InternalServerError here means
        # it may or may not have committed: the partitions' leaders resolve it either way.
        states = await self._finish_at(txn, items, first.positions, "commit", keep=True)
        if states[0] != "committed":
            await self._abort(txn, parts)
            raise self._canceled({0: tx.CONFLICT_REASON}, count)
        try:
            await self._finish_at(txn, items, [p for part in others for p in part.positions], "commit")
            await self._finish_at(txn, items, [0], "cleanup")
        except DynamoError as exc:
            log.warning("transaction %s committed; its partitions finish it from its primary (%s)", txn, exc)
        answers: list[Response] = [r for r in results if not isinstance(r, BaseException)]
        return answers

    async def _finish_at(self, txn: str, items: _Items, positions: list[int], decision: str, *,
                         keep: bool = False) -> dict[int, str]:
        """Apply ``decision`` to the items at ``positions``, planned by the map held and planned again for
        those a partition refused after a split; each item's state after. With ``keep``, the primary
        (position 0) turns COMMITTED, and its partition is asked before any other."""
        states: dict[int, str] = {}
        left = positions
        for _ in range(MAX_PLAN_ROUNDS):
            parts = self._plan(items, left)
            if parts is None:
                await self._refresh()
                continue
            left = []
            batches = [parts[:1], parts[1:]] if keep else [parts]
            for index, batch in enumerate(batches):
                done = await asyncio.gather(*(
                    self._finish(txn, part, decision, keep=items.keys[0] if keep and 0 in part.positions else None)
                    for part in batch), return_exceptions=True)
                for part, result in zip(batch, done, strict=True):
                    if isinstance(result, _Replan):
                        left += part.positions
                    elif isinstance(result, BaseException):
                        raise result
                    else:
                        states.update(zip(part.positions, result, strict=True))
                if keep and index == 0 and left:
                    # The primary first, always: the others wait for its new partition.
                    left += [p for part in batches[1] for p in part.positions]
                    break
            if not left:
                return states
            await self._refresh()
        raise InternalServerError(MSG_UNKNOWN_OUTCOME)

    async def _abort(self, txn: str, parts: list[_Part]) -> None:
        """Abort the transaction wherever it may be prepared (idempotent; a failure here leaves the locks to
        the partitions' leaders, which abort them from the primary)."""
        done = await asyncio.gather(*(self._finish(txn, part, "abort") for part in parts), return_exceptions=True)
        for part, one in zip(parts, done, strict=True):
            if isinstance(one, BaseException):
                log.warning("transaction %s: abort in partition %s failed (%r)", txn, part.partition_id, one)

    @staticmethod
    def _canceled(reasons: dict[int, dict[str, Any]], count: int) -> TransactionCanceledException:
        return tx.canceled([reasons.get(position) or {"Code": "None"} for position in range(count)])

    # ---- TransactGetItems --------------------------------------------------------------------------------

    async def get(self, request: Request) -> Response:
        return await self._patiently(lambda: self._get(request))

    async def _get(self, request: Request) -> Response:
        gets = [entry["Get"] for entry in request["TransactItems"]]
        tables: list[TableRoute] = []
        keys: list[dict[str, Any]] = []
        projections: list[Any] = []
        mismatched: dict[int, dict[str, Any]] = {}
        for position, body in enumerate(gets):
            table = await self.backend._serving_table(body["TableName"])
            try:
                keys.append(tx.action_key("Get", body, table.key))
            except tx.KeyTypeMismatch as exc:
                mismatched[position] = tx.reason(exc)
                keys.append(body["Key"])
            tables.append(table)
            projection = None
            names = body.get("ExpressionAttributeNames")
            if body.get("ProjectionExpression") is not None:
                ctx = ExpressionContext(names, None)
                projection = parse_projection(body["ProjectionExpression"], ctx)
                ctx.check_all_used()
            elif names is not None:
                raise ValidationException("ExpressionAttributeNames can only be specified when using expressions")
            projections.append(projection)
        if mismatched:
            raise self._canceled(mismatched, len(gets))
        tx.check_distinct([tx.item_identity(t.name, k) for t, k in zip(tables, keys, strict=True)])
        hashes = [_hash_of(t, k) for t, k in zip(tables, keys, strict=True)]
        items = _Items(tables, keys, hashes, [{} for _ in gets])
        for _ in range(MAX_PLAN_ROUNDS):
            parts = self._plan(items)
            if parts is None:
                await self._refresh()
                continue
            try:
                first = await self._read(parts)
                if len(parts) > 1:
                    again = await self._read(parts)
                    changed = {p: tx.CONFLICT_REASON for p, item in first.items() if again[p] != item}
                    if changed:
                        raise _Canceled(changed)
            except _Replan:
                await self._refresh()
                continue
            except _Canceled as exc:
                raise self._canceled(exc.reasons, len(gets)) from None
            return _get_answer(first, tables, projections, ReturnConsumedCapacity(
                request.get("ReturnConsumedCapacity") or "NONE"))
        raise InternalServerError(MSG_NOT_APPLIED)

    async def _read(self, parts: list[_Part]) -> dict[int, dict[str, Any] | None]:
        """Every item by its position (None: absent); cancels if an undecided transaction holds any."""
        answers = await asyncio.gather(*(self._send("TxnGet", part, {"keys": part.keys}, write=False)
                                         for part in parts))
        items: dict[int, dict[str, Any] | None] = {}
        conflicts: dict[int, dict[str, Any]] = {}
        for part, answer in zip(parts, answers, strict=True):
            for position, item, locked in zip(part.positions, answer["Items"], answer["Locked"], strict=True):
                items[position] = item
                if locked:
                    conflicts[position] = tx.CONFLICT_REASON
        if conflicts:
            raise _Canceled(conflicts)
        return items


@dataclass(frozen=True, slots=True)
class _Items:
    """A transaction's items by position: table, key, the key's hash and what is sent for it."""

    tables: list[TableRoute]
    keys: list[dict[str, Any]]
    hashes: list[int]
    wire: list[dict[str, Any]]


class _Canceled(Exception):
    """Cancellation reasons by action position (the others: None)."""

    def __init__(self, reasons: dict[int, dict[str, Any]]) -> None:
        super().__init__(reasons)
        self.reasons = reasons


class _Replan(Exception):
    """A partition refused its part after the map changed (a split): plan again with the newer map."""


def _hash_of(table: TableRoute, key: dict[str, Any]) -> int:
    schema = table.key
    return partition_hash(schema.hash_type, key[schema.hash_name][schema.hash_type])


def _write_answer(parts: list[_Part], results: list[Response], actions: list[tx.Action], tables: list[TableRoute],
                  mode: ReturnConsumedCapacity) -> Response:
    body: Response = {}
    if mode is ReturnConsumedCapacity.NONE:
        return body
    consumed: list[ConsumedCapacity] = []
    for part, result in zip(parts, results, strict=True):
        indexes = result.get("Indexes") or [[{}, {}]] * len(part.positions)
        for position, (old, new), (local, global_) in zip(part.positions, result["Sizes"], indexes, strict=True):
            if actions[position].kind == "ConditionCheck":
                units = read_units(old or 0, consistent=True, transactional=True)
            else:
                units = write_item_units(old, new, transactional=True)
            consumed.append(ConsumedCapacity(tables[position].name, units, local, global_))
    body["ConsumedCapacity"] = consumed_capacity_list(consumed, mode)
    return body


def _get_answer(items: dict[int, dict[str, Any] | None], tables: list[TableRoute], projections: list[Any],
                mode: ReturnConsumedCapacity) -> Response:
    responses: list[dict[str, Any]] = []
    consumed: list[ConsumedCapacity] = []
    for position, table in enumerate(tables):
        item = items[position]
        projection = projections[position]
        responses.append({} if item is None else {"Item": project(item, projection) if projection is not None else item})
        size = 0 if item is None else item_size(item)
        consumed.append(ConsumedCapacity(table.name, read_units(size, consistent=True, transactional=True)))
    body: Response = {"Responses": responses}
    capacity = consumed_capacity_list(consumed, mode)
    if capacity is not None:
        body["ConsumedCapacity"] = capacity
    return body

