"""Values that cross the boundary of the replication core: entries, messages, state to persist, Ready.

Everything here is immutable. Hot-path classes use ``slots=True``; nothing here copies or validates on the
hot path except ``Config`` (validated once, at construction).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

# A ballot orders leaders: (round, replica id). Ids break ties between replicas that pick the same round,
# so two replicas never lead the same ballot.
Ballot = tuple[int, str]
ZERO_BALLOT: Ballot = (0, "")


class EntryKind(enum.IntEnum):
    NORMAL = 0  # an application command
    NOOP = 1  # appended by every new leader so it can commit in its own ballot
    CONFIG = 2  # data is an encoded Membership; takes effect as soon as it is in a replica's log


@dataclass(frozen=True, slots=True)
class Entry:
    index: int
    ballot: Ballot
    kind: EntryKind
    data: bytes


@dataclass(frozen=True, slots=True)
class Membership:
    """Who votes. ``outgoing`` non-empty means a joint configuration: every decision needs a majority of
    ``voters`` and a majority of ``outgoing``. ``learners`` receive the log but never count.
    ``replacing`` names the voter that a pending replacement removes once its learner has caught up."""

    voters: tuple[str, ...]
    outgoing: tuple[str, ...] = ()
    learners: tuple[str, ...] = ()
    replacing: str = ""

    @property
    def members(self) -> frozenset[str]:
        return frozenset(self.voters) | frozenset(self.outgoing) | frozenset(self.learners)

    @property
    def is_joint(self) -> bool:
        return bool(self.outgoing)

    def can_vote(self, replica_id: str) -> bool:
        return replica_id in self.voters or replica_id in self.outgoing

    def encode(self) -> bytes:
        parts = (",".join(self.voters), ",".join(self.outgoing), ",".join(self.learners), self.replacing)
        return ";".join(parts).encode()

    @staticmethod
    def decode(data: bytes) -> Membership:
        voters, outgoing, learners, replacing = data.decode().split(";")

        def ids(text: str) -> tuple[str, ...]:
            return tuple(text.split(",")) if text else ()

        return Membership(ids(voters), ids(outgoing), ids(learners), replacing)


@dataclass(frozen=True, slots=True)
class HardState:
    """What a replica must find again after a crash. ``promised`` must be durable before any message
    that depends on it leaves; ``commit`` may lag (it is re-learned from the leader)."""

    promised: Ballot = ZERO_BALLOT
    commit: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The application's state after applying every entry up to ``index``; ``ballot`` is that entry's."""

    index: int
    ballot: Ballot
    membership: Membership
    data: bytes


class MessageType(enum.IntEnum):
    PRE_PREPARE = 0  # "would you promise me the next ballot?" (pre-vote: nothing changes on receipt)
    PRE_PROMISE = 1
    PREPARE = 2  # phase 1a
    PROMISE = 3  # phase 1b: carries the acceptor's log suffix after the candidate's commit index
    ACCEPT = 4  # phase 2a: entries after (index, log_ballot), plus the leader's commit index
    ACCEPTED = 5  # phase 2b: index = highest index known to match the leader's log
    HEARTBEAT = 6
    HEARTBEAT_REPLY = 7
    SNAPSHOT = 8  # install this snapshot; answered with ACCEPTED


@dataclass(frozen=True, slots=True)
class Message:
    """One message kind for every exchange, as etcd's raftpb.Message; unused fields keep defaults.

    ``ballot`` is the sender's ballot (for a rejection: the higher ballot the sender has promised).
    ``index``/``log_ballot``: ACCEPT: the entry preceding ``entries``; ACCEPTED: matched index or the
    rejected index; PREPARE/PRE_PREPARE: unused; PROMISE: the acceptor's last index and its ballot.
    ``commit``: the sender's commit index. ``hint``: on a rejected ACCEPT, the follower's last index.
    ``ctx``: the leader's tick when it sent the ACCEPT/HEARTBEAT, echoed in the reply (leases).
    ``group`` is opaque to the core, which stamps every message it sends with ``Config.group``: the driver
    uses it to route incoming messages of many groups sharing one connection."""

    type: MessageType
    frm: str
    to: str
    ballot: Ballot
    index: int = 0
    log_ballot: Ballot = ZERO_BALLOT
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    reject: bool = False
    hint: int = 0
    ctx: int = 0
    snapshot: Snapshot | None = None
    group: str = ""


@dataclass(frozen=True, slots=True)
class ReadState:
    """A strongly consistent read that may be served once the application has applied ``index``."""

    request_id: bytes
    index: int


@dataclass(frozen=True, slots=True)
class Ready:
    """Work for the driver, in this order (see the ``paxos`` package docstring):

    0. ``early_messages`` may go at once, before or during step 1: a leader's ACCEPTs, which acknowledge
       nothing (the leader counts its own copy of the entries only once ``advance`` reports them durable),
       so the followers' fsyncs overlap the leader's;
    1. persist ``snapshot`` (install), ``compaction``, ``entries`` and ``hard_state``; fsync if ``must_sync``;
    2. send ``messages`` (only now: acknowledgements in them rely on step 1 being durable);
    3. install ``snapshot`` into the state machine, then apply ``committed_entries`` in order;
    4. serve ``read_states`` whose index is applied; 5. call ``Replica.advance(ready)``."""

    hard_state: HardState | None
    entries: tuple[Entry, ...]
    snapshot: Snapshot | None
    compaction: Snapshot | None
    messages: tuple[Message, ...]
    committed_entries: tuple[Entry, ...]
    read_states: tuple[ReadState, ...]
    must_sync: bool
    early_messages: tuple[Message, ...] = ()


