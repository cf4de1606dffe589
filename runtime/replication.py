"""The thin asyncio driver of the replication core: many Paxos groups of one process over one store.

For each group it feeds the core what arrives (``step``), the passage of time (``tick``) and proposals, and
does what the core's ``Ready`` asks, in the order the core requires (``paxos`` package docstring):

    send the leaders' early ACCEPTs -> persist snapshot, entries and hard state for EVERY ready group in
    one store batch, fsync once -> send their other messages -> apply committed entries (one batch, no
    fsync: the log is durable and applying is repeatable) -> serve reads -> advance.

Everything that arrives in one event-loop turn is handled before the next round, so one fsync covers many
groups' entries (group commit) and one stream write carries many groups' messages to a peer.

Proposals carry an 8-byte proposal id in front of the application's bytes, so the driver can tell the
proposer when *its* command was applied, even if a new leader re-proposed it in a later ballot.

Snapshots: a group whose machine keeps its state in the store (``StreamedState``, with a ``caller`` for
requests) compacts its log without exporting anything (the snapshot's data stays empty: O(1) in the state's
size), and its snapshots travel as a chunked stream (``runtime.snapshot_stream`` owns that flow). Other
groups (the control plane: small state, ``persist_snapshot_data``) carry their state in the snapshot.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import itertools
import os
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from paxos.errors import LeaseNotReady, NotLeader, PaxosError
from paxos.replica import Replica, Role
from paxos.types import (
    ZERO_BALLOT,
    Config,
    Entry,
    EntryKind,
    HardState,
    Membership,
    Message,
    MessageType,
    Ready,
    Snapshot,
)
from runtime import paxos_codec
from runtime.config import PaxosTiming
from runtime.logs import get_logger
from runtime.snapshot_stream import Caller, Receiving, SnapshotStreams, StreamConfig

log = get_logger("replication")

KIND_PAXOS = 1  # transport envelope kind for Paxos messages
_PROPOSAL_ID = struct.Struct("<Q")
_META_SNAPSHOT = b"snapshot"
_META_APPLIED_BALLOT = b"applied"
_META_RECEIVING = b"receiving"  # a snapshot transfer into this replica began and was not installed yet
_EMPTY_STATE = Snapshot(0, ZERO_BALLOT, Membership(()), b"")


class Indeterminate(PaxosError):
    """The proposal left this leader but it lost leadership before the proposal was applied: the command
    may or may not take effect. The client must treat the outcome as unknown."""


class StateMachine(Protocol):
    """What a group's application provides to the driver."""

    def apply(self, batch: Any, index: int, data: bytes) -> Any:
        """Apply one committed command (written into ``batch``); the result goes to the proposer."""

    def snapshot_data(self) -> bytes:
        """The application's state now (at or after the last applied index; see ``restore``)."""

    def restore(self, batch: Any, snapshot: Snapshot) -> None:
        """Replace the whole state by the snapshot's (its data may reflect a state at or after its index:
        our commands are full images, so replaying the log tail on top of a newer state is harmless)."""

    def on_role(self, role: Role, leader: str) -> None:
        """The replica's role or leader changed."""


class Store(Protocol):  # the parts of storagenode-style stores the driver uses
    def batch(self) -> Any: ...
    def write(self, batch: Any, sync: bool) -> None: ...
    def append_log(self, batch: Any, group: int, entries: Any) -> None: ...
    def log_entries(self, group: int, lo: int, hi: int) -> Any: ...
    def truncate_log(self, group: int, upto: int, batch: Any = None) -> None: ...
    def delete_log_suffix(self, batch: Any, group: int, from_index: int) -> None: ...
    def save_hard_state(self, batch: Any, group: int, state: bytes) -> None: ...
    def load_hard_state(self, group: int) -> bytes | None: ...
    def save_applied_index(self, batch: Any, group: int, index: int) -> None: ...
    def load_applied_index(self, group: int) -> int: ...
    def put_group_meta(self, batch: Any, group: int, name: bytes, value: bytes) -> None: ...
    def get_group_meta(self, group: int, name: bytes) -> bytes | None: ...
    def delete_group_meta(self, batch: Any, group: int, name: bytes) -> None: ...
    def import_chunk(self, batch: Any, chunk: bytes, bounds: Any = None) -> int: ...
    def snapshot(self) -> Any: ...
    def log_bounds(self, group: int) -> tuple[int, int] | None: ...
    def drop_group(self, batch: Any, group: int) -> None: ...


