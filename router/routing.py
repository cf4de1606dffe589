"""The router's partition-map cache: which partition holds a key, and which replica to ask.

Pure: no I/O and no clock (times are passed in as ``now_ms``). The control plane serves the map as JSON
(``control_plane.metadata.Metadata.to_map``); ``PartitionMap.from_wire`` turns it into an immutable
snapshot built for lookups (tables by name, each table's partitions sorted by hash range, found by
bisection). ``Routing`` holds the current snapshot plus what the router learns while serving: the leader
of each partition (from answers and redirects), replicas that failed recently (skipped while a healthy
one is left), and a round-robin cursor per partition for eventually consistent reads while no leader is
known. Eventually consistent reads go to the leader when it is known: its answers are the freshest (a
follower learns a commit a heartbeat later), and fewer destinations mean fuller batches per stream.

A map never goes backwards: an older or equal version than the one held is ignored, so answers of slow
control-plane replicas are harmless.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dynamo.indexes import indexes_of
from dynamo.items import IndexSchema, KeySchema

HASH_SPACE = 1 << 64
# Statuses in which DynamoDB serves item operations; CREATING and DELETING tables answer ResourceNotFound.
SERVING_STATUSES = frozenset({"ACTIVE", "UPDATING"})


@dataclass(frozen=True, slots=True)
class PartitionRoute:
    partition_id: int
    table_id: int
    lo: int  # inclusive
    hi: int  # exclusive
    replicas: tuple[str, ...]
    parent: int = 0  # the partition it was split from (0: created with its table)

    @property
    def group(self) -> str:
        return f"p{self.partition_id}"

    def covers(self, hash64: int) -> bool:
        return self.lo <= hash64 < self.hi


@dataclass(frozen=True, slots=True)
class TableRoute:
    name: str
    table_id: int
    status: str
    key: KeySchema
    indexes: tuple[IndexSchema, ...]
    partitions: tuple[PartitionRoute, ...]  # sorted by ``lo``
    los: tuple[int, ...]  # partitions[i].lo, for bisection
    on_demand: bool = False  # BillingMode PAY_PER_REQUEST (how a throttled request is answered)
    # DynamoDB Streams (``control_plane.metadata.TableInfo``): the table's streams of the last 24 hours as
    # (enabled ms, view type, disabled ms or 0), and its partitions that split meanwhile (closed shards) as
    # (partition, parent, lo, hi, split entry's index, closed ms).
    streams: tuple[tuple[int, str, int], ...] = ()
    closed: tuple[tuple[int, int, int, int, int, int], ...] = ()
    key_schema: tuple[tuple[str, str], ...] = ()  # (AttributeName, KeyType) as CreateTable named them

    @property
    def serving(self) -> bool:
        return self.status in SERVING_STATUSES

    def partition_for(self, hash64: int) -> PartitionRoute | None:
        """The partition whose range holds ``hash64``; None if the map has a hole there (a stale map)."""
        i = bisect.bisect_right(self.los, hash64) - 1
        if i < 0:
            return None
        part = self.partitions[i]
        return part if part.covers(hash64) else None


@dataclass(frozen=True, slots=True)
class PartitionMap:
    """One immutable version of the cluster's partition map."""

    version: int
    tables: Mapping[str, TableRoute]
    nodes: Mapping[str, str]  # node name -> AZ

    @classmethod
    def empty(cls) -> PartitionMap:
        return cls(-1, {}, {})

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> PartitionMap:
        """Build from ``Metadata.to_map()`` JSON. Hash bounds travel as decimal strings (2**64 is not a
        JSON integer); a table's ``spec`` is its validated CreateTable request."""
        partitions = data.get("partitions") or {}
        tables: dict[str, TableRoute] = {}
        for name, table in (data.get("tables") or {}).items():
            spec = table["spec"]
            definitions = spec["AttributeDefinitions"]
            routes = []
            for pid in table.get("partitions") or ():
                part = partitions.get(str(pid))
                if part is None:
                    continue  # a hole: lookups there answer None and the router refreshes
                # A lost replica (its node's disk was wiped) hosts nothing until the auto-admin replaces it.
                lost = part.get("lost") or ()
                routes.append(PartitionRoute(int(pid), int(part["table_id"]), int(part["lo"]), int(part["hi"]),
                                             tuple(r for r in part["replicas"] if r not in lost),
                                             int(part.get("parent") or 0)))
            routes.sort(key=lambda p: p.lo)
            tables[name] = TableRoute(
                name=name,
                table_id=int(table["table_id"]),
                status=str(table["status"]),
                key=KeySchema.from_wire(spec["KeySchema"], definitions),
                indexes=indexes_of(spec),
                partitions=tuple(routes),
                los=tuple(p.lo for p in routes),
                on_demand=spec.get("BillingMode") == "PAY_PER_REQUEST",
                streams=tuple((int(a), str(v), int(b)) for a, v, b in table.get("streams") or ()),
                closed=tuple((int(c[0]), int(c[1]), int(c[2]), int(c[3]), int(c[4]), int(c[5]))
                             for c in table.get("closed") or ()),
                key_schema=tuple((k["AttributeName"], k["KeyType"]) for k in spec["KeySchema"]),
            )
        nodes = {name: str(info.get("az", "")) for name, info in (data.get("nodes") or {}).items()}
        return cls(int(data["version"]), tables, nodes)


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    failed_node_ttl_ms: int = 2_000  # a replica that failed is tried last for this long


