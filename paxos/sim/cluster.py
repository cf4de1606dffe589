"""A deterministic simulation of one replication group under faults, with invariant checks after every step.

Everything random comes from one ``random.Random(seed)``; time is simulated (``TICK`` units per nominal tick),
so a seed replays exactly. Fault model (TigerBeetle's VOPR in miniature):
- crash and restart: a crashed replica loses everything not fsynced and restarts from its durable storage;
- message loss, duplication, reordering (random delays) and long delays;
- symmetric partitions (a replica cut off both ways) and one-way partitions (one direction of one link);
- clock drift: each replica ticks at its own rate within the configured bound;
- membership replacement of a voter by a brand-new replica during the run; snapshots and log compaction.
After the faulty phase the faults heal; the group must then make progress within a bounded number of ticks.
"""

from __future__ import annotations

import heapq
import json
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from paxos.errors import PaxosError
from paxos.replica import Replica, Role
from paxos.sim.linearizability import INFINITY, Op, check_register
from paxos.types import Ballot, Config, Entry, EntryKind, HardState, Message, Ready, Snapshot

TICK = 1000  # simulated time units per nominal tick

# event kinds
_TICK, _DELIVER, _CLIENT, _CRASH, _RESTART, _FAULT, _HEAL_FAULT, _REPLACE = range(8)
_EVENT_NAMES = {_TICK: "tick", _DELIVER: "deliver", _CLIENT: "client", _CRASH: "crash", _RESTART: "restart",
                _FAULT: "fault", _HEAL_FAULT: "heal", _REPLACE: "replace"}


class InvariantViolation(AssertionError):
    pass


@dataclass
class SimOptions:
    replicas: int = 3
    ticks: int = 250  # length of the faulty phase, in nominal ticks
    heal_ticks: int = 100  # the bound within which a healed group must make progress
    clients: int = 4
    client_timeout_ticks: int = 12
    keys: int = 2
    crashes: bool = True
    loss: bool = True
    duplication: bool = True
    reordering: bool = True
    long_delays: bool = True
    partitions: bool = True
    one_way_partitions: bool = True
    clock_drift: bool = True
    membership: bool = True
    compaction: bool = True
    trace_events: int = 40
    replica_factory: Callable[..., Replica] = Replica
    config_overrides: dict[str, Any] = field(default_factory=dict)


class Storage:
    """A replica's disk: what an fsync made durable, and writes still in the page cache (lost on crash)."""

    def __init__(self) -> None:
        self.hard_state = HardState()
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []  # after the snapshot
        self.buffered: list[Ready] = []

    def write(self, rd: Ready) -> None:
        self.buffered.append(rd)
        if rd.must_sync:
            self.sync()

    def sync(self) -> None:
        for rd in self.buffered:
            self._apply(rd)
        self.buffered.clear()

    def _apply(self, rd: Ready) -> None:
        if rd.snapshot is not None:
            self.snapshot = rd.snapshot
            self.entries = []
        if rd.compaction is not None and (self.snapshot is None or rd.compaction.index > self.snapshot.index):
            base = self.snapshot.index if self.snapshot else 0
            self.entries = self.entries[rd.compaction.index - base :]
            self.snapshot = rd.compaction
        if rd.entries:
            base = self.snapshot.index if self.snapshot else 0
            first = rd.entries[0].index
            assert first - base - 1 <= len(self.entries), "gap in persisted log"
            del self.entries[max(0, first - base - 1) :]
            self.entries.extend(e for e in rd.entries if e.index > base)
        if rd.hard_state is not None:
            self.hard_state = rd.hard_state


class Node:
    def __init__(self, sim: Simulation, node_id: str, voters: tuple[str, ...]) -> None:
        self.sim = sim
        self.id = node_id
        self.voters = voters
        self.storage = Storage()
        self.alive = True
        self.incarnation = 0
        self.rate = 1.0
        self.kv: dict[str, str] = {}
        self.applied = 0
        self.max_commit = 0
        self.pending_writes: dict[str, int] = {}  # op id -> client
        self.pending_reads: list[tuple[int, int, str]] = []  # (index, client, key)
        self.replica = self._make_replica(HardState(), None, [])

    def _make_replica(self, hs: HardState, snap: Snapshot | None, entries: list[Entry]) -> Replica:
        cfg = Config(self.id, self.voters, **self.sim.config_kwargs)
        return self.sim.opts.replica_factory(cfg, self.sim.rng.randint, hs, snap, list(entries))

    def crash(self) -> None:
        self.alive = False
        self.storage.buffered.clear()
        self.pending_writes.clear()
        self.pending_reads.clear()

    def restart(self) -> None:
        st = self.storage
        self.alive = True
        self.incarnation += 1
        self.replica = self._make_replica(st.hard_state, st.snapshot, st.entries)
        self.kv = json.loads(st.snapshot.data) if st.snapshot else {}
        self.applied = st.snapshot.index if st.snapshot else 0
        self.max_commit = self.replica.commit


