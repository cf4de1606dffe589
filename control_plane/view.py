"""What the control-plane leader knows from storage-node heartbeats: soft state, never logged.

A storage node sends ``{"op": "heartbeat", ...}`` every ``admin.node_heartbeat_interval_ms``:

    {"node": "sn-a1",
     "replicas": [{"group": "p3", "role": "leader", "leader": "sn-a1",
                   "commit": 10, "applied": 10, "last": 10, "ballot": 4}, ...],
     "stats": {"p3": {"items": 5, "bytes": 300}, ...},     # from the partitions it leads
     "incarnation": "9f0c..."}                            # its disk's id (see Metadata's NodeInfo)

(``commit_index``/``applied_index``/``last_index``, ``item_count``/``size_bytes``, replicas keyed by group,
bare partition ids, and a leader's counts inside its replica entry are accepted too). A new leader starts empty and knows everything again after one heartbeat round; until then tables
show the item counts and sizes of zero (DynamoDB refreshes them only every six hours anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Bounds against a confused or hostile sender: reports beyond these are ignored.
MAX_REPLICAS_PER_HEARTBEAT = 100_000
MAX_NODES = 10_000
MAX_INCARNATION_CHARS = 64


@dataclass(frozen=True, slots=True)
class ReplicaReport:
    node: str
    group: str
    role: str  # leader | follower | candidate | learner
    leader: str
    commit: int
    applied: int
    last: int
    ballot: int
    at_ms: float  # when the heartbeat carrying it arrived (monotonic)
    # The group's membership as this replica's log has it (the leader's is the one that counts).
    voters: tuple[str, ...] = ()
    learners: tuple[str, ...] = ()
    outgoing: tuple[str, ...] = ()
    split: int = 0  # the index of the split entry this replica applied (0: none)
    wcu_per_s: float = 0.0  # write units per second over the heat window (leaders report it)


@dataclass(frozen=True, slots=True)
class Usage:
    items: int
    bytes: int
    at_ms: float


def _int(raw: dict[str, Any], *names: str) -> int:
    for name in names:
        value = raw.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return 0


def _names(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(n for n in raw[:16] if isinstance(n, str))


def _group(key: object) -> str | None:
    """A replication group's name: "p3" (or a bare partition id, 3 or "3", for the same group)."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"p{key}"
    if isinstance(key, str) and key:
        return f"p{key}" if key.isdigit() else key
    return None


class ClusterView:
    """Latest reports per node and per replica group, aged by the monotonic time of arrival."""

    def __init__(self, stale_after_ms: float) -> None:
        self.stale_after_ms = stale_after_ms
        self.last_heartbeat_ms: dict[str, float] = {}
        self.incarnations: dict[str, str] = {}  # each node's disk, as its latest heartbeat names it
        self.map_versions: dict[str, int] = {}  # the partition map each node follows, as it last said
        self._by_node: dict[str, dict[str, ReplicaReport]] = {}
        self._usage: dict[str, Usage] = {}

    def heartbeat(self, node: str, payload: dict[str, Any], now_ms: float) -> None:
        if node not in self.last_heartbeat_ms and len(self.last_heartbeat_ms) >= MAX_NODES:
            return
        self.last_heartbeat_ms[node] = now_ms
        incarnation = payload.get("incarnation")
        if isinstance(incarnation, str) and 0 < len(incarnation) <= MAX_INCARNATION_CHARS:
            self.incarnations[node] = incarnation
        if type(payload.get("map_version")) is int:
            self.map_versions[node] = payload["map_version"]
        reports: dict[str, ReplicaReport] = {}
        replicas = payload.get("replicas")
        if isinstance(replicas, dict):  # also accepted keyed by group
            replicas = [{"group": group, **raw} for group, raw in replicas.items() if isinstance(raw, dict)]
        for raw in replicas[:MAX_REPLICAS_PER_HEARTBEAT] if isinstance(replicas, list) else ():
            if not isinstance(raw, dict) or _group(raw.get("group")) is None:
                continue
            group = _group(raw["group"])
            assert group is not None
            reports[group] = ReplicaReport(
                node=node, group=group, role=str(raw.get("role") or ""), leader=str(raw.get("leader") or ""),
                commit=_int(raw, "commit", "commit_index"), applied=_int(raw, "applied", "applied_index"),
                last=_int(raw, "last", "last_index"), ballot=_int(raw, "ballot"), at_ms=now_ms,
                voters=_names(raw.get("voters")), learners=_names(raw.get("learners")),
                outgoing=_names(raw.get("outgoing")), split=_int(raw, "split"),
                wcu_per_s=float(raw["wcu_per_s"]) if isinstance(raw.get("wcu_per_s"), int | float) else 0.0,
            )
            if reports[group].role == "leader" and ("items" in raw or "item_count" in raw):
                self._record_usage(group, raw, now_ms)
        self._by_node[node] = reports
        stats = payload.get("stats")
        for key, raw in list(stats.items())[:MAX_REPLICAS_PER_HEARTBEAT] if isinstance(stats, dict) else ():
            group = _group(key)
            if group is not None and isinstance(raw, dict):
                self._record_usage(group, raw, now_ms)

    def _record_usage(self, group: str, raw: dict[str, Any], now_ms: float) -> None:
        self._usage[group] = Usage(_int(raw, "items", "item_count"), _int(raw, "bytes", "size_bytes"), now_ms)

    def forget_groups(self, live: set[str]) -> None:
        """Drop usage of groups that no longer exist (deleted tables)."""
        for group in [g for g in self._usage if g not in live]:
            del self._usage[group]

    def is_fresh(self, at_ms: float, now_ms: float) -> bool:
        return now_ms - at_ms <= self.stale_after_ms

    def reports(self, group: str) -> list[ReplicaReport]:
        return [r[group] for r in self._by_node.values() if group in r]

    def leader(self, group: str, now_ms: float) -> str:
        """The node a fresh report names as the group's leader ('' if none): its own claim first."""
        claimed = ""
        for report in self.reports(group):
            if not self.is_fresh(report.at_ms, now_ms):
                continue
            if report.role == "leader":
                return report.node
            claimed = claimed or report.leader
        return claimed

    def usage(self, groups: list[str]) -> tuple[int, int]:
        items = size = 0
        for group in groups:
            usage = self._usage.get(group)
            if usage is not None:
                items += usage.items
                size += usage.bytes
        return items, size

    def is_dead(self, node: str, now_ms: float, repair_delay_ms: float, watching_since_ms: float) -> bool:
        """Silent past the repair delay. A node never heard counts from ``watching_since_ms`` (when this
        control-plane replica became leader), so a fresh leader declares no one dead for one repair delay."""
        heard = max(self.last_heartbeat_ms.get(node, watching_since_ms), watching_since_ms)
        return now_ms - heard > repair_delay_ms

    def node_ages_ms(self, now_ms: float) -> dict[str, float]:
        return {node: now_ms - at for node, at in sorted(self.last_heartbeat_ms.items())}
