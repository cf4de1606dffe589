"""The auto-admin's pure planner: which partitions to repair, where, and when a repair is done."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from autoadmin.planner import BeginRepair, FinishRepair, PlannerLimits, plan

NODES = [f"sn-{az}{i}" for az in "abc" for i in range(1, 4)]


def state(partitions: dict[int, dict[str, Any]], dead: set[str] = frozenset(),  # type: ignore[assignment]
          reports: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "map": {"partitions": {str(pid): p for pid, p in partitions.items()}},
        "nodes": {n: {"az": n[3], "alive": n not in dead, "dead": n in dead} for n in NODES},
        "reports": reports or {},
    }


def part(*replicas: str, joining: str = "", replacing: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"replicas": list(replicas)}
    if joining:
        out.update(joining=joining, replacing=replacing)
    return out


def test_nothing_to_do_when_everyone_lives() -> None:
    assert plan(state({1: part("sn-a1", "sn-b1", "sn-c1")})) == []


def test_a_dead_replica_is_replaced_in_its_az_by_the_least_loaded_node() -> None:
    parts = {1: part("sn-a1", "sn-b1", "sn-c1"), 2: part("sn-a2", "sn-b2", "sn-c2"),
             3: part("sn-a1", "sn-b3", "sn-c3")}
    actions = plan(state(parts, dead={"sn-a1"}))
    # sn-a3 holds nothing, sn-a2 one replica: the first repair goes to sn-a3, the second spreads to sn-a2
    # (sn-a3 now holds one joiner and sorts after sn-a2 on equal load).
    assert actions == [BeginRepair(1, "sn-a1", "sn-a3"), BeginRepair(3, "sn-a1", "sn-a2")]


def test_never_when_fewer_than_two_replicas_live() -> None:
    assert plan(state({1: part("sn-a1", "sn-b1", "sn-c1")}, dead={"sn-a1", "sn-b1"})) == []


def test_no_target_in_the_az_means_no_repair() -> None:
    assert plan(state({1: part("sn-a1", "sn-b1", "sn-c1")}, dead={"sn-a1", "sn-a2", "sn-a3"})) == []


def test_one_change_per_group_and_finish_when_the_leader_says_so() -> None:
    repairing = part("sn-a1", "sn-b1", "sn-c1", joining="sn-a2", replacing="sn-a1")
    # sn-b1 died too, but the group is already changing: no second change.
    assert plan(state({1: repairing}, dead={"sn-a1", "sn-b1"})) == []
    catching_up = {"p1": {"sn-b1": {"role": "leader", "voters": ["sn-a1", "sn-b1", "sn-c1"],
                                    "learners": ["sn-a2"], "outgoing": []}}}
    assert plan(state({1: repairing}, dead={"sn-a1"}, reports=catching_up)) == []
    joint = {"p1": {"sn-b1": {"role": "leader", "voters": ["sn-a2", "sn-b1", "sn-c1"], "learners": [],
                              "outgoing": ["sn-a1", "sn-b1", "sn-c1"]}}}
    assert plan(state({1: repairing}, dead={"sn-a1"}, reports=joint)) == []
    final = {"p1": {"sn-b1": {"role": "leader", "voters": ["sn-a2", "sn-b1", "sn-c1"], "learners": [],
                              "outgoing": []}}}
    assert plan(state({1: repairing}, dead={"sn-a1"}, reports=final)) == [FinishRepair(1, "sn-a2")]
    # a follower's word is not enough
    follower = {"p1": {"sn-c1": {**final["p1"]["sn-b1"], "role": "follower"}}}
    assert plan(state({1: repairing}, dead={"sn-a1"}, reports=follower)) == []


def leader_says(voters: list[str], learners: list[str], outgoing: list[str] | None = None) -> dict[str, Any]:
    return {"p1": {"sn-b1": {"role": "leader", "voters": voters, "learners": learners, "outgoing": outgoing or []}}}


def test_a_dead_joiner_is_replaced_by_another_node_while_it_is_a_learner() -> None:
    repairing = part("sn-a1", "sn-b1", "sn-c1", joining="sn-a2", replacing="sn-a1")
    learning = leader_says(["sn-a1", "sn-b1", "sn-c1"], ["sn-a2"])
    assert plan(state({1: repairing}, dead={"sn-a1", "sn-a2"}, reports=learning)) == [
        BeginRepair(1, "sn-a1", "sn-a3")]
    # No leader report: nothing is known about the joiner, and no leader could make the swap anyway.
    assert plan(state({1: repairing}, dead={"sn-a1", "sn-a2"})) == []


def test_a_dead_joiner_that_already_votes_is_not_swapped_the_change_finishes_first() -> None:
    """The core refuses a second change once the joiner votes: retargeting then would leave the map and the
    group disagreeing for good. The group completes the change on its own majority; then the joiner is
    repaired as any dead replica."""
    repairing = part("sn-a1", "sn-b1", "sn-c1", joining="sn-a2", replacing="sn-a1")
    joint = leader_says(["sn-a2", "sn-b1", "sn-c1"], [], ["sn-a1", "sn-b1", "sn-c1"])
    assert plan(state({1: repairing}, dead={"sn-a1", "sn-a2"}, reports=joint)) == []
    final = leader_says(["sn-a2", "sn-b1", "sn-c1"], [])
    assert plan(state({1: repairing}, dead={"sn-a1", "sn-a2"}, reports=final)) == [FinishRepair(1, "sn-a2")]
    repaired = part("sn-a2", "sn-b1", "sn-c1")
    assert plan(state({1: repaired}, dead={"sn-a1", "sn-a2"}, reports=final)) == [BeginRepair(1, "sn-a2", "sn-a3")]


def test_repairs_in_progress_are_bounded() -> None:
    parts = {i: part("sn-a1", "sn-b1", "sn-c1") for i in range(1, 6)}
    assert len(plan(state(parts, dead={"sn-a1"}), PlannerLimits(max_repairs_in_progress=2))) == 2


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("123"), st.sampled_from("123"), st.sampled_from("123")),
                min_size=1, max_size=12),
       st.sets(st.sampled_from(NODES), max_size=5))
def test_properties(layout: list[tuple[str, str, str]], dead: set[str]) -> None:
    parts = {pid: part(f"sn-a{a}", f"sn-b{b}", f"sn-c{c}") for pid, (a, b, c) in enumerate(layout, 1)}
    actions = plan(state(parts, dead=dead))
    seen: set[int] = set()
    for action in actions:
        assert isinstance(action, BeginRepair)
        assert action.partition not in seen  # one change per group
        seen.add(action.partition)
        replicas = parts[action.partition]["replicas"]
        assert action.old in dead and action.old in replicas
        assert action.new not in dead and action.new not in replicas
        assert action.new[3] == action.old[3]  # same AZ
        assert sum(r not in dead for r in replicas) >= 2  # a quorum lives to complete it
    for pid, p in parts.items():
        live = [r for r in p["replicas"] if r not in dead]
        spare = any(n[3] == r[3] and n not in dead and n not in p["replicas"] for r in p["replicas"]
                    if r in dead for n in NODES)
        if len(live) >= 2 and len(live) < 3 and spare:
            assert pid in seen  # every repairable partition gets its repair
