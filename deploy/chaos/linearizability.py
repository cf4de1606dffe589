"""Linearizability of one object's history: Wing & Gong's search with Lowe's memoisation, as Porcupine
(github.com/anishathalye/porcupine) does it.

The history is a list of call and return entries in time order. The search walks it: at a call, it tries
to linearize that op now (the model must accept it in the current state); if it can, the op is lifted
out of the list and the search restarts from the head; at a return whose op is not yet linearized, it
backtracks. A (set of linearized ops, state) pair seen before is never explored twice. An indeterminate
op (``info``) returns at infinity, so it may take effect anywhere after its call; the search succeeds as
soon as every op with a known outcome is linearized, so an indeterminate op may also never happen.

The search is exponential in the worst case (many overlapping ops); past ``max_steps`` it answers
``unknown`` rather than a guess. The chaos workloads keep each key's history short for that reason.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from deploy.chaos.history import Op, OpKind, Outcome

S = TypeVar("S", bound=Hashable)


class Verdict(enum.StrEnum):
    OK = "linearizable"
    VIOLATION = "not linearizable"
    UNKNOWN = "unknown"  # the search budget ran out: neither proven nor refuted


class Model(Protocol[S]):
    """A sequential specification: ``step`` says whether op may happen in ``state`` and what follows."""

    def init(self) -> S: ...

    def step(self, state: S, op: Op) -> tuple[bool, S]: ...

    def describe(self, state: S) -> str: ...

    def prune(self, ops: list[Op]) -> list[Op]:
        """Drop indeterminate writes nobody observed: they can always be placed last (or never), and each
        one left in multiplies the search."""
        ...


class RegisterModel:
    """A register holding a string or nothing: reads, blind writes, and compare-and-set (a conditional
    PutItem). A CAS whose condition failed (``result`` False) is a read that saw something else."""

    def init(self) -> str | None:
        return None

    def step(self, state: str | None, op: Op) -> tuple[bool, str | None]:
        if op.kind is OpKind.READ:
            return op.result == state, state
        if op.kind is OpKind.WRITE:
            return True, op.value
        if op.kind is OpKind.CAS:
            expected, new = op.value
            if op.outcome is Outcome.OK and op.result is False:
                return state != expected, state
            return state == expected, new if state == expected else state
        raise AssertionError(f"a register has no {op.kind} operation")

    def describe(self, state: str | None) -> str:
        return "nothing (no item)" if state is None else repr(state)

    def prune(self, ops: list[Op]) -> list[Op]:
        # A value is observed by a read that returned it or by any CAS that expected it (one that applied
        # needs it; keeping the others is merely conservative). A CAS whose condition failed observed
        # "anything but its expected value", which any write may explain: an indeterminate write stays if
        # such a CAS could come after it.
        seen = {o.result for o in ops if o.kind is OpKind.READ} | {o.value[0] for o in ops if o.kind is OpKind.CAS}
        failed_cas_ends = [o.end_s for o in ops if o.kind is OpKind.CAS and o.outcome is Outcome.OK and o.result is False]
        last_failed_cas_s = max(failed_cas_ends, default=-math.inf)
        return [o for o in ops if not (o.outcome is Outcome.INFO and _written_value(o) not in seen
                                       and o.start_s > last_failed_cas_s)]


def _written_value(op: Op) -> str | None:
    if op.kind is OpKind.WRITE:
        return str(op.value)
    if op.kind is OpKind.CAS:
        return str(op.value[1])
    return None


class ListModel:
    """A list that grows by appends (UpdateItem list_append); reads return the whole list.

    Searched in a reduced form that is equivalent for histories whose elements are unique. Every read
    returns a prefix of the final list, so the longest read ``L`` fixes the order of every element anyone
    saw; an append nobody saw must come after every read (else a read would show it), hence after every
    seen append too. The state is therefore just ``(n, tail)``: the first n elements of L are in, and
    whether an unseen append has happened. That keeps states small and makes the order of unseen appends
    irrelevant, where the plain list model would try every permutation. ``prune`` learns L from the
    history, so use one ListModel per key.
    """

    def __init__(self) -> None:
        self.longest: tuple[str, ...] = ()
        self.position: dict[str, int] = {}

    def init(self) -> tuple[int, bool]:
        return (0, False)

    def step(self, state: tuple[int, bool], op: Op) -> tuple[bool, tuple[int, bool]]:
        n, tail = state
        if op.kind is OpKind.READ:
            seen = tuple(op.result or ())
            return (not tail and len(seen) == n and seen == self.longest[:n]), state
        if op.kind is OpKind.APPEND:
            where = self.position.get(op.value)
            if where is None:
                return True, (n, True)
            return (not tail and where == n), (n + 1, False)
        raise AssertionError(f"a list has no {op.kind} operation")

    def describe(self, state: tuple[int, bool]) -> str:
        n, tail = state
        return repr(list(self.longest[:n])) + (" followed by appends no read saw" if tail else "")

    def prune(self, ops: list[Op]) -> list[Op]:
        reads = [tuple(o.result or ()) for o in ops if o.kind is OpKind.READ]
        self.longest = max(reads, key=len, default=())
        self.position = {}
        for i, x in enumerate(self.longest):
            self.position.setdefault(x, i)
        seen = {x for r in reads for x in r}
        return [o for o in ops if not (o.outcome is Outcome.INFO and o.kind is OpKind.APPEND and o.value not in seen)]


@dataclass(frozen=True)
class Result(Generic[S]):
    verdict: Verdict
    ops_checked: int
    steps: int
    # For a violation: the longest linearizable prefix found, the state after it, and the op the search
    # could not get past (the first op, by return time, left out of that prefix).
    prefix: tuple[Op, ...] = ()
    state_after_prefix: str = ""
    culprit: Op | None = None
    concurrent: tuple[Op, ...] = field(default=())

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


def relevant_ops(ops: Sequence[Op]) -> list[Op]:
    """What constrains the search: every ok op, and the indeterminate writes. Failed ops never happened;
    an indeterminate read observed nothing anyone knows."""
    return [op for op in ops if op.outcome is Outcome.OK or (op.outcome is Outcome.INFO and op.is_write)]


def check(model: Model[S], ops: Sequence[Op], max_steps: int = 200_000) -> Result[S]:
    """Is this one object's history linearizable under ``model``? (Pass ops of ONE key.)"""
    ops = model.prune(relevant_ops(ops))
    if not ops:
        return Result(Verdict.OK, 0, 0)
    # Calls before returns at equal times (as Porcupine): ops touching at an instant count as concurrent.
    events = sorted([(op.start_s, 0, i) for i, op in enumerate(ops)]
                    + [(op.effective_end_s, 1, i) for i, op in enumerate(ops)])
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

    finite_left = sum(1 for op in ops if op.effective_end_s != math.inf)
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
            op = ops[entry.op_index]
            accepted, new_state = model.step(state, op)
            if accepted:
                new_linearized = linearized | (1 << entry.op_index)
                if (new_linearized, new_state) not in cache:
                    cache.add((new_linearized, new_state))
                    stack.append((entry, state))
                    state = new_state
                    linearized = new_linearized
                    _lift(entry)
                    if op.effective_end_s != math.inf:
                        finite_left -= 1
                    if len(stack) > len(best[0]):
                        best = ([e.op_index for e, _ in stack], state)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if not stack:
                return _violation(model, ops, best, steps)
            entry, state = stack.pop()
            linearized &= ~(1 << entry.op_index)
            if ops[entry.op_index].effective_end_s != math.inf:
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


def _violation(model: Model[S], ops: list[Op], best: tuple[list[int], S], steps: int) -> Result[S]:
    order, state = best
    done = set(order)
    left = sorted((i for i in range(len(ops)) if i not in done), key=lambda i: (ops[i].effective_end_s, i))
    culprit = ops[left[0]]
    # The ops that were candidates to go next: called before the culprit returned.
    concurrent = tuple(ops[i] for i in left[1:] if ops[i].start_s <= culprit.effective_end_s)
    return Result(Verdict.VIOLATION, len(ops), steps, prefix=tuple(ops[i] for i in order),
                  state_after_prefix=model.describe(state), culprit=culprit, concurrent=concurrent)
