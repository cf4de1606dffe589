"""The control plane's replicated state: tables, partitions and their replica sets, storage nodes.

This is the state machine the control-plane Paxos group applies. Every change is a command decided by the
leader (which picks ids and placements *before* proposing, so applying is deterministic) and applied in log
order on all three control-plane replicas. Node liveness is soft state kept by the leader, not logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import orjson

HASH_SPACE = 1 << 64
MAX_HISTORY = 50  # repairs and splits remembered for `ddb status`
STREAM_RETENTION_MS = 24 * 3600 * 1000  # a disabled stream and a closed shard are forgotten after this


class MetadataError(Exception):
    """A command that cannot apply to the current state (for example the table already exists)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "ResourceInUse" | "ResourceNotFound" | "LimitExceeded" | "Validation"
        self.message = message


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    az: str
    address: str  # host:port of its gRPC server
    # The identity of the node's disk (a random id its store keeps from the day it was created), as the
    # node's heartbeats tell it; "" until the first heartbeat. A node hosts no replica until the map
    # records its incarnation, so a new one under a known name means its disk was wiped.
    incarnation: str = ""


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    partition_id: int
    table_id: int
    hash_lo: int  # inclusive
    hash_hi: int  # exclusive; HASH_SPACE for the last partition
    replicas: tuple[str, ...]  # node names, one per AZ: the voters routers send to
    # A repair under way: ``joining`` (a learner until the group's membership change completes) takes the
    # place of ``replacing`` (one of ``replicas``). Both empty when none is.
    joining: str = ""
    replacing: str = ""
    # A split under way: (first hash of the right child, left child id, right child id); None when none is.
    split: tuple[int, int, int] | None = None
    parent: int = 0  # the partition this one was split from (0: created with its table)
    # Replicas (of ``replicas`` or ``joining``) whose node came back with a wiped disk: they lost the log
    # and the promises the group counted on, so they must never vote in it again. The node does not host
    # the partition, routers skip it, and the auto-admin replaces it as it would a dead one.
    lost: tuple[str, ...] = ()

    @property
    def group(self) -> str:
        return f"p{self.partition_id}"

    def covers(self, hash64: int) -> bool:
        return self.hash_lo <= hash64 < self.hash_hi


@dataclass(frozen=True, slots=True)
class TableInfo:
    table_id: int
    name: str
    spec: dict[str, Any]  # the validated CreateTable request, as the client sent it
    status: str  # CREATING | ACTIVE | UPDATING | DELETING
    created_at: float  # seconds since the epoch, chosen by the leader
    table_uuid: str
    tags: dict[str, str] = field(default_factory=dict)
    partition_ids: tuple[int, ...] = ()
    # When throughput or billing last changed (seconds since the epoch), keyed by DynamoDB's field names:
    # LastIncreaseDateTime, LastDecreaseDateTime, LastUpdateToPayPerRequestDateTime.
    history: dict[str, float] = field(default_factory=dict)
    # Time to live: the attribute whose Number (epoch seconds) expires an item, "" when TTL is disabled,
    # and when it was last enabled or disabled (seconds since the epoch; UpdateTimeToLive has a cooldown).
    ttl_attribute: str = ""
    ttl_changed_at: float = 0.0
    # DynamoDB Streams: the table's streams of the last ``STREAM_RETENTION_MS``, oldest first, as (when it was
    # enabled, its view type, when it was disabled or 0 while it is on) in ms since the epoch.
    streams: tuple[tuple[int, str, int], ...] = ()
    # Its partitions that split in that time, the streams' closed shards: (partition id, its parent or 0,
    # lo, hi, the log index of its split entry, when the map flipped to its children in ms).
    closed: tuple[tuple[int, int, int, int, int, int], ...] = ()

    @property
    def stream(self) -> tuple[int, str] | None:
        """(enabled ms, view type) of the stream that is on, if one is."""
        if self.streams and not self.streams[-1][2]:
            return self.streams[-1][0], self.streams[-1][1]
        return None


