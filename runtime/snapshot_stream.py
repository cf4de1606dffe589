"""Snapshot transfer: a group's state streamed from the leader's store into a follower's, in chunks.

The Paxos core carries snapshot METADATA only (index, ballot, membership): for a group whose state is an
item range of the store (``StreamedState``), ``Snapshot.data`` stays empty, compaction exports nothing, and
when the core emits a SNAPSHOT message the driver (``runtime.replication.GroupHost``) gives it to
``SnapshotStreams.offer``, which moves the data and only then delivers the core's message. One transfer per
(group, follower) at a time; requests and answers travel as ``KIND_SNAPSHOT`` requests on the transport:

    leader (sender)                                    follower (receiver)
    core emits SNAPSHOT(S, ballot) for F
    take a consistent store view V (applied A >= S);
    hold the group's log compaction at F's match
    BEGIN {id, ballot, index S} ───────────────────▶   refuse if F leads, the ballot is below F's promise or
                                                       the machine takes no streamed state; "not needed" if
                                                       S <= F's commit. Else reset F's replica to empty (log,
                                                       snapshot, applied index dropped, promise kept, no
                                                       bootstrap voters), wipe the item range and write the
                                                       RECEIVING marker: one synced batch. F serves no reads.
    CHUNK {id, seq} + framed records ─(≤ in flight)▶   import into the item range (unsynced), remember
                                                       seq -> (digest, record count)
    FINISH {id, chunks, items, digest} ────────────▶   same chunk set, record count and digest of the chunk
                                                       digests? mark the marker complete (S, ballot), fsync
                                                       (which also makes every chunk durable)
    deliver the core's SNAPSHOT message ───────────▶   the core installs a snapshot only if a complete
                                                       transfer matches it (any other SNAPSHOT that needs an
                                                       install is dropped); the install's batch removes the
                                                       marker with the snapshot's metadata, atomically. F
                                                       then takes the log tail from S + 1 (V may reflect
                                                       A > S: entries are full images, replaying is harmless)

Failures: an error answer, a timeout, a lost connection or a lost leadership ends the transfer; the core
resends SNAPSHOT after ``snapshot_retry_ticks`` and a new transfer starts from scratch (its BEGIN wipes what
the last one wrote). A receiver that crashes mid-transfer restarts with the marker and an empty Paxos state:
it serves no reads and cannot vote until a snapshot is installed (or a full log replay from index 1, which
first clears the range). The leader holds compaction while a transfer runs, and afterwards until the
follower's match passes the hold or ``catchup_hold_ms`` runs out, so the follower finds the log tail after S.
"""

from __future__ import annotations

import asyncio
import math
import struct
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from paxos.replica import Role
from paxos.types import Ballot, Message
from runtime.logs import get_logger

if TYPE_CHECKING:
    from runtime.replication import Group, GroupHost

log = get_logger("snapshots")

KIND_SNAPSHOT = 2  # transport envelope kind of snapshot-transfer requests (proto.kinds.Kind.SNAPSHOT)
_HEADER = struct.Struct(">I")
MAX_REDELIVERIES = 2  # a completed transfer's SNAPSHOT message is resent this often before a new transfer


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """Bounds of snapshot transfers (``runtime.config.Limits.snapshot_*``)."""

    chunk_bytes: int = 512 << 10
    chunks_in_flight: int = 4
    chunk_timeout_ms: int = 10_000
    transfer_timeout_ms: int = 3_600_000
    max_transfers: int = 4
    catchup_hold_ms: int = 60_000

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            assert getattr(self, name) > 0, (name, getattr(self, name))


class StreamedState(Protocol):
    """A state machine whose whole state is a few key ranges of the store's items."""

    def state_spans(self) -> tuple[tuple[bytes, bytes], ...] | None:
        """The store's item keys ``[start, end)`` that hold the state, or None when this replica must not
        send or take a streamed state now (a split parent: its range belongs to its children)."""


Spans = tuple[tuple[bytes, bytes], ...]


def state_spans(machine: Any) -> Spans | None:
    """A ``StreamedState`` machine's spans now; None for any other machine."""
    method = getattr(machine, "state_spans", None)
    if method is None:
        return None
    spans: Spans | None = method()
    return spans


class Caller(Protocol):
    def call(self, peer: str, group: str, kind: int, payload: bytes, timeout_ms: float | None = None
             ) -> Awaitable[bytes]: ...