class Sender(Protocol):
    def send(self, peer: str, group: str, kind: int, payload: bytes) -> bool: ...


@dataclass(frozen=True, slots=True)
class DriverConfig:
    tick_ms: int = 50
    election_timeout_ticks: int = 10
    heartbeat_interval_ticks: int = 2
    max_clock_drift: float = 0.05
    max_lease_ticks: int | None = None
    # Compact a group's log once it holds this many applied entries beyond its last snapshot.
    compact_after_entries: int = 5_000
    # Whether snapshot data is persisted with the snapshot (small state machines such as the control
    # plane) or rebuilt from the application's state on restart (partitions: the items are the state).
    persist_snapshot_data: bool = False
    max_entries_per_message: int = 64
    max_bytes_per_message: int = 4 << 20  # entry bytes per ACCEPT: well under the transport's message limit
    max_inflight_messages: int = 32
    eager_commit_news: bool = True
    thrifty: bool = False  # see paxos.types.Config.thrifty
    max_uncommitted_entries: int = 4096
    stream: StreamConfig = field(default_factory=StreamConfig)

    @classmethod
    def from_timing(cls, timing: PaxosTiming, **rest: Any) -> DriverConfig:
        """The cluster config's replication timing (ticks, election, heartbeats, drift, lease), plus ``rest``."""
        return cls(tick_ms=timing.tick_ms, election_timeout_ticks=timing.election_timeout_ticks,
                   heartbeat_interval_ticks=timing.heartbeat_interval_ticks,
                   max_clock_drift=timing.max_clock_drift_ratio, max_lease_ticks=timing.lease_ticks, **rest)

    def paxos_config(self, replica_id: str, voters: tuple[str, ...]) -> Config:
        return Config(
            replica_id=replica_id,
            voters=voters,
            election_timeout_ticks=self.election_timeout_ticks,
            heartbeat_interval_ticks=self.heartbeat_interval_ticks,
            max_clock_drift=self.max_clock_drift,
            max_lease_ticks=self.max_lease_ticks,
            max_entries_per_message=self.max_entries_per_message,
            max_bytes_per_message=self.max_bytes_per_message,
            max_inflight_messages=self.max_inflight_messages,
            eager_commit_news=self.eager_commit_news,
            thrifty=self.thrifty,
            max_uncommitted_entries=self.max_uncommitted_entries,
        )


@dataclass(slots=True)
class Group:
    name: str  # e.g. "p12" or "cp"
    number: int  # the store's numeric id for the group's log and meta
    replica: Replica
    machine: StateMachine
    waiters: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    reads: dict[bytes, asyncio.Future[None]] = field(default_factory=dict)
    read_waits: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)
    role: Role = Role.FOLLOWER
    leader: str = ""
    snapshot_index: int = 0
    # The last log index when this replica was seen to become leader: entries up to it may come from
    # earlier ballots, so the leader decides no write before they are applied (``write_barrier``).
    leader_start_index: int = 0
    # The highest log index in the store: new entries above it are plain puts. Only a follower that
    # truncates a conflicting suffix needs a range delete (RocksDB range tombstones are costly in bulk).
    last_stored_index: int = 0
    # The state lives in the store's item range and snapshots are streamed (``runtime.snapshot_stream``).
    streamed: bool = False
    # A snapshot transfer into this replica (its state is not valid until the snapshot is installed).
    receiving: Receiving | None = None
    # Leader: followers that receive (or just received) a snapshot -> until when (loop time) the log is
    # kept from their match on.
    holds: dict[str, float] = field(default_factory=dict)


