"""Scenarios of a small group driven by hand (paxos/replica.py): elections, replication, leases, pre-vote,
restart from storage, snapshots, membership replacement, limits. The simulator does the random search;
these pin down the behaviour one case at a time."""

from __future__ import annotations

import functools

import pytest

from paxos import (
    Config,
    ConfigChangeRejected,
    Entry,
    EntryKind,
    HardState,
    LeaseNotReady,
    Membership,
    Message,
    MessageType,
    NotLeader,
    ProposalDropped,
    Replica,
    Role,
    Snapshot,
)
from paxos.replica import Rng
from paxos.sim.variants import NoAdoption, NoStickiness

E = 10  # election timeout ticks


def slowest(lo: int, hi: int) -> int:
    return hi  # deterministic: every randomized election timeout is 2E - 1


class Disk:
    def __init__(self) -> None:
        self.hs = HardState()
        self.snap: Snapshot | None = None
        self.entries: list[Entry] = []


class Group:
    """A hand-driven group: messages queue up until deliver(); cut links drop them."""

    def __init__(self, n: int = 3, factory: type[Replica] = Replica, rng: Rng = slowest, **cfg: int) -> None:
        self.ids = tuple(f"r{i}" for i in range(1, n + 1))
        self.cfg = cfg
        self.factory = factory
        self.rng = rng
        self.disks = {i: Disk() for i in self.ids}
        self.r: dict[str, Replica] = {i: factory(Config(i, self.ids, **cfg), rng) for i in self.ids}
        self.queue: list[Message] = []
        self.cut: set[tuple[str, str]] = set()
        self.down: set[str] = set()
        self.applied: dict[str, list[Entry]] = {i: [] for i in self.ids}
        self.reads: dict[str, list[tuple[bytes, int]]] = {i: [] for i in self.ids}
        self.snapshots: dict[str, list[Snapshot]] = {i: [] for i in self.ids}

    def add(self, rid: str) -> None:
        self.disks[rid] = Disk()
        self.r[rid] = self.factory(Config(rid, (), **self.cfg), self.rng)
        self.applied[rid] = []
        self.reads[rid] = []
        self.snapshots[rid] = []

    def process(self, rid: str) -> None:
        rep, disk = self.r[rid], self.disks[rid]
        while rep.has_ready():
            rd = rep.ready()
            if rd.snapshot is not None:
                disk.snap, disk.entries = rd.snapshot, []
                self.snapshots[rid].append(rd.snapshot)
                self.applied[rid] = []
            if rd.compaction is not None:
                base = disk.snap.index if disk.snap else 0
                disk.entries = disk.entries[rd.compaction.index - base :]
                disk.snap = rd.compaction
            if rd.entries:
                base = disk.snap.index if disk.snap else 0
                del disk.entries[rd.entries[0].index - base - 1 :]
                disk.entries.extend(rd.entries)
            if rd.hard_state is not None:
                disk.hs = rd.hard_state
            self.queue.extend(rd.early_messages + rd.messages)
            self.applied[rid].extend(rd.committed_entries)
            self.reads[rid].extend((rs.request_id, rs.index) for rs in rd.read_states)
            rep.advance(rd)

    def deliver(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            if not self.queue:
                return
            batch, self.queue = self.queue, []
            for m in batch:
                if m.to in self.down or m.frm in self.down or (m.frm, m.to) in self.cut or m.to not in self.r:
                    continue
                self.r[m.to].step(m)
                self.process(m.to)

    def tick(self, n: int = 1, only: tuple[str, ...] | None = None) -> None:
        for _ in range(n):
            for rid in only or tuple(self.r):
                if rid not in self.down:
                    self.r[rid].tick()
                    self.process(rid)
            self.deliver()

    def elect(self, rid: str) -> Replica:
        self.tick(E)  # everyone past the boot-time promise (no timeout fires before 2E - 1)
        self.r[rid].campaign()
        self.process(rid)
        self.deliver()
        assert self.r[rid].role is Role.LEADER
        return self.r[rid]

    def isolate(self, rid: str) -> None:
        for other in self.r:
            if other != rid:
                self.cut |= {(rid, other), (other, rid)}

    def heal(self) -> None:
        self.cut.clear()

    def crash_and_restart(self, rid: str) -> None:
        disk = self.disks[rid]
        cfg = self.r[rid].cfg
        self.r[rid] = self.factory(cfg, self.rng, disk.hs, disk.snap, list(disk.entries))
        self.applied[rid] = []
        self.process(rid)

    def data(self, rid: str) -> list[bytes]:
        return [e.data for e in self.applied[rid] if e.kind is EntryKind.NORMAL]


def test_a_leader_is_elected_and_replicates_in_order() -> None:
    g = Group()
    leader = g.elect("r1")
    assert leader.promised[1] == "r1"
    for k in range(5):
        leader.propose(b"w%d" % k)
    g.process("r1")
    g.deliver()
    g.tick(2)
    for rid in g.ids:
        assert g.data(rid) == [b"w%d" % k for k in range(5)]
        assert g.r[rid].commit == leader.commit == 6  # NOOP + 5
    assert {g.r[rid].leader_id for rid in g.ids} == {"r1"}


def test_followers_refuse_proposals_with_a_hint() -> None:
    g = Group()
    g.elect("r1")
    with pytest.raises(NotLeader) as info:
        g.r["r2"].propose(b"x")
    assert info.value.leader_hint == "r1"
    with pytest.raises(NotLeader):
        g.r["r2"].read(b"q")


def test_proposals_are_batched_into_one_accept_per_peer() -> None:
    g = Group(max_entries_per_message=64)
    leader = g.elect("r1")
    g.tick(2)
    g.queue.clear()
    for k in range(10):
        leader.propose(b"%d" % k)
    rd = leader.ready()
    accepts = [m for m in rd.early_messages if m.type is MessageType.ACCEPT]  # sent before the leader's fsync
    assert not [m for m in rd.messages if m.type is MessageType.ACCEPT]
    assert sorted(m.to for m in accepts) == ["r2", "r3"]
    assert all(len(m.entries) == 10 for m in accepts)
    assert rd.must_sync and len(rd.entries) == 10
    leader.advance(rd)


@pytest.mark.parametrize("eager", [True, False])
def test_commit_news_goes_at_once_or_with_the_next_tick(eager: bool) -> None:
    g = Group(eager_commit_news=eager)
    leader = g.elect("r1")
    g.tick(2)
    g.queue.clear()
    leader.propose(b"x")
    g.process("r1")  # the ACCEPTs go out
    accepts, g.queue = g.queue, []
    for m in accepts:
        g.r[m.to].step(m)
        g.process(m.to)
    for m in [m for m in g.queue if m.to == "r1"]:  # the ACCEPTEDs come back
        leader.step(m)
    g.queue = []
    rd = leader.ready()
    assert rd.committed_entries and rd.committed_entries[-1].data == b"x"
    news = [m for m in rd.messages if m.type is MessageType.HEARTBEAT]
    leader.advance(rd)
    if eager:
        assert sorted(m.to for m in news) == ["r2", "r3"] and {m.commit for m in news} == {leader.commit}
        return
    assert news == []  # no message of its own: it waits for the next ACCEPT or tick
    leader.tick()
    rd = leader.ready()
    news = [m for m in rd.messages if m.type is MessageType.HEARTBEAT]
    assert sorted(m.to for m in news) == ["r2", "r3"] and {m.commit for m in news} == {leader.commit}
    leader.advance(rd)


def _thrifty_group(lazy_batch_entries: int = 32) -> tuple[Group, Replica]:
    """Three replicas with thrifty replication, r1 leading and settled, nothing queued."""
    g = Group(thrifty=True, lazy_batch_entries=lazy_batch_entries, max_inflight_messages=1,
              max_entries_per_message=64)
    leader = g.elect("r1")
    g.tick(2)
    g.queue.clear()
    return g, leader


def _accepts_to(g: Group, rid: str) -> list[str]:
    """Process ``rid``'s Ready and return the peers its ACCEPTs with entries went to (they stay queued)."""
    g.process(rid)
    return sorted(m.to for m in g.queue if m.type is MessageType.ACCEPT and m.frm == rid and m.entries)


def test_thrifty_leader_sends_new_entries_to_one_follower_and_the_other_on_its_tick() -> None:
    g, leader = _thrifty_group()
    leader.propose(b"a")
    quick = _accepts_to(g, "r1")
    assert len(quick) == 1  # a quorum with the leader: one follower is enough
    lazy = ({"r2", "r3"} - set(quick)).pop()
    g.deliver()
    assert leader.commit == leader.log.last_index  # committed without the lazy follower
    assert g.data(lazy) == []
    for k in range(5):
        leader.propose(b"b%d" % k)
        g.process("r1")
        g.deliver()
    assert g.data(lazy) == []  # still nothing: it waits for the tick
    g.queue.clear()
    leader.tick()
    g.process("r1")
    batch = [m for m in g.queue if m.type is MessageType.ACCEPT and m.to == lazy]
    assert len(batch) == 1 and len(batch[0].entries) == 6  # everything since the last tick, in one ACCEPT
    g.tick(2)
    assert g.data(lazy) == g.data(quick[0]) == [b"a"] + [b"b%d" % k for k in range(5)]


def test_leaders_created_at_different_driver_ticks_heartbeat_on_the_same_ticks() -> None:
    """A driver creates each replica with its own tick count so far (``tick_offset``): every group it leads
    then heartbeats on the driver's ticks that are multiples of the interval, so the heartbeats to one peer
    leave together (one message batch) however far apart the groups were created or elected."""
    interval = 4
    a = Group(heartbeat_interval_ticks=interval)
    a.tick(3)  # driver ticks 1..3, then the driver creates group b
    b = Group(heartbeat_interval_ticks=interval, factory=functools.partial(Replica, tick_offset=3))
    driver_tick = 3
    beats: dict[int, list[int]] = {0: [], 1: []}
    for step in range(E + 7 + 4 * interval):
        driver_tick += 1
        for n, g in enumerate((a, b)):
            if step == E + n * 7:  # elected on different ticks
                g.r["r1"].campaign()
                g.process("r1")
                g.deliver()
            for rid in g.ids:
                g.r[rid].tick()
            g.process("r1")
            if any(m.type is MessageType.HEARTBEAT and m.frm == "r1" for m in g.queue):
                beats[n].append(driver_tick)
            for rid in g.ids[1:]:
                g.process(rid)
            g.deliver()
    assert a.r["r1"].role is Role.LEADER and b.r["r1"].role is Role.LEADER
    since = 3 + E + 8  # both lead from here
    expected = [t for t in range(since, driver_tick + 1) if t % interval == 0]
    assert [t for t in beats[0] if t >= since] == [t for t in beats[1] if t >= since] == expected
    assert len(expected) >= 4


def test_thrifty_leader_sends_a_full_batch_to_the_lazy_follower_at_once() -> None:
    g, leader = _thrifty_group(lazy_batch_entries=4)
    for k in range(4):
        leader.propose(b"%d" % k)
    assert _accepts_to(g, "r1") == ["r2", "r3"]  # four entries piled up: a full batch goes to both


def test_thrifty_leader_replaces_a_quick_follower_that_stops_answering() -> None:
    g, leader = _thrifty_group()
    leader.propose(b"a")
    (quick,) = _accepts_to(g, "r1")
    g.deliver()
    other = ({"r2", "r3"} - {quick}).pop()
    g.down.add(quick)
    leader.propose(b"b")
    assert _accepts_to(g, "r1") == [quick]  # it was answering until now
    g.deliver()
    committed = leader.commit
    g.tick(3)  # the quick one has not answered for lazy_fallback_ticks: the other takes its place
    assert leader.role is Role.LEADER and leader.commit > committed
    assert g.data(other)[-1] == b"b"
    g.queue.clear()
    leader.propose(b"c")
    assert _accepts_to(g, "r1") == [other]
    g.deliver()
    assert g.data(other)[-1] == b"c" and leader.commit == leader.log.last_index


def test_the_lease_is_the_drift_bound_or_the_configured_cap_if_shorter() -> None:
    derived = Config("a", ("a", "b", "c"), election_timeout_ticks=20, max_clock_drift=0.01).lease_ticks
    assert derived == 17  # (20 - 1) * 0.99 / 1.01, less one tick of margin
    assert Config("a", ("a",), election_timeout_ticks=20, max_clock_drift=0.01, max_lease_ticks=12).lease_ticks == 12
    assert Config("a", ("a",), election_timeout_ticks=20, max_clock_drift=0.01, max_lease_ticks=40).lease_ticks == 17
    with pytest.raises(ValueError, match="max_lease_ticks"):
        Config("a", ("a",), max_lease_ticks=0)


def test_too_many_uncommitted_entries_are_refused() -> None:
    g = Group(max_uncommitted_entries=4)
    leader = g.elect("r1")
    g.tick(2)
    g.isolate("r1")
    for k in range(4):
        leader.propose(b"%d" % k)
    with pytest.raises(ProposalDropped):
        leader.propose(b"one too many")


def test_a_new_leader_serves_lease_reads_only_after_waiting_out_the_old_lease() -> None:
    g = Group()
    first = g.elect("r1")
    first.propose(b"x")
    g.process("r1")
    g.deliver()
    g.tick(first.cfg.lease_wait_ticks)
    first.read(b"lease")  # r1 holds a lease; r2 takes over once r1 is cut off and the lease has run out
    g.isolate("r1")
    g.tick(first.cfg.election_timeout_ticks, only=("r2", "r3"))
    leader = g.r["r2"]
    leader.campaign()
    g.process("r2")
    g.deliver()
    assert leader.role is Role.LEADER
    with pytest.raises(LeaseNotReady):
        leader.read(b"early")
    cfg = leader.cfg
    assert 0 < cfg.lease_ticks < cfg.election_timeout_ticks < cfg.lease_wait_ticks
    g.tick(cfg.lease_wait_ticks - 1, only=("r2", "r3"))
    with pytest.raises(LeaseNotReady):
        leader.read(b"still early")
    g.tick(1, only=("r2", "r3"))
    leader.read(b"now")
    g.process("r2")
    assert g.reads["r2"] == [(b"now", leader.commit)]


def test_a_groups_first_leader_reads_at_once_and_campaigns_at_boot() -> None:
    """No replica of a new group ever promised a ballot, so none owes a leader time, and no leader can
    hold a lease before the first one: it may campaign on the first tick and read once its entry commits."""
    g = Group()
    leader = g.r["r1"]
    leader.campaign()
    g.process("r1")
    g.deliver()
    assert leader.role is Role.LEADER and leader.commit == 1
    leader.read(b"at once")
    g.process("r1")
    assert g.reads["r1"] == [(b"at once", 1)]


def test_a_restarted_replica_that_promised_a_ballot_owes_it_a_whole_timeout() -> None:
    g = Group()
    g.elect("r1")
    g.crash_and_restart("r2")
    g.crash_and_restart("r3")
    g.isolate("r1")
    g.r["r2"].campaign()  # ignored: r2 may have acknowledged r1's heartbeats just before it crashed
    g.process("r2")
    g.deliver()
    assert g.r["r2"].role is Role.FOLLOWER
    g.tick(E, only=("r2", "r3"))
    g.r["r2"].campaign()
    g.process("r2")
    g.deliver()
    assert g.r["r2"].role is Role.LEADER


def test_an_isolated_leader_loses_its_lease_then_steps_down() -> None:
    g = Group()
    leader = g.elect("r1")
    g.tick(leader.cfg.lease_wait_ticks)
    leader.read(b"ok")
    g.isolate("r1")
    g.tick(leader.cfg.lease_ticks)
    with pytest.raises(LeaseNotReady):
        leader.read(b"stale?")
    g.tick(2 * E, only=("r1",))
    assert leader.role is Role.FOLLOWER  # check-quorum


def test_followers_keep_their_promise_to_a_live_leader() -> None:
    g = Group()
    leader = g.elect("r1")
    g.tick(3)
    before = leader.promised
    # A flaky r3 that believes it timed out asks for a pre-vote, then even for a real promise.
    higher = (before[0] + 1, "r3")
    for kind in (MessageType.PRE_PREPARE, MessageType.PREPARE):
        for to in ("r1", "r2"):
            g.r[to].step(Message(kind, "r3", to, higher, commit=g.r["r3"].commit))
            g.process(to)
    replies = [m for m in g.queue if m.to == "r3"]
    assert len(replies) == 4 and all(m.reject for m in replies)
    g.deliver()
    assert leader.role is Role.LEADER and leader.promised == before
    assert g.r["r2"].promised == before


def test_a_partitioned_replica_does_not_depose_the_leader_when_it_returns() -> None:
    g = Group()
    leader = g.elect("r1")
    g.isolate("r3")
    g.tick(8 * E)  # r3 times out again and again, but its pre-votes go nowhere
    assert g.r["r3"].promised == leader.promised  # no ballot inflation
    g.heal()
    g.tick(3 * E)
    assert leader.role is Role.LEADER and g.r["r3"].leader_id == "r1"


def test_a_new_leader_adopts_a_value_chosen_by_a_quorum_it_was_not_part_of() -> None:
    for factory, keeps_it in ((Replica, True), (NoAdoption, False)):
        g = Group(factory=factory)
        leader = g.elect("r1")
        g.tick(2)
        g.cut |= {("r1", "r3"), ("r3", "r1")}
        leader.propose(b"chosen")
        g.process("r1")
        g.deliver()
        g.tick(1)
        assert g.data("r1") == [b"chosen"]  # chosen by r1 + r2; r3 never saw it
        assert b"chosen" not in [e.data for e in g.r["r3"].log.entries]
        g.down.add("r1")
        g.cut.clear()
        g.tick(2 * E)
        g.r["r3"].campaign()
        g.process("r3")
        g.deliver()
        assert g.r["r3"].role is Role.LEADER
        g.tick(3)
        assert (b"chosen" in g.data("r3")) is keeps_it


def test_restart_from_storage_keeps_every_committed_entry() -> None:
    g = Group()
    leader = g.elect("r1")
    for k in range(3):
        leader.propose(b"%d" % k)
    g.process("r1")
    g.deliver()
    g.tick(2)
    for rid in g.ids:
        g.crash_and_restart(rid)
    g.tick(4 * E)
    new_leader = next(r for r in g.r.values() if r.role is Role.LEADER)
    new_leader.propose(b"after")
    g.process(new_leader.id)
    g.tick(3)
    for rid in g.ids:
        assert g.data(rid) == [b"0", b"1", b"2", b"after"]


def test_a_promise_is_durable_before_it_is_sent() -> None:
    g = Group()
    g.tick(E)
    r2 = g.r["r2"]
    r2.step(Message(MessageType.PREPARE, "r1", "r2", (5, "r1"), commit=0))
    rd = r2.ready()
    assert [m.type for m in rd.messages] == [MessageType.PROMISE] and not rd.messages[0].reject
    assert rd.hard_state is not None and rd.hard_state.promised == (5, "r1") and rd.must_sync
    r2.advance(rd)


def test_an_acknowledged_entry_is_in_the_same_ready_as_its_ack() -> None:
    g = Group()
    g.tick(E)
    r2 = g.r["r2"]
    entry = Entry(1, (1, "r1"), EntryKind.NOOP, b"")
    r2.step(Message(MessageType.ACCEPT, "r1", "r2", (1, "r1"), index=0, entries=(entry,)))
    rd = r2.ready()
    assert rd.entries == (entry,) and rd.must_sync
    assert [(m.type, m.index, m.reject) for m in rd.messages] == [(MessageType.ACCEPTED, 1, False)]
    r2.advance(rd)


def test_a_lagging_replica_is_brought_up_by_snapshot() -> None:
    g = Group()
    leader = g.elect("r1")
    g.isolate("r3")
    for k in range(20):
        leader.propose(b"%d" % k)
        g.process("r1")
        g.deliver()
    g.tick(2)
    leader.compact(leader.applied, b"state@%d" % leader.applied)
    g.process("r1")
    assert leader.log.offset == leader.applied
    g.heal()
    g.tick(3 * E)
    assert g.snapshots["r3"] and g.snapshots["r3"][-1].data == b"state@%d" % leader.log.offset
    assert g.r["r3"].commit == leader.commit


@pytest.mark.parametrize("thrifty", [False, True])
def test_replacing_a_voter_with_a_brand_new_replica(thrifty: bool) -> None:
    g = Group(thrifty=thrifty)
    leader = g.elect("r1")
    for k in range(5):
        leader.propose(b"%d" % k)
    g.tick(2)
    leader.compact(leader.applied, b"snap")
    g.add("r4")
    leader.propose_replace("r3", "r4")
    with pytest.raises(ConfigChangeRejected):
        leader.propose_replace("r2", "r5")  # one change at a time
    g.process("r1")
    g.tick(4 * E, only=("r1", "r2", "r3", "r4"))
    assert leader.membership == Membership(("r1", "r2", "r4"))
    assert leader.commit >= leader.log.last_index - 1
    assert g.r["r4"].membership == Membership(("r1", "r2", "r4"))
    assert g.snapshots["r4"]  # the new replica started from a snapshot
    # The group now commits without r3.
    g.down.add("r3")
    leader.propose(b"without r3")
    g.process("r1")
    g.tick(2)
    assert g.data("r4")[-1] == b"without r3"


def test_a_replaced_leader_hands_over() -> None:
    g = Group()
    leader = g.elect("r1")
    g.tick(2)
    g.add("r4")
    leader.propose_replace("r1", "r4")
    g.process("r1")
    g.tick(3 * E)
    assert leader.role is Role.FOLLOWER
    g.down.add("r1")
    g.tick(6 * E)
    leaders = [r for r in g.r.values() if r.role is Role.LEADER and r.id != "r1"]
    assert len(leaders) == 1 and leaders[0].membership.voters == ("r4", "r2", "r3")


def test_five_replicas_tolerate_two_down() -> None:
    g = Group(n=5)
    leader = g.elect("r1")
    g.down |= {"r4", "r5"}
    leader.propose(b"x")
    g.process("r1")
    g.tick(2)
    assert g.data("r2") == [b"x"]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(replica_id="a", voters=("b", "c")),
        dict(replica_id="a", voters=("a",), election_timeout_ticks=4, heartbeat_interval_ticks=2),
        dict(replica_id="a", voters=("a",), max_clock_drift=0.6),
        dict(replica_id="a", voters=("a",), election_timeout_ticks=5, heartbeat_interval_ticks=1,
             max_clock_drift=0.4),
        dict(replica_id="a", voters=("a",), max_inflight_messages=0),
        dict(replica_id="a,b", voters=()),
    ],
)
def test_bad_configs_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Config(**kwargs)  # type: ignore[arg-type]