class Routing:
    """The current map and the router's soft knowledge about replicas. Single-threaded (one event loop)."""

    def __init__(self, config: RoutingConfig | None = None) -> None:
        self.config = config or RoutingConfig()
        self.map = PartitionMap.empty()
        self._leaders: dict[int, str] = {}
        self._failed_until_ms: dict[str, float] = {}
        self._cursor: dict[int, int] = {}

    @property
    def version(self) -> int:
        return self.map.version

    def update(self, new: PartitionMap) -> bool:
        """Install ``new`` if it is newer than the map held; answer whether it was."""
        if new.version <= self.map.version:
            return False
        self.map = new
        # Hints for partitions that no longer exist (deleted tables, split parents) are dropped; hints
        # naming a node that is no longer a replica are dropped when read.
        live = {p.partition_id for t in new.tables.values() for p in t.partitions}
        for pid in [pid for pid in self._leaders if pid not in live]:
            del self._leaders[pid]
        for pid in [pid for pid in self._cursor if pid not in live]:
            del self._cursor[pid]
        return True

    def table(self, name: str) -> TableRoute | None:
        return self.map.tables.get(name)

    # ---- leaders -----------------------------------------------------------------------------------

    def leader_hint(self, part: PartitionRoute) -> str | None:
        leader = self._leaders.get(part.partition_id)
        return leader if leader is not None and leader in part.replicas else None

    def set_leader(self, part: PartitionRoute, node: str) -> None:
        if node in part.replicas:
            self._leaders[part.partition_id] = node

    def forget_leader(self, part: PartitionRoute, node: str | None = None) -> None:
        """Drop the hint (only if it still names ``node``, when given)."""
        if node is None or self._leaders.get(part.partition_id) == node:
            self._leaders.pop(part.partition_id, None)

    # ---- replica health ----------------------------------------------------------------------------

    def node_failed(self, node: str, now_ms: float) -> None:
        self._failed_until_ms[node] = now_ms + self.config.failed_node_ttl_ms

    def node_ok(self, node: str) -> None:
        self._failed_until_ms.pop(node, None)

    def is_suspect(self, node: str, now_ms: float) -> bool:
        until = self._failed_until_ms.get(node)
        if until is None:
            return False
        if until <= now_ms:
            del self._failed_until_ms[node]
            return False
        return True

    # ---- replica choice ----------------------------------------------------------------------------

    def order(self, part: PartitionRoute, consistent: bool, now_ms: float) -> list[str]:
        """The replicas to try, best first: every replica once, recently failed ones last.

        Everything starts at the leader hint when there is one (then the others in map order); without one,
        eventually consistent reads start at the next replica of a per-partition round robin.
        """
        replicas = part.replicas
        if not replicas:
            return []
        hint = self.leader_hint(part)
        if consistent or hint is not None:
            ordered = list(replicas) if hint is None else [hint] + [r for r in replicas if r != hint]
        else:
            start = self._cursor.get(part.partition_id, 0) % len(replicas)
            self._cursor[part.partition_id] = start + 1
            ordered = list(replicas[start:] + replicas[:start])
        healthy = [r for r in ordered if not self.is_suspect(r, now_ms)]
        if len(healthy) == len(ordered):
            return ordered
        return healthy + [r for r in ordered if r not in healthy]