class Simulation:
    def __init__(self, seed: int, opts: SimOptions | None = None) -> None:
        self.seed = seed
        self.opts = opts or SimOptions()
        self.rng = random.Random(seed)
        rng = self.rng
        o = self.opts
        self.config_kwargs: dict[str, Any] = dict(
            election_timeout_ticks=10, heartbeat_interval_ticks=2, max_clock_drift=0.05,
            max_entries_per_message=rng.choice([2, 8, 64]), max_inflight_messages=rng.choice([1, 4, 16]),
            max_uncommitted_entries=256, catchup_slack_entries=4,
        )
        self.config_kwargs.update(o.config_overrides)
        drift_bound = self.config_kwargs["max_clock_drift"] * 0.95
        ids = tuple(f"r{i + 1}" for i in range(o.replicas))
        self.next_id = o.replicas + 1
        self.now = 0
        self.events: list[tuple[int, int, int, Any]] = []
        self.seq = 0
        self.trace: deque[tuple[int, int, Any]] = deque(maxlen=o.trace_events)
        self.nodes: dict[str, Node] = {}
        for rid in ids:
            node = Node(self, rid, ids)
            if o.clock_drift:
                node.rate = 1.0 + rng.uniform(-drift_bound, drift_bound)
            self.nodes[rid] = node
            self._schedule(rng.randint(0, TICK), _TICK, rid)
        # network
        self.blocked: set[tuple[str, str]] = set()
        self.loss = 0.0
        self.dup = 0.0
        self.delay_lo, self.delay_hi = 20, 300 if o.reordering else 20
        self.long_delay_p = 0.0
        self.faults_on = True
        # checks
        self.chosen: dict[int, Entry] = {}
        self.leaders: dict[Ballot, str] = {}
        self.history: dict[str, list[Op]] = {f"k{i}": [] for i in range(o.keys)}
        self.compact_every = rng.choice([5, 12, 40]) if o.compaction else 0
        # clients: (op, node id, deadline, op id)
        self.client_op: list[tuple[Op, str, str] | None] = [None] * o.clients
        self.client_guess: list[str] = [rng.choice(ids) for _ in range(o.clients)]
        self.client_seq = [0] * o.clients
        self.clients_on = True
        for c in range(o.clients):
            self._schedule(rng.randint(0, 5 * TICK), _CLIENT, (c, ""))
        self._read_requests: dict[bytes, tuple[int, str]] = {}
        self.replace_done = False
        self.removed: set[str] = set()
        self.stats = {"events": 0, "messages": 0, "writes_ok": 0, "reads_ok": 0}

    # ------------------------------------------------------------------ scheduling

    def _schedule(self, delay: int, kind: int, payload: Any) -> None:
        self.seq += 1
        heapq.heappush(self.events, (self.now + delay, self.seq, kind, payload))

    def _plan_faults(self) -> None:
        o, rng = self.opts, self.rng
        end = o.ticks * TICK
        kinds = []
        if o.crashes:
            kinds += ["crash"] * 3
        if o.partitions:
            kinds += ["isolate"] * 2
        if o.one_way_partitions:
            kinds += ["oneway"] * 2
        if o.loss:
            kinds += ["loss"]
        if o.duplication:
            kinds += ["dup"]
        if o.long_delays:
            kinds += ["delay"]
        n_faults = rng.randint(4, 12) if kinds else 0
        for _ in range(n_faults):
            at = rng.randint(10 * TICK, end)
            self.seq += 1
            heapq.heappush(self.events, (at, self.seq, _FAULT, rng.choice(kinds)))
        if o.membership and rng.random() < 0.6:
            self.seq += 1
            heapq.heappush(self.events, (rng.randint(20 * TICK, end // 2 + 20 * TICK), self.seq, _REPLACE, 0))

    # ------------------------------------------------------------------ run

    def run(self) -> None:
        """Run the faulty phase, heal, and check progress. Raises InvariantViolation with a trace."""
        try:
            self._plan_faults()
            self._run_until(self.opts.ticks * TICK)
            self._heal_all()
            self._check_progress()
            self._check_logs()
            self._check_history()
        except InvariantViolation as exc:
            raise InvariantViolation(self._report(str(exc))) from None

    def _run_until(self, end: int) -> None:
        events = self.events
        while events and events[0][0] <= end:
            t, _, kind, payload = heapq.heappop(events)
            self.now = t
            self.stats["events"] += 1
            self.trace.append((t, kind, payload))
            self._dispatch(kind, payload)
        self.now = end

    def _dispatch(self, kind: int, payload: Any) -> None:
        if kind == _DELIVER:
            msg: Message = payload
            node = self.nodes.get(msg.to)
            if node is None or not node.alive or (msg.frm, msg.to) in self.blocked:
                return
            node.replica.step(msg)
            self._process(node)
        elif kind == _TICK:
            node = self.nodes[payload]
            self._schedule(int(TICK / node.rate), _TICK, node.id)
            if node.alive:
                node.replica.tick()
                self._process(node)
        elif kind == _CLIENT:
            self._client_step(payload)
        elif kind == _CRASH:
            self._crash(payload)
        elif kind == _RESTART:
            node = self.nodes[payload]
            if not node.alive:
                node.restart()
                if self.opts.clock_drift:
                    bound = self.config_kwargs["max_clock_drift"] * 0.95
                    node.rate = 1.0 + self.rng.uniform(-bound, bound)
                self._check_node(node)
                self._process(node)
        elif kind == _FAULT:
            self._start_fault(payload)
        elif kind == _HEAL_FAULT:
            self._end_fault(payload)
        elif kind == _REPLACE:
            self._try_replace()

    # ------------------------------------------------------------------ the driver loop (as a real driver)

    def _process(self, node: Node) -> None:
        r = node.replica
        while r.has_ready():
            rd = r.ready()
            node.storage.write(rd)  # 1. persist (fsync if must_sync)
            for m in rd.messages:  # 2. send
                self._send(m)
            if rd.snapshot is not None:  # 3. install, then apply
                node.kv = json.loads(rd.snapshot.data)
                node.applied = rd.snapshot.index
                self._check_snapshot(node, rd.snapshot)
            for e in rd.committed_entries:
                self._apply(node, e)
            if rd.read_states:  # 4. reads to serve once applied
                for rs in rd.read_states:
                    client, key = self._read_requests.pop(rs.request_id, (-1, ""))
                    if client >= 0:
                        node.pending_reads.append((rs.index, client, key))
            r.advance(rd)  # 5.
            if self.compact_every and node.applied - r.log.offset >= self.compact_every:
                r.compact(node.applied, json.dumps(node.kv, sort_keys=True).encode())
        if node.pending_reads:
            self._serve_reads(node)
        self._check_node(node)

    def _send(self, m: Message) -> None:
        self.stats["messages"] += 1
        rng = self.rng
        if (m.frm, m.to) in self.blocked or (self.loss and rng.random() < self.loss):
            return
        copies = 2 if self.dup and rng.random() < self.dup else 1
        for _ in range(copies):
            delay = rng.randint(self.delay_lo, self.delay_hi)
            if self.long_delay_p and rng.random() < self.long_delay_p:
                delay += rng.randint(TICK, 8 * TICK)
            self._schedule(delay, _DELIVER, m)

    def _apply(self, node: Node, e: Entry) -> None:
        if e.index != node.applied + 1:
            raise InvariantViolation(f"{node.id} applied {e.index} after {node.applied}")
        known = self.chosen.setdefault(e.index, e)
        if known != e:
            raise InvariantViolation(f"slot {e.index}: {node.id} applied {_fmt_entry(e)} but {_fmt_entry(known)} was chosen")
        node.applied = e.index
        if e.kind is EntryKind.NORMAL:
            op_id, key, value = e.data.decode().split("|")
            node.kv[key] = value
            client = node.pending_writes.pop(op_id, None)
            if client is not None:
                cur = self.client_op[client]
                if cur is not None and cur[2] == op_id:
                    cur[0].ret = self.now
                    self.stats["writes_ok"] += 1
                    self.client_op[client] = None
                    self._schedule(self.rng.randint(TICK // 5, 3 * TICK), _CLIENT, (client, ""))

    def _serve_reads(self, node: Node) -> None:
        keep = []
        for index, client, key in node.pending_reads:
            if index > node.applied:
                keep.append((index, client, key))
                continue
            cur = self.client_op[client]
            if cur is not None and not cur[0].is_write and cur[1] == node.id:
                cur[0].value = node.kv.get(key)
                cur[0].ret = self.now
                self.history[key].append(cur[0])
                self.stats["reads_ok"] += 1
                self.client_op[client] = None
                self._schedule(self.rng.randint(TICK // 5, 3 * TICK), _CLIENT, (client, ""))
        node.pending_reads = keep

    # ------------------------------------------------------------------ clients

    def _client_step(self, payload: tuple[int, str]) -> None:
        c, timeout_of = payload
        cur = self.client_op[c]
        rng = self.rng
        if timeout_of:
            if cur is None or cur[2] != timeout_of:
                return  # that operation finished in time
            # Timed out: a write's fate is unknown (it may still commit); a read had no effect.
            self.client_op[c] = None
            self.client_guess[c] = rng.choice(sorted(self.nodes))
        elif cur is not None:
            return
        if not self.clients_on:
            return
        key = f"k{rng.randrange(self.opts.keys)}"
        if rng.random() < 0.1:
            self.client_guess[c] = rng.choice(sorted(self.nodes))  # clients do not all agree on the leader
        node = self.nodes[self.client_guess[c]]
        if not node.alive:
            self.client_guess[c] = rng.choice(sorted(self.nodes))
            self._schedule(TICK, _CLIENT, (c, ""))
            return
        self.client_seq[c] += 1
        op_id = f"c{c}.{self.client_seq[c]}"
        is_write = rng.random() < 0.5
        try:
            if is_write:
                node.replica.propose(f"{op_id}|{key}|{op_id}".encode())
                op = Op(c, True, op_id, self.now, INFINITY)
                self.history[key].append(op)  # recorded at once: its fate may stay unknown
                node.pending_writes[op_id] = c
            else:
                req = op_id.encode()
                self._read_requests[req] = (c, key)
                node.replica.read(req)
                op = Op(c, False, None, self.now, INFINITY)
            self.client_op[c] = (op, node.id, op_id)
            self._schedule(self.opts.client_timeout_ticks * TICK, _CLIENT, (c, op_id))
            self._process(node)
        except PaxosError as exc:
            hint = getattr(exc, "leader_hint", "")
            if hint and hint in self.nodes:
                self.client_guess[c] = hint
            elif not hint and type(exc).__name__ == "NotLeader":
                self.client_guess[c] = rng.choice(sorted(self.nodes))
            self._schedule(rng.randint(TICK // 2, 2 * TICK), _CLIENT, (c, ""))

    # ------------------------------------------------------------------ faults

    def _crash(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if node.alive:
            node.crash()

    def _start_fault(self, kind: str) -> None:
        if not self.faults_on:
            return
        rng = self.rng
        ids = sorted(self.nodes)
        duration = rng.randint(3 * TICK, 40 * TICK)
        if kind == "crash":
            victim = rng.choice(ids)
            if self.nodes[victim].alive and sum(n.alive for n in self.nodes.values()) > 1:
                self._crash(victim)
                self._schedule(duration, _RESTART, victim)
            return
        if kind == "isolate":
            leader = self._leader()
            victim = leader.id if leader is not None and rng.random() < 0.5 else rng.choice(ids)
            pairs = {(victim, o) for o in ids if o != victim} | {(o, victim) for o in ids if o != victim}
        elif kind == "oneway":
            a, b = rng.sample(ids, 2)
            pairs = {(a, b)}
        elif kind == "loss":
            self.loss = rng.choice([0.05, 0.2, 0.4])
            self._schedule(duration, _HEAL_FAULT, ("loss", None))
            return
        elif kind == "dup":
            self.dup = rng.choice([0.1, 0.3])
            self._schedule(duration, _HEAL_FAULT, ("dup", None))
            return
        else:
            self.long_delay_p = rng.choice([0.05, 0.2])
            self._schedule(duration, _HEAL_FAULT, ("delay", None))
            return
        new = frozenset(pairs - self.blocked)
        self.blocked |= new
        self._schedule(duration, _HEAL_FAULT, ("pairs", new))

    def _end_fault(self, payload: tuple[str, Any]) -> None:
        kind, data = payload
        if kind == "pairs":
            self.blocked -= data
        elif kind == "loss":
            self.loss = 0.0
        elif kind == "dup":
            self.dup = 0.0
        else:
            self.long_delay_p = 0.0

    def _try_replace(self) -> None:
        if self.replace_done or not self.faults_on:
            return
        leader = self._leader()
        if leader is None:
            self._schedule(3 * TICK, _REPLACE, 0)
            return
        m = leader.replica.membership
        old = self.rng.choice(sorted(m.voters))
        new_id = f"r{self.next_id}"
        try:
            leader.replica.propose_replace(old, new_id)
        except PaxosError:
            self._schedule(3 * TICK, _REPLACE, 0)
            return
        self.next_id += 1
        node = Node(self, new_id, ())
        node.rate = 1.0
        self.nodes[new_id] = node
        self._schedule(self.rng.randint(0, TICK), _TICK, new_id)
        self.replace_done = True
        self.removed.add(old)
        self._process(leader)

    def _heal_all(self) -> None:
        self.faults_on = False
        self.blocked.clear()
        self.loss = self.dup = self.long_delay_p = 0.0
        for node in self.nodes.values():
            if not node.alive:
                node.restart()
                self._process(node)
        self.events = [ev for ev in self.events if ev[2] not in (_FAULT, _HEAL_FAULT, _RESTART, _CRASH, _REPLACE)]
        heapq.heapify(self.events)

    def _leader(self) -> Node | None:
        best: Node | None = None
        for node in self.nodes.values():
            if node.alive and node.replica.role is Role.LEADER:
                if best is None or node.replica.promised > best.replica.promised:
                    best = node
        return best

    # ------------------------------------------------------------------ checks

    def _check_node(self, node: Node) -> None:
        r = node.replica
        if r.commit < node.max_commit:
            raise InvariantViolation(f"{node.id} commit index went back from {node.max_commit} to {r.commit}")
        if r.commit > node.max_commit:
            lo = max(node.max_commit, r.log.offset) + 1
            for e in r.log.slice(lo, r.commit + 1):
                known = self.chosen.setdefault(e.index, e)
                if known != e:
                    raise InvariantViolation(
                        f"slot {e.index}: {node.id} committed {_fmt_entry(e)} but {_fmt_entry(known)} was chosen")
            node.max_commit = r.commit
        if r.role is Role.LEADER:
            holder = self.leaders.setdefault(r.promised, node.id)
            if holder != node.id:
                raise InvariantViolation(f"two leaders in ballot {r.promised}: {holder} and {node.id}")

    def _check_snapshot(self, node: Node, snap: Snapshot) -> None:
        known = self.chosen.get(snap.index)
        if known is not None and known.ballot != snap.ballot:
            raise InvariantViolation(f"{node.id} installed a snapshot at {snap.index} of another history")

    def _check_logs(self) -> None:
        """Every replica's committed prefix (what is still in its log) is the chosen sequence."""
        for node in self.nodes.values():
            r = node.replica
            if r.commit > r.log.offset:
                for e in r.log.slice(r.log.offset + 1, r.commit + 1):
                    if self.chosen.get(e.index, e) != e:
                        raise InvariantViolation(f"{node.id} holds {_fmt_entry(e)} at committed slot {e.index}")

    def _check_progress(self) -> None:
        """Faults healed: within heal_ticks a fresh write must commit and every voter must apply it."""
        start = self.now
        deadline = start + self.opts.heal_ticks * TICK
        self.clients_on = False
        probe_index = 0
        probe_node = None
        while self.now < deadline:
            self._run_until(self.now + TICK)
            leader = self._leader()
            if probe_index == 0 and leader is not None:
                try:
                    probe_index = leader.replica.propose(b"probe|probe|probe")
                    probe_node = leader
                    self._process(leader)
                except PaxosError:
                    pass
            if probe_index and probe_node is not None:
                if probe_node.replica.role is not Role.LEADER and probe_node.replica.commit < probe_index:
                    probe_index = 0  # lost leadership before committing: try again
                    continue
                voters = self._current_voters()
                if all(self.nodes[v].applied >= probe_index for v in voters if v in self.nodes):
                    if all(c is None for c in self.client_op) or self.now > start + 40 * TICK:
                        self._finish_clients()
                        return
        state = ", ".join(
            f"{n.id}:{n.replica.role.value} b={n.replica.promised} commit={n.replica.commit} "
            f"applied={n.applied} alive={n.alive}" for n in self.nodes.values())
        raise InvariantViolation(f"no progress within {self.opts.heal_ticks} ticks after healing: {state}")

    def _current_voters(self) -> tuple[str, ...]:
        best = max((n for n in self.nodes.values() if n.alive), key=lambda n: n.replica.commit)
        m = best.replica.membership
        return tuple(set(m.voters) | set(m.outgoing))

    def _finish_clients(self) -> None:
        for c, cur in enumerate(self.client_op):
            if cur is not None:
                self.client_op[c] = None  # pending writes stay in the history with an unknown outcome

    def _check_history(self) -> None:
        for key, ops in self.history.items():
            ok, _ = check_register(ops)
            if not ok:
                op = _locate_violation(ops)
                kind = "write" if op.is_write else "read"
                raise InvariantViolation(
                    f"history of {key} is not linearizable: it first breaks with client {op.client}'s {kind} "
                    f"{op.value!r} invoked at t={op.call / TICK:.2f}; the operations around it:\n"
                    + _fmt_history(ops, op))

    # ------------------------------------------------------------------ reporting

    def _report(self, what: str) -> str:
        lines = [f"seed {self.seed}: INVARIANT VIOLATED at t={self.now / TICK:.2f} ticks: {what}",
                 f"last {len(self.trace)} events:"]
        for t, kind, payload in self.trace:
            lines.append(f"  t={t / TICK:8.2f} {_EVENT_NAMES[kind]:8} {_fmt_payload(kind, payload)}")
        lines.append("replicas: " + "; ".join(
            f"{n.id} {n.replica.role.value} b={n.replica.promised} commit={n.replica.commit} last={n.replica.log.last_index}"
            f"{'' if n.alive else ' DOWN'}" for n in self.nodes.values()))
        lines.append(f"replay: python -m paxos.sim --seed {self.seed}" + _variant_flag(self.opts))
        return "\n".join(lines)


def _variant_flag(opts: SimOptions) -> str:
    name = getattr(opts.replica_factory, "variant_name", "")
    flags = f" --variant {name}" if name else ""
    if opts.replicas != 3:
        flags += f" --replicas {opts.replicas}"
    return flags


def _fmt_entry(e: Entry) -> str:
    return f"({e.index}, b={e.ballot[0]}.{e.ballot[1]}, {e.kind.name}, {e.data[:24]!r})"


def _fmt_payload(kind: int, payload: Any) -> str:
    if kind == _DELIVER:
        m: Message = payload
        extra = ""
        if m.entries:
            extra = f" entries={m.entries[0].index}..{m.entries[-1].index}"
        if m.reject:
            extra += " REJECT"
        return (f"{m.frm}->{m.to} {m.type.name} b={m.ballot[0]}.{m.ballot[1]} idx={m.index} "
                f"commit={m.commit}{extra}")
    return str(payload)


def _locate_violation(ops: list[Op]) -> Op:
    """The operation whose arrival first makes a prefix (by invocation time) non-linearizable."""
    by_call = sorted(ops, key=lambda o: o.call)
    lo, hi = 1, len(by_call)  # the first hi ops fail
    while lo < hi:
        mid = (lo + hi) // 2
        if check_register(by_call[:mid])[0]:
            lo = mid + 1
        else:
            hi = mid
    return by_call[hi - 1]


def _fmt_history(ops: list[Op], around: Op) -> str:
    lines = []
    by_call = sorted(ops, key=lambda o: o.call)
    i = next(k for k, o in enumerate(by_call) if o is around)
    for op in by_call[max(0, i - 10) : i + 3]:
        ret = "?" if op.ret == INFINITY else f"{op.ret / TICK:.2f}"
        lines.append(f"    client {op.client} {'write' if op.is_write else 'read '} {op.value!r} "
                     f"[{op.call / TICK:.2f}, {ret}]")
    return "\n".join(lines)


def run_seed(seed: int, opts: SimOptions | None = None) -> Simulation:
    sim = Simulation(seed, opts)
    sim.run()
    return sim