class TransferFailed(Exception):
    """A transfer ended early; the core's next SNAPSHOT starts a new one."""


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def encode_request(header: dict[str, Any], data: bytes = b"") -> bytes:
    raw = orjson.dumps(header)
    return _HEADER.pack(len(raw)) + raw + data


def decode_request(payload: bytes) -> tuple[dict[str, Any], bytes]:
    (length,) = _HEADER.unpack_from(payload, 0)
    end = _HEADER.size + length
    if end > len(payload):
        raise ValueError("truncated snapshot request")
    header: dict[str, Any] = orjson.loads(payload[_HEADER.size:end])
    return header, payload[end:]


def _ballot(raw: Any) -> Ballot:
    return int(raw[0]), str(raw[1])


def combine(digests: list[bytes]) -> str:
    """The transfer's checksum: a digest of the chunk digests in chunk order."""
    return blake2b(b"".join(digests), digest_size=16).hexdigest()


@dataclass(slots=True)
class Receiving:
    """A follower's incoming transfer (or, after a restart, the marker of one that never completed)."""

    transfer_id: str
    # The voters this replica knew when its state was reset (empty for a learner): it keeps answering
    # elections as one of them, so a group with one replica down and one receiving can still elect a leader.
    # With an empty log it can never win one itself (every replica that compacted refuses its PREPARE).
    voters: tuple[str, ...] = ()
    complete: tuple[int, Ballot] | None = None  # the snapshot (index, ballot) it is complete for
    chunks: dict[int, tuple[bytes, int]] = field(default_factory=dict)  # seq -> (digest, records)

    def marker(self) -> bytes:
        done = None if self.complete is None else [self.complete[0], *self.complete[1]]
        return orjson.dumps({"id": self.transfer_id, "voters": list(self.voters), "complete": done})

    @staticmethod
    def from_marker(raw: bytes) -> Receiving:
        d = orjson.loads(raw)
        done = d.get("complete")
        complete = None if done is None else (int(done[0]), (int(done[1]), str(done[2])))
        return Receiving(str(d["id"]), tuple(d.get("voters", ())), complete)


@dataclass(slots=True)
class _Outgoing:
    task: asyncio.Task[None] | None
    latest: Message  # the newest SNAPSHOT message the core asked to send for this transfer


