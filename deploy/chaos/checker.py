"""Checks of a recorded history, per workload. Every check says what is wrong in words a person can act on.

* register: per key, linearizability of reads, writes and compare-and-sets (the project's checker,
  ``paxos.sim.linearizability.check``, with ``RegisterModel``), and no acknowledged write lost: the final
  strongly consistent read after healing shows the last write, or one that may have come after it.
* append: per key, every read is a prefix of one common order (no reordering), contains every append
  acknowledged before the read began (no loss, no stale read), holds nothing never appended, nothing
  appended by a failed op, nothing twice; then the full linearizability search with ``ListModel``.
* bank: every snapshot of all accounts sums to the initial total, and no balance is negative.

Keys are checked independently (linearizability is compositional). The verdict is ``fail`` if any check
found a violation, ``unknown`` if some key's search ran out of budget (or a key has no final read),
else ``pass``. Violations are sorted by time; the first is what a failing run prints.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from deploy.chaos.history import History, Op, OpKind, Outcome
from deploy.chaos.models import ListModel, RegisterModel
from paxos.sim.linearizability import Model, Result, Verdict, check

# The client id of the reads made after healing (one per key, with retries until one succeeds).
FINAL_CLIENT = -1
DEFAULT_MAX_STEPS_PER_KEY = 1_000_000  # a few seconds of search on the hardest key

S = TypeVar("S", bound=Hashable)


class RunVerdict(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Violation:
    check: str  # "linearizability" | "lost write" | "append" | "bank"
    key: str
    message: str
    time_s: float  # when the offending op returned (or was invoked, if it never did): orders violations

    def describe(self) -> str:
        return f"[{self.check}] key {self.key} at t={self.time_s:.3f}s: {self.message}"


@dataclass
class CheckReport:
    workload: str
    ops: int = 0
    keys: int = 0
    violations: list[Violation] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # why some keys could not be decided
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> RunVerdict:
        if self.violations:
            return RunVerdict.FAIL
        return RunVerdict.UNKNOWN if self.unknown else RunVerdict.PASS

    @property
    def first_violation(self) -> Violation | None:
        return min(self.violations, key=lambda v: v.time_s) if self.violations else None

    def add(self, violation: Violation) -> None:
        self.violations.append(violation)

    def summary(self) -> str:
        lines = [f"checker ({self.workload}): {self.verdict.value.upper()} - {self.ops} ops on {self.keys} keys, "
                 f"{len(self.violations)} violation(s), {len(self.unknown)} undecided"]
        first = self.first_violation
        if first is not None:
            lines.append("first violation: " + first.describe())
        lines += [f"undecided: {u}" for u in self.unknown[:10]]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _when(op: Op) -> float:
    return op.end_s


def _search(report: CheckReport, key: str, model: Model[S, Op], ops: list[Op], max_steps: int) -> Result[Op]:
    """The linearizability search on one key; a violation goes into the report."""
    result = check(model, ops, max_steps)
    if result.verdict is Verdict.VIOLATION:
        assert result.culprit is not None
        report.add(Violation("linearizability", key, result.explain(), _when(result.culprit)))
    return result


def check_history(workload: str, history: History, *, bank_total: int | None = None,
                  max_steps_per_key: int = DEFAULT_MAX_STEPS_PER_KEY) -> CheckReport:
    if workload == "register":
        return check_registers(history, max_steps_per_key)
    if workload == "append":
        return check_appends(history, max_steps_per_key)
    if workload == "bank":
        assert bank_total is not None, "the bank check needs the initial total"
        return check_bank(history, bank_total)
    raise ValueError(f"unknown workload {workload!r}")


# -- register --------------------------------------------------------------------------------------------


def check_registers(history: History, max_steps_per_key: int = DEFAULT_MAX_STEPS_PER_KEY) -> CheckReport:
    report = CheckReport("register", ops=len(history))
    by_key = history.by_key()
    report.keys = len(by_key)
    for key in sorted(by_key):
        ops = sorted(by_key[key], key=lambda o: o.start_s)
        result = _search(report, key, RegisterModel(), ops, max_steps_per_key)
        if result.verdict is Verdict.UNKNOWN:
            report.unknown.append(f"key {key}: {result.explain()}")
        for violation in lost_register_writes(key, ops):
            report.add(violation)
        if not any(o.client == FINAL_CLIENT and o.outcome is Outcome.OK for o in ops):
            report.unknown.append(f"key {key}: no final read succeeded, so lost writes cannot be ruled out")
    return report


def _written(op: Op) -> str | None:
    """The value a register write leaves, if it applies."""
    if op.kind is OpKind.WRITE:
        return str(op.value)
    if op.kind is OpKind.CAS and op.result is not False:
        return str(op.value[1])
    return None


def _acknowledged(op: Op) -> bool:
    return op.outcome is Outcome.OK and (op.kind is OpKind.WRITE or (op.kind is OpKind.CAS and op.result is True))


def lost_register_writes(key: str, ops: Sequence[Op]) -> list[Violation]:
    """Each acknowledged write must be the final value, or be superseded: the final value's writer may
    have taken effect after it (it did not finish before the acknowledged write began). Writes carry
    unique values, so the final value names its writer."""
    finals = [o for o in ops if o.client == FINAL_CLIENT and o.kind is OpKind.READ and o.outcome is Outcome.OK]
    if not finals:
        return []
    final = max(finals, key=lambda o: o.end_s)
    value = final.result
    writers = [o for o in ops if o.is_write and _written(o) == value and value is not None]
    out: list[Violation] = []
    acked = [o for o in ops if _acknowledged(o)]
    if value is None:
        for w in acked:
            out.append(Violation("lost write", key, f"acknowledged write lost: {w.describe()}; the final read "
                                 f"after healing ({final.describe()}) finds no item", final.end_s))
        return out[:1] + ([Violation("lost write", key, f"... and {len(out) - 1} more acknowledged write(s) lost",
                                     final.end_s)] if len(out) > 1 else [])
    if not writers:
        return [Violation("lost write", key, f"the final read returned {value!r}, which no client ever wrote",
                          final.end_s)]
    writer = writers[0]
    if writer.outcome is Outcome.FAIL:
        return [Violation("lost write", key, f"a write that failed was applied: {writer.describe()}; "
                          f"the final read shows {value!r}", final.end_s)]
    for w in acked:
        if w is not writer and writer.effective_end_s < w.start_s:
            out.append(Violation("lost write", key, f"acknowledged write lost: {w.describe()}; the final value "
                                 f"{value!r} was written by {writer.describe()}, which finished before it began",
                                 w.end_s))
    return out


# -- append ----------------------------------------------------------------------------------------------


def check_appends(history: History, max_steps_per_key: int = DEFAULT_MAX_STEPS_PER_KEY) -> CheckReport:
    report = CheckReport("append", ops=len(history))
    by_key = history.by_key()
    report.keys = len(by_key)
    for key in sorted(by_key):
        ops = sorted(by_key[key], key=lambda o: o.start_s)
        found = append_violations(key, ops)
        for violation in found:
            report.add(violation)
        if not found:
            # The structural checks pass: confirm with the full search (it also catches subtler orders).
            if _search(report, key, ListModel(), ops, max_steps_per_key).verdict is Verdict.UNKNOWN:
                report.notes.append(f"key {key}: the full search ran out of budget; the structural checks passed")
        if not any(o.client == FINAL_CLIENT and o.outcome is Outcome.OK for o in ops):
            report.unknown.append(f"key {key}: no final read succeeded, so lost appends cannot be ruled out")
    return report


def append_violations(key: str, ops: Sequence[Op]) -> list[Violation]:
    appends: dict[str, Op] = {}
    for op in ops:
        if op.kind is OpKind.APPEND:
            assert op.value not in appends, f"append workload reused element {op.value!r}"
            appends[op.value] = op
    reads = sorted((o for o in ops if o.kind is OpKind.READ and o.outcome is Outcome.OK), key=lambda o: o.end_s)
    out: list[Violation] = []

    def bad(read: Op, message: str) -> None:
        out.append(Violation("append", key, f"{message}; seen by {read.describe()}", read.end_s))

    for read in reads:
        seen: list[str] = list(read.result or [])
        if len(set(seen)) != len(seen):
            twice = sorted({x for x in seen if seen.count(x) > 1})
            bad(read, f"element(s) {twice} appear twice (an append applied twice)")
        position = {x: i for i, x in enumerate(seen)}
        for x in seen:
            a = appends.get(x)
            if a is None:
                bad(read, f"element {x!r} was never appended")
            elif a.outcome is Outcome.FAIL:
                bad(read, f"element {x!r} comes from a failed append ({a.describe()})")
            elif a.start_s > read.end_s:
                bad(read, f"element {x!r} was appended only after the read returned ({a.describe()})")
        missing = [a for a in appends.values()
                   if a.outcome is Outcome.OK and a.end_s < read.start_s and a.value not in position]
        if missing:
            first = min(missing, key=lambda a: a.end_s)
            bad(read, f"{len(missing)} acknowledged append(s) missing (lost or stale read), first "
                      f"{first.describe()}")
        known = [appends[x] for x in seen if x in appends]
        for earlier, later in zip(known, known[1:], strict=False):
            # An indeterminate append may land any time after it was sent: only an acknowledged one can
            # be known to precede another.
            if later.effective_end_s < earlier.start_s:
                bad(read, f"appends reordered: {later.value!r} (acknowledged at t={later.end_s:.3f}s) is listed "
                          f"after {earlier.value!r}, which began only at t={earlier.start_s:.3f}s")
    # One common order: every read is a prefix of the longest one.
    if reads:
        longest: list[str] = max((list(r.result or []) for r in reads), key=len)
        for read in reads:
            seen = list(read.result or [])
            if seen != longest[:len(seen)]:
                bad(read, f"reads disagree on the order: this read {seen} is not a prefix of the longest read "
                          f"{longest}")
                break
        # Real time: a read that began after another returned sees at least as much.
        by_start = sorted(reads, key=lambda r: r.start_s)
        longest_done: Op | None = None
        done_index = 0
        by_end = reads  # sorted by end_s
        for read in by_start:
            while done_index < len(by_end) and by_end[done_index].end_s < read.start_s:
                cand = by_end[done_index]
                if longest_done is None or len(cand.result or []) > len(longest_done.result or []):
                    longest_done = cand
                done_index += 1
            if longest_done is not None and len(read.result or []) < len(longest_done.result or []):
                bad(read, f"stale read: {len(read.result or [])} element(s), but {longest_done.describe()} had "
                          f"already returned {len(longest_done.result or [])}")
    return out


# -- bank ------------------------------------------------------------------------------------------------


def check_bank(history: History, total: int) -> CheckReport:
    report = CheckReport("bank", ops=len(history), keys=1)
    for op in sorted(history, key=lambda o: o.end_s):
        if op.kind is not OpKind.READ_ALL or op.outcome is not Outcome.OK:
            continue
        balances: dict[str, int] = {k: int(v) for k, v in (op.result or {}).items()}
        got = sum(balances.values())
        if got != total:
            report.add(Violation("bank", "*", f"the accounts sum to {got}, not {total}: {op.describe()}", op.end_s))
        negative = sorted(k for k, v in balances.items() if v < 0)
        if negative:
            report.add(Violation("bank", "*", f"negative balance(s) {negative}: {op.describe()}", op.end_s))
    if not any(o.kind is OpKind.READ_ALL and o.outcome is Outcome.OK for o in history):
        report.unknown.append("no snapshot of the accounts succeeded")
    return report