class GroupHost:
    """Hosts the replicas of one process. Everything runs on the event loop; nothing here blocks except the
    store's writes (a synced batch is one fsync for all the groups that had something to persist)."""

    def __init__(
        self,
        node: str,
        store: Store,
        sender: Sender,
        config: DriverConfig,
        *,
        rng: random.Random | None = None,
        on_change: Callable[[], None] | None = None,
        caller: Caller | None = None,
    ) -> None:
        """``caller`` (the transport's request/response) enables streamed snapshots for the groups whose
        machine keeps its state in the store (``StreamedState``)."""
        self.node = node
        self.store = store
        self.sender = sender
        self.config = config
        self.groups: dict[str, Group] = {}
        self._rng = rng or random.Random()
        self.streams = SnapshotStreams(self, caller, config.stream)
        self._dirty: set[str] = set()
        self._scheduled = False
        self._proposal_ids = itertools.count(1)
        self._read_ids = itertools.count(1)
        self._tick_task: asyncio.Task[None] | None = None
        # Ticks so far: a replica created now starts its heartbeat phase from here (``Replica(tick_offset)``).
        self.ticks = 0
        self._first_campaigns: dict[str, int] = {}  # group -> ticks left to campaign as its first leader
        # One I/O thread: synced writes leave the event loop, and at most one is in flight.
        self._io = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fsync-{node}")
        self._persisting: asyncio.Future[None] | None = None
        self._stopped = False
        self._on_change = on_change
        self.fsyncs = 0
        self.rounds = 0
        self.sent_paxos: collections.Counter[str] = collections.Counter()  # message type name -> sent

    # ---- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._tick_task is None:
            self._tick_task = asyncio.get_running_loop().create_task(self._tick_loop(), name="paxos-ticks")

    @property
    def rng(self) -> random.Random:
        return self._rng

    @property
    def stopped(self) -> bool:
        return self._stopped

    async def stop(self) -> None:
        self._stopped = True
        await self.streams.stop()
        if self._tick_task is not None:
            self._tick_task.cancel()
            try:
                await self._tick_task
            except asyncio.CancelledError:
                pass
            self._tick_task = None
        if self._persisting is not None:
            # The store must outlive the write in flight (its round finishes before this returns).
            await asyncio.wait([self._persisting])
        self._io.shutdown(wait=True)
        for group in self.groups.values():
            self._fail_waiters(group, Indeterminate("the process is stopping"))

    def add_group(self, name: str, number: int, voters: tuple[str, ...], machine: StateMachine, *,
                  start_index: int = 0, first_leader: bool = False) -> Group:
        """Start (or restart from the store) this node's replica of a group.

        ``voters`` is the bootstrap membership, used only if the store holds nothing for the group; a
        replica that joins an existing group passes ``()`` and waits for a snapshot from the leader.
        ``start_index`` > 0 starts a new group whose log begins after that index, with the machine's
        current state as its snapshot there (a split child: every replica starts from the same state, the
        parent's at its split entry); ignored when the store already holds the group.
        ``first_leader``: this replica should lead a new group. If it never promised a ballot, it campaigns
        now and on each tick until a leader is known (its peers may not host the group yet), for at most an
        election timeout; the others wait for theirs, so the group has a leader within milliseconds instead
        of one to two election timeouts, and on the replica the caller chose.
        """
        assert name not in self.groups, f"group {name} already hosted"
        streamed = self.streams.enabled and callable(getattr(machine, "state_spans", None))
        if start_index > 0 and self.store.load_hard_state(number) is None:
            batch = self.store.batch()
            snap = Snapshot(start_index, ZERO_BALLOT, Membership(voters), b"")
            self.store.put_group_meta(batch, number, _META_SNAPSHOT, paxos_codec.encode_snapshot(snap))
            self.store.save_hard_state(batch, number, paxos_codec.encode_hard_state(HardState(ZERO_BALLOT,
                                                                                             start_index)))
            self.store.save_applied_index(batch, number, start_index)
            self.store.write(batch, sync=True)
        hard_raw = self.store.load_hard_state(number)
        hard_state = paxos_codec.decode_hard_state(hard_raw) if hard_raw is not None else None
        snap_raw = self.store.get_group_meta(number, _META_SNAPSHOT)
        snapshot: Snapshot | None = None
        if snap_raw is not None:
            snapshot = paxos_codec.decode_snapshot(snap_raw)
            if not self.config.persist_snapshot_data and not streamed:
                snapshot = Snapshot(snapshot.index, snapshot.ballot, snapshot.membership, machine.snapshot_data())
        receiving: Receiving | None = None
        marker = self.store.get_group_meta(number, _META_RECEIVING) if streamed else None
        if marker is not None:
            # A transfer into this replica began (its Paxos state was reset then) and was never installed:
            # the items are no state at all. Wait for a snapshot; never bootstrap as a voter.
            receiving = Receiving.from_marker(marker)
            voters = receiving.voters
        first = (snapshot.index if snapshot else 0) + 1
        bounds = self.store.log_bounds(number)
        entries: list[Entry] = []
        if bounds is not None:
            raw_entries = self.store.log_entries(number, first, bounds[1] + 1)
            entries = [paxos_codec.decode_entry(raw) for _, raw in raw_entries]
        applied = self.store.load_applied_index(number)
        floor = snapshot.index if snapshot else 0
        last = entries[-1].index if entries else floor
        commit = hard_state.commit if hard_state else 0
        applied = max(applied, floor)
        # The applied index is written with the applied state; the hard state's commit may lag it.
        if applied > commit:
            hard_state = HardState(hard_state.promised if hard_state else (0, ""), min(applied, last))
        # The bootstrap membership is the configuration at index 0: needed whenever no snapshot supersedes it.
        config = self.config.paxos_config(self.node, voters if snapshot is None else ())
        replica = Replica(
            config,
            self._rng.randint,
            hard_state=hard_state,
            snapshot=snapshot,
            entries=entries,
            applied=min(applied, last),
            tick_offset=self.ticks,
        )
        group = Group(name, number, replica, machine, snapshot_index=floor, last_stored_index=last,
                      streamed=streamed, receiving=receiving)
        self.groups[name] = group
        if first_leader and replica.promised == ZERO_BALLOT:
            self._first_campaigns[name] = config.election_timeout_ticks
            replica.campaign()
        self._mark(name)
        return group

    def remove_group(self, name: str, drop_data: bool) -> None:
        group = self.groups.pop(name, None)
        if group is None:
            return
        self._dirty.discard(name)
        self.streams.forget(name)
        self._fail_waiters(group, NotLeader(""))
        if drop_data:
            batch = self.store.batch()
            self.store.drop_group(batch, group.number)
            self.store.write(batch, sync=False)

    # ---- inputs ---------------------------------------------------------------------------------------

    def on_paxos_message(self, sender: str, group_name: str, payload: bytes) -> None:
        group = self.groups.get(group_name)
        if group is None:
            return  # not (or no longer) ours: the sender learns from the partition map
        try:
            msg = paxos_codec.decode_message(payload)
        except paxos_codec.CodecError:
            log.warning("malformed paxos message dropped", sender=sender, group=group_name)
            return
        if msg.to != self.node or msg.frm != sender:
            return  # misaddressed (for example sent before a restart under another name)
        if msg.type is MessageType.SNAPSHOT and group.streamed and not self.streams.admit(group, msg):
            return  # no transferred data for it here: the leader's driver streams it first
        group.replica.step(msg)
        self._mark(group_name)

    def propose(self, name: str, data: bytes) -> asyncio.Future[Any]:
        """Propose a command; the future resolves with the state machine's result once it is applied.

        Raises NotLeader / ProposalDropped at once; the future fails with Indeterminate if leadership is
        lost before the command is known to be applied.
        """
        group = self._group(name)
        pid = next(self._proposal_ids)
        group.replica.propose(_PROPOSAL_ID.pack(pid) + data)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        group.waiters[pid] = future
        self._mark(name)
        return future

    def propose_replace(self, name: str, old: str, new: str) -> int:
        index = self._group(name).replica.propose_replace(old, new)
        self._mark(name)
        return index

    def can_read_locally(self, name: str) -> bool:
        """True when a strongly consistent read may be served from the applied state right now: this is the
        leader, its lease holds, and everything committed is applied."""
        group = self.groups.get(name)
        if group is None:
            return False
        r = group.replica
        return r.role is Role.LEADER and r.applied >= r.commit and r.lease_remaining_ticks() > 0

    def read_barrier(self, name: str) -> asyncio.Future[None]:
        """Resolves once a strongly consistent read may be served (lease held, state applied to the read
        index). Raises NotLeader / LeaseNotReady at once."""
        group = self._group(name)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.can_read_locally(name):
            future.set_result(None)
            return future
        request_id = _PROPOSAL_ID.pack(next(self._read_ids))
        group.replica.read(request_id)
        group.reads[request_id] = future
        self._mark(name)
        return future

    def write_barrier(self, name: str) -> asyncio.Future[None]:
        """Resolves once this leader may decide writes against its applied state: every entry it holds from
        before its election (other ballots' entries it adopted, its no-op) is applied, so what it decides
        next sees every earlier write; later entries are its own proposals, which the application tracks.
        Raises NotLeader at once; fails with LeaseNotReady if leadership is lost first."""
        group = self._group(name)
        r = group.replica
        if r.role is not Role.LEADER:
            raise NotLeader(r.leader_id)
        if group.role is not Role.LEADER:
            self._check_role(group)  # became leader in this turn: record where its ballot starts
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if r.applied >= group.leader_start_index:
            future.set_result(None)
        else:
            group.read_waits.append((group.leader_start_index, future))
            self._mark(name)
        return future

    def serves_reads(self, name: str) -> bool:
        """False while the replica's state is being replaced by a snapshot transfer (half copied), and for a
        replica that joined and has no state yet (it knows no voters: no snapshot or membership reached it)."""
        group = self.groups.get(name)
        return group is not None and group.receiving is None and bool(group.replica.membership.voters)

    def leader_of(self, name: str) -> str:
        group = self.groups.get(name)
        if group is None:
            return ""
        return group.replica.leader_id if group.replica.role is not Role.LEADER else self.node

    # ---- the loop -------------------------------------------------------------------------------------

    def _group(self, name: str) -> Group:
        group = self.groups.get(name)
        if group is None:
            raise NotLeader("")
        return group

    def _mark(self, name: str) -> None:
        self._dirty.add(name)
        if not self._scheduled:
            self._scheduled = True
            # One more loop turn before the round: the messages and proposals that turn receives join it.
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self._process)

    async def _tick_loop(self) -> None:
        interval = self.config.tick_ms / 1000.0
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if loop.time() - next_at > 5 * interval:
                next_at = loop.time()  # we were paused (SIGSTOP) or starved: do not tick in a burst
            self.ticks += 1
            if self._first_campaigns:
                self._campaign_first_leaders()
            for name, group in self.groups.items():
                group.replica.tick()
                if group.replica.has_ready():
                    self._mark(name)

    def _campaign_first_leaders(self) -> None:
        for name, ticks_left in list(self._first_campaigns.items()):
            group = self.groups.get(name)
            if group is None or ticks_left <= 0 or group.replica.leader_id:
                del self._first_campaigns[name]
                continue
            self._first_campaigns[name] = ticks_left - 1
            if group.replica.role in (Role.FOLLOWER, Role.PRE_CANDIDATE):
                group.replica.campaign()
                self._mark(name)

    def _process(self) -> None:
        """Start a round unless one is persisting: what arrives meanwhile waits for the next round, so one
        fsync covers everything that came in while the previous one ran (group commit)."""
        self._scheduled = False
        if self._stopped:
            return  # the store may be closing: nothing more is persisted, sent or applied
        try:
            while self._dirty and self._persisting is None:
                self._round()
        except Exception:
            log.exception("replication round failed")
            raise

    def _round(self) -> None:
        names = self._dirty
        self._dirty = set()
        readies: list[tuple[Group, Ready]] = []
        for name in names:
            group = self.groups.get(name)
            if group is not None and group.replica.has_ready():
                readies.append((group, group.replica.ready()))
        if not readies:
            return
        self.rounds += 1
        # 0. a leader's ACCEPTs go now, so the followers' fsyncs overlap ours (its own copy counts only once
        # ``advance`` says it is durable, and nothing else leaves before that).
        for group, rd in readies:
            for msg in rd.early_messages:
                self.sender.send(msg.to, group.name, KIND_PAXOS, paxos_codec.encode_message(msg))
                self.sent_paxos[msg.type.name] += 1
        # 1. persist: one batch, at most one fsync, for all groups. An installed snapshot's state and its
        # applied index go into the same atomic batch as its metadata, so a crash never separates them.
        batch = self.store.batch()
        must_sync = False
        for group, rd in readies:
            must_sync |= rd.must_sync
            if rd.snapshot is not None:
                self._persist_snapshot(batch, group, rd.snapshot, install=True)
                if group.streamed:
                    # The transfer put the state in place (``SnapshotStreams.admit`` let only such a snapshot
                    # through); the marker goes in the same batch as the snapshot's metadata.
                    assert group.receiving is not None and group.receiving.complete is not None, group.name
                    self.store.delete_group_meta(batch, group.number, _META_RECEIVING)
                    group.receiving = None
                else:
                    group.machine.restore(batch, rd.snapshot)
                self.store.save_applied_index(batch, group.number, rd.snapshot.index)
            if rd.compaction is not None:
                self._persist_snapshot(batch, group, rd.compaction, install=False)
            if rd.entries:
                new_last = rd.entries[-1].index
                if rd.entries[0].index <= group.last_stored_index and new_last < group.last_stored_index:
                    self.store.delete_log_suffix(batch, group.number, new_last + 1)
                self.store.append_log(
                    batch, group.number, [(e.index, paxos_codec.encode_entry(e)) for e in rd.entries]
                )
                group.last_stored_index = new_last
            if rd.hard_state is not None:
                self.store.save_hard_state(batch, group.number, paxos_codec.encode_hard_state(rd.hard_state))
        if must_sync and len(batch):
            # The fsync runs on the I/O thread; the event loop keeps stepping messages and taking proposals.
            self.fsyncs += 1
            loop = asyncio.get_running_loop()
            persisting = loop.run_in_executor(self._io, self.store.write, batch, True)
            self._persisting = persisting
            persisting.add_done_callback(lambda done: self._persisted(done, readies))
            return
        if len(batch):
            self.store.write(batch, sync=False)
        self._finish_round(readies)

    def _persisted(self, done: asyncio.Future[None], readies: list[tuple[Group, Ready]]) -> None:
        self._persisting = None
        if done.cancelled():
            return  # the event loop is shutting down: nothing of this round was acted on
        if done.exception() is not None:
            # Nothing acknowledged may rest on a write that failed: stop the process, loudly.
            log.critical("persisting the replication log failed; stopping", error=repr(done.exception()))
            os._exit(70)
        self._finish_round(readies)
        if self._dirty and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._process)

    def _finish_round(self, readies: list[tuple[Group, Ready]]) -> None:
        # Groups removed while their Ready was persisting are done with.
        readies = [(g, rd) for g, rd in readies if self.groups.get(g.name) is g]
        # 2. send
        for group, rd in readies:
            for msg in rd.messages:
                if msg.type is MessageType.SNAPSHOT and group.streamed:
                    self.streams.offer(group, msg)  # data first, then this message
                else:
                    self.sender.send(msg.to, group.name, KIND_PAXOS, paxos_codec.encode_message(msg))
                self.sent_paxos[msg.type.name] += 1
        # 3. apply
        apply_batch = self.store.batch()
        results: list[tuple[Group, int, Any]] = []
        for group, rd in readies:
            if not rd.committed_entries:
                continue
            if group.receiving is not None:
                # A replica reset for a transfer replays the whole log instead (the leader never compacted):
                # from an empty state, then the marker goes.
                assert rd.committed_entries[0].index == 1, (group.name, rd.committed_entries[0].index)
                group.machine.restore(apply_batch, _EMPTY_STATE)
                self.store.delete_group_meta(apply_batch, group.number, _META_RECEIVING)
                group.receiving = None
            for entry in rd.committed_entries:
                if entry.kind is EntryKind.NORMAL:
                    (pid,) = _PROPOSAL_ID.unpack_from(entry.data, 0)
                    try:
                        result = group.machine.apply(apply_batch, entry.index, entry.data[_PROPOSAL_ID.size :])
                    except Exception as exc:  # an application bug: the proposer learns, the group goes on
                        log.exception("apply failed", group=group.name, index=entry.index)
                        result = exc
                    results.append((group, pid, result))
                else:
                    group.machine.apply(apply_batch, entry.index, b"")
            self.store.save_applied_index(apply_batch, group.number, rd.committed_entries[-1].index)
        if len(apply_batch):
            self.store.write(apply_batch, sync=False)
        for group, pid, result in results:
            waiter = group.waiters.pop(pid, None)
            if waiter is not None and not waiter.done():
                if isinstance(result, BaseException):
                    waiter.set_exception(result)
                else:
                    waiter.set_result(result)
        # 4. reads, 5. advance, role changes
        for group, rd in readies:
            group.replica.advance(rd)
            for state in rd.read_states:
                future = group.reads.pop(state.request_id, None)
                if future is not None:
                    group.read_waits.append((state.index, future))
            if group.read_waits:
                applied = group.replica.applied
                still: list[tuple[int, asyncio.Future[None]]] = []
                for index, future in group.read_waits:
                    if index <= applied:
                        if not future.done():
                            future.set_result(None)
                    else:
                        still.append((index, future))
                group.read_waits = still
            self._check_role(group)
            self._maybe_compact(group)
            if group.replica.has_ready():
                self._dirty.add(group.name)

    def _persist_snapshot(self, batch: Any, group: Group, snap: Snapshot, *, install: bool) -> None:
        stored = snap if self.config.persist_snapshot_data else Snapshot(snap.index, snap.ballot, snap.membership, b"")
        self.store.put_group_meta(batch, group.number, _META_SNAPSHOT, paxos_codec.encode_snapshot(stored))
        if install:
            self.store.delete_log_suffix(batch, group.number, 0)
            group.last_stored_index = snap.index
        else:
            self.store.truncate_log(group.number, snap.index, batch)
        group.snapshot_index = snap.index

    def _check_role(self, group: Group) -> None:
        r = group.replica
        leader = self.node if r.role is Role.LEADER else r.leader_id
        if r.role is group.role and leader == group.leader:
            return
        was_leader = group.role is Role.LEADER
        if r.role is Role.LEADER and not was_leader:
            group.leader_start_index = r.log.last_index
        group.role = r.role
        group.leader = leader
        if was_leader and r.role is not Role.LEADER:
            self._fail_waiters(group, Indeterminate("leadership lost before the write was applied"))
        group.machine.on_role(r.role, leader)
        if self._on_change is not None:
            self._on_change()

    def _fail_waiters(self, group: Group, exc: Exception) -> None:
        for future in group.waiters.values():
            if not future.done():
                future.set_exception(exc)
        group.waiters.clear()
        for future in group.reads.values():
            if not future.done():
                future.set_exception(LeaseNotReady("leadership changed"))
        group.reads.clear()
        for _, future in group.read_waits:
            if not future.done():
                future.set_exception(LeaseNotReady("leadership changed"))
        group.read_waits.clear()

    def _maybe_compact(self, group: Group) -> None:
        r = group.replica
        if r.applied - group.snapshot_index < self.config.compact_after_entries:
            return
        index = self.streams.compaction_floor(group)
        if index - group.snapshot_index < self.config.compact_after_entries:
            return
        # A streamed group's state is its item range: the snapshot is metadata only, O(1) to take.
        r.compact(index, b"" if group.streamed else group.machine.snapshot_data())
        group.snapshot_index = index
        self._dirty.add(group.name)

    # ---- snapshot transfers (``runtime.snapshot_stream`` drives these) -----------------------------------

    def deliver(self, group: Group, msg: Message) -> None:
        """Send a core message that waited for its snapshot's data to be transferred."""
        if self.groups.get(group.name) is group and not self._stopped:
            self.sender.send(msg.to, group.name, KIND_PAXOS, paxos_codec.encode_message(msg))

    async def quiesce(self) -> None:
        """Wait until no Ready is out (no synced round in flight)."""
        while self._persisting is not None:
            await asyncio.wait([self._persisting])

    def reset_for_transfer(self, group: Group, receiving: Receiving) -> None:
        """Make the replica empty before a transfer replaces its state: log, snapshot and applied index go,
        the promise stays, the item range is wiped, and the marker says the state is not valid. One synced
        batch, so a crash leaves either the old replica or an empty one that waits for a snapshot.
        Called with no Ready out (``quiesce``)."""
        assert self._persisting is None and group.streamed
        promised = group.replica.promised
        batch = self.store.batch()
        self.store.delete_log_suffix(batch, group.number, 0)
        self.store.delete_group_meta(batch, group.number, _META_SNAPSHOT)
        self.store.save_hard_state(batch, group.number, paxos_codec.encode_hard_state(HardState(promised, 0)))
        self.store.save_applied_index(batch, group.number, 0)
        self.store.put_group_meta(batch, group.number, _META_RECEIVING, receiving.marker())
        group.machine.restore(batch, _EMPTY_STATE)
        self.store.write(batch, sync=True)
        # The snapshot brings the membership; until then the voters known before (see ``Receiving.voters``).
        group.replica = Replica(self.config.paxos_config(self.node, receiving.voters), self._rng.randint,
                                hard_state=HardState(promised, 0), tick_offset=self.ticks)
        group.snapshot_index = group.last_stored_index = 0
        group.receiving = receiving
        group.holds.clear()
        self._fail_waiters(group, NotLeader(""))
        self._check_role(group)
        self._mark(group.name)

    def save_receiving(self, group: Group, *, sync: bool) -> None:
        assert group.receiving is not None
        batch = self.store.batch()
        self.store.put_group_meta(batch, group.number, _META_RECEIVING, group.receiving.marker())
        self.store.write(batch, sync=sync)

    # ---- status -----------------------------------------------------------------------------------------

    def describe(self, name: str) -> dict[str, Any]:
        group = self.groups[name]
        r = group.replica
        m: Membership = r.membership
        return {
            "group": name,
            "role": r.role.name.lower(),
            "leader": self.leader_of(name),
            "ballot": r.promised[0],
            "commit_index": r.commit,
            "applied_index": r.applied,
            "last_index": r.log.last_index,
            "voters": list(m.voters),
            "learners": list(m.learners),
            "outgoing": list(m.outgoing),
            "lease_ticks": r.lease_remaining_ticks(),
            "receiving": group.receiving is not None,
        }
