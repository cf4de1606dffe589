"""The project's one linearizability checker: Wing & Gong's search with Lowe's memoisation, as Porcupine
(github.com/anishathalye/porcupine) does it. The simulator checks its per-key registers with it, and the
chaos runner (``deploy.chaos``) checks the histories of real clusters with it, each with its own models.

Why here: both users must be able to import it. ``paxos/`` imports nothing else of ours and ``deploy/``
may import anything, so the one folder both may use is ``paxos/``; DESIGN.md gives ``paxos/`` "its seeded
simulator and its invariant checkers", and this is one. It sits in ``paxos/sim/`` beside its first user
rather than beside the replica, but it is pure all the same (no I/O, clock or randomness) and mypy --strict
checks it with the rest of ``paxos/``.

The checker knows nothing of what an operation means. An op only has a call time, a return time
(``math.inf`` when its outcome is unknown: it may take effect at any point after its call, or never) and
a description; a ``Model`` (the sequential specification) says whether an op may happen in a state and
what state follows. Times are in whatever unit the caller uses.

The history is a list of call and return entries in time order. The search walks it: at a call, it tries
to linearize that op now (the model must accept it in the current state); if it can, the op is lifted
out of the list and the search restarts from the head; at a return whose op is not yet linearized, it
backtracks. A (set of linearized ops, state) pair seen before is never explored twice. The search
succeeds as soon as every op with a finite return is linearized, so an op of unknown outcome may also
never happen.

The search is exponential in the worst case (many overlapping ops); past ``max_steps`` it answers
``unknown`` rather than a guess. Callers keep each key's history short for that reason.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

INFINITY = math.inf


class HistoryOp(Protocol):
    """What the search needs of an operation."""

    @property
    def call_time(self) -> float: ...

    @property
    def return_time(self) -> float:
        """``math.inf`` if the outcome is unknown."""
        ...

    def describe(self) -> str: ...


S = TypeVar("S", bound=Hashable)
OpT = TypeVar("OpT", bound=HistoryOp)


class Verdict(enum.StrEnum):
    OK = "linearizable"
    VIOLATION = "not linearizable"
    UNKNOWN = "unknown"  # the search budget ran out: neither proven nor refuted


class Model(Protocol[S, OpT]):
    """A sequential specification: ``step`` says whether op may happen in ``state`` and what follows."""

    def init(self) -> S: ...

    def step(self, state: S, op: OpT) -> tuple[bool, S]: ...

    def describe(self, state: S) -> str: ...

    def prune(self, ops: list[OpT]) -> list[OpT]:
        """The ops that constrain the search. Drop what cannot (a failed op never happened) and what
        need not be searched: an indeterminate write nobody observed can always be placed last (or
        never), and each one left in multiplies the search."""
        ...


@dataclass(frozen=True)
class Result(Generic[OpT]):
    verdict: Verdict
    ops_checked: int
    steps: int
    # For a violation: the longest linearizable prefix found, the state after it, and the op the search
    # could not get past (the first op, by return time, left out of that prefix).
    prefix: tuple[OpT, ...] = ()
    state_after_prefix: str = ""
    culprit: OpT | None = None
    concurrent: tuple[OpT, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK

    def explain(self) -> str:
        if self.verdict is Verdict.OK:
            return f"linearizable ({self.ops_checked} ops, {self.steps} search steps)"
        if self.verdict is Verdict.UNKNOWN:
            return (f"unknown: the search stopped after {self.steps} steps over {self.ops_checked} ops "
                    "(too many overlapping or indeterminate ops); neither proven nor refuted")
        assert self.culprit is not None
        lines = [f"not linearizable: no order of the {self.ops_checked} ops explains {self.culprit.describe()}",
                 f"  the longest valid order has {len(self.prefix)} ops and leaves the object holding "
                 f"{self.state_after_prefix}"]
        if self.prefix:
            lines.append("  it ends with:")
            lines += [f"    {op.describe()}" for op in self.prefix[-3:]]
        if self.concurrent:
            lines.append("  ops that could have gone next:")
            lines += [f"    {op.describe()}" for op in self.concurrent[:6]]
        return "\n".join(lines)


class _Entry:
    __slots__ = ("op_index", "is_call", "prev", "next", "match")

    def __init__(self, op_index: int, is_call: bool) -> None:
        self.op_index = op_index
        self.is_call = is_call
        self.prev: _Entry | None = None
        self.next: _Entry | None = None
        self.match: _Entry | None = None  # a call's return entry


def check(model: Model[S, OpT], ops: Sequence[OpT], max_steps: int = 200_000) -> Result[OpT]:
    """Is this one object's history linearizable under ``model``? (Pass ops of ONE key.)"""
    ops = model.prune(list(ops))
    if not ops:
        return Result(Verdict.OK, 0, 0)
    # Calls before returns at equal times (as Porcupine): ops touching at an instant count as concurrent.
    events = sorted([(op.call_time, 0, i) for i, op in enumerate(ops)]
                    + [(op.return_time, 1, i) for i, op in enumerate(ops)])
    head = _Entry(-1, False)
    tail = head
    calls: dict[int, _Entry] = {}
    for _time, kind, i in events:
        is_call = kind == 0
        new_entry = _Entry(i, is_call)
        if is_call:
            calls[i] = new_entry
        else:
            calls[i].match = new_entry
        tail.next = new_entry
        new_entry.prev = tail
        tail = new_entry

    finite = [op.return_time != math.inf for op in ops]
    finite_left = sum(finite)
    state = model.init()
    linearized = 0
    cache: set[tuple[int, S]] = {(0, state)}
    stack: list[tuple[_Entry, S]] = []
    best: tuple[list[int], S] = ([], state)
    entry: _Entry | None = head.next
    steps = 0
    while finite_left > 0:
        steps += 1
        if steps > max_steps:
            return Result(Verdict.UNKNOWN, len(ops), steps)
        assert entry is not None, "ran off the end of the history with finite ops left"
        if entry.is_call:
            accepted, new_state = model.step(state, ops[entry.op_index])
            if accepted:
                new_linearized = linearized | (1 << entry.op_index)
                if (new_linearized, new_state) not in cache:
                    cache.add((new_linearized, new_state))
                    stack.append((entry, state))
                    state = new_state
                    linearized = new_linearized
                    _lift(entry)
                    if finite[entry.op_index]:
                        finite_left -= 1
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if len(stack) > len(best[0]):
                # Before the first backtrack from a new deepest point: the longest prefix so far (recorded
                # here rather than at every push, which would copy the stack each time it grows).
                best = ([e.op_index for e, _ in stack], state)
            if not stack:
                return _violation(model, ops, best, steps)
            entry, state = stack.pop()
            linearized &= ~(1 << entry.op_index)
            if finite[entry.op_index]:
                finite_left += 1
            _unlift(entry)
            entry = entry.next
    return Result(Verdict.OK, len(ops), steps)


