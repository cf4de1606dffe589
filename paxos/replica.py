"""One replica of a Multi-Paxos group, as a pure state machine (the shape of etcd-io/raft's raft.go).

Protocol, in Paxos terms:
- Phase 1: a candidate that passed the pre-vote picks ballot (round + 1, id), promises it to itself and
  sends PREPARE(ballot, its commit index c). An acceptor that has not promised a higher ballot (and does
  not still hear a leader, see leases) promises and answers with its log suffix after c and its last
  (ballot, index). With promises from a quorum the candidate ADOPTS the suffix of the highest
  (last ballot, last index) log among them: Paxos's "adopt the highest-ballot accepted value", taken per
  log suffix so that logs stay prefix-consistent (Raft's log matching). That log holds every chosen entry
  (the argument of Raft's leader completeness), so the new leader never overwrites a chosen value.
- Phase 2: the leader appends a NOOP in its ballot and streams ACCEPTs (prev index/ballot check, as Raft's
  AppendEntries). An entry is chosen when a quorum has it durably; like Raft, the leader commits by counting
  only entries of its own ballot (earlier ones commit with them).
- Membership: CONFIG entries take effect when appended; a replacement goes learner -> joint -> final.
- Leases: see ``read``. Pre-vote and check-quorum keep a flaky replica from deposing a healthy leader.

Nothing here does I/O or reads a clock or a random source; see the package docstring for the driver loop.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable

from paxos import quorum
from paxos.errors import ConfigChangeRejected, LeaseNotReady, NotLeader, ProposalDropped
from paxos.log import Log
from paxos.types import (
    ZERO_BALLOT,
    Ballot,
    Config,
    Entry,
    EntryKind,
    HardState,
    Membership,
    Message,
    MessageType,
    ReadState,
    Ready,
    Snapshot,
    Status,
)

# rng(lo, hi) returns an int in [lo, hi], both inclusive (random.Random.randint fits).
Rng = Callable[[int, int], int]

_NEVER = -(1 << 62)
_NO_PEERS: frozenset[str] = frozenset()


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class ProgressState(enum.Enum):
    PROBE = 0  # one ACCEPT at a time until the follower's match is found
    REPLICATE = 1  # pipelined ACCEPTs, up to max_inflight_messages
    SNAPSHOT = 2  # a snapshot is on its way; wait for its acknowledgement


class Progress:
    """The leader's view of one peer."""

    __slots__ = ("match", "next", "state", "inflight", "probe_sent", "recent_active", "ack_tick",
                 "progress_tick", "sent_commit", "pending_snapshot", "waiting_since")

    def __init__(self, next_index: int, now: int) -> None:
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.inflight: deque[int] = deque()  # last index of each ACCEPT in flight
        self.probe_sent = False
        self.recent_active = False
        self.ack_tick = _NEVER  # latest leader tick whose message this peer acknowledged (leases)
        self.progress_tick = now  # when match last advanced or the state last changed
        self.sent_commit = 0
        self.pending_snapshot = 0
        self.waiting_since = now  # when the oldest ACCEPT in flight went (or was last partly answered)

    def become_probe(self, next_index: int, now: int) -> None:
        self.state = ProgressState.PROBE
        self.next = max(next_index, self.match + 1)
        self.inflight.clear()
        self.probe_sent = False
        self.progress_tick = now

    def become_replicate(self, now: int) -> None:
        self.state = ProgressState.REPLICATE
        self.next = self.match + 1
        self.inflight.clear()
        self.progress_tick = now


