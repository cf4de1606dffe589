"""Quorum arithmetic, plain and joint (paxos/quorum.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from paxos.quorum import VoteResult, committed_index, has_quorum, majority_index, vote_result
from paxos.types import Membership

IDS = ["a", "b", "c", "d", "e"]


def test_majority_index_of_three() -> None:
    assert majority_index(["a", "b", "c"], {"a": 5, "b": 3, "c": 9}) == 5
    assert majority_index(["a", "b", "c"], {"a": 5}) == 0  # missing voters count as 0


def test_joint_needs_both_halves() -> None:
    joint = Membership(("a", "b", "d"), outgoing=("a", "b", "c"))
    # a and c are a majority of the outgoing half only
    assert committed_index(joint, {"a": 7, "c": 7, "b": 1, "d": 1}) == 1
    assert committed_index(joint, {"a": 7, "b": 7}) == 7
    assert not has_quorum(joint, {"a", "c"})
    assert has_quorum(joint, {"a", "b"})
    assert vote_result(joint, {"a"}, {"b", "c"}) is VoteResult.LOST
    assert vote_result(joint, {"a", "d"}, {"c"}) is VoteResult.PENDING


@given(st.lists(st.sampled_from(IDS), min_size=1, max_size=5, unique=True),
       st.dictionaries(st.sampled_from(IDS), st.integers(0, 20)))
def test_majority_index_is_reached_by_a_majority_and_no_higher_value_is(voters: list[str], acked: dict[str, int]) -> None:
    idx = majority_index(voters, acked)
    reached = [v for v in voters if acked.get(v, 0) >= idx]
    assert len(reached) > len(voters) // 2
    beyond = [v for v in voters if acked.get(v, 0) >= idx + 1]
    assert len(beyond) <= len(voters) // 2


@given(st.lists(st.sampled_from(IDS), min_size=1, max_size=5, unique=True),
       st.sets(st.sampled_from(IDS)), st.sets(st.sampled_from(IDS)))
def test_any_two_winning_vote_sets_intersect(voters: list[str], g1: set[str], g2: set[str]) -> None:
    m = Membership(tuple(voters))
    if vote_result(m, g1, ()) is VoteResult.WON and vote_result(m, g2, ()) is VoteResult.WON:
        assert g1 & g2 & set(voters)


@given(st.sets(st.sampled_from(IDS)), st.sets(st.sampled_from(IDS)))
def test_vote_result_is_consistent(granted: set[str], rejected: set[str]) -> None:
    m = Membership(("a", "b", "c"), outgoing=("a", "b", "d"))
    rejected -= granted
    result = vote_result(m, granted, rejected)
    if result is VoteResult.WON:
        assert has_quorum(m, granted)
    if result is VoteResult.LOST:  # even with every undecided voter granting, no quorum
        assert not has_quorum(m, set(IDS) - rejected)


def test_membership_round_trips() -> None:
    for m in (Membership(("a",)), Membership(("a", "b", "c"), ("a", "b", "d"), ("e",), "c")):
        assert Membership.decode(m.encode()) == m
