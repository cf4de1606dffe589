"""Property tests of the message handlers: any sequence of well-formed messages from would-be leaders and
candidates, interleaved with ticks and crashes, keeps an acceptor's promises (paxos/replica.py)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paxos import Config, Entry, EntryKind, HardState, Message, MessageType, Replica, Role, Snapshot
from paxos.sim.variants import AckBeforePersist, ForgetPromise
from paxos.types import ZERO_BALLOT, Ballot, Membership

PEERS = ("r1", "r2", "r3")


def leader_entry(rnd: int, index: int) -> Entry:
    """Leader of round ``rnd`` (replica r1/r3 alternately) holds a log whose entries all carry its ballot."""
    return Entry(index, ballot_of(rnd), EntryKind.NORMAL, b"%d@%d" % (index, rnd))


def ballot_of(rnd: int) -> Ballot:
    return (rnd, "r1" if rnd % 2 else "r3")


@st.composite
def events(draw: st.DrawFn) -> tuple[str, int, int, int, int]:
    kind = draw(st.sampled_from(["accept", "accept", "heartbeat", "prepare", "pre", "tick", "crash", "snapshot"]))
    return (kind, draw(st.integers(1, 6)), draw(st.integers(0, 8)), draw(st.integers(0, 4)), draw(st.integers(0, 9)))


class Acceptor:
    """r2 under test, with a disk that holds exactly what the Readies asked to persist (crash = reload)."""

    def __init__(self, factory: type[Replica] = Replica) -> None:
        self.factory = factory
        self.cfg = Config("r2", PEERS)
        self.hs = HardState()
        self.snap: Snapshot | None = None
        self.entries: list[Entry] = []
        self.r = factory(self.cfg, lambda lo, hi: lo)
        self.sent: list[Message] = []

    def durable_ballot_at(self, index: int) -> Ballot | None:
        base = self.snap.index if self.snap else 0
        if index == base:
            return self.snap.ballot if self.snap else ZERO_BALLOT
        if base < index <= base + len(self.entries):
            return self.entries[index - base - 1].ballot
        return None

    def drain(self) -> None:
        while self.r.has_ready():
            rd = self.r.ready()
            if rd.snapshot is not None:
                self.snap, self.entries = rd.snapshot, []
            if rd.compaction is not None:
                self.snap = rd.compaction
            if rd.entries:
                base = self.snap.index if self.snap else 0
                del self.entries[rd.entries[0].index - base - 1 :]
                self.entries.extend(rd.entries)
            if rd.hard_state is not None:
                self.hs = rd.hard_state
            if rd.hard_state is not None and rd.hard_state.promised != self.r._prev_hs.promised:
                assert rd.must_sync, "a new promise must be fsynced before it is announced"
            if rd.entries or rd.snapshot:
                assert rd.must_sync
            # Early messages are a leader's ACCEPTs only: they claim nothing durable.
            assert all(m.type is MessageType.ACCEPT for m in rd.early_messages)
            assert not rd.early_messages or self.r.role is Role.LEADER
            # What the messages claim is durable now (they leave only after this point).
            for m in rd.messages:
                if m.type is MessageType.PROMISE and not m.reject:
                    assert self.hs.promised >= m.ballot
                if m.type is MessageType.ACCEPTED and not m.reject:
                    assert self.hs.promised <= m.ballot or m.index <= self.hs.commit
                    assert self.durable_ballot_at(m.index) is not None, "acknowledged an entry not on disk"
            self.sent.extend(rd.early_messages + rd.messages)
            self.r.advance(rd)

    def crash(self) -> None:
        self.r = self.factory(self.cfg, lambda lo, hi: lo, self.hs, self.snap, list(self.entries))


@settings(max_examples=150, deadline=None)
@given(st.lists(events(), min_size=1, max_size=40))
def test_an_acceptor_never_breaks_a_promise(evs: list[tuple[str, int, int, int, int]]) -> None:
    run(evs, Replica)


@pytest.mark.parametrize("factory", [AckBeforePersist, ForgetPromise])
def test_the_property_catches_a_broken_acceptor(factory: type[Replica]) -> None:
    evs = [("tick", 1, 0, 0, 9), ("tick", 1, 0, 0, 9), ("prepare", 3, 0, 0, 0), ("accept", 3, 0, 2, 0)]
    run(evs, Replica)
    with pytest.raises(AssertionError):
        run(evs, factory)


def run(evs: list[tuple[str, int, int, int, int]], factory: type[Replica]) -> None:
    a = Acceptor(factory)
    max_promised: Ballot = ZERO_BALLOT
    accepted_at: dict[int, Ballot] = {}  # index -> ballot of the last ACCEPTED we sent covering it
    for kind, rnd, prev, n, commit in evs:
        r = a.r
        before_commit = r.commit
        ballot = ballot_of(rnd)
        frm = ballot[1]
        if kind == "accept":
            prev_ballot = ballot if prev > 0 else ZERO_BALLOT
            entries = tuple(leader_entry(rnd, prev + 1 + k) for k in range(n))
            r.step(Message(MessageType.ACCEPT, frm, "r2", ballot, index=prev, log_ballot=prev_ballot,
                           entries=entries, commit=min(commit, prev + n)))
        elif kind == "heartbeat":
            r.step(Message(MessageType.HEARTBEAT, frm, "r2", ballot, commit=0))
        elif kind == "prepare":
            r.step(Message(MessageType.PREPARE, frm, "r2", ballot, commit=commit))
        elif kind == "pre":
            r.step(Message(MessageType.PRE_PREPARE, frm, "r2", ballot, commit=commit))
        elif kind == "snapshot":
            snap = Snapshot(prev + n, ballot, Membership(PEERS), b"s")
            r.step(Message(MessageType.SNAPSHOT, frm, "r2", ballot, snapshot=snap))
        elif kind == "tick":
            for _ in range(commit + 1):
                r.tick()
        else:
            a.drain()
            a.crash()
            continue
        a.drain()
        r = a.r
        assert r.promised >= max_promised, "promised ballot went back"
        max_promised = r.promised
        assert r.commit >= before_commit and r.commit <= r.log.last_index
        assert r.log.offset <= r.applied <= r.commit
        for m in a.sent:
            if m.type is MessageType.ACCEPTED and not m.reject:
                accepted_at[m.index] = m.ballot
            if m.type is MessageType.PROMISE and not m.reject:
                # Phase 1b reports the acceptor's real last entry.
                assert m.index >= 0
        a.sent.clear()
        if kind == "pre":
            assert r.promised <= max_promised  # a pre-vote never changes the promise


# ---------------------------------------------------------------------------------------------------------
# A whole group under an adversarial schedule chosen (and shrunk) by hypothesis.

ACTIONS = st.lists(
    st.tuples(st.sampled_from(["round", "round", "round", "round", "cut", "crash", "propose", "propose",
                               "campaign"]),
              st.integers(0, 2), st.integers(0, 1000)),
    min_size=20, max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(ACTIONS)
def test_a_group_agrees_under_any_schedule(actions: list[tuple[str, int, int]]) -> None:
    run_schedule(actions, Replica)


# r1 gets a value chosen with r2 only; r1 is then cut off and r3 is elected with r2's promise.
CHOSEN_THEN_LEADER_CHANGE = (
    [("cut", 0, 1), ("cut", 2, 0), ("propose", 0, 0)] + [("round", 0, 0)] * 3
    + [("cut", 0, 0), ("cut", 1, 1)] + [("round", 0, 0)] * 11
    + [("campaign", 2, 0)] + [("round", 0, 0)] * 3 + [("propose", 0, 0)] + [("round", 0, 0)] * 3
)


@pytest.mark.parametrize("variant", ["minority-commit", "no-adoption"])
def test_the_schedule_property_can_fail(variant: str) -> None:
    from paxos.sim.variants import VARIANTS

    assert run_schedule(CHOSEN_THEN_LEADER_CHANGE, Replica) >= 3
    with pytest.raises(AssertionError, match="two values chosen"):
        run_schedule(CHOSEN_THEN_LEADER_CHANGE, VARIANTS[variant])


def run_schedule(actions: list[tuple[str, int, int]], factory: type[Replica]) -> int:
    from tests.unit.test_paxos_replica import Group

    g = Group(factory=factory, rng=lambda lo, hi: (lo + hi) // 2)
    g.elect("r1")
    chosen: dict[int, Entry] = {}
    leaders: dict[Ballot, str] = {}
    max_commit = {rid: 0 for rid in g.ids}
    value = 0
    for kind, who, arg in actions:
        rid = g.ids[who]
        if kind == "round":  # every replica ticks, then the network delivers with seeded faults
            fate = random.Random(arg) if arg else None  # arg 0: a perfect network
            for r in g.ids:
                g.r[r].tick()
                g.process(r)
            for _ in range(3):
                batch, g.queue = g.queue, []
                for m in batch:
                    roll = fate.random() if fate else 1.0
                    if roll < 0.15 or (m.frm, m.to) in g.cut:
                        continue  # lost
                    if roll < 0.3:
                        g.queue.append(m)  # delayed past later messages
                        continue
                    if roll < 0.4:
                        g.queue.append(m)  # duplicated
                    g.r[m.to].step(m)
                    g.process(m.to)
        elif kind == "cut":
            link = (rid, g.ids[(who + 1 + arg % 2) % 3])
            g.cut ^= {link}
        elif kind == "crash":
            g.crash_and_restart(rid)
            max_commit[rid] = g.r[rid].commit  # the commit index may lag after a restart
        elif kind == "propose":
            for r in g.r.values():
                if r.is_leader:
                    value += 1
                    r.propose(b"v%d" % value)
                    g.process(r.id)
        elif kind == "campaign":
            g.r[rid].campaign()
            g.process(rid)
        for r in g.r.values():
            if r.is_leader:
                assert leaders.setdefault(r.promised, r.id) == r.id, "two leaders in one ballot"
            assert r.commit >= max_commit[r.id], "commit index went back"
            max_commit[r.id] = r.commit
            for e in r.log.slice(r.log.offset + 1, r.commit + 1) if r.commit > r.log.offset else ():
                assert chosen.setdefault(e.index, e) == e, f"two values chosen at {e.index}"
    return len(chosen)
