"""The sequential specifications of the chaos workloads' objects, for the project's linearizability
checker (``paxos.sim.linearizability.check``: Wing & Gong's search with Lowe's memoisation, shared with the
simulator; see its docstring for the search and why it lives there).

Each model's ``prune`` first keeps only the ops that constrain the search (``relevant_ops``), then drops
indeterminate writes nobody observed. The chaos workloads keep each key's history short, because the
search is exponential in the worst case.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from deploy.chaos.history import Op, OpKind, Outcome


def relevant_ops(ops: Sequence[Op]) -> list[Op]:
    """What constrains the search: every ok op, and the indeterminate writes. Failed ops never happened;
    an indeterminate read observed nothing anyone knows."""
    return [op for op in ops if op.outcome is Outcome.OK or (op.outcome is Outcome.INFO and op.is_write)]


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
        ops = relevant_ops(ops)
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
        ops = relevant_ops(ops)
        reads = [tuple(o.result or ()) for o in ops if o.kind is OpKind.READ]
        self.longest = max(reads, key=len, default=())
        self.position = {}
        for i, x in enumerate(self.longest):
            self.position.setdefault(x, i)
        seen = {x for r in reads for x in r}
        return [o for o in ops if not (o.outcome is Outcome.INFO and o.kind is OpKind.APPEND and o.value not in seen)]