class Replica:
    """State of one replica. Drive it with ``step``, ``tick``, ``propose``, ``read``; drain ``ready``."""

    def __init__(
        self,
        config: Config,
        rng: Rng,
        hard_state: HardState | None = None,
        snapshot: Snapshot | None = None,
        entries: Iterable[Entry] = (),
        applied: int | None = None,
        tick_offset: int = 0,
    ) -> None:
        """Start fresh (no persisted state) or restart from what storage holds: the last persisted
        HardState, the last persisted snapshot and the persisted entries after it. ``applied`` is the
        index the application's state already reflects (default: the snapshot's index).

        ``tick_offset``: the driver's tick count when this replica is created. A leader heartbeats on the
        driver's ticks that are multiples of ``heartbeat_interval_ticks``, so the heartbeats of all the groups
        a driver leads leave in the same turn and share one message batch per peer (and their answers one
        batch back), where per-group phases spread them over every tick."""
        self.cfg = config
        self.id = config.replica_id
        self._rng = rng
        hs = hard_state or HardState()
        if snapshot is not None:
            self.log = Log(snapshot.index, snapshot.ballot, list(entries))
            self._configs: list[tuple[int, Membership]] = [(snapshot.index, snapshot.membership)]
        else:
            self.log = Log(0, ZERO_BALLOT, list(entries))
            self._configs = [(0, Membership(config.voters))]
        self._scan_configs(self.log.offset + 1)
        self.snapshot = snapshot
        self.promised: Ballot = hs.promised
        self.commit = max(hs.commit, self.log.offset)
        assert self.commit <= self.log.last_index, f"persisted commit {self.commit} beyond the log"
        self.applied = self.log.offset if applied is None else applied
        assert self.log.offset <= self.applied <= self.commit, "applied index outside the snapshot..commit"
        self.role = Role.FOLLOWER
        self.leader_id = ""
        self.now = 0
        self._tick_offset = tick_offset
        self._election_elapsed = 0
        self._randomized_timeout = 0
        self._reset_randomized_timeout()
        # Treat boot as having just heard a leader: a replica that acknowledged a leader's heartbeat and then
        # crashed must not promise another ballot before that leader's lease has surely run out. One that never
        # promised a ballot never acknowledged a leader (following one persists its ballot first), so a new
        # group can elect its first leader at once.
        never_promised = hs.promised == ZERO_BALLOT
        self._last_leader_contact = -config.election_timeout_ticks if never_promised else 0
        self._msgs: list[Message] = []
        self._read_states: list[ReadState] = []
        self._pending_install: Snapshot | None = None
        self._pending_compaction: Snapshot | None = None
        self._prev_hs = HardState(self.promised, self.commit)
        self._ready_out = False
        # leader state
        self.progress: dict[str, Progress] = {}
        self._ballot_start_index = 0
        self._pending_conf_index = 0
        self._lease_ready_tick = 0
        self._broadcast_pending = False
        self._quick: tuple[str, ...] = ()  # thrifty: the followers that get new entries at once
        # candidate state
        self._pre_ballot: Ballot = ZERO_BALLOT
        self._granted: set[str] = set()
        self._rejected: set[str] = set()
        self._asked: set[str] = set()
        self._max_round_seen = self.promised[0]
        self._cand_base = 0
        self._best: tuple[tuple[Ballot, int], str, tuple[Entry, ...]] = ((ZERO_BALLOT, 0), "", ())

    # ------------------------------------------------------------------ public API

    @property
    def membership(self) -> Membership:
        """The latest configuration in this replica's log (committed or not), as Raft uses it."""
        return self._configs[-1][1]

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    def tick(self) -> None:
        self.now += 1
        if self.role is Role.LEADER:
            self._tick_leader()
        else:
            self._tick_election()

    def campaign(self) -> None:
        """Start an election now (pre-vote first), as etcd's MsgHup. Ignored while this replica still
        owes a leader its promise (``_in_lease``): campaigning then could end a lease early."""
        if self.role is not Role.LEADER and self._promotable() and not self._in_lease():
            self._become_pre_candidate()

    def propose(self, data: bytes) -> int:
        """Append a command; returns its index i (its ballot is ``self.promised``). Entries keep the ballot
        they were proposed in, so the proposal succeeded iff the committed entry at i carries that ballot;
        if another one commits at i, it failed. After losing leadership it may still commit, or not."""
        self._check_proposal()
        index = self.log.last_index + 1
        self.log.append(Entry(index, self.promised, EntryKind.NORMAL, data))
        self._broadcast_pending = True
        return index

    def propose_replace(self, old_id: str, new_id: str) -> int:
        """Start replacing voter ``old_id`` by the (empty or lagging) replica ``new_id``. The new replica
        first joins as a learner; once it is within catchup_slack_entries of the log the leader commits a
        joint configuration and then the final one. Returns the index of the first CONFIG entry.
        While the learner is still catching up, another call may redirect the replacement (say, to another
        new replica because the chosen one died): learners never count, so swapping them is safe."""
        self._check_proposal()
        m = self.membership
        if self._configs[-1][0] > self.commit or self._pending_conf_index > self.commit or m.is_joint:
            raise ConfigChangeRejected("a membership change is already in progress")
        if m.learners and (old_id, new_id) == (m.replacing, m.learners[0]):
            raise ConfigChangeRejected(f"{new_id} is already catching up to replace {old_id}")
        if old_id not in m.voters:
            raise ConfigChangeRejected(f"{old_id} is not a voter")
        if new_id in m.voters or new_id in m.outgoing or not new_id or "," in new_id or ";" in new_id:
            raise ConfigChangeRejected(f"{new_id!r} cannot join")
        return self._append_config(Membership(m.voters, learners=(new_id,), replacing=old_id))

    def read(self, request_id: bytes) -> None:
        """Ask for a strongly consistent read. The leader serves it locally under its lease: the next
        Ready carries ReadState(request_id, commit index); serve it once that index is applied.

        The lease: the leader's tick when it SENT an ACCEPT or HEARTBEAT that a quorum acknowledged,
        plus ``lease_ticks`` (shorter than the election timeout, shrunk by the clock-drift bound). Followers
        promise no other ballot for election_timeout ticks after hearing the leader, and a replica boots
        with that promise in force. A new leader serves no lease read before it has committed an entry of
        its own ballot and ``lease_wait_ticks`` have passed since its election. We do no read-index round:
        without a lease the read is refused (LeaseNotReady) and the caller retries."""
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader_id)
        if not self._lease_valid():
            raise LeaseNotReady("leader lease not valid yet")
        self._read_states.append(ReadState(request_id, self.commit))

    def lease_remaining_ticks(self) -> int:
        """Ticks the current lease still holds (0 if not leader or no lease)."""
        if self.role is not Role.LEADER or not self._lease_valid():
            return 0
        return self._lease_start() + self.cfg.lease_ticks - self.now

    def status(self) -> Status:
        return Status(
            replica_id=self.id, group=self.cfg.group, role=self.role.value, leader_id=self.leader_id,
            ballot=self.promised, commit=self.commit, applied=self.applied, last_index=self.log.last_index,
            snapshot_index=self.log.offset, membership=self.membership,
            lease_remaining_ticks=self.lease_remaining_ticks(),
            progress=tuple((peer, pr.match) for peer, pr in self.progress.items()),
        )

    def compact(self, index: int, snapshot_data: bytes) -> None:
        """The application has applied up to ``index`` and saved its state as ``snapshot_data``: the log
        before it may go. The next Ready's ``compaction`` tells the driver to persist it and truncate."""
        assert index <= self.applied, f"compact({index}) beyond applied {self.applied}"
        if index <= self.log.offset:
            return
        ballot = self.log.ballot_at(index)
        assert ballot is not None
        snap = Snapshot(index, ballot, self._membership_at(index), snapshot_data)
        self.log.compact(index)
        while len(self._configs) > 1 and self._configs[1][0] <= index:
            self._configs.pop(0)
        self.snapshot = snap
        self._pending_compaction = snap

    def step(self, msg: Message) -> None:
        t = msg.type
        if t is MessageType.PRE_PREPARE:
            self._handle_pre_prepare(msg)
        elif t is MessageType.PREPARE:
            self._handle_prepare(msg)
        elif t is MessageType.ACCEPT or t is MessageType.HEARTBEAT or t is MessageType.SNAPSHOT:
            if msg.ballot < self.promised:
                self._reject_stale_leader(msg)
                return
            assert msg.ballot != self.promised or self.role is not Role.LEADER, "two leaders in one ballot"
            if msg.ballot > self.promised or self.role is not Role.FOLLOWER or self.leader_id != msg.frm:
                self._become_follower(msg.ballot, msg.frm)
            self._election_elapsed = 0
            self._last_leader_contact = self.now
            self._step_follower(msg)
        else:  # replies: PRE_PROMISE/PROMISE echo the ballot asked about; ACCEPTED/HEARTBEAT_REPLY may
            # instead report the higher ballot the sender promised, which ends our leadership.
            if msg.ballot > self.promised and (t is MessageType.ACCEPTED or t is MessageType.HEARTBEAT_REPLY):
                self._become_follower(msg.ballot, "")
                return
            if self.role is Role.LEADER:
                self._step_leader(msg)
            elif self.role is Role.CANDIDATE or self.role is Role.PRE_CANDIDATE:
                self._step_candidate(msg)

    def has_ready(self) -> bool:
        return bool(
            self._msgs
            or self._read_states
            or self._broadcast_pending
            or self._pending_install is not None
            or self._pending_compaction is not None
            or self.log.unstable_from <= self.log.last_index
            or self.applied < self.commit
            or self._prev_hs.promised != self.promised
            or self._prev_hs.commit != self.commit
        )

    def ready(self) -> Ready:
        assert not self._ready_out, "ready() called again before advance()"
        if self._broadcast_pending:
            self._broadcast_pending = False
            self._broadcast()
        hs = HardState(self.promised, self.commit)
        hard_state = hs if hs != self._prev_hs else None
        entries = self.log.unstable()
        committed: tuple[Entry, ...] = ()
        if self.applied < self.commit:
            hi = min(self.commit, self.applied + self.cfg.max_committed_entries_per_ready)
            committed = tuple(self.log.slice(self.applied + 1, hi + 1))
        must_sync = self._must_sync(entries, hard_state)
        early, late = self._split_early(self._msgs)
        rd = Ready(
            hard_state=hard_state,
            entries=entries,
            snapshot=self._pending_install,
            compaction=self._pending_compaction,
            messages=late,
            committed_entries=committed,
            read_states=tuple(self._read_states),
            must_sync=must_sync,
            early_messages=early,
        )
        self._msgs = []
        self._read_states = []
        self._pending_install = None
        self._pending_compaction = None
        self._ready_out = True
        return rd

    def advance(self, rd: Ready) -> None:
        """The driver has persisted, sent and applied ``rd``."""
        assert self._ready_out, "advance() without ready()"
        self._ready_out = False
        if rd.hard_state is not None:
            self._prev_hs = rd.hard_state
        if rd.entries:
            last = rd.entries[-1]
            self.log.stable_to(last.index, last.ballot)
            if self.role is Role.LEADER:
                self._maybe_commit()
        if rd.committed_entries:
            self.applied = max(self.applied, rd.committed_entries[-1].index)

    # ------------------------------------------------------------------ hooks (the simulator's broken variants override these)

    def _split_early(self, msgs: list[Message]) -> tuple[tuple[Message, ...], tuple[Message, ...]]:
        """(messages the driver may send before persisting, the rest). A leader's ACCEPTs vouch for nothing
        of its own: it counts its copy of their entries through ``log.stable_index``, which only
        ``advance`` moves, and its ballot was made durable before the PREPAREs that won it went out."""
        if self.role is not Role.LEADER:
            return (), tuple(msgs)
        early = tuple(m for m in msgs if m.type is MessageType.ACCEPT)
        if not early:
            return (), tuple(msgs)
        return early, tuple(m for m in msgs if m.type is not MessageType.ACCEPT)

    def _must_sync(self, entries: tuple[Entry, ...], hard_state: HardState | None) -> bool:
        return bool(entries) or self._pending_install is not None or (
            hard_state is not None and hard_state.promised != self._prev_hs.promised
        )

    def _adopt(self, best_entries: tuple[Entry, ...], best_from: str) -> None:
        if best_from != self.id:
            assert best_entries, "a better log than ours must extend past our commit index"
            conflict = self.log.append_from(best_entries)
            if conflict:
                self._truncate_configs(conflict)
                self._scan_configs(conflict)

    def _lease_valid(self) -> bool:
        return (
            self.commit >= self._ballot_start_index
            and self.now >= self._lease_ready_tick
            and self.now < self._lease_start() + self.cfg.lease_ticks
        )

    def _quorum_index(self, acked: dict[str, int]) -> int:
        return quorum.committed_index(self.membership, acked)

    # ------------------------------------------------------------------ roles

    def _become_follower(self, ballot: Ballot, leader: str) -> None:
        assert ballot >= self.promised, f"follow {ballot} below promised {self.promised}"
        if self.role is Role.LEADER:
            # Our lease may still be believed by nobody, but keep the promise of a leader: no vote for a while.
            self._last_leader_contact = self.now
        self.role = Role.FOLLOWER
        self.promised = ballot
        self._max_round_seen = max(self._max_round_seen, ballot[0])
        self.leader_id = leader
        self.progress = {}
        self._election_elapsed = 0
        self._reset_randomized_timeout()

    def _become_pre_candidate(self) -> None:
        assert self.role is not Role.LEADER
        self.role = Role.PRE_CANDIDATE
        self.leader_id = ""
        self._election_elapsed = 0
        self._reset_randomized_timeout()
        self._pre_ballot = (max(self.promised[0], self._max_round_seen) + 1, self.id)
        self._granted = {self.id}
        self._rejected = set()
        m = self.membership
        for peer in sorted(set(m.voters) | set(m.outgoing)):
            if peer != self.id:
                self._send(MessageType.PRE_PREPARE, peer, ballot=self._pre_ballot, commit=self.commit)
        if quorum.vote_result(m, self._granted, self._rejected) is quorum.VoteResult.WON:
            self._become_candidate()

    def _become_candidate(self) -> None:
        assert self.role is not Role.LEADER
        self.role = Role.CANDIDATE
        self.leader_id = ""
        self._election_elapsed = 0
        self._reset_randomized_timeout()
        self.promised = (max(self.promised[0], self._max_round_seen) + 1, self.id)
        self._max_round_seen = self.promised[0]
        self._cand_base = self.commit
        self._best = ((self.log.last_ballot, self.log.last_index), self.id, ())
        self._granted = {self.id}
        self._rejected = set()
        self._asked = {self.id}
        self._ask_for_promises()
        self._check_election()

    def _become_leader(self) -> None:
        assert self.role is Role.CANDIDATE
        (best_ballot, _), best_from, best_entries = self._best
        self._adopt(best_entries, best_from)
        self.role = Role.LEADER
        self.leader_id = self.id
        noop = Entry(self.log.last_index + 1, self.promised, EntryKind.NOOP, b"")
        self.progress = {}
        self._quick = ()
        self._sync_progress(next_index=noop.index)
        self.log.append(noop)
        self._ballot_start_index = noop.index
        self._pending_conf_index = noop.index  # no membership change before our own first entry commits
        # A new leader waits out any lease an earlier leader may still hold. None can, when no replica that
        # promised us holds an entry of any ballot: a lease needs its leader's first entry committed, and a
        # committed entry is in every quorum of promises. So a group's first leader reads at once.
        never_led = best_ballot == ZERO_BALLOT
        self._lease_ready_tick = self.now if never_led else self.now + self.cfg.lease_wait_ticks
        self._election_elapsed = 0
        self._broadcast_pending = True

    # ------------------------------------------------------------------ ticks

    def _tick_election(self) -> None:
        self._election_elapsed += 1
        if self._election_elapsed >= self._randomized_timeout:
            if self._promotable():
                self._become_pre_candidate()
            else:
                self._election_elapsed = 0

    def _tick_leader(self) -> None:
        self._election_elapsed += 1
        if self._election_elapsed >= self.cfg.election_timeout_ticks:
            self._election_elapsed = 0
            if self.cfg.check_quorum:
                active = {self.id}
                for peer, pr in self.progress.items():
                    if pr.recent_active:
                        active.add(peer)
                    pr.recent_active = False
                if not quorum.has_quorum(self.membership, active):
                    self._become_follower(self.promised, "")
                    return
        last = self.log.last_index
        for peer in self._lazy_peers():
            pr = self.progress[peer]
            if pr.next <= last:
                self._send_accept(peer, pr)  # what piled up since the last tick, in one ACCEPT
        if (self.now + self._tick_offset) % self.cfg.heartbeat_interval_ticks == 0:
            for peer in self.progress:
                self._send_heartbeat(peer)
        elif not self.cfg.eager_commit_news:
            self._send_commit_news()

    # ------------------------------------------------------------------ phase 1

    def _in_lease(self) -> bool:
        """True while we must not promise another ballot: we lead, or heard a leader recently."""
        if self.role is Role.LEADER:
            return True
        return self.now - self._last_leader_contact < self.cfg.election_timeout_ticks

    def _handle_pre_prepare(self, msg: Message) -> None:
        # A replica our configuration does not list (typically one removed while it was away) gets no
        # pre-vote, so it cannot disrupt the group; the real PREPARE has no such check (liveness first).
        grant = (msg.ballot > self.promised and not self._in_lease() and msg.commit >= self.log.offset
                 and self.membership.can_vote(msg.frm))
        self._send(MessageType.PRE_PROMISE, msg.frm, ballot=msg.ballot, reject=not grant, hint=self.promised[0])

    def _handle_prepare(self, msg: Message) -> None:
        repeat = msg.ballot == self.promised and self.role is Role.FOLLOWER and self.leader_id == ""
        fresh = msg.ballot > self.promised and not self._in_lease()
        if not (repeat or fresh) or msg.commit < self.log.offset:
            self._max_round_seen = max(self._max_round_seen, msg.ballot[0])
            self._send(MessageType.PROMISE, msg.frm, ballot=msg.ballot, reject=True, hint=self.promised[0])
            return
        if fresh:
            self._become_follower(msg.ballot, "")
        lo = msg.commit + 1
        suffix = tuple(self.log.slice(lo, self.log.last_index + 1)) if lo <= self.log.last_index else ()
        self._send(MessageType.PROMISE, msg.frm, ballot=msg.ballot, index=self.log.last_index,
                   log_ballot=self.log.last_ballot, entries=suffix, commit=self.commit)

    def _step_candidate(self, msg: Message) -> None:
        if self.role is Role.PRE_CANDIDATE:
            if msg.type is not MessageType.PRE_PROMISE or msg.ballot != self._pre_ballot:
                return
            (self._rejected if msg.reject else self._granted).add(msg.frm)
            self._max_round_seen = max(self._max_round_seen, msg.hint)
            result = quorum.vote_result(self.membership, self._granted, self._rejected)
            if result is quorum.VoteResult.WON:
                self._become_candidate()
            elif result is quorum.VoteResult.LOST:
                self._become_follower(self.promised, "")
            return
        if msg.type is not MessageType.PROMISE or msg.ballot != self.promised:
            return
        if msg.reject:
            self._rejected.add(msg.frm)
            self._max_round_seen = max(self._max_round_seen, msg.hint)
        else:
            self._granted.add(msg.frm)
            self._rejected.discard(msg.frm)
            assert not msg.entries or msg.entries[0].index == self._cand_base + 1, "promise suffix misplaced"
            key = (msg.log_ballot, msg.index)
            if key > self._best[0]:
                self._best = (key, msg.frm, msg.entries)
        self._ask_for_promises()
        self._check_election()

    def _election_membership(self) -> Membership:
        """The configuration the election must win in: the latest one in the log we would adopt."""
        key, best_from, best_entries = self._best
        if best_from == self.id:
            return self.membership
        for e in reversed(best_entries):
            if e.kind is EntryKind.CONFIG:
                return Membership.decode(e.data)
        return self._membership_at(self._cand_base)

    def _ask_for_promises(self) -> None:
        m = self._election_membership()
        for peer in sorted((set(m.voters) | set(m.outgoing)) - self._asked):
            self._asked.add(peer)
            self._send(MessageType.PREPARE, peer, ballot=self.promised, commit=self._cand_base)

    def _check_election(self) -> None:
        m = self._election_membership()
        result = quorum.vote_result(m, self._granted, self._rejected)
        if result is quorum.VoteResult.WON and not m.can_vote(self.id):
            self._become_follower(self.promised, "")  # the log we would adopt has removed us
        elif result is quorum.VoteResult.WON:
            self._become_leader()
        elif result is quorum.VoteResult.LOST:
            self._become_follower(self.promised, "")

    # ------------------------------------------------------------------ phase 2, follower side

    def _reject_stale_leader(self, msg: Message) -> None:
        reply = MessageType.HEARTBEAT_REPLY if msg.type is MessageType.HEARTBEAT else MessageType.ACCEPTED
        self._send(reply, msg.frm, ballot=self.promised, reject=True, index=msg.index)

    def _step_follower(self, msg: Message) -> None:
        t = msg.type
        if t is MessageType.ACCEPT:
            self._handle_accept(msg)
        elif t is MessageType.HEARTBEAT:
            self._commit_to(min(msg.commit, self.log.last_index))
            self._send(MessageType.HEARTBEAT_REPLY, msg.frm, ballot=msg.ballot, ctx=msg.ctx,
                       index=self.log.last_index)
        elif t is MessageType.SNAPSHOT:
            self._handle_snapshot(msg)

    def _handle_accept(self, msg: Message) -> None:
        prev = msg.index
        if prev < self.commit:
            # Everything up to our commit index is chosen, hence identical to the leader's: skip it.
            entries = tuple(e for e in msg.entries if e.index > self.commit)
            prev = self.commit
            if entries and entries[0].index != prev + 1:
                entries = ()
        else:
            entries = msg.entries
            if self.log.ballot_at(prev) != msg.log_ballot:
                hint = min(prev - 1, self.log.last_index)
                self._send(MessageType.ACCEPTED, msg.frm, ballot=msg.ballot, reject=True, index=prev,
                           hint=hint, ctx=msg.ctx)
                return
        if entries:
            conflict = self.log.append_from(entries)
            if conflict:
                self._truncate_configs(conflict)
                self._scan_configs(conflict)
            matched = entries[-1].index
        else:
            matched = prev
        self._commit_to(min(msg.commit, matched))
        self._send(MessageType.ACCEPTED, msg.frm, ballot=msg.ballot, index=matched, ctx=msg.ctx)

    def _handle_snapshot(self, msg: Message) -> None:
        snap = msg.snapshot
        assert snap is not None
        if snap.index <= self.commit:
            self._send(MessageType.ACCEPTED, msg.frm, ballot=msg.ballot, index=self.commit, ctx=msg.ctx)
            return
        if self.log.ballot_at(snap.index) == snap.ballot:
            self._commit_to(snap.index)
        else:
            self.log.restore(snap.index, snap.ballot)
            self._configs = [(snap.index, snap.membership)]
            self.commit = snap.index
            self.applied = snap.index
            self.snapshot = snap
            self._pending_install = snap
        self._send(MessageType.ACCEPTED, msg.frm, ballot=msg.ballot, index=snap.index, ctx=msg.ctx)

    def _commit_to(self, index: int) -> None:
        if index > self.commit:
            self.commit = index

    # ------------------------------------------------------------------ phase 2, leader side

    def _step_leader(self, msg: Message) -> None:
        if msg.ballot != self.promised:
            return  # a reply to an earlier ballot of ours
        pr = self.progress.get(msg.frm)
        if pr is None:
            return
        pr.recent_active = True
        if msg.ctx > pr.ack_tick:
            pr.ack_tick = msg.ctx
        if msg.type is MessageType.ACCEPTED:
            self._handle_accepted(msg, pr)
        elif msg.type is MessageType.HEARTBEAT_REPLY:
            if pr.match < self.log.last_index or pr.match < self.commit:
                if pr.state is ProgressState.PROBE:
                    pr.probe_sent = False
                elif pr.state is ProgressState.SNAPSHOT:
                    if self.now - pr.progress_tick >= self.cfg.snapshot_retry_ticks:
                        pr.become_probe(pr.match + 1, self.now)  # the snapshot was lost: send it again
                elif self.now - pr.progress_tick >= 2 * self.cfg.heartbeat_interval_ticks:
                    # Stuck: an ACCEPT was lost. Find the match again.
                    pr.become_probe(pr.match + 1, self.now)
                self._send_accept(msg.frm, pr)

    def _handle_accepted(self, msg: Message, pr: Progress) -> None:
        if msg.reject:
            if msg.index <= pr.match:
                return  # stale
            pr.become_probe(min(msg.index, msg.hint + 1), self.now)
            self._send_accept(msg.frm, pr)
            return
        if msg.index > pr.match:
            pr.match = msg.index
            pr.progress_tick = self.now
            if pr.state is not ProgressState.REPLICATE:
                pr.become_replicate(self.now)
            while pr.inflight and pr.inflight[0] <= msg.index:
                pr.inflight.popleft()
            pr.waiting_since = self.now
            if pr.next <= pr.match:
                pr.next = pr.match + 1
            self._maybe_commit()
            if self.role is not Role.LEADER:
                return
            self._maybe_advance_membership()
        elif pr.state is ProgressState.PROBE:
            pr.probe_sent = False
        backlog = self.log.last_index - pr.next + 1
        if backlog > 0 and (backlog >= self.cfg.lazy_batch_entries or msg.frm not in self._lazy_peers()):
            self._send_accept(msg.frm, pr)

    def _send_accept(self, peer: str, pr: Progress) -> None:
        if pr.state is ProgressState.SNAPSHOT:
            return
        if pr.state is ProgressState.PROBE and pr.probe_sent:
            return
        if pr.state is ProgressState.REPLICATE and len(pr.inflight) >= self.cfg.max_inflight_messages:
            return
        prev = pr.next - 1
        prev_ballot = self.log.ballot_at(prev)
        if prev_ballot is None:
            snap = self.snapshot
            assert snap is not None and prev < self.log.offset, "peer needs entries we do not have"
            self._send(MessageType.SNAPSHOT, peer, ballot=self.promised, snapshot=snap, ctx=self.now)
            pr.state = ProgressState.SNAPSHOT
            pr.pending_snapshot = snap.index
            pr.progress_tick = self.now
            return
        hi = min(self.log.last_index + 1, pr.next + self.cfg.max_entries_per_message)
        entries = tuple(self.log.slice(pr.next, hi)) if pr.next < hi else ()
        if len(entries) > 1:
            # Bound the message by bytes too (a transport frame has a size limit); always at least one entry.
            budget = self.cfg.max_bytes_per_message
            for count, entry in enumerate(entries):
                budget -= len(entry.data)
                if budget < 0 and count > 0:
                    entries = entries[:count]
                    break
        self._send(MessageType.ACCEPT, peer, ballot=self.promised, index=prev, log_ballot=prev_ballot,
                   entries=entries, commit=self.commit, ctx=self.now)
        pr.sent_commit = max(pr.sent_commit, min(self.commit, prev + len(entries)))
        if pr.state is ProgressState.PROBE:
            pr.probe_sent = True
        elif entries:
            pr.next = entries[-1].index + 1
            if not pr.inflight:
                pr.waiting_since = self.now
            pr.inflight.append(entries[-1].index)

    def _send_heartbeat(self, peer: str) -> None:
        pr = self.progress[peer]
        commit = min(pr.match, self.commit)
        pr.sent_commit = max(pr.sent_commit, commit)
        self._send(MessageType.HEARTBEAT, peer, ballot=self.promised, commit=commit, ctx=self.now)

    def _broadcast(self) -> None:
        """Send what accumulated since the last Ready: new entries (batched) and commit news."""
        last = self.log.last_index
        lazy = self._lazy_peers()
        for peer, pr in self.progress.items():
            if pr.next <= last and (peer not in lazy or last - pr.next + 1 >= self.cfg.lazy_batch_entries):
                self._send_accept(peer, pr)
        if self.cfg.eager_commit_news:
            self._send_commit_news()

    def _send_commit_news(self) -> None:
        for peer, pr in self.progress.items():
            if min(pr.match, self.commit) > pr.sent_commit:
                self._send_heartbeat(peer)

    def _lazy_peers(self) -> frozenset[str]:
        """Thrifty replication: the voters that get new entries only on the leader's tick (or in full
        batches). Empty unless ``cfg.thrifty``, the configuration is plain and enough followers are answering
        to make a quorum with us; those quick followers stay the same while they keep answering. Learners and
        followers being probed or sent a snapshot always get entries at once."""
        if not self.cfg.thrifty:
            return _NO_PEERS
        m = self.membership
        if m.is_joint or self.id not in m.voters:
            return _NO_PEERS
        need = len(m.voters) // 2  # followers that, with us, make a majority
        followers = [p for p in m.voters if p != self.id]
        quick = [p for p in self._quick if p in followers and self._answering(p)]
        if len(quick) < need:
            others = [p for p in followers if p not in quick and self._answering(p)]
            others.sort(key=lambda p: (-self.progress[p].match, p))
            quick += others[: need - len(quick)]
            if len(quick) < need:
                return _NO_PEERS
            self._quick = tuple(quick)
        return frozenset(p for p in followers if p not in quick and self.progress[p].state is ProgressState.REPLICATE)

    def _answering(self, peer: str) -> bool:
        pr = self.progress.get(peer)
        return (pr is not None and pr.state is ProgressState.REPLICATE
                and not (pr.inflight and self.now - pr.waiting_since >= self.cfg.lazy_fallback_ticks))

    def _maybe_commit(self) -> None:
        acked = {peer: pr.match for peer, pr in self.progress.items()}
        acked[self.id] = self.log.stable_index  # our own copy counts once durable (early ACCEPTs)
        index = self._quorum_index(acked)
        # Count only entries of our own ballot (earlier ones commit with them): Raft's figure-8 rule.
        if index > self.commit and self.log.ballot_at(index) == self.promised:
            self.commit = index
            self._broadcast_pending = True
            self._maybe_advance_membership()

    def _lease_start(self) -> int:
        acked = {peer: pr.ack_tick for peer, pr in self.progress.items()}
        acked[self.id] = self.now
        return quorum.committed_index(self.membership, acked)

    # ------------------------------------------------------------------ membership

    def _maybe_advance_membership(self) -> None:
        index, m = self._configs[-1]
        if index > self.commit or self.role is not Role.LEADER:
            return
        if m.is_joint:
            self._append_config(Membership(m.voters))
        elif m.learners and m.replacing:
            pr = self.progress.get(m.learners[0])
            if pr is not None and pr.match >= index and pr.match + self.cfg.catchup_slack_entries >= self.log.last_index:
                voters = tuple(m.learners[0] if v == m.replacing else v for v in m.voters)
                self._append_config(Membership(voters, outgoing=m.voters))
        elif not m.can_vote(self.id):
            self._become_follower(self.promised, "")  # we were replaced; the rest elect a leader

    def _append_config(self, m: Membership) -> int:
        index = self.log.last_index + 1
        self.log.append(Entry(index, self.promised, EntryKind.CONFIG, m.encode()))
        self._configs.append((index, m))
        self._pending_conf_index = index
        self._sync_progress(next_index=index)
        self._broadcast_pending = True
        return index

    def _sync_progress(self, next_index: int) -> None:
        members = self.membership.members
        for peer in sorted(members):  # sorted: the order of messages must not depend on string hashing
            if peer != self.id and peer not in self.progress:
                self.progress[peer] = Progress(next_index, self.now)
        for peer in [p for p in self.progress if p not in members]:
            del self.progress[peer]

    def _membership_at(self, index: int) -> Membership:
        m = self._configs[0][1]
        for i, cm in self._configs:
            if i > index:
                break
            m = cm
        return m

    def _truncate_configs(self, from_index: int) -> None:
        while len(self._configs) > 1 and self._configs[-1][0] >= from_index:
            self._configs.pop()

    def _scan_configs(self, from_index: int) -> None:
        if from_index > self.log.last_index:
            return
        for e in self.log.slice(from_index, self.log.last_index + 1):
            if e.kind is EntryKind.CONFIG:
                self._configs.append((e.index, Membership.decode(e.data)))

    def _promotable(self) -> bool:
        return self.membership.can_vote(self.id)

    # ------------------------------------------------------------------ helpers

    def _check_proposal(self) -> None:
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader_id)
        if self.log.last_index - self.commit >= self.cfg.max_uncommitted_entries:
            raise ProposalDropped(f"{self.log.last_index - self.commit} entries not yet committed")

    def _reset_randomized_timeout(self) -> None:
        e = self.cfg.election_timeout_ticks
        self._randomized_timeout = e + self._rng(0, e - 1)

    def _send(
        self,
        type: MessageType,
        to: str,
        *,
        ballot: Ballot,
        index: int = 0,
        log_ballot: Ballot = ZERO_BALLOT,
        entries: tuple[Entry, ...] = (),
        commit: int = 0,
        reject: bool = False,
        hint: int = 0,
        ctx: int = 0,
        snapshot: Snapshot | None = None,
    ) -> None:
        self._msgs.append(Message(type, self.id, to, ballot, index, log_ballot, entries, commit, reject, hint,
                                  ctx, snapshot, self.cfg.group))
