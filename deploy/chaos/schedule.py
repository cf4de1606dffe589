"""The fault schedule of a chaos run: a pure function of the seed, the duration, the fault kinds and the
cluster's topology. The same seed always gives the same schedule (it is printed before the run starts),
so a failing run can be replayed with the same faults at the same offsets.

Faults come one at a time: a window opens (kill a node, pause it, cut or slow links), stays open a few
seconds, and closes (restart, resume, heal) before the next one opens. One broken node or AZ at a time
keeps a majority of every replication group alive, so the cluster should keep serving; what is checked
is that it never lies, and that it comes back.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

ANY = "*"
# A target resolved when the fault begins: the current leader of the workload table's partition (the
# replica whose failure matters most). The schedule stays a function of the seed; which node that is
# depends on the run, and the report says.
LEADER = "@leader"


class FaultKind(enum.StrEnum):
    KILL = "kill"  # SIGKILL, then restart when the window closes
    PAUSE = "pause"  # SIGSTOP, then SIGCONT
    PARTITION = "partition"  # cut a node or an AZ from everyone, or two AZs from each other
    SLOW = "slow"  # delay every message to and from a node or an AZ
    WIPE = "wipe"  # SIGKILL a storage node and delete its store; start it empty when the window closes

    @classmethod
    def parse_list(cls, text: str) -> tuple[FaultKind, ...]:
        """``"kill,partition"`` -> (KILL, PARTITION); ``""`` or ``"none"`` -> ()."""
        names = [n.strip().lower() for n in text.split(",") if n.strip()]
        if names == ["none"]:
            return ()
        unknown = [n for n in names if n not in {k.value for k in cls}]
        if unknown:
            raise ValueError(f"unknown fault kind(s) {unknown}: choose from {', '.join(k.value for k in cls)}")
        return tuple(dict.fromkeys(cls(n) for n in names))


ALL_FAULTS = tuple(FaultKind)
# What a run injects unless told otherwise. A wipe is asked for by name: each one makes the auto-admin
# move every replica the node held, so a run with many is mostly repairs.
DEFAULT_FAULTS = (FaultKind.KILL, FaultKind.PAUSE, FaultKind.PARTITION, FaultKind.SLOW)


@dataclass(frozen=True, slots=True)
class ScheduleTiming:
    warmup_s: float = 5.0  # no faults at first: a baseline of throughput and latency
    cooldown_s: float = 5.0  # no new faults in the last seconds before healing
    min_fault_s: float = 3.0
    max_fault_s: float = 10.0
    min_gap_s: float = 2.0
    max_gap_s: float = 6.0
    slow_delays_ms: tuple[int, ...] = (50, 100, 250, 500)
    leader_share: float = 0.5  # of node faults (kill, pause, cut one node) aimed at the current leader

    def __post_init__(self) -> None:
        assert 0 < self.min_fault_s <= self.max_fault_s, "fault windows need 0 < min <= max"
        assert 0 <= self.min_gap_s <= self.max_gap_s, "gaps need 0 <= min <= max"
        assert self.slow_delays_ms and all(d > 0 for d in self.slow_delays_ms)
        assert 0 <= self.leader_share <= 1


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """One fault: ``target`` (a node or an AZ like ``az-b``) and, for link faults, ``peer`` (``*`` or an AZ)."""

    index: int
    kind: FaultKind
    start_s: float
    end_s: float
    target: str
    peer: str = ""
    delay_ms: int = 0

    def describe(self) -> str:
        if self.kind is FaultKind.KILL:
            what = f"kill {self.target} (restart at the end)"
        elif self.kind is FaultKind.PAUSE:
            what = f"pause {self.target} (SIGSTOP, then SIGCONT)"
        elif self.kind is FaultKind.WIPE:
            what = f"wipe {self.target} (SIGKILL, delete its store, start it empty at the end)"
        elif self.kind is FaultKind.PARTITION:
            what = f"partition {self.target} <-> {self.peer}"
        else:
            what = f"slow {self.target} <-> {self.peer} +{self.delay_ms} ms"
        return f"#{self.index} t={self.start_s:6.1f}s..{self.end_s:6.1f}s  {what}"

    def label(self) -> str:
        if self.kind in (FaultKind.KILL, FaultKind.PAUSE, FaultKind.WIPE):
            return f"{self.kind.value} {self.target}"
        if self.kind is FaultKind.SLOW:
            return f"slow {self.target}|{self.peer} {self.delay_ms}ms"
        return f"cut {self.target}|{self.peer}"

    def to_json(self) -> dict[str, object]:
        return {"index": self.index, "kind": self.kind.value, "start_s": self.start_s, "end_s": self.end_s,
                "target": self.target, "peer": self.peer, "delay_ms": self.delay_ms}


def make_schedule(seed: int, duration_s: float, kinds: Iterable[FaultKind], nodes: Sequence[str],
                  azs: Sequence[str], timing: ScheduleTiming = ScheduleTiming()) -> list[FaultWindow]:
    """The faults of a run. ``nodes`` are the process names that may be killed or paused (sorted here,
    so the caller's order does not matter; only storage nodes, ``sn-*``, are wiped); ``azs`` are letters
    (``"a"``)."""
    kinds = sorted(set(kinds), key=lambda k: k.value)
    nodes = sorted(nodes)
    az_names = [f"az-{a}" for a in sorted(azs)]
    rng = random.Random(seed)
    windows: list[FaultWindow] = []
    if not kinds or not nodes:
        return windows
    t = timing.warmup_s
    last_open_s = duration_s - timing.cooldown_s
    while True:
        length = round(rng.uniform(timing.min_fault_s, timing.max_fault_s), 1)
        if t + length > last_open_s:
            break
        kind = rng.choice(kinds)
        peer, delay_ms = "", 0
        if kind in (FaultKind.KILL, FaultKind.PAUSE):
            target = LEADER if rng.random() < timing.leader_share else rng.choice(nodes)
        elif kind is FaultKind.WIPE:
            storage = [n for n in nodes if n.startswith("sn-")]
            target = LEADER if rng.random() < timing.leader_share or not storage else rng.choice(storage)
        elif kind is FaultKind.PARTITION:
            shape = rng.choice(["node", "az", "az-pair"] if len(az_names) > 1 else ["node", "az"])
            if shape == "node":
                target = LEADER if rng.random() < timing.leader_share else rng.choice(nodes)
                peer = ANY
            elif shape == "az":
                target, peer = rng.choice(az_names), ANY
            else:
                target, peer = rng.sample(az_names, 2)
        else:
            target = rng.choice(nodes + az_names)
            peer = ANY
            delay_ms = rng.choice(timing.slow_delays_ms)
        windows.append(FaultWindow(len(windows) + 1, kind, round(t, 1), round(t + length, 1), target, peer,
                                   delay_ms))
        t += length + rng.uniform(timing.min_gap_s, timing.max_gap_s)
    return windows


def timing_for(duration_s: float) -> ScheduleTiming:
    """Default timing, shrunk for short runs so a 20-second run still sees a few faults."""
    if duration_s >= 60:
        return ScheduleTiming()
    scale = max(duration_s / 60.0, 0.05)
    return ScheduleTiming(warmup_s=5.0 * scale, cooldown_s=5.0 * scale, min_fault_s=3.0 * scale,
                          max_fault_s=10.0 * scale, min_gap_s=2.0 * scale, max_gap_s=6.0 * scale)


def resolved(window: FaultWindow, node: str) -> FaultWindow:
    """The window with ``@leader`` replaced by the node it meant this time."""
    return replace(window, target=node) if window.target == LEADER else window