@dataclass(slots=True)
class Metadata:
    """The whole control-plane state. Mutated only by ``apply``."""

    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    tables: dict[str, TableInfo] = field(default_factory=dict)
    partitions: dict[int, PartitionInfo] = field(default_factory=dict)
    next_table_id: int = 1
    next_partition_id: int = 1
    map_version: int = 0
    applied_index: int = 0
    # The auto-admin lease: (holder, until in wall-clock ms chosen by the cp leader). One active auto-admin.
    admin_lease: tuple[str, float] = ("", 0.0)
    # Recent repairs and splits, newest last (bounded by MAX_HISTORY).
    history: list[dict[str, Any]] = field(default_factory=list)

    # ---- queries -------------------------------------------------------------------------------------

    def table_partitions(self, name: str) -> list[PartitionInfo]:
        table = self.tables[name]
        return [self.partitions[pid] for pid in table.partition_ids]

    def replicas_per_node(self) -> dict[str, int]:
        load = {name: 0 for name in self.nodes}
        for part in self.partitions.values():
            for node in part.replicas:
                load[node] = load.get(node, 0) + 1
        return load

    def place_partitions(self, count: int, avoid: frozenset[str] = frozenset()
                         ) -> list[tuple[str, str, tuple[str, ...]]]:
        """Split the hash space evenly into ``count`` ranges and choose one node per AZ for each.

        The least-loaded node of each AZ gets the next replica (ties by name), so replicas spread evenly;
        nodes in ``avoid`` (the leader's view: not heard lately, or hosting nothing yet) only when their AZ
        has no other. A dead node holds no replicas once repaired, so it would otherwise be chosen first.
        Bounds travel as decimal strings: 2**64 does not fit a JSON integer.
        """
        azs = sorted({n.az for n in self.nodes.values()})
        if len(azs) < 3:
            raise MetadataError("LimitExceeded", f"need storage nodes in 3 AZs, have {len(azs)}")
        load = self.replicas_per_node()
        placed: list[tuple[str, str, tuple[str, ...]]] = []
        step = HASH_SPACE // count
        for i in range(count):
            lo = i * step
            hi = HASH_SPACE if i == count - 1 else (i + 1) * step
            chosen: list[str] = []
            for az in azs[:3]:
                candidates = sorted((n.name in avoid, load[n.name], n.name) for n in self.nodes.values() if n.az == az)
                name = candidates[0][2]
                load[name] += 1
                chosen.append(name)
            placed.append((str(lo), str(hi), tuple(chosen)))
        return placed

    def first_leaders(self) -> dict[int, str]:
        """The replica that should lead each partition created with its table, when the group starts: in
        partition order, the replica that was chosen least often so far (ties by name), so new groups' first
        leaders spread over the nodes as their replicas do. Storage nodes consult it only when they create
        a group (``GroupHost.add_group(first_leader=...)``); elections decide everything after that, so it
        may change for older partitions as tables come and go. Split children start under their parent's
        leader instead."""
        chosen: dict[str, int] = {}
        leaders: dict[int, str] = {}
        for pid in sorted(self.partitions):
            part = self.partitions[pid]
            if part.parent or not part.replicas:
                continue
            name = min(part.replicas, key=lambda n: (chosen.get(n, 0), n))
            chosen[name] = chosen.get(name, 0) + 1
            leaders[pid] = name
        return leaders

    def to_map(self) -> dict[str, Any]:
        """The versioned partition map routers and storage nodes cache."""
        first_leaders = self.first_leaders()
        return {
            "version": self.map_version,
            "nodes": {n.name: {"az": n.az, "address": n.address, "incarnation": n.incarnation}
                      for n in self.nodes.values()},
            "tables": {
                t.name: {
                    "table_id": t.table_id,
                    "status": t.status,
                    "spec": t.spec,
                    "partitions": list(t.partition_ids),
                    **({"ttl": t.ttl_attribute} if t.ttl_attribute else {}),
                    **({"stream": list(t.stream)} if t.stream else {}),
                    **({"streams": [list(one) for one in t.streams],
                        "closed": [[c[0], c[1], str(c[2]), str(c[3]), c[4], c[5]] for c in t.closed]}
                       if t.streams else {}),
                }
                for t in self.tables.values()
            },
            "partitions": {
                str(p.partition_id): {
                    "table_id": p.table_id,
                    "lo": str(p.hash_lo),
                    "hi": str(p.hash_hi),
                    "replicas": list(p.replicas),
                    **({"joining": p.joining, "replacing": p.replacing} if p.joining else {}),
                    **({"split": {"mid": str(p.split[0]), "left": p.split[1], "right": p.split[2]}}
                       if p.split else {}),
                    **({"parent": p.parent} if p.parent else {}),
                    **({"lost": list(p.lost)} if p.lost else {}),
                    **({"first_leader": first_leaders[p.partition_id]} if p.partition_id in first_leaders else {}),
                }
                for p in self.partitions.values()
            },
        }

    def repairs_in_progress(self) -> list[PartitionInfo]:
        return [p for p in self.partitions.values() if p.joining]

    def splits_in_progress(self) -> list[PartitionInfo]:
        return [p for p in self.partitions.values() if p.split]

    # ---- snapshots -----------------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The whole state as JSON (hash bounds as decimal strings: 2**64 does not fit a JSON integer)."""
        return orjson.dumps({
            "nodes": [[n.name, n.az, n.address, n.incarnation] for n in self.nodes.values()],
            "tables": [
                {
                    "table_id": t.table_id, "name": t.name, "spec": t.spec, "status": t.status,
                    "created_at": t.created_at, "table_uuid": t.table_uuid, "tags": t.tags,
                    "partition_ids": list(t.partition_ids), "history": t.history,
                    "ttl": [t.ttl_attribute, t.ttl_changed_at],
                    "streams": [list(one) for one in t.streams],
                    "closed": [[c[0], c[1], str(c[2]), str(c[3]), c[4], c[5]] for c in t.closed],
                }
                for t in self.tables.values()
            ],
            "partitions": [
                [p.partition_id, p.table_id, str(p.hash_lo), str(p.hash_hi), list(p.replicas), p.joining,
                 p.replacing, [str(p.split[0]), p.split[1], p.split[2]] if p.split else None, p.parent,
                 list(p.lost)]
                for p in self.partitions.values()
            ],
            "admin_lease": list(self.admin_lease),
            "history": self.history,
            "next_table_id": self.next_table_id,
            "next_partition_id": self.next_partition_id,
            "map_version": self.map_version,
            "applied_index": self.applied_index,
        })

    @classmethod
    def restore(cls, data: bytes) -> Metadata:
        """The state a ``snapshot()`` captured."""
        raw = orjson.loads(data)
        meta = cls(
            next_table_id=raw["next_table_id"],
            next_partition_id=raw["next_partition_id"],
            map_version=raw["map_version"],
            applied_index=raw["applied_index"],
        )
        for row in raw["nodes"]:
            name, az, address, incarnation = [*row, ""][:4]  # rows from before incarnations have three
            meta.nodes[name] = NodeInfo(name, az, address, incarnation)
        for t in raw["tables"]:
            meta.tables[t["name"]] = TableInfo(
                table_id=t["table_id"], name=t["name"], spec=t["spec"], status=t["status"],
                created_at=t["created_at"], table_uuid=t["table_uuid"], tags=dict(t["tags"]),
                partition_ids=tuple(t["partition_ids"]), history=dict(t.get("history") or {}),
                ttl_attribute=(t.get("ttl") or ["", 0.0])[0], ttl_changed_at=(t.get("ttl") or ["", 0.0])[1],
                streams=tuple((int(a), str(v), int(b)) for a, v, b in t.get("streams") or ())
                # A table created with a stream before streams were kept here: on since it was created.
                or (((round(float(t["created_at"]) * 1000), str(stream["StreamViewType"]), 0),)
                    if (stream := t["spec"].get("StreamSpecification") or {}).get("StreamEnabled") else ()),
                closed=tuple((int(c[0]), int(c[1]), int(c[2]), int(c[3]), int(c[4]), int(c[5]))
                             for c in t.get("closed") or ()),
            )
        for row in raw["partitions"]:
            # Rows written before repairs, splits and wiped disks existed are shorter: the missing fields
            # take defaults.
            row = [*row, *["", "", None, 0, []][len(row) - 5:]]
            pid, table_id, lo, hi, replicas, joining, replacing, split, parent, lost = row
            meta.partitions[pid] = PartitionInfo(
                pid, table_id, int(lo), int(hi), tuple(replicas), joining, replacing,
                (int(split[0]), int(split[1]), int(split[2])) if split else None, int(parent), tuple(lost))
        holder, until_ms = raw.get("admin_lease") or ("", 0.0)
        meta.admin_lease = (holder, until_ms)
        meta.history = list(raw.get("history") or [])
        return meta

    # ---- commands ------------------------------------------------------------------------------------

    def apply(self, index: int, command: bytes) -> Any:
        """Apply one committed command. Returns the command's result, or a MetadataError value."""
        assert index > self.applied_index, f"applied {index} after {self.applied_index}"
        self.applied_index = index
        if not command:  # a no-op entry from a new leader
            return None
        cmd = orjson.loads(command)
        handler = _HANDLERS.get(cmd["op"])
        assert handler is not None, f"unknown control-plane command {cmd['op']!r}"
        try:
            return handler(self, cmd)
        except MetadataError as err:
            return err

    def _register_node(self, cmd: dict[str, Any]) -> NodeInfo:
        known = self.nodes.get(cmd["name"])
        node = NodeInfo(cmd["name"], cmd["az"], cmd["address"], known.incarnation if known else "")
        if known != node:
            self.nodes[node.name] = node
            self.map_version += 1
        return node

    def _node_incarnation(self, cmd: dict[str, Any]) -> NodeInfo:
        """Record the disk a node now runs on. A different disk than the one recorded means the node lost
        everything it held: each partition listing it marks that replica lost (the first disk recorded
        for a node lost nothing: a node hosts no replica before its disk is recorded)."""
        known = self.nodes.get(cmd["name"])
        if known is None:
            raise MetadataError("Validation", f"unknown node {cmd['name']!r}")
        incarnation = cmd["incarnation"]
        if not isinstance(incarnation, str) or not incarnation:
            raise MetadataError("Validation", "a node's incarnation is a non-empty string")
        if known.incarnation == incarnation:
            return known
        if known.incarnation:
            lost_in: list[int] = []
            for pid, part in sorted(self.partitions.items()):
                if known.name in (*part.replicas, part.joining) and known.name not in part.lost:
                    self.partitions[pid] = replace(part, lost=(*part.lost, known.name))
                    lost_in.append(pid)
            self._remember({"kind": "wiped", "node": known.name, "lost": lost_in, "at": cmd.get("at", 0.0)})
        node = replace(known, incarnation=incarnation)
        self.nodes[node.name] = node
        self.map_version += 1
        return node

    def _create_table(self, cmd: dict[str, Any]) -> TableInfo:
        name = cmd["name"]
        if name in self.tables:
            raise MetadataError("ResourceInUse", f"Table already exists: {name}")
        table_id = self.next_table_id
        self.next_table_id += 1
        pids: list[int] = []
        for lo, hi, replicas in cmd["placement"]:
            pid = self.next_partition_id
            self.next_partition_id += 1
            self.partitions[pid] = PartitionInfo(pid, table_id, int(lo), int(hi), tuple(replicas))
            pids.append(pid)
        table = TableInfo(
            table_id=table_id,
            name=name,
            spec=cmd["spec"],
            status="CREATING",
            created_at=cmd["created_at"],
            table_uuid=cmd["table_uuid"],
            tags=dict(cmd.get("tags") or {}),
            partition_ids=tuple(pids),
        )
        stream = cmd["spec"].get("StreamSpecification") or {}
        if stream.get("StreamEnabled"):
            table = replace(table, streams=((round(float(cmd["created_at"]) * 1000), stream["StreamViewType"], 0),))
        self.tables[name] = table
        self.map_version += 1
        return table

    def _set_table_status(self, cmd: dict[str, Any]) -> TableInfo:
        table = self._table(cmd["name"])
        if cmd.get("table_id") not in (None, table.table_id):
            raise MetadataError("ResourceNotFound", f"Requested resource not found: Table: {cmd['name']} not found")
        table = replace(table, status=cmd["status"])
        self.tables[table.name] = table
        self.map_version += 1
        return table

    def _update_table(self, cmd: dict[str, Any]) -> TableInfo:
        table = self._table(cmd["name"])
        spec = dict(table.spec)
        spec.update(cmd["changes"])
        for key in cmd.get("remove") or ():
            spec.pop(key, None)
        history = dict(table.history)
        history.update(cmd.get("history") or {})
        table = replace(table, spec=spec, history=history)
        stream = cmd.get("stream")
        if stream is not None:
            at_ms = int(stream["at_ms"])
            kept = tuple(s for s in table.streams if not s[2] or s[2] > at_ms - STREAM_RETENTION_MS)
            if stream["enabled"]:
                kept = (*kept, (at_ms, str(stream["view"]), 0))
            elif kept and not kept[-1][2]:
                kept = (*kept[:-1], (kept[-1][0], kept[-1][1], at_ms))
            table = replace(table, streams=kept)
        self.tables[table.name] = table
        self.map_version += 1
        return table

    def _delete_table(self, cmd: dict[str, Any]) -> TableInfo:
        table = self._table(cmd["name"])
        for pid in table.partition_ids:
            del self.partitions[pid]
        del self.tables[table.name]
        self.map_version += 1
        return replace(table, status="DELETING")

    def _update_ttl(self, cmd: dict[str, Any]) -> TableInfo:
        """Enable (``attribute`` set) or disable (``""``) time to live; the leader checked the request."""
        table = self._table(cmd["name"])
        if cmd.get("table_id") not in (None, table.table_id):
            raise MetadataError("ResourceNotFound", f"Requested resource not found: Table: {cmd['name']} not found")
        table = replace(table, ttl_attribute=str(cmd["attribute"]), ttl_changed_at=float(cmd["at"]))
        self.tables[table.name] = table
        self.map_version += 1  # storage nodes expire items by the map
        return table

    def _tag(self, cmd: dict[str, Any]) -> TableInfo:
        table = self._table(cmd["name"])
        tags = dict(table.tags)
        tags.update(cmd.get("add") or {})
        for key in cmd.get("remove") or []:
            tags.pop(key, None)
        table = replace(table, tags=tags)
        self.tables[table.name] = table
        return table

    def _admin_lease(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Grant (or renew) the auto-admin lease if it is free, expired or already the holder's. The leader
        chose ``now_ms`` (its wall clock), so every replica decides alike."""
        holder, until_ms = self.admin_lease
        now_ms = float(cmd["now_ms"])
        if holder and holder != cmd["holder"] and until_ms > now_ms:
            return {"granted": False, "holder": holder, "until_ms": until_ms}
        self.admin_lease = (cmd["holder"], now_ms + float(cmd["duration_ms"]))
        return {"granted": True, "holder": cmd["holder"], "until_ms": self.admin_lease[1]}

    def _begin_repair(self, cmd: dict[str, Any]) -> PartitionInfo:
        """Start replacing ``old`` by ``new`` in one partition (or retarget a repair of ``old`` still under
        way to another ``new``: the joiner is only a learner until the group's change completes)."""
        part = self._partition(cmd["partition"])
        old, new = cmd["old"], cmd["new"]
        if old not in part.replicas:
            raise MetadataError("Validation", f"{old} holds no replica of partition {part.partition_id}")
        if new in part.replicas or new not in self.nodes:
            raise MetadataError("Validation", f"{new} cannot join partition {part.partition_id}")
        if part.split:
            raise MetadataError("ResourceInUse", f"partition {part.partition_id} is splitting")
        if part.joining and part.replacing != old:
            raise MetadataError("ResourceInUse", f"partition {part.partition_id} is already repairing {part.replacing}")
        if (part.joining, part.replacing) == (new, old):
            return part
        lost = tuple(n for n in part.lost if n in part.replicas)  # a lost joiner being retargeted goes
        part = replace(part, joining=new, replacing=old, lost=lost)
        self.partitions[part.partition_id] = part
        self.map_version += 1
        self._remember({"kind": "repair", "partition": part.partition_id, "old": old, "new": new,
                        "state": "started", "at": cmd.get("at", 0.0)})
        return part

    def _finish_repair(self, cmd: dict[str, Any]) -> PartitionInfo:
        """The group's membership now has ``joining`` in place of ``replacing``: the map says so."""
        part = self._partition(cmd["partition"])
        if not part.joining:
            return part  # already finished (a retried command)
        if cmd.get("new") not in (None, part.joining):
            raise MetadataError("Validation", f"partition {part.partition_id} is repairing to {part.joining}")
        replicas = tuple(part.joining if r == part.replacing else r for r in part.replicas)
        self._remember({"kind": "repair", "partition": part.partition_id, "old": part.replacing,
                        "new": part.joining, "state": "finished", "at": cmd.get("at", 0.0)})
        lost = tuple(n for n in part.lost if n in replicas)
        part = replace(part, replicas=replicas, joining="", replacing="", lost=lost)
        self.partitions[part.partition_id] = part
        self.map_version += 1
        return part

    def _begin_split(self, cmd: dict[str, Any]) -> PartitionInfo:
        """Decide to split a partition at hash ``mid``: the children get their ids now, so the split entry
        the parent's leader logs names them, and every replica creates the same groups."""
        part = self._partition(cmd["partition"])
        mid = int(cmd["mid"])
        if part.split:
            return part  # a retried command: the first decision stands
        if part.joining:
            raise MetadataError("ResourceInUse", f"partition {part.partition_id} is being repaired")
        if part.lost:
            raise MetadataError("ResourceInUse", f"partition {part.partition_id} has lost replicas to repair first")
        if not part.hash_lo < mid < part.hash_hi:
            raise MetadataError("Validation", f"split point {mid} outside ({part.hash_lo}, {part.hash_hi})")
        left, right = self.next_partition_id, self.next_partition_id + 1
        self.next_partition_id += 2
        part = replace(part, split=(mid, left, right))
        self.partitions[part.partition_id] = part
        self.map_version += 1
        self._remember({"kind": "split", "partition": part.partition_id, "old": "", "new": f"p{left} p{right}",
                        "reason": cmd.get("reason", ""), "state": "started", "at": cmd.get("at", 0.0)})
        return part

    def _finish_split(self, cmd: dict[str, Any]) -> list[PartitionInfo]:
        """The parent's log holds the split entry: the map flips to the two children at once."""
        pid = int(cmd["partition"])
        part = self.partitions.get(pid)
        if part is None or not part.split:
            return []  # already finished (a retried command) or never begun
        mid, left_id, right_id = part.split
        # A replica lost while the split ran is lost in both children (they start from its state).
        left = PartitionInfo(left_id, part.table_id, part.hash_lo, mid, part.replicas, parent=pid, lost=part.lost)
        right = PartitionInfo(right_id, part.table_id, mid, part.hash_hi, part.replicas, parent=pid, lost=part.lost)
        del self.partitions[pid]
        self.partitions[left_id] = left
        self.partitions[right_id] = right
        at_ms = round(float(cmd.get("at", 0.0)) * 1000)
        for table in list(self.tables.values()):
            if pid in table.partition_ids:
                ids: list[int] = []
                for p in table.partition_ids:
                    ids.extend((left_id, right_id) if p == pid else (p,))
                # The parent's shard closes: remembered while a stream may still hold its records.
                closed = tuple(c for c in table.closed if c[5] > at_ms - STREAM_RETENTION_MS)
                if table.streams:
                    closed = (*closed, (pid, part.parent, part.hash_lo, part.hash_hi, int(cmd.get("index", 0)), at_ms))
                self.tables[table.name] = replace(table, partition_ids=tuple(ids), closed=closed)
        self.map_version += 1
        self._remember({"kind": "split", "partition": pid, "old": "", "new": f"p{left_id} p{right_id}",
                        "state": "finished", "at": cmd.get("at", 0.0)})
        return [left, right]

    def _remember(self, event: dict[str, Any]) -> None:
        self.history.append(event)
        del self.history[:-MAX_HISTORY]

    def _partition(self, pid: Any) -> PartitionInfo:
        part = self.partitions.get(int(pid))
        if part is None:
            raise MetadataError("ResourceNotFound", f"no partition {pid}")
        return part

    def _table(self, name: str) -> TableInfo:
        table = self.tables.get(name)
        if table is None:
            raise MetadataError("ResourceNotFound", f"Requested resource not found: Table: {name} not found")
        return table


_HANDLERS = {
    "register_node": Metadata._register_node,
    "node_incarnation": Metadata._node_incarnation,
    "create_table": Metadata._create_table,
    "set_table_status": Metadata._set_table_status,
    "update_table": Metadata._update_table,
    "delete_table": Metadata._delete_table,
    "tag": Metadata._tag,
    "update_ttl": Metadata._update_ttl,
    "admin_lease": Metadata._admin_lease,
    "begin_repair": Metadata._begin_repair,
    "finish_repair": Metadata._finish_repair,
    "begin_split": Metadata._begin_split,
    "finish_split": Metadata._finish_split,
}


def encode_command(op: str, **fields: Any) -> bytes:
    return orjson.dumps({"op": op, **fields})