def test_a_child_group_starts_from_a_snapshot_and_status_reports_it() -> None:
    from paxos import ZERO_BALLOT

    g = Group()
    for rid in g.ids:
        snap = Snapshot(100, ZERO_BALLOT, Membership(g.ids), b"child state")
        g.r[rid] = Replica(Config(rid, g.ids, group="t1/p7"), slowest, HardState(commit=100), snap)
        g.disks[rid].snap = snap
    leader = g.elect("r2")
    leader.propose(b"first")
    g.process("r2")
    g.tick(2)
    assert [e.index for e in g.applied["r3"]] == [101, 102] and g.data("r3") == [b"first"]
    st = leader.status()
    assert (st.role, st.group, st.commit, st.snapshot_index) == ("leader", "t1/p7", 102, 100)
    assert dict(st.progress) == {"r1": 102, "r3": 102}
    rd = leader.ready()
    assert all(m.group == "t1/p7" for m in rd.early_messages + rd.messages)


def test_a_replacement_stuck_in_the_learner_stage_can_be_redirected() -> None:
    g = Group()
    leader = g.elect("r1")
    g.tick(2)
    leader.propose_replace("r3", "r4")  # r4 never shows up
    g.process("r1")
    g.tick(3 * E)
    assert leader.membership == Membership(("r1", "r2", "r3"), learners=("r4",), replacing="r3")
    with pytest.raises(ConfigChangeRejected):
        leader.propose_replace("r3", "r4")
    g.add("r5")
    leader.propose_replace("r3", "r5")
    g.process("r1")
    g.tick(3 * E)
    assert leader.membership == Membership(("r1", "r2", "r5"))


