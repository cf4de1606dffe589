"""Multi-Paxos replicated log as a pure state machine (shape of etcd-io/raft), plus its simulator (``paxos.sim``).

The core (everything but ``paxos/sim``) does no I/O and reads no clock or random source: time arrives as
``tick()`` calls and randomness as the ``rng(lo, hi)`` callable given at construction.

Driver contract (one replica; a storage node runs this for each of its groups)::

    r = Replica(config, rng, hard_state, snapshot, entries, applied)   # see "Restart" below
    loop:
        for msg in received:   r.step(msg)          # msg.group routes it to the right replica
        every tick_ms:         r.tick()
        client writes:         index = r.propose(data)        # NotLeader / ProposalDropped
        strong reads:          r.read(request_id)             # NotLeader / LeaseNotReady
        repair:                r.propose_replace(old_id, new_id)
        while r.has_ready():
            rd = r.ready()
            # 0. rd.early_messages may be sent now, before step 1 (a leader's ACCEPTs)
            # 1. persist: rd.snapshot (install: replaces the log), rd.compaction (snapshot written by us:
            #    truncate the stored log up to its index), rd.entries (truncate the stored log from
            #    rd.entries[0].index, then append), rd.hard_state.
            #    If rd.must_sync, fsync before step 2. Readies with must_sync=False may be written
            #    without fsync; one fsync may cover the Readies of many groups (group commit): collect
            #    them, fsync once, then do steps 2-5 for each.
            # 2. send rd.messages (only now: the acknowledgements in them rely on step 1 being durable)
            # 3. if rd.snapshot: replace the state machine by rd.snapshot.data;
            #    apply rd.committed_entries in order (NORMAL: the command; NOOP: nothing;
            #    CONFIG: Membership.decode(entry.data), for information)
            # 4. for each rd.read_states: serve the read once the applied index >= read_state.index
            # 5. r.advance(rd)
        after applying up to index i (now and then): r.compact(i, state_machine_bytes)

Call ``ready()``/``advance()`` in pairs and do not ``step``/``tick``/``propose`` between them unless the
driver tolerates the extra work landing in the next Ready (the core handles it, but keep it simple).

Restart from storage: ``Replica(config, rng, hard_state=<last persisted HardState>,
snapshot=<last persisted Snapshot or None>, entries=<persisted entries after the snapshot, in order>,
applied=<index the state machine already reflects, default the snapshot's>)``. Anything not persisted is
simply lost: the simulator's crash model does exactly this. ``config.voters`` is the bootstrap membership
(identical on all founding replicas); a replica that joins later (repair) starts with ``voters=()`` and
empty storage and is brought up by the leader with a snapshot plus the log tail.

Starting a child group of a split at index i: ``Replica(config, rng, hard_state=HardState(commit=i),
snapshot=Snapshot(i, ZERO_BALLOT, Membership(voters), child_state_bytes))`` on each of its replicas.

Public API: ``Replica``, ``Config``, ``Entry``/``EntryKind``, ``HardState``, ``Snapshot``, ``Membership``,
``Message``/``MessageType``, ``Ready``, ``Status``, ``ReadState``, the errors in ``paxos.errors`` and the quorum
arithmetic in ``paxos.quorum``.
"""

from paxos.errors import ConfigChangeRejected, LeaseNotReady, NotLeader, PaxosError, ProposalDropped
from paxos.replica import Replica, Role
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

__all__ = [
    "ZERO_BALLOT",
    "Ballot",
    "Config",
    "ConfigChangeRejected",
    "Entry",
    "EntryKind",
    "HardState",
    "LeaseNotReady",
    "Membership",
    "Message",
    "MessageType",
    "NotLeader",
    "PaxosError",
    "ProposalDropped",
    "ReadState",
    "Ready",
    "Replica",
    "Role",
    "Snapshot",
    "Status",
]
