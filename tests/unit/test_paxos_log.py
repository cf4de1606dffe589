"""The log's durable/non-durable split and its conflict handling (paxos/log.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from paxos.log import Log
from paxos.types import ZERO_BALLOT, Entry, EntryKind


def e(index: int, rnd: int) -> Entry:
    return Entry(index, (rnd, "x"), EntryKind.NORMAL, f"{index}@{rnd}".encode())


def test_new_entries_are_unstable_until_stable_to() -> None:
    log = Log(0, ZERO_BALLOT, [e(1, 1)])
    assert log.stable_index == 1 and log.unstable() == ()
    log.append(e(2, 1))
    log.append(e(3, 1))
    assert [x.index for x in log.unstable()] == [2, 3]
    log.stable_to(3, (1, "x"))
    assert log.stable_index == 3 and log.unstable() == ()


def test_stable_to_ignores_a_replaced_entry() -> None:
    log = Log(0, ZERO_BALLOT, [])
    log.append(e(1, 1))
    log.append_from([e(1, 2)])  # replaced before the Ready that held (1, 1) was acknowledged
    log.stable_to(1, (1, "x"))
    assert log.stable_index == 0 and log.unstable() == (e(1, 2),)


def test_conflict_truncates_and_marks_unstable() -> None:
    log = Log(0, ZERO_BALLOT, [e(1, 1), e(2, 1), e(3, 1)])
    assert log.append_from([e(2, 2)]) == 2
    assert [x.ballot[0] for x in log.entries] == [1, 2]
    assert log.stable_index == 1


def test_matching_entries_change_nothing_even_if_shorter() -> None:
    log = Log(0, ZERO_BALLOT, [e(1, 1), e(2, 1), e(3, 1)])
    assert log.append_from([e(1, 1), e(2, 1)]) == 0
    assert log.last_index == 3 and log.stable_index == 3


def test_compact_and_restore() -> None:
    log = Log(0, ZERO_BALLOT, [e(1, 1), e(2, 1), e(3, 2)])
    log.compact(2)
    assert log.offset == 2 and log.ballot_at(2) == (1, "x") and log.ballot_at(1) is None
    assert log.slice(3, 4) == [e(3, 2)]
    log.restore(10, (5, "y"))
    assert log.last_index == 10 and log.last_ballot == (5, "y") and log.entries == []


@given(st.lists(st.tuples(st.integers(1, 8), st.lists(st.integers(1, 4), min_size=1, max_size=4)), max_size=12))
def test_append_from_keeps_the_log_contiguous_and_ballots_ordered(writes: list[tuple[int, list[int]]]) -> None:
    log = Log(0, ZERO_BALLOT, [])
    top = 0
    for start, rounds in writes:
        start = min(start, log.last_index + 1)
        top += 1  # each write comes from a newer leader whose entries all carry its ballot
        entries = [e(start + k, top) for k in range(len(rounds))]
        log.append_from(entries)
        assert [x.index for x in log.entries] == list(range(1, log.last_index + 1))
        assert all(log.entries[k].ballot <= log.entries[k + 1].ballot for k in range(len(log.entries) - 1))
        for x in entries:
            assert log.entry(x.index) == x