class SnapshotStreams:
    """Both ends of the snapshot transfers of one process's groups (see the module docstring)."""

    def __init__(self, host: GroupHost, caller: Caller | None, config: StreamConfig) -> None:
        self.host = host
        self.caller = caller
        self.config = config
        self._outgoing: dict[tuple[str, str], _Outgoing] = {}
        # (group, peer) -> (snapshot index, ballot, redeliveries) of the last completed transfer
        self._completed: dict[tuple[str, str], tuple[int, Ballot, int]] = {}
        self._ids = 0
        self.sent_chunks = 0
        self.received_chunks = 0
        self.completed_transfers = 0
        self.failed_transfers = 0

    @property
    def enabled(self) -> bool:
        return self.caller is not None

    # ---- sender ---------------------------------------------------------------------------------------

    def offer(self, group: Group, msg: Message) -> None:
        """The core wants ``msg`` (a SNAPSHOT) sent: stream the state first, unless a transfer to that peer
        is running (it delivers the newest message when done) or has just completed (resend the message)."""
        assert msg.snapshot is not None
        key = (group.name, msg.to)
        snap = msg.snapshot
        running = self._outgoing.get(key)
        if running is not None:
            first = running.latest.snapshot
            assert first is not None
            if (first.index, first.ballot) == (snap.index, snap.ballot):
                running.latest = msg
            return
        done = self._completed.get(key)
        if done is not None and done[:2] == (snap.index, snap.ballot) and done[2] < MAX_REDELIVERIES:
            self._completed[key] = (snap.index, snap.ballot, done[2] + 1)
            self.host.deliver(group, msg)
            return
        self._completed.pop(key, None)
        if self.caller is None or len(self._outgoing) >= self.config.max_transfers:
            return  # the core asks again after snapshot_retry_ticks
        spans = state_spans(group.machine)
        if spans is None:
            return
        out = _Outgoing(None, msg)
        self._outgoing[key] = out
        out.task = asyncio.get_running_loop().create_task(self._send(group, key, out, spans),
                                                          name=f"snapshot-{group.name}-{msg.to}")

    def forget(self, group: str) -> None:
        """The group is no longer hosted here: end its transfers."""
        for key, out in list(self._outgoing.items()):
            if key[0] == group and out.task is not None:
                out.task.cancel()
        for key in [k for k in self._completed if k[0] == group]:
            del self._completed[key]

    async def stop(self) -> None:
        tasks = [out.task for out in self._outgoing.values() if out.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def compaction_floor(self, group: Group) -> int:
        """The highest index the group's log may be compacted to: its applied index, held at the match of
        each follower that is receiving a snapshot or catching up after one."""
        r = group.replica
        index = r.applied
        if not group.holds:
            return index
        now = asyncio.get_running_loop().time()
        for peer, until in list(group.holds.items()):
            pr = r.progress.get(peer) if r.role is Role.LEADER else None
            if until != math.inf and (pr is None or now >= until or pr.match >= r.applied):
                del group.holds[peer]
                continue
            index = min(index, pr.match if pr is not None else group.snapshot_index)
        return index

    def _check_leading(self, group: Group, first: Message) -> None:
        r = group.replica
        if self.host.groups.get(group.name) is not group or r.role is not Role.LEADER or r.promised != first.ballot:
            raise TransferFailed("leadership lost")

    async def _call(self, peer: str, group: str, header: dict[str, Any], data: bytes = b"") -> dict[str, Any]:
        assert self.caller is not None
        raw = await self.caller.call(peer, group, KIND_SNAPSHOT, encode_request(header, data),
                                     timeout_ms=self.config.chunk_timeout_ms)
        answer = orjson.loads(raw)
        if "ok" not in answer:
            raise TransferFailed(str(answer.get("error", answer)))
        ok: dict[str, Any] = answer["ok"]
        return ok

    async def _send(self, group: Group, key: tuple[str, str], out: _Outgoing, spans: Spans) -> None:
        cfg = self.config
        first = out.latest
        snap = first.snapshot
        assert snap is not None
        peer = first.to
        loop = asyncio.get_running_loop()
        started = loop.time()
        group.holds[peer] = math.inf
        self._ids += 1
        transfer_id = f"{self.host.node}.{self._ids}.{self.host.rng.getrandbits(32):08x}"
        view = self.host.store.snapshot()  # the state now: at or after the snapshot's index
        inflight: deque[asyncio.Future[dict[str, Any]]] = deque()
        chunks = items = 0
        try:
            async with asyncio.timeout(cfg.transfer_timeout_ms / 1000.0):
                self._check_leading(group, first)
                begin = {"op": "begin", "id": transfer_id, "ballot": list(first.ballot), "index": snap.index}
                answer = await self._call(peer, group.name, begin)
                if answer.get("needed", True):
                    digests: list[bytes] = []
                    exported = (chunk for start, end in spans
                                for chunk in view.export_counted(start, end, cfg.chunk_bytes))
                    for chunk, count in exported:
                        self._check_leading(group, first)
                        digests.append(blake2b(chunk, digest_size=16).digest())
                        header = {"op": "chunk", "id": transfer_id, "seq": chunks}
                        sent = asyncio.ensure_future(self._call(peer, group.name, header, chunk))
                        sent.add_done_callback(_retrieve)  # failures surface where they are awaited
                        inflight.append(sent)
                        chunks += 1
                        items += count
                        self.sent_chunks += 1
                        while len(inflight) >= cfg.chunks_in_flight:
                            await inflight.popleft()
                    while inflight:
                        await inflight.popleft()
                    self._check_leading(group, first)
                    finish = {"op": "finish", "id": transfer_id, "chunks": chunks, "items": items,
                              "digest": combine(digests), "index": snap.index, "snap_ballot": list(snap.ballot)}
                    await self._call(peer, group.name, finish)
                self._check_leading(group, first)
            self.host.deliver(group, out.latest)
            self._completed[key] = (snap.index, snap.ballot, 0)
            self.completed_transfers += 1
            log.info("snapshot sent", group=group.name, to=peer, index=snap.index, chunks=chunks, items=items,
                     seconds=round(loop.time() - started, 3))
        except asyncio.CancelledError:
            raise
        except AssertionError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure ends this attempt; the core asks again
            self.failed_transfers += 1
            log.warning("snapshot transfer failed", group=group.name, to=peer, index=snap.index, chunks=chunks,
                        error=repr(exc))
        finally:
            for pending in inflight:
                pending.cancel()
            del view  # the store view pins RocksDB's files: let it go now
            if self._outgoing.get(key) is out:
                del self._outgoing[key]
            if group.holds.get(peer) == math.inf:
                group.holds[peer] = loop.time() + cfg.catchup_hold_ms / 1000.0

    # ---- receiver -------------------------------------------------------------------------------------

    def admit(self, group: Group, msg: Message) -> bool:
        """Whether the core may step this SNAPSHOT message: only if installing it needs no data, or a
        complete transfer brought the data for exactly this snapshot."""
        snap = msg.snapshot
        assert snap is not None
        r = group.replica
        if snap.index <= r.commit or r.log.ballot_at(snap.index) == snap.ballot:
            return True
        rec = group.receiving
        return rec is not None and rec.complete == (snap.index, snap.ballot)

    async def on_request(self, sender: str, group_name: str, payload: bytes) -> bytes:
        try:
            header, data = decode_request(payload)
            op = header["op"]
            group = self.host.groups.get(group_name)
            if group is None or not group.streamed or self.host.stopped:
                raise TransferFailed(f"{self.host.node} hosts no streamed replica of {group_name}")
            if op == "begin":
                result = await self._begin(sender, group, header)
            elif op == "chunk":
                result = self._chunk(group, header, data)
            elif op == "finish":
                result = self._finish(group, header)
            else:
                raise TransferFailed(f"unknown snapshot op {op!r}")
        except (TransferFailed, ValueError, KeyError, TypeError, IndexError) as exc:
            return orjson.dumps({"error": str(exc) or repr(exc)})
        return orjson.dumps({"ok": result})

    async def _begin(self, sender: str, group: Group, header: dict[str, Any]) -> dict[str, Any]:
        ballot = _ballot(header["ballot"])
        index = int(header["index"])
        transfer_id = str(header["id"])
        await self.host.quiesce()  # no Ready of ours may be out while the replica is replaced
        if self.host.groups.get(group.name) is not group or self.host.stopped:
            raise TransferFailed("the replica went away")
        r = group.replica
        if r.role is Role.LEADER:
            raise TransferFailed(f"{self.host.node} leads {group.name}")
        if ballot < r.promised:
            raise TransferFailed(f"ballot {ballot} is below the promised {r.promised}")
        if state_spans(group.machine) is None:
            raise TransferFailed(f"{group.name} takes no streamed state here")
        if index <= r.commit and group.receiving is None:
            return {"needed": False}
        m = r.membership
        voters = m.voters if not m.is_joint and self.host.node in m.voters else ()
        self.host.reset_for_transfer(group, Receiving(transfer_id, voters))
        log.info("snapshot transfer started", group=group.name, sender=sender, index=index, id=transfer_id)
        return {"needed": True}

    def _current(self, group: Group, transfer_id: str) -> Receiving:
        rec = group.receiving
        if rec is None or rec.transfer_id != transfer_id:
            raise TransferFailed(f"no transfer {transfer_id} into {group.name} here")
        return rec

    def _chunk(self, group: Group, header: dict[str, Any], data: bytes) -> dict[str, Any]:
        rec = self._current(group, str(header["id"]))
        seq = int(header["seq"])
        if rec.complete is not None:
            raise TransferFailed("the transfer is complete")
        spans = state_spans(group.machine)
        if spans is None:
            raise TransferFailed(f"{group.name} takes no streamed state here")
        if seq not in rec.chunks:
            store = self.host.store
            batch = store.batch()
            count = store.import_chunk(batch, data, spans)
            store.write(batch, sync=False)  # FINISH's synced write makes it durable
            rec.chunks[seq] = (blake2b(data, digest_size=16).digest(), count)
            self.received_chunks += 1
        return {}

    def _finish(self, group: Group, header: dict[str, Any]) -> dict[str, Any]:
        rec = self._current(group, str(header["id"]))
        chunks = int(header["chunks"])
        if set(rec.chunks) != set(range(chunks)):
            raise TransferFailed(f"chunks missing: got {len(rec.chunks)} of {chunks}")
        items = sum(count for _, count in rec.chunks.values())
        digest = combine([rec.chunks[seq][0] for seq in range(chunks)])
        if items != int(header["items"]) or digest != header["digest"]:
            raise TransferFailed(f"checksum mismatch: {items} items, digest {digest}; the sender sent "
                                 f"{header['items']} items, digest {header['digest']}")
        rec.complete = (int(header["index"]), _ballot(header["snap_ballot"]))
        rec.chunks.clear()
        self.host.save_receiving(group, sync=True)
        log.info("snapshot received", group=group.name, index=rec.complete[0], chunks=chunks, items=items)
        return {"items": items}