def test_campaign_is_ignored_while_a_leader_may_hold_a_lease() -> None:
    g = Group()
    leader = g.elect("r1")
    g.tick(2)
    g.r["r2"].campaign()
    assert g.r["r2"].role is Role.FOLLOWER and leader.role is Role.LEADER


@pytest.mark.parametrize("factory", [Replica, NoStickiness])
def test_a_lease_holds_because_followers_keep_their_promise(factory: type[Replica]) -> None:
    g = Group(factory=factory)
    leader = g.elect("r1")
    g.tick(leader.cfg.lease_wait_ticks)
    g.cut |= {("r1", "r3"), ("r3", "r1")}  # r3 stops hearing r1; r2 still hears it
    r3 = g.r["r3"]
    for _ in range(3 * E):
        g.tick(1)
        if r3.role is Role.LEADER:
            break
    if factory is Replica:
        assert r3.role is not Role.LEADER and leader.role is Role.LEADER
        return
    # Without the promise, r3 wins with r2 while r1's lease still runs: r1 serves a stale read.
    assert r3.role is Role.LEADER
    index = r3.propose(b"new value")
    g.process("r3")
    g.deliver()
    assert g.data("r3")[-1] == b"new value"  # acknowledged to the client
    leader.read(b"q")  # the lease still looks valid to r1 ...
    g.process("r1")
    assert g.reads["r1"][-1][1] < index  # ... and the read misses the acknowledged write


