"""The history checker must reject what is wrong (stale reads, lost writes, impossible interleavings) and
accept every history a correct system could produce, including ones with indeterminate operations."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from deploy.chaos.checker import (
    FINAL_CLIENT,
    RunVerdict,
    check_appends,
    check_bank,
    check_registers,
)
from deploy.chaos.history import History, Op, OpKind, Outcome, Recorder
from deploy.chaos.models import ListModel, RegisterModel, relevant_ops
from paxos.sim.linearizability import Verdict, check

OK, FAIL, INFO = Outcome.OK, Outcome.FAIL, Outcome.INFO


class H:
    """Builds a one-key history tersely: h.write("a", 0, 1); h.read("a", 2, 3)."""

    def __init__(self, key: str = "k") -> None:
        self.key = key
        self.ops: list[Op] = []

    def _add(self, kind: OpKind, value: Any, start: float, end: float, outcome: Outcome, result: Any,
             client: int | None) -> H:
        self.ops.append(Op(len(self.ops), len(self.ops) if client is None else client, kind, self.key, value,
                           start, end, outcome, result))
        return self

    def write(self, value: str, start: float, end: float, outcome: Outcome = OK, client: int | None = None) -> H:
        return self._add(OpKind.WRITE, value, start, end, outcome, None, client)

    def read(self, result: Any, start: float, end: float, client: int | None = None) -> H:
        return self._add(OpKind.READ, None, start, end, OK, result, client)

    def cas(self, expected: str | None, new: str, start: float, end: float, applied: bool | None,
            outcome: Outcome = OK) -> H:
        return self._add(OpKind.CAS, [expected, new], start, end, outcome, applied, None)

    def append(self, value: str, start: float, end: float, outcome: Outcome = OK) -> H:
        return self._add(OpKind.APPEND, value, start, end, outcome, None, None)

    def final(self, result: Any, at: float = 100.0) -> H:
        return self.read(result, at, at + 1, client=FINAL_CLIENT)

    def history(self) -> History:
        return History(list(self.ops))


def lin(h: H) -> Verdict:
    return check(RegisterModel(), h.ops).verdict


# -- register linearizability ----------------------------------------------------------------------------


def test_sequential_history_is_linearizable() -> None:
    h = H().read(None, 0, 1).write("a", 2, 3).read("a", 4, 5).cas("a", "b", 6, 7, True).read("b", 8, 9)
    assert lin(h) is Verdict.OK


def test_a_read_concurrent_with_a_write_may_see_either_value() -> None:
    assert lin(H().write("a", 0, 1).write("b", 2, 10).read("a", 3, 4).read("b", 5, 6)) is Verdict.OK
    assert lin(H().write("a", 0, 1).write("b", 2, 10).read("b", 3, 4)) is Verdict.OK


def test_concurrent_writes_may_land_in_either_order() -> None:
    h = H().write("a", 0, 10).write("b", 0, 10).read("b", 11, 12).read("b", 13, 14)
    assert lin(h) is Verdict.OK
    h = H().write("a", 0, 10).write("b", 0, 10).read("a", 11, 12)
    assert lin(h) is Verdict.OK


def test_stale_read_is_rejected() -> None:
    h = H().write("a", 0, 1).write("b", 2, 3).read("a", 4, 5)
    result = check(RegisterModel(), h.ops)
    assert result.verdict is Verdict.VIOLATION
    assert result.culprit is not None and result.culprit.result == "a"
    assert "'b'" in result.explain()


def test_read_of_a_value_before_it_was_written_is_rejected() -> None:
    assert lin(H().read("a", 0, 1).write("a", 2, 3)) is Verdict.VIOLATION


def test_non_linearizable_interleaving_is_rejected() -> None:
    # Two concurrent writes, then reads that see a, then b, then a again: no single order explains it.
    h = H().write("a", 0, 10).write("b", 0, 10).read("a", 11, 12).read("b", 13, 14).read("a", 15, 16)
    assert lin(h) is Verdict.VIOLATION


def test_reads_of_two_clients_that_disagree_on_order_while_overlapping_are_fine() -> None:
    # Concurrent reads during a concurrent write: r1 sees new, r2 (overlapping r1) sees old: allowed.
    assert lin(H().write("a", 0, 1).write("b", 2, 10).read("b", 3, 6).read("a", 4, 5)) is Verdict.OK
    # But once a read of the new value returned, a later read cannot see the old one.
    assert lin(H().write("a", 0, 1).write("b", 2, 10).read("b", 3, 4).read("a", 5, 6)) is Verdict.VIOLATION


def test_indeterminate_write_may_or_may_not_happen() -> None:
    base = H().write("a", 0, 1).write("b", 2, 3, INFO)
    assert lin(H().write("a", 0, 1).write("b", 2, 3, INFO).read("a", 4, 5)) is Verdict.OK
    assert lin(H().write("a", 0, 1).write("b", 2, 3, INFO).read("b", 4, 5)) is Verdict.OK
    # It may even land long after the client gave up on it.
    assert lin(base.read("a", 4, 5).read("a", 50, 51).read("b", 60, 61)) is Verdict.OK
    # But once seen, it cannot be undone.
    assert lin(H().write("a", 0, 1).write("b", 2, 3, INFO).read("b", 4, 5).read("a", 6, 7)) is Verdict.VIOLATION


def test_indeterminate_write_cannot_land_before_it_was_sent() -> None:
    assert lin(H().write("a", 0, 1).read("b", 2, 3).write("b", 4, 5, INFO)) is Verdict.VIOLATION


def test_failed_write_never_happened() -> None:
    assert lin(H().write("a", 0, 1).write("b", 2, 3, FAIL).read("a", 4, 5)) is Verdict.OK
    assert lin(H().write("a", 0, 1).write("b", 2, 3, FAIL).read("b", 4, 5)) is Verdict.VIOLATION


def test_compare_and_set() -> None:
    assert lin(H().write("a", 0, 1).cas("a", "b", 2, 3, True).read("b", 4, 5)) is Verdict.OK
    # A CAS cannot succeed when the register holds something else.
    assert lin(H().write("a", 0, 1).cas("x", "b", 2, 3, True)) is Verdict.VIOLATION
    # A CAS whose condition failed saw another value: it cannot fail if the value matched throughout.
    assert lin(H().write("a", 0, 1).cas("a", "b", 2, 3, False)) is Verdict.VIOLATION
    assert lin(H().write("a", 0, 1).cas("x", "b", 2, 3, False).read("a", 4, 5)) is Verdict.OK
    # An indeterminate CAS only applies where its condition holds.
    assert lin(H().write("a", 0, 1).cas("a", "b", 2, 3, None, INFO).read("b", 4, 5)) is Verdict.OK
    assert lin(H().write("a", 0, 1).cas("x", "b", 2, 3, None, INFO).read("b", 4, 5)) is Verdict.VIOLATION


def test_an_unobserved_indeterminate_write_can_explain_a_failed_cas() -> None:
    # Nobody read 'b', but the CAS expecting 'a' failed: the indeterminate write of 'b' explains it.
    h = H().write("a", 0, 1).write("b", 2, 3, INFO).cas("a", "c", 4, 5, False)
    assert lin(h) is Verdict.OK
    assert lin(H().write("a", 0, 1).cas("a", "c", 4, 5, False)) is Verdict.VIOLATION


def test_unknown_past_the_search_budget() -> None:
    h = H()
    for i in range(12):
        h.write(f"v{i}", 0, 1, INFO)
    for i in range(12):
        h.read(f"v{11 - i}", 2 + 2 * i, 3 + 2 * i)
    assert check(RegisterModel(), h.ops, max_steps=50).verdict is Verdict.UNKNOWN
    assert check(RegisterModel(), h.ops, max_steps=1_000_000).verdict is Verdict.OK
    h.read("v11", 30, 31)  # v11 came back after being overwritten: impossible
    assert check(RegisterModel(), h.ops, max_steps=50).verdict is Verdict.UNKNOWN


def test_unobserved_indeterminate_writes_cost_nothing() -> None:
    h = H().write("a", 0, 1)
    for i in range(40):
        h.write(f"lost{i}", 2, 3, INFO)
    h.read("a", 4, 5).read("b", 6, 7)
    result = check(RegisterModel(), h.ops, max_steps=1000)
    assert result.verdict is Verdict.VIOLATION
    assert result.ops_checked == 3


# -- lost writes and the per-run report -------------------------------------------------------------------


def test_lost_acknowledged_write_is_rejected() -> None:
    report = check_registers(H().write("a", 0, 1).final(None).history())
    assert report.verdict is RunVerdict.FAIL
    first = report.first_violation
    assert first is not None and first.check in ("lost write", "linearizability")
    assert any(v.check == "lost write" for v in report.violations)


def test_write_lost_behind_an_older_value_is_rejected() -> None:
    report = check_registers(H().write("a", 0, 1).write("b", 2, 3).final("a").history())
    assert report.verdict is RunVerdict.FAIL
    assert any(v.check == "lost write" and "'b'" in v.message for v in report.violations)


def test_superseded_writes_are_not_lost() -> None:
    report = check_registers(H().write("a", 0, 5).write("b", 1, 6).final("a").history())
    assert report.verdict is RunVerdict.PASS, report.summary()
    report = check_registers(H().write("a", 0, 1).write("b", 2, 3, INFO).final("b").history())
    assert report.verdict is RunVerdict.PASS, report.summary()


def test_final_value_nobody_wrote_is_rejected() -> None:
    report = check_registers(H().write("a", 0, 1).final("zzz").history())
    assert report.verdict is RunVerdict.FAIL


def test_key_without_a_final_read_is_undecided() -> None:
    report = check_registers(H().write("a", 0, 1).read("a", 2, 3).history())
    assert report.verdict is RunVerdict.UNKNOWN
    assert "final read" in report.summary()


def test_first_violation_is_the_earliest_across_keys() -> None:
    late = H("late").write("a", 0, 1).write("b", 2, 3).read("a", 40, 41).final("b")
    early = H("early").write("a", 0, 1).write("b", 2, 3).read("a", 10, 11).final("b")
    report = check_registers(History(late.ops + [o for o in early.ops]))
    first = report.first_violation
    assert first is not None and first.key == "early"
    assert "early" in report.summary()


# -- append ----------------------------------------------------------------------------------------------


def test_valid_concurrent_appends_pass() -> None:
    h = (H().append("1", 0, 5).append("2", 1, 6).read(["2"], 2, 3).read(["2", "1"], 7, 8)
         .append("3", 9, 10, INFO).final(["2", "1", "3"]))
    report = check_appends(h.history())
    assert report.verdict is RunVerdict.PASS, report.summary()


def test_an_indeterminate_append_may_land_after_later_ones() -> None:
    h = H().append("1", 0, 1, INFO).append("2", 5, 6).final(["2", "1"])
    assert check_appends(h.history()).verdict is RunVerdict.PASS
    h = H().append("1", 0, 1).append("2", 5, 6).final(["2", "1"])
    assert check_appends(h.history()).verdict is RunVerdict.FAIL


def test_lost_append_is_rejected() -> None:
    report = check_appends(H().append("1", 0, 1).append("2", 2, 3).final(["1"]).history())
    assert report.verdict is RunVerdict.FAIL
    assert "missing" in report.summary()


def test_reordered_appends_are_rejected() -> None:
    report = check_appends(H().append("1", 0, 1).append("2", 2, 3).final(["2", "1"]).history())
    assert report.verdict is RunVerdict.FAIL
    assert "reordered" in report.summary()


def test_reads_disagreeing_on_order_are_rejected() -> None:
    h = H().append("1", 0, 10).append("2", 0, 10).read(["1"], 1, 2).read(["2"], 3, 4).final(["1", "2"])
    assert check_appends(h.history()).verdict is RunVerdict.FAIL


def test_duplicate_and_phantom_elements_are_rejected() -> None:
    assert check_appends(H().append("1", 0, 1).final(["1", "1"]).history()).verdict is RunVerdict.FAIL
    assert check_appends(H().append("1", 0, 1).final(["1", "9"]).history()).verdict is RunVerdict.FAIL
    assert check_appends(H().append("1", 0, 1, FAIL).final(["1"]).history()).verdict is RunVerdict.FAIL


def test_stale_list_read_is_rejected() -> None:
    h = H().append("1", 0, 10).read(["1"], 1, 2).read([], 3, 4).final(["1"])
    report = check_appends(h.history())
    assert report.verdict is RunVerdict.FAIL
    assert "stale" in report.summary()


# -- bank ------------------------------------------------------------------------------------------------


def test_bank_total_must_stay_constant() -> None:
    good = Op(0, 1, OpKind.READ_ALL, "*", None, 0, 1, OK, {"a": 60, "b": 40})
    bad = Op(1, 1, OpKind.READ_ALL, "*", None, 2, 3, OK, {"a": 60, "b": 30})
    assert check_bank(History([good]), 100).verdict is RunVerdict.PASS
    report = check_bank(History([good, bad]), 100)
    assert report.verdict is RunVerdict.FAIL and "90" in report.summary()


# -- history recording -----------------------------------------------------------------------------------


def test_recorder_round_trip_and_unfinished_ops_become_indeterminate(tmp_path: Path) -> None:
    sink = io.BytesIO()
    rec = Recorder(sink)
    a = rec.invoke(1, OpKind.WRITE, "k", "a", 0.0)
    rec.complete(a, 1.0, OK)
    b = rec.invoke(2, OpKind.READ, "k", None, 2.0)
    rec.complete(b, 3.0, OK, "a")
    rec.invoke(3, OpKind.WRITE, "k", "c", 4.0)
    path = tmp_path / "history.jsonl"
    path.write_bytes(sink.getvalue())
    loaded = History.load(path)
    assert [o.outcome for o in loaded] == [OK, OK, INFO]
    assert loaded.ops[1].result == "a"
    assert loaded.ops == rec.history().ops


# -- property: histories produced by a correct sequential system are always accepted ----------------------


@st.composite
def register_histories(draw: st.DrawFn) -> list[Op]:
    """Ops take effect one at a time at increasing instants; each op's call and return surround its
    instant with random slack (so they overlap), some writes are indeterminate (and may land after their
    client gave up), some fail."""
    n = draw(st.integers(1, 14))
    ops: list[Op] = []
    state: str | None = None
    instant = 0.0
    for i in range(n):
        instant += draw(st.floats(0.1, 3.0))
        start = instant - draw(st.floats(0.0, 4.0))
        end = instant + draw(st.floats(0.0, 4.0))
        kind = draw(st.sampled_from([OpKind.READ, OpKind.WRITE, OpKind.CAS]))
        fate = draw(st.sampled_from([OK, OK, OK, INFO, FAIL]))
        if fate is INFO and kind is not OpKind.READ:  # the client may give up long before the write lands
            end = start + draw(st.floats(0.0, 4.0))
        if kind is OpKind.READ:
            ops.append(Op(i, i % 4, kind, "k", None, start, end, OK, state))
        elif kind is OpKind.WRITE:
            if fate is FAIL:  # a failed write takes no effect
                ops.append(Op(i, i % 4, kind, "k", f"v{i}", start, end, FAIL))
                continue
            lands = fate is OK or draw(st.booleans())
            if lands:
                state = f"v{i}"
            ops.append(Op(i, i % 4, kind, "k", f"v{i}", start, end, fate))
        else:
            expected = draw(st.sampled_from([state, f"v{max(i - 1, 0)}", None]))
            applies = expected == state
            if fate is INFO:
                if applies and draw(st.booleans()):
                    state = f"v{i}"
                ops.append(Op(i, i % 4, kind, "k", [expected, f"v{i}"], start, end, INFO))
            else:
                if applies:
                    state = f"v{i}"
                ops.append(Op(i, i % 4, kind, "k", [expected, f"v{i}"], start, end, OK, applies))
    ops.append(Op(n, FINAL_CLIENT, OpKind.READ, "k", None, instant + 10, instant + 11, OK, state))
    return ops


@settings(max_examples=150, deadline=None)
@given(register_histories())
def test_histories_from_a_sequential_register_are_accepted(ops: list[Op]) -> None:
    result = check(RegisterModel(), ops, max_steps=2_000_000)
    assert result.verdict is Verdict.OK, result.explain()
    report = check_registers(History(ops), max_steps_per_key=2_000_000)
    assert report.verdict is RunVerdict.PASS, report.summary()


@st.composite
def append_histories(draw: st.DrawFn) -> list[Op]:
    n = draw(st.integers(1, 12))
    ops: list[Op] = []
    state: list[str] = []
    instant = 0.0
    for i in range(n):
        instant += draw(st.floats(0.1, 3.0))
        start = instant - draw(st.floats(0.0, 4.0))
        end = instant + draw(st.floats(0.0, 4.0))
        if draw(st.booleans()):
            ops.append(Op(i, i % 4, OpKind.READ, "k", None, start, end, OK, list(state)))
        else:
            fate = draw(st.sampled_from([OK, OK, INFO]))
            if fate is INFO:  # the client may give up long before the append lands
                end = start + draw(st.floats(0.0, 4.0))
            if fate is OK or draw(st.booleans()):
                state.append(str(i))
            ops.append(Op(i, i % 4, OpKind.APPEND, "k", str(i), start, end, fate))
    ops.append(Op(n, FINAL_CLIENT, OpKind.READ, "k", None, instant + 10, instant + 11, OK, list(state)))
    return ops


@settings(max_examples=150, deadline=None)
@given(append_histories())
def test_histories_from_a_sequential_list_are_accepted(ops: list[Op]) -> None:
    assert check(ListModel(), ops, max_steps=2_000_000).verdict is Verdict.OK
    report = check_appends(History(ops), max_steps_per_key=2_000_000)
    assert report.verdict is RunVerdict.PASS, report.summary()


class PlainListModel:
    """The list model as written in a textbook: the whole list is the state (exponential, for reference)."""

    def init(self) -> tuple[str, ...]:
        return ()

    def step(self, state: tuple[str, ...], op: Op) -> tuple[bool, tuple[str, ...]]:
        if op.kind is OpKind.READ:
            return tuple(op.result or ()) == state, state
        return True, (*state, op.value)

    def describe(self, state: tuple[str, ...]) -> str:
        return repr(state)

    def prune(self, ops: list[Op]) -> list[Op]:
        return relevant_ops(ops)


@st.composite
def random_list_histories(draw: st.DrawFn) -> list[Op]:
    """Small histories with arbitrary (often impossible) read results."""
    n = draw(st.integers(1, 7))
    ops: list[Op] = []
    for i in range(n):
        start = draw(st.integers(0, 10))
        end = start + draw(st.integers(0, 4))
        if draw(st.booleans()):
            pool = [str(j) for j in range(n)]
            result = draw(st.lists(st.sampled_from(pool), max_size=4, unique=True))
            ops.append(Op(i, i, OpKind.READ, "k", None, start, end, OK, result))
        else:
            ops.append(Op(i, i, OpKind.APPEND, "k", str(i), start, end, draw(st.sampled_from([OK, OK, INFO]))))
    return ops


@settings(max_examples=300, deadline=None)
@given(random_list_histories())
def test_reduced_list_model_agrees_with_the_plain_one(ops: list[Op]) -> None:
    plain = check(PlainListModel(), ops, max_steps=1_000_000).verdict
    reduced = check(ListModel(), ops, max_steps=1_000_000).verdict
    assert plain is not Verdict.UNKNOWN
    assert reduced is plain
