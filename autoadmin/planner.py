"""What the auto-admin should do next, decided from one look at the control plane: pure, no I/O.

Input is the control plane's ``admin_state`` answer (``proto.kinds.ControlOp.ADMIN_STATE``): the partition
map (replicas, and ``joining``/``replacing`` for a repair under way), node liveness (``dead`` = silent past
the repair delay) and each group's replica reports (role and membership as each replica's log has it).

Rules (repair):
- A replica is gone when its node is dead or the map marks it ``lost`` (its node came back with a wiped
  disk and must never vote in the group again).
- A partition with a gone replica gets one replacement: a live node of the same AZ that holds no
  replica of it, the least loaded (replicas plus joiners it hosts), ties by name.
- At most one membership change per group: a partition already repairing is only finished or retargeted.
- Never below 2 live replicas by our own action: we only replace dead replicas, and not at all when fewer
  than 2 replicas are live (no quorum could complete the change; a human or the returning nodes must act).
- A repair is finished (the map flipped) once the group's leader reports the joiner as a voter, the old
  replica gone and no joint configuration or learner left.
- A repair whose joiner died or was lost is retargeted to another node of the same AZ, but only while the
  group's leader reports the joiner as a learner: swapping a learner is safe, and the core refuses any other
  change once the joiner votes (joint or final configuration). A joiner that already votes is seen through:
  the group completes the change on its own majority, the repair finishes, and the joiner is then repaired
  as any dead or lost replica.

Rules (split):
- By size: a partition whose leader reports at least ``policy.split_size_bytes``; by heat: a partition
  whose leader reports at least ``policy.split_heat_wcu`` write units per second sustained over the heat
  window (the storage node averages over the whole window). The split point comes from the leader
  (``ProposeSplit``: the app asks it), so the planner only says which partition and why.
- Not while the partition is repairing or has a replica on a dead node (repair first), at most one change
  per group, and a bounded number of splits under way.
- A split is finished (the map flipped to the children) once a majority of the partition's replicas report
  the split entry applied. A replica that has not applied it when the map flips drops the parent and joins
  the children as a learner, waiting for a snapshot from their leader; were two of three such learners,
  the children could elect no leader (a learner has no vote) until a repair replaced them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class BeginRepair:
    partition: int
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class FinishRepair:
    partition: int
    new: str


@dataclass(frozen=True, slots=True)
class ProposeSplit:
    partition: int
    reason: str  # "size" | "heat"
    leader: str  # the node to ask for the split point


@dataclass(frozen=True, slots=True)
class FinishSplit:
    partition: int
    index: int = 0  # where the parent's log holds its split entry (the parent's stream shard ends there)


Action = BeginRepair | FinishRepair | ProposeSplit | FinishSplit


@dataclass(frozen=True, slots=True)
class PlannerLimits:
    max_repairs_in_progress: int = 64  # membership changes under way at once, cluster-wide
    max_splits_in_progress: int = 8


def _leader_report(reports: dict[str, Any]) -> dict[str, Any] | None:
    for report in reports.values():
        if report.get("role") == "leader" and report.get("fresh", True):
            return dict(report)
    return None


def membership_done(reports: dict[str, Any], old: str, new: str) -> bool:
    """The group's leader runs the final configuration with ``new`` in place of ``old``."""
    leader = _leader_report(reports)
    if leader is None:
        return False
    voters = leader.get("voters") or []
    return new in voters and old not in voters and not leader.get("outgoing") and not leader.get("learners")


def _still_learning(reports: dict[str, Any], joiner: str) -> bool:
    """The group's leader reports ``joiner`` as a learner (not yet counted in any configuration)."""
    leader = _leader_report(reports)
    return leader is not None and joiner in (leader.get("learners") or []) and joiner not in (
        *(leader.get("voters") or []), *(leader.get("outgoing") or []))


def plan(state: dict[str, Any], limits: PlannerLimits = PlannerLimits()) -> list[Action]:
    partition_map = state["map"]
    nodes: dict[str, dict[str, Any]] = state["nodes"]
    reports: dict[str, dict[str, Any]] = state.get("reports") or {}
    parts: dict[int, dict[str, Any]] = {int(pid): p for pid, p in partition_map["partitions"].items()}

    def usable(name: str) -> bool:
        node = nodes.get(name)
        return node is not None and bool(node.get("alive")) and not node.get("dead")

    def dead(name: str) -> bool:
        node = nodes.get(name)
        return node is None or bool(node.get("dead"))

    load = {name: 0 for name in nodes}
    for part in parts.values():
        for name in [*part["replicas"], part.get("joining") or ""]:
            if name in load:
                load[name] += 1

    def target(part: dict[str, Any], old: str, exclude: set[str]) -> str | None:
        az = nodes[old]["az"] if old in nodes else None
        taken = set(part["replicas"]) | exclude
        candidates = sorted((load[n], n) for n, info in nodes.items()
                            if info.get("az") == az and n not in taken and usable(n))
        if not candidates:
            return None
        chosen = candidates[0][1]
        load[chosen] += 1
        return chosen

    actions: list[Action] = []
    in_progress = sum(1 for p in parts.values() if p.get("joining"))
    splitting = sum(1 for p in parts.values() if p.get("split"))
    policy = state.get("policy") or {}
    usage: dict[str, list[int]] = state.get("usage") or {}
    for pid in sorted(parts):
        part = parts[pid]
        joining, replacing = part.get("joining") or "", part.get("replacing") or ""
        lost = set(part.get("lost") or ())
        group_reports = reports.get(f"p{pid}") or {}
        if part.get("split"):
            applied = [int(r.get("split") or 0) for r in group_reports.values() if r.get("split")]
            if len(applied) > len(part.get("replicas") or ()) // 2:
                actions.append(FinishSplit(pid, max(applied)))
            continue
        if joining:
            if membership_done(group_reports, replacing, joining):
                actions.append(FinishRepair(pid, joining))
            elif (dead(joining) or joining in lost) and _still_learning(group_reports, joining):
                new = target(part, replacing, {joining})
                if new is not None:
                    actions.append(BeginRepair(pid, replacing, new))
            continue
        gone = sorted(r for r in part["replicas"] if dead(r) or r in lost)
        if not gone:
            leader = _leader_report(group_reports)
            if leader is None or splitting >= limits.max_splits_in_progress:
                continue
            leader_name = next(n for n, r in group_reports.items() if r.get("role") == "leader")
            size = (usage.get(f"p{pid}") or [0, 0])[1]
            if policy.get("split_size_bytes") and size >= policy["split_size_bytes"]:
                actions.append(ProposeSplit(pid, "size", leader_name))
                splitting += 1
            elif policy.get("split_heat_wcu") and float(leader.get("wcu_per_s") or 0) >= policy["split_heat_wcu"]:
                actions.append(ProposeSplit(pid, "heat", leader_name))
                splitting += 1
            continue
        if len(part["replicas"]) - len(gone) < 2:
            continue
        if in_progress >= limits.max_repairs_in_progress:
            continue
        new = target(part, gone[0], set())
        if new is not None:
            actions.append(BeginRepair(pid, gone[0], new))
            in_progress += 1
    return actions