def test_a_proposal_succeeded_iff_its_index_commits_with_its_ballot() -> None:
    g = Group()
    leader = g.elect("r1")
    g.tick(2)
    g.isolate("r1")
    ballot, index = leader.promised, leader.propose(b"lost")  # never leaves r1
    g.process("r1")
    g.tick(4 * E, only=("r2", "r3"))
    new = next(r for r in g.r.values() if r.role is Role.LEADER)
    new.propose(b"winner")
    g.process(new.id)
    g.heal()
    g.tick(3 * E)
    committed = {e.index: e for e in g.applied["r1"]}
    assert committed[index].ballot != ballot and b"lost" not in g.data("r1")


def test_accept_messages_are_bounded_by_bytes() -> None:
    from paxos.replica import Replica as _Replica
    from paxos.types import Config as _Config
    from paxos.types import MessageType as _MT

    config = _Config(replica_id="a", voters=("a", "b", "c"), max_bytes_per_message=1000)
    leader = _Replica(config, lambda lo, hi: lo)
    while not leader.is_leader:  # a single replica cannot win alone: feed it its peers' promises
        leader.tick()
        rd = leader.ready()
        leader.advance(rd)
        for msg in rd.messages:
            if msg.type in (_MT.PRE_PREPARE, _MT.PREPARE):
                reply = _MT.PRE_PROMISE if msg.type is _MT.PRE_PREPARE else _MT.PROMISE
                leader.step(type(msg)(type=reply, frm=msg.to, to="a", ballot=msg.ballot,
                                      index=0, log_ballot=(0, "")))
    for _ in range(10):
        leader.propose(b"x" * 400)
    rd = leader.ready()
    accepts = [m for m in rd.early_messages if m.type is _MT.ACCEPT and m.entries]
    assert accepts, "the leader sends its entries"
    for msg in accepts:
        assert sum(len(e.data) for e in msg.entries) <= 1000 or len(msg.entries) == 1
