"""The recorded history of a chaos run: what each client asked, when, and what it was told.

A client records an *invoke* event before it sends a request and a *complete* event when the answer (or
the lack of one) is known. Pairing them gives one ``Op``. Times are seconds on the monotonic clock from
the start of the run, so real-time order between operations is exact within one process.

Outcomes follow Jepsen's convention:

* ``ok``: the operation happened, and ``result`` is what it saw (a read's value, whether a CAS applied);
* ``fail``: the operation definitely did not happen (a 4xx answer such as a throttle, a refused
  connection before anything was sent);
* ``info``: indeterminate. A timeout, a 5xx, a connection lost after the request went out: the write
  may have been applied, now or later. The checker lets it take effect at any point after its invocation,
  or never.

Events are JSON lines, so a history survives a crash of the runner and can be checked again later
(`ddb chaos --check <history.jsonl>`).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson


class Outcome(enum.StrEnum):
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


class OpKind(enum.StrEnum):
    READ = "read"  # result: the register's value (str | None) or the list (list[str] | None)
    WRITE = "write"  # value: the new value (unique per run)
    CAS = "cas"  # value: [expected, new]; result: True if applied, False if the condition failed
    APPEND = "append"  # value: the element appended (unique per run)
    TRANSFER = "transfer"  # bank: value [from, to, amount]; key "*"
    READ_ALL = "read_all"  # bank: result {account: balance}; key "*"


WRITES = frozenset({OpKind.WRITE, OpKind.CAS, OpKind.APPEND, OpKind.TRANSFER})


@dataclass(frozen=True, slots=True)
class Op:
    """One client operation. ``end_s`` is when the client stopped waiting (for ``info``, the moment it gave
    up: the effect may land later). ``error`` names the DynamoDB error type or the transport failure."""

    op_id: int
    client: int
    kind: OpKind
    key: str
    value: Any
    start_s: float
    end_s: float
    outcome: Outcome
    result: Any = None
    error: str | None = None

    def __post_init__(self) -> None:
        assert self.end_s >= self.start_s, f"op {self.op_id} ends before it starts"

    @property
    def is_write(self) -> bool:
        return self.kind in WRITES

    @property
    def effective_end_s(self) -> float:
        """When the op stopped being able to take effect: never, for an indeterminate one."""
        return math.inf if self.outcome is Outcome.INFO else self.end_s

    # The linearizability checker's view (``paxos.sim.linearizability.HistoryOp``).
    @property
    def call_time(self) -> float:
        return self.start_s

    @property
    def return_time(self) -> float:
        return self.effective_end_s

    @property
    def latency_ms(self) -> float:
        return (self.end_s - self.start_s) * 1000.0

    def describe(self) -> str:
        what = f"{self.kind.value} {self.key}"
        if self.kind is OpKind.CAS:
            what += f" {self.value[0]!r}->{self.value[1]!r}"
        elif self.kind is not OpKind.READ and self.kind is not OpKind.READ_ALL:
            what += f" {self.value!r}"
        if self.outcome is Outcome.OK and self.kind in (OpKind.READ, OpKind.CAS, OpKind.READ_ALL):
            what += f" => {self.result!r}"
        tail = f" ({self.error})" if self.error else ""
        return (f"op {self.op_id} client {self.client}: {what} [{self.outcome.value}{tail}] "
                f"t={self.start_s:.3f}..{self.end_s:.3f}s")

    def to_json(self) -> dict[str, Any]:
        return {"op_id": self.op_id, "client": self.client, "kind": self.kind.value, "key": self.key,
                "value": self.value, "start_s": self.start_s, "end_s": self.end_s,
                "outcome": self.outcome.value, "result": self.result, "error": self.error}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Op:
        return cls(op_id=data["op_id"], client=data["client"], kind=OpKind(data["kind"]), key=data["key"],
                   value=data["value"], start_s=data["start_s"], end_s=data["end_s"],
                   outcome=Outcome(data["outcome"]), result=data.get("result"), error=data.get("error"))


@dataclass(frozen=True, slots=True)
class Invoke:
    op_id: int
    client: int
    kind: OpKind
    key: str
    value: Any
    time_s: float


@dataclass(frozen=True, slots=True)
class Complete:
    op_id: int
    time_s: float
    outcome: Outcome
    result: Any = None
    error: str | None = None


Event = Invoke | Complete


def event_to_json(event: Event) -> dict[str, Any]:
    if isinstance(event, Invoke):
        return {"type": "invoke", "op_id": event.op_id, "client": event.client, "kind": event.kind.value,
                "key": event.key, "value": event.value, "time_s": event.time_s}
    return {"type": "complete", "op_id": event.op_id, "time_s": event.time_s, "outcome": event.outcome.value,
            "result": event.result, "error": event.error}


def event_from_json(data: dict[str, Any]) -> Event:
    if data["type"] == "invoke":
        return Invoke(data["op_id"], data["client"], OpKind(data["kind"]), data["key"], data["value"],
                      data["time_s"])
    if data["type"] == "complete":
        return Complete(data["op_id"], data["time_s"], Outcome(data["outcome"]), data.get("result"),
                        data.get("error"))
    raise ValueError(f"unknown history event type {data['type']!r}")


def pair(events: Iterable[Event]) -> list[Op]:
    """Ops from events, in invocation order. An invoke never completed (the runner died) is ``info``."""
    invokes: dict[int, Invoke] = {}
    ops: dict[int, Op] = {}
    last_time_s = 0.0
    for event in events:
        last_time_s = max(last_time_s, event.time_s)
        if isinstance(event, Invoke):
            assert event.op_id not in invokes, f"op {event.op_id} invoked twice"
            invokes[event.op_id] = event
            continue
        inv = invokes.get(event.op_id)
        assert inv is not None, f"op {event.op_id} completed but never invoked"
        assert event.op_id not in ops, f"op {event.op_id} completed twice"
        ops[event.op_id] = Op(inv.op_id, inv.client, inv.kind, inv.key, inv.value, inv.time_s, event.time_s,
                              event.outcome, event.result, event.error)
    for op_id, inv in invokes.items():
        if op_id not in ops:
            ops[op_id] = Op(inv.op_id, inv.client, inv.kind, inv.key, inv.value, inv.time_s,
                            max(last_time_s, inv.time_s), Outcome.INFO, None, "never completed")
    return [ops[i] for i in invokes]


@dataclass
class History:
    """The ops of one run (any order; checkers sort what they need)."""

    ops: list[Op] = field(default_factory=list)

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    def by_key(self) -> dict[str, list[Op]]:
        out: dict[str, list[Op]] = {}
        for op in self.ops:
            out.setdefault(op.key, []).append(op)
        return out

    def with_ops(self, ops: Iterable[Op]) -> History:
        return History(list(ops))

    @classmethod
    def load(cls, path: Path) -> History:
        events = [event_from_json(orjson.loads(line)) for line in path.read_bytes().splitlines() if line.strip()]
        return cls(pair(events))


class Recorder:
    """Hands out op ids and writes events as they happen (one JSON line each, flushed per event so a
    killed runner leaves a usable history). Single-threaded: asyncio clients share one recorder."""

    def __init__(self, sink: IO[bytes] | None = None) -> None:
        self.sink = sink
        self.events: list[Event] = []
        self._next_id = 0

    def invoke(self, client: int, kind: OpKind, key: str, value: Any, time_s: float) -> int:
        op_id = self._next_id
        self._next_id += 1
        self._emit(Invoke(op_id, client, kind, key, value, time_s))
        return op_id

    def complete(self, op_id: int, time_s: float, outcome: Outcome, result: Any = None,
                 error: str | None = None) -> None:
        self._emit(Complete(op_id, time_s, outcome, result, error))

    def _emit(self, event: Event) -> None:
        self.events.append(event)
        if self.sink is not None:
            self.sink.write(orjson.dumps(event_to_json(event)) + b"\n")
            self.sink.flush()

    def history(self) -> History:
        return History(pair(self.events))