def _lift(call: _Entry) -> None:
    ret = call.match
    assert call.prev is not None and ret is not None and ret.prev is not None
    call.prev.next = call.next
    if call.next is not None:
        call.next.prev = call.prev
    assert ret.prev is not None
    ret.prev.next = ret.next
    if ret.next is not None:
        ret.next.prev = ret.prev


def _unlift(call: _Entry) -> None:
    ret = call.match
    assert ret is not None and ret.prev is not None and call.prev is not None
    ret.prev.next = ret
    if ret.next is not None:
        ret.next.prev = ret
    call.prev.next = call
    if call.next is not None:
        call.next.prev = call


def _violation(model: Model[S, OpT], ops: list[OpT], best: tuple[list[int], S], steps: int) -> Result[OpT]:
    order, state = best
    done = set(order)
    left = sorted((i for i in range(len(ops)) if i not in done), key=lambda i: (ops[i].return_time, i))
    culprit = ops[left[0]]
    # The ops that were candidates to go next: called before the culprit returned.
    concurrent = tuple(ops[i] for i in left[1:] if ops[i].call_time <= culprit.return_time)
    return Result(Verdict.VIOLATION, len(ops), steps, prefix=tuple(ops[i] for i in order),
                  state_after_prefix=model.describe(state), culprit=culprit, concurrent=concurrent)


# -- the simulator's registers ----------------------------------------------------------------------------


@dataclass(slots=True)
class Op:
    """One simulated client operation on one key. ``value`` is what a write wrote or what a read returned
    (None: the key was never written). A write whose outcome is unknown has ``ret = INFINITY``. Times are
    the simulator's clock; ``ret`` is filled in when the answer comes."""

    client: int
    is_write: bool
    value: str | None
    call: float
    ret: float

    @property
    def call_time(self) -> float:
        return self.call

    @property
    def return_time(self) -> float:
        return self.ret

    def describe(self) -> str:
        ret = "?" if self.ret == INFINITY else f"{self.ret:g}"
        return f"client {self.client} {'write' if self.is_write else 'read'} {self.value!r} [{self.call:g}, {ret}]"


class RegisterModel:
    """A register of the simulator's ops: reads and blind writes of unique values (or nothing)."""

    def init(self) -> str | None:
        return None

    def step(self, state: str | None, op: Op) -> tuple[bool, str | None]:
        if op.is_write:
            return True, op.value
        return op.value == state, state

    def describe(self, state: str | None) -> str:
        return "nothing" if state is None else repr(state)

    def prune(self, ops: list[Op]) -> list[Op]:
        # Only writes may have an unknown outcome here (a read is recorded once answered); one whose value
        # no read returned is observed by nobody.
        seen = {o.value for o in ops if not o.is_write}
        return [o for o in ops if not (o.ret == INFINITY and o.value not in seen)]


def check_register(ops: Sequence[Op], max_steps: int = 2_000_000) -> Result[Op]:
    """Is one simulated register's history linearizable?"""
    return check(RegisterModel(), ops, max_steps)
