"""Transactions at a storage node: preparing, finishing and reading the items of a TransactWriteItems or
TransactGetItems, and resolving the locks a coordinator left behind.

The router coordinates a transaction that spans partitions (``router.transactions``) with these ITEM
operations, each decided at the partition's leader and logged like any write:

- ``TxnPrepare``: check every action's condition against the newest state and lock its item
  (``storagenode.locks``), or answer the cancellation reasons and change nothing. A transaction whose items
  all live in one partition is decided and applied here in one log entry (``single``): no locks.
- ``TxnFinish``: ``commit`` (a lock's ``new`` replaces it; on the primary item, with ``keep``, the lock
  turns ``COMMITTED`` instead: the transaction's decision), ``abort`` (``old`` replaces a lock still
  ``PREPARED``), ``cleanup`` (a ``COMMITTED`` primary's ``new`` replaces it) or ``peek``. Answers each
  item's state afterwards: ``prepared``, ``committed`` or ``none``.
- ``TxnGet``: strongly consistent reads of a TransactGetItems' items, naming those an undecided
  transaction holds.

**The decision lives on the primary item** (the transaction's first). The coordinator prepares the
primary's partition first, then the others; it commits by turning the primary's lock ``COMMITTED``, then
commits the other items, then cleans the primary up. So a lock whose primary holds no lock of its
transaction belongs to an aborted one: the primary is locked before any other item, and cleaned only
after every other item is committed.

**Resolution**: a coordinator may die at any step. Every leader sweeps its partition's locks
(``sweep``); one held longer than ``txn_lock_timeout_ms`` is resolved from its primary: a primary still
``PREPARED`` that long is aborted there (so the coordinator can no longer commit it), a ``COMMITTED`` one
commits the item; a stale ``COMMITTED`` primary commits the transaction's other items (the primary's lock
lists them all) and then cleans itself up. A node reaches another partition through the partition map it
follows, as a router would (``call_partition``).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson

from dynamo import keycodec
from dynamo import transactions as tx
from dynamo.capacity import read_units
from dynamo.errors import ConditionalCheckFailedException, ValidationException
from dynamo.indexes import index_write_charges
from dynamo.size import check_item_size, item_size
from paxos.errors import NotLeader, ProposalDropped
from proto.kinds import Kind
from runtime.logs import get_logger
from runtime.transport import Message, TransportError
from storagenode.admission import UnitKind, write_charge
from storagenode.items import forget_all, redirect, unavailable
from storagenode.locks import COMMITTED, PREPARED, TXN_ID_BYTES, Lock, decode_lock, is_lock, lock_txn
from storagenode.partition import Effect, Item, decode_item, encode_item

if TYPE_CHECKING:
    from storagenode.items import ItemService
    from storagenode.node import Hosted

log = get_logger("storagenode.txn")
SCAN_CHUNK_ITEMS = 512  # items read between two yields while a leader looks for the locks in its store
MAX_RESOLVING = 16  # transactions this node resolves at once
DECISIONS = ("commit", "abort", "cleanup", "peek")


class TxnService:
    def __init__(self, service: ItemService) -> None:
        self.service = service
        self.node = service.node
        self._resolving: dict[bytes, asyncio.Task[None]] = {}  # transaction -> its resolution under way (a
        # strong reference: the event loop keeps only weak ones to tasks)
        self._leaders: dict[str, str] = {}  # group -> the leader its last answer named
        self.resolved: dict[str, int] = {"commit": 0, "abort": 0, "cleanup": 0}  # for metrics and tests
        service.ops.update({"TxnPrepare": self.prepare, "TxnFinish": self.finish, "TxnGet": self.get})

    # ---- the operations --------------------------------------------------------------------------------

    async def prepare(self, hosted: Hosted, req: dict[str, Any]) -> bytes:
        txn = _txn_id(req["txn"])
        actions: list[dict[str, Any]] = req["actions"]
        single = bool(req.get("single"))
        primary_meta: bytes = orjson.dumps({"p": req["primary"]})
        service = self.service
        data = hosted.data
        located: list[tuple[dict[str, Any], dict[str, Any], bytes]] = []
        for action in actions:
            body = action["body"]
            if action["kind"] == "Put":
                try:
                    key = data.schema.key_of(body["Item"])
                except KeyError:
                    raise ValidationException("The provided key element does not match the schema") from None
            else:
                key = body["Key"]
            located.append((action, key, service._locate(hosted, key)))
        await self.service.leader_ready(hosted)
        estimate = 2.0 * len(located)  # transactional writes cost double
        service.admit(hosted, UnitKind.WRITE, estimate, (keycodec.key_hash(skey) for _, _, skey in located))
        reasons: list[dict[str, Any] | None] = []
        planned: list[tuple[bytes, bytes | None, bytes | None, Item | None, Item | None, bool]] = []
        charged = 0.0
        for action, key, skey in located:
            raw = data.read_latest(skey)
            if is_lock(raw):
                reasons.append(tx.CONFLICT_REASON)
                continue
            old = decode_item(raw)
            try:
                new = tx.decide(action["kind"], action["body"], key, old)
                if new is not None and action["kind"] == "Update":
                    check_item_size(new, update=True)
            except (ConditionalCheckFailedException, ValidationException) as exc:
                reasons.append(tx.reason(exc))
                continue
            reasons.append(None)
            new_raw = raw if action["kind"] == "ConditionCheck" else (None if new is None else encode_item(new))
            charged += 2.0 * write_charge(raw, new_raw)
            planned.append((skey, raw, new_raw, old, new, bool(action.get("primary"))))
        if any(r is not None for r in reasons):
            service.settle(hosted, UnitKind.WRITE, estimate, charged)
            return orjson.dumps({"ok": {"Cancel": [r or {"Code": "None"} for r in reasons]}})
        service.settle(hosted, UnitKind.WRITE, estimate, charged)
        effects: list[Effect] = []
        for skey, raw, new_raw, _, _, is_primary in planned:
            if single:
                if new_raw != raw:
                    effects.append(Effect(skey, new_raw, raw))
                continue
            meta = orjson.dumps({"p": req["primary"], "all": req["all"]}) if is_primary else primary_meta
            effects.append(Effect(skey, Lock(PREPARED, txn, raw, new_raw, meta).encode(), raw))
        if effects:
            await self._propose(hosted, effects, "the transaction's items may or may not be prepared")
        sizes = [[None if old is None else item_size(old), None if new is None else item_size(new)]
                 for _, _, _, old, new, _ in planned]
        answer: dict[str, Any] = {"Sizes": sizes}
        indexes = self.node.table_indexes.get(hosted.table_id, ()) if req.get("capacity") else ()
        if indexes:
            # What each write consumes on the table's indexes, doubled as a transaction's writes are.
            table_key = data.schema.dynamo()
            answer["Indexes"] = [
                [{name: 2 * units for name, units in charges.items()}
                 for charges in index_write_charges(indexes, table_key, old, new)]
                if action["kind"] != "ConditionCheck" else [{}, {}]
                for (action, _, _), (_, _, _, old, new, _) in zip(located, planned, strict=True)]
        return orjson.dumps({"ok": answer})

    async def _propose(self, hosted: Hosted, effects: list[Effect], what: str) -> None:
        service = self.service
        proposal_id = next(service._effect_ids)
        try:
            future = service.host.propose(hosted.group, service.entry(hosted, proposal_id, effects))
        except NotLeader as exc:
            raise redirect(exc.leader_hint) from None
        except ProposalDropped:
            raise unavailable("too many writes in flight on this partition", not_applied=True) from None
        hosted.data.note_proposed(proposal_id, effects)
        for effect in effects:
            hosted.last_proposal[effect.key] = future
        future.add_done_callback(functools.partial(forget_all, hosted.last_proposal, [e.key for e in effects]))
        await service._wait(future, service.node.node_config.write_timeout_ms, what)

    async def finish(self, hosted: Hosted, req: dict[str, Any]) -> bytes:
        txn = _txn_id(req["txn"])
        decision = req["decision"]
        if decision not in DECISIONS:
            raise ValidationException(f"unknown transaction decision {decision!r}")
        skeys = [self.service._locate(hosted, key) for key in req["keys"]]
        keep = self.service._locate(hosted, req["keep"]) if req.get("keep") is not None else None
        await self.service.leader_ready(hosted)
        states = await self._finish(hosted, txn, skeys, decision, keep=keep, stale_ms=req.get("stale_ms"))
        return orjson.dumps({"ok": {"States": states}})

    async def _finish(self, hosted: Hosted, txn: bytes, skeys: list[bytes], decision: str, *,
                      keep: bytes | None = None, stale_ms: float | None = None) -> list[str]:
        """Apply ``decision`` to the locks ``txn`` holds on ``skeys`` (the leader's barrier passed); each
        item's state afterwards."""
        data = hosted.data
        states: list[str] = []
        effects: list[Effect] = []
        young = stale_ms is not None and self._age_ms(hosted, txn) < stale_ms
        for skey in skeys:
            raw = data.read_latest(skey)
            if not is_lock(raw) or lock_txn(raw) != txn:
                states.append("none")
                continue
            lock = decode_lock(raw)
            new: bytes | None
            if decision == "commit" and (lock.state == PREPARED or keep != skey):
                new = replace(lock, state=COMMITTED).encode() if skey == keep else lock.new
            elif decision == "abort" and lock.state == PREPARED and not young:
                new = lock.old
            elif decision == "cleanup" and lock.state == COMMITTED:
                new = lock.new
            else:
                states.append("prepared" if lock.state == PREPARED else "committed")
                continue
            states.append("committed" if skey == keep else "none")
            if new != raw:
                effects.append(Effect(skey, new, raw))
        if effects:
            await self._propose(hosted, effects, f"the transaction's {decision} may or may not be applied")
        return states

    def _age_ms(self, hosted: Hosted, txn: bytes) -> float:
        seen = hosted.data.lock_seen.get(txn)
        return 0.0 if seen is None else (hosted.data.clock() - seen) * 1000.0

    async def get(self, hosted: Hosted, req: dict[str, Any]) -> bytes:
        """A TransactGetItems' items in this partition, strongly consistent: each item (null: absent) and
        whether an undecided transaction holds it."""
        service = self.service
        skeys = [service._locate(hosted, key) for key in req["keys"]]
        await service._consistent_read_barrier(hosted)
        estimate = len(skeys) * read_units(0, consistent=True, transactional=True)
        service.admit(hosted, UnitKind.READ, estimate, (keycodec.key_hash(skey) for skey in skeys))
        views: list[bytes] = []
        locked: list[bool] = []
        charged = 0.0
        for skey in skeys:
            raw = hosted.data.read_stored(skey)
            held = False
            if is_lock(raw):
                lock = decode_lock(raw)
                held = lock.state == PREPARED
                raw = lock.committed
            locked.append(held)
            size = 0 if raw is None else len(raw)
            charged += read_units(size, consistent=True, transactional=True)
            views.append(b"null" if raw is None else raw)
        service.settle(hosted, UnitKind.READ, estimate, charged)
        return b"".join((b'{"ok":{"Items":[', b",".join(views), b'],"Locked":', orjson.dumps(locked), b"}}"))

    # ---- reading a locked item strongly consistently ---------------------------------------------------

    async def consistent_view(self, hosted: Hosted, skey: bytes) -> bytes | None:
        """The item's bytes for a strongly consistent read while an undecided-looking lock holds it: the
        primary says whether the transaction committed (then its new bytes are the item's)."""
        raw = hosted.data.read_stored(skey)
        if not is_lock(raw):
            return raw
        lock = decode_lock(raw)
        try:
            state = await self._primary_state(hosted, lock, "peek")
        except (TimeoutError, RuntimeError) as exc:
            raise unavailable(f"the transaction holding this item cannot be resolved now: {exc}") from None
        raw = hosted.data.read_stored(skey)
        if not is_lock(raw) or lock_txn(raw) != lock.txn:
            return hosted.data.read_applied(skey)  # finished meanwhile: what it is now
        # Still held: "none" at the primary means aborted (the primary is cleaned only after this item is
        # committed), "prepared" undecided when the primary was asked, after this read began.
        return lock.new if state == "committed" else lock.old

    async def _primary_state(self, hosted: Hosted, lock: Lock, decision: str) -> str:
        """The state of ``lock``'s transaction at its primary item after ``decision`` there (``peek``, or
        ``abort`` if it has been prepared longer than the lock timeout)."""
        primary = orjson.loads(lock.meta)["p"]
        table_id, hash64, key = int(primary["t"]), int(primary["h"]), primary["key"]
        stale_ms = self.node.node_config.txn_lock_timeout_ms if decision == "abort" else None
        data = hosted.data
        if table_id == hosted.table_id and data.covers(hash64) and self.node.is_leader(hosted):
            await self.service.leader_ready(hosted)
            return (await self._finish(hosted, lock.txn, [data.storage_key(key, hash64)], decision,
                                       stale_ms=stale_ms))[0]
        fields: dict[str, Any] = {"op": "TxnFinish", "txn": lock.txn.hex(), "decision": decision, "keys": [key]}
        if stale_ms is not None:
            fields["stale_ms"] = stale_ms
        answer = await self.call_partition(table_id, hash64, fields)
        return str(answer["States"][0])

    # ---- reaching another partition ----------------------------------------------------------------------

    async def call_partition(self, table_id: int, hash64: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Send an ITEM request to the leader of the partition holding ``hash64`` of table ``table_id``,
        following redirects and newer maps; its ``ok`` answer. Raises TimeoutError or RuntimeError."""
        node = self.node
        cfg = node.node_config
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cfg.txn_call_timeout_ms / 1000.0
        pause_s = 0.02
        last = "no attempt"
        while loop.time() < deadline:
            part = node.partition_route(table_id, hash64)
            if part is None:
                last = "no partition of the map holds the key"
                await asyncio.sleep(pause_s)
                pause_s = min(pause_s * 2, 0.5)
                continue
            group, replicas = part
            hint = self._leaders.get(group)
            order = ([hint] if hint in replicas else []) + [r for r in replicas if r != hint]
            for target in order:
                payload = orjson.dumps({"table_id": table_id, "hash": hash64, "map_version": node.map_version,
                                        "consistent": True, "request": {}, **fields})
                try:
                    raw = await self._call(target, group, payload, max(1.0, (deadline - loop.time()) * 1000.0))
                    answer = orjson.loads(raw)
                except (TransportError, TimeoutError, LookupError, orjson.JSONDecodeError) as exc:
                    last = f"{target}: {exc!r}"
                    continue
                if "ok" in answer:
                    self._leaders[group] = target
                    result: dict[str, Any] = answer["ok"]
                    return result
                if "error" in answer:
                    raise RuntimeError(f"{target} answered {answer['error']}")
                last = f"{target}: {answer}"
                leader = answer.get("redirect")
                if leader and leader in replicas:
                    self._leaders[group] = leader
                    break  # start again with the leader first
                if "stale" in answer:
                    break
            await asyncio.sleep(pause_s)
            pause_s = min(pause_s * 2, 0.5)
        raise TimeoutError(f"partition of table {table_id} at hash {hash64}: {last}")

    async def _call(self, target: str, group: str, payload: bytes, timeout_ms: float) -> bytes:
        node = self.node
        if target == node.name:
            if node.partition_for(group) is None:
                raise LookupError(f"{group} is not hosted here")
            answer = self.service.handle(Message(group, Kind.ITEM, payload))
            return answer if isinstance(answer, bytes) else await asyncio.wait_for(answer, timeout_ms / 1000.0)
        raw: bytes = await node.transport.call(target, group, Kind.ITEM, payload, timeout_ms=timeout_ms)
        return raw

    # ---- the sweep: locks left behind -------------------------------------------------------------------

    async def sweep_loop(self) -> None:
        interval_s = self.node.node_config.txn_sweep_interval_ms / 1000.0
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed sweep is retried by the next one
                log.warning("transaction sweep failed", error=repr(exc))

    async def sweep(self) -> int:
        """Start resolving the locks held too long in the partitions this node leads; how many started."""
        node = self.node
        timeout_ms = node.node_config.txn_lock_timeout_ms
        started = 0
        for hosted in list(node.hosted.values()):
            data = hosted.data
            if not data.locks_known and not data.frozen:
                await self._learn_locks(hosted)  # every replica: until then its range reads check every row
            if data.frozen or not node.is_leader(hosted):
                continue
            if not data.locks:
                data.lock_seen.clear()
                continue
            held = set(data.locks.values())
            for txn in [t for t in data.lock_seen if t not in held]:
                del data.lock_seen[txn]
            for txn in held:
                if len(self._resolving) >= MAX_RESOLVING:
                    return started
                if txn in self._resolving or self._age_ms(hosted, txn) < timeout_ms:
                    continue
                task = asyncio.get_running_loop().create_task(self._resolve(hosted, txn))
                self._resolving[txn] = task
                task.add_done_callback(functools.partial(self._resolved, txn))
                started += 1
        return started

    async def stop(self) -> None:
        """Cancel the resolutions under way (the node is stopping: its store is about to close)."""
        tasks = list(self._resolving.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _resolved(self, txn: bytes, task: asyncio.Task[None]) -> None:
        self._resolving.pop(txn, None)
        if not task.cancelled() and task.exception() is not None:
            log.warning("a transaction's locks are not resolved yet", txn=txn.hex(), error=repr(task.exception()))

    async def _learn_locks(self, hosted: Hosted) -> None:
        """Find the locks already in the store (from before a restart, a snapshot or a split), in chunks."""
        data = hosted.data
        epoch = data.locks_epoch
        rng = data.range
        start = rng.start
        while True:
            rows = data.store.scan(start, rng.end, limit=SCAN_CHUNK_ITEMS)
            if data.locks_epoch != epoch or self.node.hosted.get(hosted.partition_id) is not hosted:
                return
            for key, raw in rows:
                if is_lock(raw) and key not in data.locks:
                    data.note_lock(key, lock_txn(raw))
            if len(rows) < SCAN_CHUNK_ITEMS:
                data.locks_known = True
                batch = data.store.batch()
                data.save_locks(batch)
                data.store.write(batch, sync=False)
                return
            start = rows[-1][0] + b"\x00"
            await asyncio.sleep(0)

    async def _resolve(self, hosted: Hosted, txn: bytes) -> None:
        data = hosted.data
        await self.service.leader_ready(hosted)
        locks: dict[bytes, Lock] = {}
        for skey in [key for key, held in data.locks.items() if held == txn]:
            raw = data.read_latest(skey)
            if raw is not None and is_lock(raw) and lock_txn(raw) == txn:
                locks[skey] = decode_lock(raw)
        if not locks:
            return
        primary = next((lock for lock in locks.values() if "all" in orjson.loads(lock.meta)), None)
        if primary is not None and primary.state == COMMITTED:
            await self._finish_everywhere(hosted, txn, list(locks), orjson.loads(primary.meta)["all"])
            return
        # Undecided here: the primary decides (aborting the transaction there if it is stale there too).
        state = await self._primary_state(hosted, next(iter(locks.values())), "abort")
        if state == "prepared":
            return  # not stale at the primary yet: a later sweep asks again
        decision = "commit" if state == "committed" else "abort"
        await self.service.leader_ready(hosted)
        await self._finish(hosted, txn, list(locks), decision)
        self.resolved[decision] += 1
        log.info("transaction lock resolved", txn=txn.hex(), decision=decision, items=len(locks))

    async def _finish_everywhere(self, hosted: Hosted, txn: bytes, skeys: list[bytes], everything: list[Any]) -> None:
        """A stale ``COMMITTED`` primary here: commit the transaction's items in other partitions, then
        this partition's (the primary cleaned up with them, last)."""
        data = hosted.data
        remote: dict[str, list[tuple[int, int, Any]]] = {}
        for table_text, hash_text, key in everything:
            table_id, hash64 = int(table_text), int(hash_text)
            if table_id == hosted.table_id and data.covers(hash64):
                continue
            route = self.node.partition_route(table_id, hash64)
            group = route[0] if route is not None else f"{table_id}:{hash64}"
            remote.setdefault(group, []).append((table_id, hash64, key))
        for entries in remote.values():
            table_id, hash64, _ = entries[0]
            await self.call_partition(table_id, hash64, {"op": "TxnFinish", "txn": txn.hex(), "decision": "commit",
                                                         "keys": [key for _, _, key in entries]})
        await self.service.leader_ready(hosted)
        await self._finish(hosted, txn, skeys, "commit")
        self.resolved["cleanup"] += 1
        log.info("committed transaction finished by its primary", txn=txn.hex(), partitions=len(remote) + 1)


def _txn_id(text: Any) -> bytes:
    txn = bytes.fromhex(str(text))
    if len(txn) != TXN_ID_BYTES:
        raise ValidationException("malformed transaction id")
    return txn