@dataclass(frozen=True, slots=True)
class Status:
    """A replica's state at a glance, for metrics and ``ddb status``."""

    replica_id: str
    group: str
    role: str
    leader_id: str
    ballot: Ballot
    commit: int
    applied: int
    last_index: int
    snapshot_index: int
    membership: Membership
    lease_remaining_ticks: int
    progress: tuple[tuple[str, int], ...]  # leader only: (peer, matched index)


@dataclass(frozen=True, slots=True)
class Config:
    """Static parameters of one replica. Ticks are the driver's unit of time (``tick()`` every tick_ms).

    ``voters`` is the bootstrap membership, used only when the replica has no persisted snapshot or
    configuration entry; a replica that joins an existing group (as a learner) passes ``voters=()``.
    ``max_clock_drift`` bounds how far any replica's tick rate may stray from nominal (0.05 = ±5%)."""

    replica_id: str
    voters: tuple[str, ...]
    group: str = ""
    election_timeout_ticks: int = 10
    heartbeat_interval_ticks: int = 2
    max_clock_drift: float = 0.05
    max_entries_per_message: int = 64
    max_bytes_per_message: int = 4 << 20  # entry data per ACCEPT; a bigger single entry still goes alone
    max_inflight_messages: int = 32
    # A new commit index reaches the followers at once (a HEARTBEAT when no ACCEPT carries it), or only with
    # the next ACCEPT or leader tick: one tick of apply lag on followers, against a HEARTBEAT and its reply
    # per replication round under load.
    eager_commit_news: bool = True
    # Thrifty replication: the leader sends new entries at once only to as many followers as a quorum needs
    # (the one that has been answering), and to the others on its tick or once ``lazy_batch_entries`` have
    # piled up; a quick follower that stops answering for ``lazy_fallback_ticks`` is replaced by another.
    # Fewer, fuller ACCEPTs and fsyncs per write; a commit waits for one follower instead of the quicker of two.
    thrifty: bool = False
    lazy_batch_entries: int = 32
    lazy_fallback_ticks: int = 2
    max_uncommitted_entries: int = 4096
    max_committed_entries_per_ready: int = 1024
    catchup_slack_entries: int = 8
    snapshot_retry_ticks: int = 50  # resend a snapshot not acknowledged within this (the driver streams it)
    check_quorum: bool = True
    # Cap on the leader lease (ticks). The lease is the longest the clock-drift bound allows, or this if
    # shorter; a shorter lease is always safe (reads wait for a fresh quorum sooner).
    max_lease_ticks: int | None = None
    lease_ticks: int = field(init=False)
    lease_wait_ticks: int = field(init=False)

    def __post_init__(self) -> None:
        if not self.replica_id or "," in self.replica_id or ";" in self.replica_id:
            raise ValueError(f"bad replica id {self.replica_id!r}")
        if self.voters and self.replica_id not in self.voters:
            raise ValueError(f"{self.replica_id} is not among the voters {self.voters}")
        if len(set(self.voters)) != len(self.voters):
            raise ValueError(f"duplicate voters {self.voters}")
        if self.heartbeat_interval_ticks < 1:
            raise ValueError("heartbeat_interval_ticks must be >= 1")
        if self.election_timeout_ticks <= 2 * self.heartbeat_interval_ticks:
            raise ValueError("election_timeout_ticks must exceed two heartbeat intervals")
        if not 0.0 <= self.max_clock_drift < 0.5:
            raise ValueError("max_clock_drift must be in [0, 0.5)")
        for name in ("max_entries_per_message", "max_bytes_per_message", "max_inflight_messages",
                     "max_uncommitted_entries",
                     "max_committed_entries_per_ready", "lazy_batch_entries", "lazy_fallback_ticks"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.snapshot_retry_ticks < 1:
            raise ValueError("snapshot_retry_ticks must be >= 1")
        if self.catchup_slack_entries < 0:
            raise ValueError("catchup_slack_entries must be >= 0")
        drift = self.max_clock_drift
        # A follower refuses other candidates for election_timeout ticks of ITS clock after hearing the
        # leader; the message may have arrived just before a tick, so only (E - 1) full ticks are sure.
        # The lease, counted on the leader's clock from the SEND of the acknowledged message, must end
        # (in real time) before that: lease / (1 - drift) < (E - 1) / (1 + drift), minus one tick of margin.
        lease = int((self.election_timeout_ticks - 1) * (1 - drift) / (1 + drift)) - 1
        if lease < 1:
            raise ValueError("election timeout too short for a positive lease under this clock drift")
        if self.max_lease_ticks is not None:
            if self.max_lease_ticks < 1:
                raise ValueError("max_lease_ticks must be >= 1")
            lease = min(lease, self.max_lease_ticks)
        object.__setattr__(self, "lease_ticks", lease)
        # A new leader also waits out a whole election timeout as the slowest clock could see it.
        wait = -(-self.election_timeout_ticks * (1 + drift) // (1 - drift))
        object.__setattr__(self, "lease_wait_ticks", int(wait) + 1)
