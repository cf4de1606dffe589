"""A storage node: the partition replicas it hosts, following the control plane's partition map.

One ``runtime.store.Store`` holds every replica's items, Paxos log and metadata; one ``GroupHost`` runs
their Paxos groups ("p<partition id>", store group number = partition id). Two background tasks:

- the map follower long-polls any control-plane node (``get_map``) and reconciles: partitions whose
  replicas include this node are hosted, partitions no longer ours (table deleted, replica moved) are
  removed with their items;
- the heartbeat tells the control-plane leader every ``heartbeat_interval_ms`` what this node hosts (role,
  leader, indexes per replica) and, from leaders, each partition's item count and bytes.

Repairs and splits follow the map too (the auto-admin only edits the map; see ``autoadmin.app``):

- a partition with ``joining``/``replacing``: the joiner hosts the group with no bootstrap voters (it waits
  for the leader's snapshot plus log tail); the group's leader proposes ``propose_replace(old, new)``
  (learner -> joint -> final, advanced by the core once the learner caught up) and reports its membership
  in heartbeats; once the map drops the old replica, its node removes the group and its items.
- a partition with ``split``: its leader stops deciding writes (``stale``) and logs the split entry; every
  replica, applying it at index i, starts both child groups in place from its state at i (same keys, same
  store: nothing moves) and answers ``stale`` for the parent from then on. When the map flips to the
  children the parent's group goes, its items stay (they are the children's). A replica that missed the
  split entry joins the children as a learner and gets a snapshot.

A node hosts replicas only under a map that records its disk (the ``incarnation`` its store made when it
was first opened, sent in every heartbeat), and never a partition that lists it ``lost``: a node whose disk
was wiped must not vote in the groups it held (docs/design.md, "A wiped disk").

Each hosted partition keeps a descriptor (table, id, hash range, key schema) in its group metadata, so a
restarted node resumes its replicas from its store at once, before the control plane answers; the first
map then says which are still ours.

Split safety: on one node a split parent's replica never deletes or writes keys its children own.
- A node follows maps forward only, across restarts too: it stores the newest version it followed and
  ignores older ones (control-plane followers answer ``get_map`` from their applied state and may lag; an
  older map could host a split parent again next to its children, or drop children that hold data).
- A node never hosts a partition next to a descendant of it (a partition of the same table whose range is
  strictly inside: ranges only ever split, so that one is newer), unless the ancestor applied its split
  entry (its range is the children's state then, and it applies nothing more). A map that lists both
  drops the ancestor; one that lists only the ancestor while a descendant is hosted is not followed there.
- Dropping a partition deletes only the keys it still owns: its range minus its hosted descendants'.

The node is independent of the process host (tests run three of them in one event loop): give it a name,
the cluster config, something that sends (``runtime.transport.Transport``) and an open store.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import time
import uuid
from collections.abc import Awaitable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from dynamo import keycodec
from dynamo.indexes import indexes_of
from dynamo.items import IndexSchema
from dynamo.ttl import expired_value
from paxos.errors import PaxosError
from paxos.replica import Role
from proto.kinds import AdminOp, ControlOp, Kind, partition_group, partition_of_group
from runtime.config import ClusterConfig
from runtime.config import Role as NodeRole
from runtime.logs import get_logger
from runtime.replication import DriverConfig, GroupHost
from runtime.snapshot_stream import StreamConfig
from runtime.store import RangeStats, Store
from runtime.transport import Message, TransportError
from storagenode import streams
from storagenode.items import ItemService
from storagenode.locks import committed_view
from storagenode.partition import (
    HeatMeter,
    KeySchema,
    PartitionData,
    PartitionMachine,
    SplitInfo,
    decode_item,
    encode_split,
)

log = get_logger("storagenode")
DESCRIPTOR = b"partition"  # group metadata: the partition descriptor (JSON)
SPLIT = b"split"  # group metadata: the applied split entry of a parent (SplitInfo JSON)
MAP_VERSION = b"map_version"  # node metadata: the newest partition map version this node followed
INCARNATION = b"incarnation"  # node metadata: this disk's random id, made the first time the store opened
UINT64_MAX = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """The storage node's own bounds and periods (the rest comes from the cluster config)."""

    map_wait_ms: int = 5_000  # how long a get_map long-poll may wait at the control plane
    map_retry_min_ms: int = 100  # backoff after a failed get_map, doubling...
    map_retry_max_ms: int = 1_000  # ...up to this
    map_idle_poll_ms: int = 200  # pause when a get_map brought nothing new (a control plane that does not hold)
    control_timeout_ms: int = 1_000  # heartbeats, and the network part of a get_map
    heartbeat_interval_ms: int = 500
    min_heartbeat_gap_ms: int = 20  # a change of role reports early, but no more often than this
    stats_interval_ms: int = 5_000  # a leader recounts a partition's items at most this often
    write_timeout_ms: int = 3_000  # waiting for a proposal to apply (below the router's request timeout)
    leader_ready_wait_ms: int = 1_000  # a new leader catching up before writes, or its lease before reads
    # A transaction's lock held this long is resolved from its primary item by the partition's leader (its
    # coordinator is presumed gone): well above what a live coordinator takes between two steps.
    txn_lock_timeout_ms: int = 5_000
    txn_sweep_interval_ms: int = 1_000  # how often a leader looks for such locks
    txn_call_timeout_ms: int = 3_000  # a request to another partition while resolving one
    stream_retention_s: int = 24 * 3600  # stream records older than this are trimmed (DynamoDB's 24 hours)
    stream_trim_interval_ms: int = 60_000  # how often each replica trims its stream records

    @staticmethod
    def from_cluster(config: ClusterConfig) -> NodeConfig:
        limits = config.limits
        return NodeConfig(
            heartbeat_interval_ms=config.admin.node_heartbeat_interval_ms,
            write_timeout_ms=max(100, min(3_000, limits.request_timeout_ms * 3 // 5)),
        )


def stream_config(config: ClusterConfig) -> StreamConfig:
    limits = config.limits
    return StreamConfig(
        chunk_bytes=limits.snapshot_chunk_bytes,
        chunks_in_flight=limits.snapshot_chunks_in_flight,
        chunk_timeout_ms=limits.snapshot_chunk_timeout_ms,
        transfer_timeout_ms=limits.snapshot_transfer_timeout_ms,
        max_transfers=limits.snapshot_max_transfers,
        catchup_hold_ms=limits.snapshot_catchup_hold_ms,
    )


def driver_config(config: ClusterConfig) -> DriverConfig:
    timing = config.paxos
    return DriverConfig.from_timing(
        timing,
        # An ACCEPT (one envelope) stays well under the transport's message limit.
        max_bytes_per_message=max(1, config.limits.max_grpc_message_bytes // 4),
        max_inflight_messages=config.limits.replication_inflight_accepts,
        eager_commit_news=timing.eager_commit_news,
        thrifty=timing.thrifty_replication,
        stream=stream_config(config),
    )


@dataclass(slots=True)
class Hosted:
    """One partition replica hosted here."""

    partition_id: int
    group: str
    table: str
    table_id: int
    replicas: tuple[str, ...]
    data: PartitionData
    machine: PartitionMachine
    # storage key -> the driver future of this leader's newest proposal for it (answers that read a
    # pending image wait for it: nothing is answered from a write that may not commit)
    last_proposal: dict[bytes, asyncio.Future[Any]] = field(default_factory=dict)
    stats: RangeStats | None = None
    stats_at: float = -1e18
    # A repair under way (from the map): ``joining`` replaces ``replacing`` in the group's membership.
    joining: str = ""
    replacing: str = ""
    # A split the map asks for (mid, left, right), and whether this leader proposed its entry.
    split_plan: tuple[int, int, int] | None = None
    split_proposed: bool = False
    ttl_cursor: bytes | None = None  # where this leader's next look for expired items starts


def descriptor(table: str, table_id: int, lo: int, hi: int, spec: dict[str, Any], replicas: tuple[str, ...],
               learner: bool = False) -> bytes:
    """``learner``: this replica started empty (a joiner, or a split child whose parent's data is not here)
    and must never bootstrap as a voter: it waits for the leader's snapshot even after a restart."""
    key_spec = {"AttributeDefinitions": spec["AttributeDefinitions"], "KeySchema": spec["KeySchema"]}
    return orjson.dumps({"table": table, "table_id": table_id, "lo": str(lo), "hi": str(hi), "spec": key_spec,
                         "replicas": list(replicas), "learner": learner})


class _PaxosSender:
    """The transport as the replication driver's sender: a peer this process does not know (a map naming a
    node that is not in our config) is a dropped message, never an exception inside a replication round.
    ``call`` carries snapshot transfers (requests; failures raise ``TransportError``)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport

    def send(self, peer: str, group: str, kind: int, payload: bytes) -> bool:
        try:
            return bool(self.transport.send(peer, group, kind, payload))
        except TransportError:
            return False

    async def call(self, peer: str, group: str, kind: int, payload: bytes, timeout_ms: float | None = None) -> bytes:
        raw: bytes = await self.transport.call(peer, group, kind, payload, timeout_ms=timeout_ms)
        return raw


class StorageNode:
    def __init__(
        self,
        name: str,
        config: ClusterConfig,
        transport: Any,
        store: Store,
        node_config: NodeConfig | None = None,
        driver: DriverConfig | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.transport = transport
        self.store = store
        self.node_config = node_config or NodeConfig.from_cluster(config)
        spec = config.node(name)
        self.az = spec.az or ""
        self.address = spec.grpc_address
        self.control_nodes = [n.name for n in config.by_role(NodeRole.CONTROL)]
        sender = _PaxosSender(transport)
        # A change of role or leader in any hosted group is told to the control plane at once rather than with
        # the next heartbeat: a new table turns ACTIVE, and `ddb status` shows a failover, half a second sooner.
        self._report_now = asyncio.Event()
        self.host = GroupHost(name, store, sender, driver or driver_config(config), caller=sender,
                              on_change=self._report_now.set)
        self.hosted: dict[int, Hosted] = {}
        self.map_version = 0
        # The newest map version this node ever followed (kept in the store): older maps are not followed.
        raw_version = store.get_meta(MAP_VERSION)
        self.map_floor = int(raw_version) if raw_version is not None else 0
        self.incarnation = _incarnation(store)
        self.ttl_attributes: dict[int, str] = {}  # table id -> its time-to-live attribute (from the map)
        # table id -> (when its stream was enabled, its view type), for tables whose stream is on (the map)
        self.streams: dict[int, tuple[int, str]] = {}
        self.table_indexes: dict[int, tuple[IndexSchema, ...]] = {}  # table id -> its LSIs and GSIs (from the map)
        # table id -> its partitions (lo, hi, group, replicas) sorted by lo: how this node reaches another
        # partition (resolving a transaction's locks), from the map it follows
        self.table_partitions: dict[int, list[tuple[int, int, str, tuple[str, ...]]]] = {}
        self._waiting_for_incarnation = False
        self.first_map = asyncio.Event()
        self.items = ItemService(self)
        self.cp_leader = ""
        # Round-robin over the control-plane nodes, one turn each for the map follower and the heartbeat,
        # so that neither's retries keep steering the other onto a node that is down.
        self._map_turn = itertools.count()
        self._heartbeat_turn = itertools.count()
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopped = False

    # ---- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> None:
        self.host.start()
        self._resume()
        self._spawn(self._follow_map(), "map-follower")
        self._spawn(self._heartbeat_loop(), "heartbeat")
        self._spawn(self._ttl_loop(), "time-to-live")
        self._spawn(self.items.txn.sweep_loop(), "transaction-sweep")
        self._spawn(self.items.streams.trim_loop(), "stream-trim")

    async def stop(self) -> None:
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.items.txn.stop()
        await self.host.stop()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.name}-{name}")
        self._tasks.append(task)

    def _resume(self) -> None:
        """Restart every replica whose descriptor the store holds (the first map drops stale ones), except a
        partition that never applied its split entry next to a descendant of it (the descendant is newer)."""
        descs: dict[int, dict[str, Any]] = {}
        for number in self.store.groups():
            raw = self.store.get_group_meta(number, DESCRIPTOR)
            if raw is not None and number not in self.hosted:
                descs[number] = orjson.loads(raw)
        spans = _Spans((int(d["table_id"]), int(d["lo"]), int(d["hi"])) for d in descs.values())
        for number, desc in descs.items():
            table_id, lo, hi = int(desc["table_id"]), int(desc["lo"]), int(desc["hi"])
            if self.store.get_group_meta(number, SPLIT) is None and spans.has_descendant(table_id, lo, hi):
                log.warning("superseded replica not resumed: a split child of it is here", group=number)
                continue
            self._host(number, desc["table"], table_id, lo, hi, desc["spec"], tuple(desc["replicas"]),
                       persist=False, learner=bool(desc.get("learner")))
        for pid in [pid for pid, h in self.hosted.items() if h.machine.split is not None]:
            self._start_children(pid)  # a crash may have come between a split's apply and its children
        if self.hosted:
            log.info("resumed replicas from the store", count=len(self.hosted))

    # ---- transport entry points ----------------------------------------------------------------------

    def on_message(self, sender: str, message: Message) -> None:
        if self._stopped:
            return  # the store may be closing: nothing may reach the groups any more
        if message.kind == Kind.PAXOS:
            self.host.on_paxos_message(sender, message.group, message.payload)
        else:
            log.warning("unexpected one-way message", sender=sender, group=message.group, kind=message.kind)

    def on_request(self, sender: str, message: Message) -> bytes | Awaitable[bytes]:
        if self._stopped:
            raise LookupError("the storage node is stopping")
        if message.kind == Kind.ITEM:
            return self.items.handle(message)
        if message.kind == Kind.ADMIN:
            return self._admin(message)
        if message.kind == Kind.SNAPSHOT:
            return self.host.streams.on_request(sender, message.group, message.payload)
        raise LookupError(f"a storage node serves no requests of kind {message.kind}")

    # ---- hosting ------------------------------------------------------------------------------------------

    def _host(self, pid: int, table: str, table_id: int, lo: int, hi: int, spec: dict[str, Any],
              replicas: tuple[str, ...], *, persist: bool, learner: bool = False, start_index: int = 0,
              first_leader: bool = False) -> Hosted:
        data = PartitionData(self.store, table_id, KeySchema.from_spec(spec), lo, hi, group=pid)
        machine = PartitionMachine(data, on_split=lambda batch, info: self._on_split(pid, data, batch, info),
                                   heat=HeatMeter(window_s=self.config.admin.split_heat_window_s))
        raw_split = self.store.get_group_meta(pid, SPLIT)
        if raw_split is not None:
            machine.split = SplitInfo.decode(raw_split)
            data.frozen = True
        group = partition_group(pid)
        if persist:
            batch = self.store.batch()
            self.store.put_group_meta(batch, pid, DESCRIPTOR,
                                      descriptor(table, table_id, lo, hi, spec, replicas, learner))
            self.store.write(batch, sync=False)
        voters = replicas if self.name in replicas and not learner else ()
        self.host.add_group(group, pid, voters, machine, start_index=start_index,
                            first_leader=first_leader and bool(voters))
        hosted = Hosted(pid, group, table, table_id, replicas, data, machine)
        self.hosted[pid] = hosted
        return hosted

    def _drop(self, pid: int) -> None:
        hosted = self.hosted.pop(pid)
        self.host.remove_group(hosted.group, drop_data=True)
        # Its stream records: a split parent's were copied into its children when it split.
        self.store.delete_range(*streams.span(hosted.table_id, pid))
        if hosted.machine.split is None:
            # Only what it still owns: a descendant hosted here owns its own keys (never the case in the
            # map's flow, which drops a parent before its children arrive; a guard against what is not).
            for lo, hi in self.owned_spans(hosted):
                rng = keycodec.hash_range(hosted.table_id, lo, hi)
                self.store.delete_range(rng.start, rng.end)
        # else: a split parent; its items belong to its children now (same keys, same store).
        log.info("replica removed", group=hosted.group, table=hosted.table, split=hosted.machine.split is not None)

    def owned_spans(self, hosted: Hosted) -> list[tuple[int, int]]:
        """The hash spans of ``hosted``'s range that no other hosted partition of its table lies inside."""
        lo, hi = hosted.data.hash_lo, hosted.data.hash_hi
        inner = sorted((h.data.hash_lo, h.data.hash_hi) for h in self.hosted.values()
                       if h is not hosted and h.table_id == hosted.table_id
                       and _strictly_inside(h.data.hash_lo, h.data.hash_hi, lo, hi))
        spans: list[tuple[int, int]] = []
        at = lo
        for inner_lo, inner_hi in inner:
            if inner_lo > at:
                spans.append((at, inner_lo))
            at = max(at, inner_hi)
        if at < hi:
            spans.append((at, hi))
        return spans

    # ---- splits ---------------------------------------------------------------------------------------

    def _on_split(self, pid: int, data: PartitionData, batch: Any, info: SplitInfo) -> None:
        """The parent's split entry is being applied (inside the driver's apply batch): remember it with the
        state, and start the children once the batch is written (their state is the store's range)."""
        self.store.put_group_meta(batch, pid, SPLIT, info.encode())
        copied = streams.copy_to_children(self.store, batch, data.table_id, pid, (info.left, info.right),
                                          data.records_in(batch))
        if copied:
            log.info("stream records copied to the split children", group=partition_group(pid), records=copied)
        asyncio.get_running_loop().call_soon(self._start_children, pid)
        log.info("split applied", group=partition_group(pid), index=info.index, mid=str(info.mid),
                 left=info.left, right=info.right)

    def _start_children(self, pid: int) -> None:
        hosted = self.hosted.get(pid)
        if self._stopped or hosted is None or hosted.machine.split is None:
            return
        info = hosted.machine.split
        raw = self.store.get_group_meta(pid, DESCRIPTOR)
        assert raw is not None, f"hosted partition {pid} has no descriptor"
        spec = orjson.loads(raw)["spec"]
        voters = tuple(self.host.describe(hosted.group)["voters"]) or hosted.replicas
        lo, hi = hosted.data.hash_lo, hosted.data.hash_hi
        # The parent's leader leads the children first: its routers' requests go on to the same node.
        lead = self.host.leader_of(hosted.group) == self.name
        for child, child_lo, child_hi in ((info.left, lo, info.mid), (info.right, info.mid, hi)):
            if child in self.hosted:
                continue
            self._host(child, hosted.table, hosted.table_id, child_lo, child_hi, spec, voters, persist=True,
                       start_index=info.index, first_leader=lead)
            log.info("split child started", group=partition_group(child), parent=hosted.group)

    def split_point(self, hosted: Hosted) -> int | None:
        """Where a split by size should cut: the hash of the key at half the range's bytes."""
        rng = hosted.data.range
        key = self.store.middle_key(rng.start, rng.end)
        if key is None:
            return None
        mid = keycodec.key_hash(key)
        lo, hi = hosted.data.hash_lo, hosted.data.hash_hi
        if mid <= lo:
            mid = lo + 1
        return mid if lo < mid < hi else None

    def apply_map(self, partition_map: dict[str, Any]) -> bool:
        """Reconcile with a partition map; False if it is not newer than the one we follow."""
        version = int(partition_map.get("version", 0))
        if version <= self.map_version and self.first_map.is_set():
            return False
        if not self._map_knows_our_disk(partition_map):
            return False
        if version < self.map_floor:
            # A lagging control-plane follower's map, older than one this node followed (before a restart).
            log.info("older partition map not followed", version=version, followed=self.map_floor)
            return False
        if version > self.map_floor:
            # Before anything this map makes us delete: the WAL keeps the order, so a crash that keeps the
            # deletions keeps this too.
            batch = self.store.batch()
            self.store.put_meta(batch, MAP_VERSION, str(version).encode())
            self.store.write(batch, sync=False)
            self.map_floor = version
        tables = {int(t["table_id"]): (name, t) for name, t in partition_map.get("tables", {}).items()}
        self.ttl_attributes = {table_id: str(t["ttl"]) for table_id, (_, t) in tables.items() if t.get("ttl")}
        streams = {table_id: (int(t["stream"][0]), str(t["stream"][1]))
                   for table_id, (_, t) in tables.items() if t.get("stream")}
        if streams != self.streams:
            self._report_now.set()  # UpdateTable waits for the nodes to follow a stream's change
        self.streams = streams
        self.table_indexes = {table_id: indexes_of(t["spec"]) for table_id, (_, t) in tables.items()}
        wanted: dict[int, tuple[dict[str, Any], str, dict[str, Any]]] = {}
        routes: dict[int, list[tuple[int, int, str, tuple[str, ...]]]] = {}
        for pid_text, part in partition_map.get("partitions", {}).items():
            if int(part["table_id"]) in tables:
                routes.setdefault(int(part["table_id"]), []).append(
                    (int(part["lo"]), int(part["hi"]), partition_group(int(pid_text)), tuple(part["replicas"])))
            # A joiner (repair) hosts the group too: as a learner (no bootstrap voters) fed by the leader.
            if self.name not in part["replicas"] and self.name != part.get("joining"):
                continue
            if self.name in (part.get("lost") or ()):
                continue  # this node's disk was wiped since it joined the group: it never votes there again
            found = tables.get(int(part["table_id"]))
            if found is None:
                continue
            wanted[int(pid_text)] = (part, found[0], found[1])
        # Children a split entry started here stay until the map flips to them (or drops their table).
        unborn: set[int] = set()
        for part in partition_map.get("partitions", {}).values():
            if part.get("split"):
                unborn |= {int(part["split"]["left"]), int(part["split"]["right"])}
        for pid in [pid for pid in self.hosted if pid not in wanted and pid not in unborn]:
            self._drop(pid)
        # A partition is superseded here by a descendant (strictly inside its range) that the map lists or
        # this node hosts: a replica that never applied its split entry goes, and is not hosted again.
        spans = _Spans([*((int(part["table_id"]), int(part["lo"]), int(part["hi"])) for part, _, _ in wanted.values()),
                        *((h.table_id, h.data.hash_lo, h.data.hash_hi) for h in self.hosted.values())])
        for pid in [pid for pid, h in self.hosted.items()
                    if h.machine.split is None and spans.has_descendant(h.table_id, h.data.hash_lo, h.data.hash_hi)]:
            log.warning("superseded replica removed: a split child of it is listed or hosted here",
                        group=partition_group(pid), map_version=version)
            self._drop(pid)
        for pid, (part, table_name, table) in wanted.items():
            hosted = self.hosted.get(pid)
            if hosted is None and spans.has_descendant(int(part["table_id"]), int(part["lo"]), int(part["hi"])):
                log.warning("partition not hosted: a split child of it is listed or hosted here",
                            group=partition_group(pid), map_version=version)
                continue
            if hosted is None:
                # A split child not started here by its parent's split entry has no data here: it waits for
                # the leader's snapshot, as a joiner does.
                learner = bool(part.get("parent"))
                hosted = self._host(pid, table_name, int(part["table_id"]), int(part["lo"]), int(part["hi"]),
                                    table["spec"], tuple(part["replicas"]), persist=True, learner=learner,
                                    first_leader=part.get("first_leader") == self.name)
                log.info("replica added", group=partition_group(pid), table=table_name,
                         joining=self.name == part.get("joining"), learner=learner)
            hosted.replicas = tuple(part["replicas"])
            if hosted.data.entry_lists:
                hosted.data.entry_lists.keep(indexes_of(table["spec"]))
            hosted.joining = str(part.get("joining") or "")
            hosted.replacing = str(part.get("replacing") or "")
            split = part.get("split")
            hosted.split_plan = (int(split["mid"]), int(split["left"]), int(split["right"])) if split else None
        if not self.first_map.is_set():
            # Groups left in the store with no descriptor, or not in the map: a removal that a crash cut short.
            for number in self.store.groups():
                if number not in self.hosted:
                    batch = self.store.batch()
                    self.store.drop_group(batch, number)
                    self.store.write(batch, sync=False)
        self.table_partitions = {table_id: sorted(parts) for table_id, parts in routes.items()}
        self.map_version = version
        self.first_map.set()
        self.drive_repairs()
        return True

    def _map_knows_our_disk(self, partition_map: dict[str, Any]) -> bool:
        """A node hosts replicas only under a map that records this disk as its own. Otherwise a node whose
        disk was wiped would host the partitions it held as an empty replica, and vote: with a lagging
        third replica, its promises could elect a leader without writes the group had acknowledged. The
        control plane records the disk from our heartbeats, and marks a wiped node's replicas lost
        first. (A map with no incarnations at all, from a hand-written test map, is followed as is.)"""
        entry = (partition_map.get("nodes") or {}).get(self.name)
        if not isinstance(entry, dict) or "incarnation" not in entry or entry["incarnation"] == self.incarnation:
            if self._waiting_for_incarnation:
                log.info("the control plane recorded this node's disk", incarnation=self.incarnation)
                self._waiting_for_incarnation = False
            return True
        if not self._waiting_for_incarnation:
            log.info("partition map not followed until the control plane records this node's disk",
                     incarnation=self.incarnation, recorded=entry["incarnation"] or None)
            self._waiting_for_incarnation = True
        self._report_now.set()  # tell it now rather than with the next heartbeat
        return False

    def drive_repairs(self) -> None:
        """Where this node leads a group that the map says is being repaired, start the membership change
        (learner -> joint -> final: the core advances it once the learner has caught up). Called on every
        map and heartbeat, so a new leader takes over a change its predecessor had started; the core
        refuses a second change while one is under way."""
        for hosted in list(self.hosted.values()):
            if hosted.split_plan is not None:
                self._drive_split(hosted)
            if not hosted.joining or self.host.leader_of(hosted.group) != self.name:
                continue
            info = self.host.describe(hosted.group)
            if hosted.replacing not in info["voters"] or info["outgoing"]:
                continue  # done (the map catches up when the auto-admin sees it) or in its joint phase
            if info["learners"] == [hosted.joining]:
                continue  # catching up
            try:
                self.host.propose_replace(hosted.group, hosted.replacing, hosted.joining)
                log.info("membership change proposed", group=hosted.group, old=hosted.replacing,
                         new=hosted.joining)
            except PaxosError as exc:
                log.debug("membership change not proposed", group=hosted.group, error=str(exc))

    def _drive_split(self, hosted: Hosted) -> None:
        """As the leader of a partition the map asks to split: stop taking writes and log the split entry.
        A follower that once led unfreezes (the new leader logs the entry; a second one is ignored)."""
        if hosted.machine.split is not None or hosted.split_plan is None:
            return
        if self.host.leader_of(hosted.group) != self.name:
            hosted.data.frozen = hosted.split_proposed = False
            return
        if hosted.split_proposed:
            return
        mid, left, right = hosted.split_plan
        try:
            future = self.host.propose(hosted.group, encode_split(SplitInfo(mid, left, right)))
        except PaxosError as exc:
            log.debug("split entry not proposed", group=hosted.group, error=str(exc))
            return
        hosted.data.frozen = True  # writes decided from now on would land after the split entry
        hosted.split_proposed = True

        def done(f: asyncio.Future[Any]) -> None:
            if f.cancelled() or f.exception() is not None:
                hosted.split_proposed = False  # leadership lost first: try again (as leader) next time

        future.add_done_callback(done)
        log.info("split entry proposed", group=hosted.group, mid=str(mid), left=left, right=right)

    async def _admin(self, message: Message) -> bytes:
        try:
            request = orjson.loads(message.payload)
            op = AdminOp(str(request.get("op")))
        except (ValueError, AttributeError) as exc:
            return orjson.dumps({"error": f"bad admin request: {exc}"})
        hosted = self.partition_for(message.group)
        if hosted is None:
            return orjson.dumps({"error": f"{self.name} hosts no replica of {message.group}"})
        if op is AdminOp.SPLIT_POINT:
            if hosted.machine.split is not None:
                return orjson.dumps({"error": "already split"})
            if request.get("by") == "heat":
                mid = hosted.machine.heat.split_point(hosted.data.hash_lo, hosted.data.hash_hi)
            else:
                mid = self.split_point(hosted)
            return orjson.dumps({"ok": {"mid": None if mid is None else str(mid)}})
        assert op is AdminOp.CHECKSUM
        info = self.host.describe(hosted.group)
        rng = hosted.data.range
        # Read at one applied index: nothing else runs on the loop while the checksum is computed.
        return orjson.dumps({"ok": {
            "applied": info["applied_index"], "commit": info["commit_index"], "role": info["role"],
            "leader": info["leader"], "voters": info["voters"], "learners": info["learners"],
            "receiving": info["receiving"],  # a snapshot transfer under way: the checksum is of half a state
            "checksum": self.store.checksum(rng.start, rng.end), "map_version": self.map_version,
            "entry_lists": self._audit_entry_lists(hosted)}})

    def _audit_entry_lists(self, hosted: Hosted) -> dict[str, Any]:
        """The replica's built GSI entry lists checked against its items (``ddb verify``): the names of
        those that disagree. Skipped for a partition of more than ``AUDIT_MAX_ITEMS`` items, whose decoding
        would hold the event loop (and so this node's leases) too long."""
        lists = hosted.data.entry_lists.built_lists()
        if not lists:
            return {"checked": 0, "wrong": []}
        rng = hosted.data.range
        rows = list(self.store.scan(rng.start, rng.end, limit=AUDIT_MAX_ITEMS + 1))
        if len(rows) > AUDIT_MAX_ITEMS:
            return {"checked": 0, "wrong": [], "skipped": len(lists)}
        items = [(key, orjson.loads(view)) for key, raw in rows if (view := committed_view(raw)) is not None]
        wrong = [one.index.name for one in lists if not one.agrees(items)]
        return {"checked": len(lists), "wrong": wrong}

    # ---- the control plane --------------------------------------------------------------------------------

    def _next_cp(self, turn: itertools.count[int] | None = None) -> str:
        return self.control_nodes[next(self._map_turn if turn is None else turn) % len(self.control_nodes)]

    async def _control(self, peer: str, request: dict[str, Any], timeout_ms: int) -> dict[str, Any]:
        raw = await self.transport.call(peer, "cp", Kind.CONTROL, orjson.dumps(request), timeout_ms=timeout_ms)
        answer: dict[str, Any] = orjson.loads(raw)
        return answer

    async def _follow_map(self) -> None:
        cfg = self.node_config
        loop = asyncio.get_running_loop()
        backoff_ms = cfg.map_retry_min_ms
        peer = self._next_cp()
        while not self._stopped:
            request = {"op": ControlOp.GET_MAP.value, "since": self.map_version, "wait_ms": cfg.map_wait_ms}
            started = loop.time()
            try:
                answer = await self._control(peer, request, cfg.map_wait_ms + cfg.control_timeout_ms)
            except (TransportError, orjson.JSONDecodeError) as exc:
                log.debug("get_map failed", peer=peer, error=str(exc))
                answer = {}
            if "ok" in answer:
                backoff_ms = cfg.map_retry_min_ms
                try:
                    newer = self.apply_map(answer["ok"])
                except Exception:
                    log.exception("could not apply the partition map", peer=peer)
                    newer = False
                if not newer:
                    # Nothing new: ask another replica next time, so a lagging one cannot hold us back.
                    peer = self._next_cp() if len(self.control_nodes) > 1 else peer
                    if loop.time() - started < cfg.map_wait_ms / 2000.0:
                        await asyncio.sleep(cfg.map_idle_poll_ms / 1000.0)
                continue
            hint = answer.get("redirect")
            peer = hint if isinstance(hint, str) and hint in self.control_nodes else self._next_cp()
            await asyncio.sleep(backoff_ms / 1000.0)
            backoff_ms = min(backoff_ms * 2, cfg.map_retry_max_ms)

    def heartbeat_payload(self) -> dict[str, Any]:
        replicas = []
        stats: dict[str, dict[str, int]] = {}
        now = asyncio.get_running_loop().time()
        for pid, hosted in self.hosted.items():
            info = self.host.describe(hosted.group)
            replicas.append({
                "group": hosted.group, "partition_id": pid, "table": hosted.table, "role": info["role"],
                "leader": info["leader"], "commit_index": info["commit_index"],
                "applied_index": info["applied_index"], "last_index": info["last_index"],
                "voters": info["voters"], "learners": info["learners"], "outgoing": info["outgoing"],
                "split": hosted.machine.split.index if hosted.machine.split is not None else 0,
            })
            if info["role"] == "leader":
                replicas[-1]["wcu_per_s"] = round(hosted.machine.heat.rate(hosted.machine.clock()), 1)
            if info["role"] == "leader":
                if now - hosted.stats_at >= self.node_config.stats_interval_ms / 1000.0:
                    rng = hosted.data.range
                    hosted.stats = self.store.stats(rng.start, rng.end)
                    hosted.stats_at = now
                if hosted.stats is not None:
                    stats[str(pid)] = {"items": hosted.stats.count, "bytes": hosted.stats.bytes}
        return {"op": ControlOp.HEARTBEAT.value, "node": self.name, "az": self.az, "address": self.address,
                "incarnation": self.incarnation, "map_version": self.map_version, "replicas": replicas,
                "stats": stats}

    async def _heartbeat_loop(self) -> None:
        cfg = self.node_config
        retry_ms = cfg.map_retry_min_ms
        while not self._stopped:
            peer = self.cp_leader or self._next_cp(self._heartbeat_turn)
            try:
                answer = await self._control(peer, self.heartbeat_payload(), cfg.control_timeout_ms)
            except (TransportError, orjson.JSONDecodeError) as exc:
                log.debug("heartbeat failed", peer=peer, error=str(exc))
                answer = {}
            self.drive_repairs()
            if "ok" in answer:
                self.cp_leader = peer
                wait_ms = cfg.heartbeat_interval_ms
                retry_ms = cfg.map_retry_min_ms
            else:
                hint = answer.get("redirect")
                self.cp_leader = hint if isinstance(hint, str) and hint in self.control_nodes else ""
                if self.cp_leader:
                    continue  # go to the leader at once
                # Not heard (that control-plane node is down, or an election is under way): the next one is
                # tried soon, backing off to the interval, so a report of a new leader is not held back.
                wait_ms = min(retry_ms, cfg.heartbeat_interval_ms)
                retry_ms = min(retry_ms * 2, cfg.heartbeat_interval_ms)
            try:
                await asyncio.wait_for(self._report_now.wait(), wait_ms / 1000.0)
            except TimeoutError:
                pass
            else:  # woken by a change: let others that come with it join this report
                await asyncio.sleep(cfg.min_heartbeat_gap_ms / 1000.0)
            self._report_now.clear()

    # ---- time to live --------------------------------------------------------------------------------------

    async def _ttl_loop(self) -> None:
        interval_s = self.config.admin.ttl_sweep_interval_s
        while not self._stopped:
            await asyncio.sleep(interval_s)
            try:
                await self.sweep_expired(time.time())
            except Exception:
                log.exception("time-to-live sweep failed")

    async def sweep_expired(self, now_s: float) -> int:
        """One look for expired items in every partition this node leads whose table has time to live:
        at most ``ttl_sweep_items`` items examined and ``ttl_sweep_deletes`` deleted per partition, going
        on where the last look stopped (from the start again after the end). The number deleted."""
        admin = self.config.admin
        deleted = 0
        for hosted in list(self.hosted.values()):
            attribute = self.ttl_attributes.get(hosted.table_id)
            if not attribute or hosted.data.frozen or self.host.leader_of(hosted.group) != self.name:
                hosted.ttl_cursor = None
                continue
            rng = hosted.data.range
            start = hosted.ttl_cursor if hosted.ttl_cursor is not None else rng.start
            rows = hosted.data.scan_applied(start, rng.end, False, admin.ttl_sweep_items, 1 << 24)
            found: list[tuple[bytes, str]] = []
            examined = 0
            last = b""
            for skey, raw in rows:
                examined += 1
                last = skey
                if raw is None:
                    continue
                value = expired_value(decode_item(raw), attribute, now_s)
                if value is not None:
                    found.append((skey, value))
                    if len(found) >= admin.ttl_sweep_deletes:
                        break
            more = examined >= admin.ttl_sweep_items or len(found) >= admin.ttl_sweep_deletes
            hosted.ttl_cursor = last + b"\x00" if more else None
            for skey, value in found:
                if self._stopped or self.hosted.get(hosted.partition_id) is not hosted:
                    break
                deleted += await self.items.expire(hosted, skey, attribute, value, now_s)
        return deleted

    # ---- status ------------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        leaders = sum(1 for h in self.hosted.values() if self.host.leader_of(h.group) == self.name)
        return {"replicas": len(self.hosted), "leaders": leaders, "map_version": self.map_version,
                "cp_leader": self.cp_leader}

    def fill_status(self, reply: Any) -> None:
        for pid, hosted in sorted(self.hosted.items()):
            info = self.host.describe(hosted.group)
            reply.replicas.add(
                table=hosted.table, partition_id=str(pid), hash_lo=hosted.data.hash_lo,
                hash_hi=min(hosted.data.hash_hi, UINT64_MAX), role=info["role"], leader=info["leader"],
                replicas=list(hosted.replicas), commit_index=info["commit_index"],
                applied_index=info["applied_index"], last_index=info["last_index"], ballot=info["ballot"],
            )
        reply.partition_map_version = self.map_version

    def collect_metrics(self) -> Iterable[Metric]:
        """Prometheus families (``Metrics.add_collector``); runs on the exporter's thread, so it only reads."""
        requests = CounterMetricFamily("ddb_storage_item_requests", "item requests served",
                                       labels=["op", "outcome"])
        for (op, outcome), count in list(self.items.requests.items()):
            requests.add_metric([op, outcome], count)
        yield requests
        hosted = list(self.hosted.values())
        leaders = sum(1 for h in hosted if self.host.leader_of(h.group) == self.name)
        for name, doc, value in (
            ("ddb_storage_replicas", "partition replicas hosted", len(hosted)),
            ("ddb_storage_leaders", "partition replicas that lead their group", leaders),
            ("ddb_storage_map_version", "partition map version followed", self.map_version),
            ("ddb_storage_gsi_entry_lists", "GSI entry lists kept in memory (built by GSI Queries)",
             sum(h.data.entry_lists.count() for h in hosted)),
            ("ddb_storage_gsi_entries", "entries in this node's GSI entry lists",
             sum(h.data.entry_lists.entries() for h in hosted)),
            ("ddb_storage_txn_locks", "items a transaction holds locked, in the replicas hosted here",
             sum(len(h.data.locks) for h in hosted)),
        ):
            yield GaugeMetricFamily(name, doc, value=value)
        resolved = CounterMetricFamily("ddb_storage_txn_locks_resolved",
                                       "transactions whose stale locks this node's leaders resolved, by decision",
                                       labels=["decision"])
        for decision, count in list(self.items.txn.resolved.items()):
            resolved.add_metric([decision], count)
        yield resolved
        yield CounterMetricFamily("ddb_storage_fsyncs", "synced store writes of the replication driver",
                                  value=self.host.fsyncs)
        yield CounterMetricFamily("ddb_storage_replication_rounds", "replication driver rounds",
                                  value=self.host.rounds)
        sent = CounterMetricFamily("ddb_storage_paxos_messages_sent", "Paxos messages sent, by type",
                                   labels=["type"])
        for kind, count in list(self.host.sent_paxos.items()):
            sent.add_metric([kind], count)
        yield sent
        streams = self.host.streams
        for name, doc, value in (
            ("ddb_storage_snapshot_chunks_sent", "snapshot chunks streamed to followers", streams.sent_chunks),
            ("ddb_storage_snapshot_chunks_received", "snapshot chunks written from a leader", streams.received_chunks),
            ("ddb_storage_snapshot_transfers_completed", "snapshot transfers sent to the end",
             streams.completed_transfers),
            ("ddb_storage_snapshot_transfers_failed", "snapshot transfers cut short (retried)",
             streams.failed_transfers),
        ):
            yield CounterMetricFamily(name, doc, value=value)

    def partition_route(self, table_id: int, hash64: int) -> tuple[str, tuple[str, ...]] | None:
        """(group, replicas) of the partition holding ``hash64`` of the table, in the map followed."""
        for lo, hi, group, replicas in self.table_partitions.get(table_id, ()):
            if lo <= hash64 < hi:
                return group, replicas
        return None

    def partition_for(self, group: str) -> Hosted | None:
        pid = partition_of_group(group)
        return None if pid is None else self.hosted.get(pid)

    def is_leader(self, hosted: Hosted) -> bool:
        return self.host.groups[hosted.group].replica.role is Role.LEADER


AUDIT_MAX_ITEMS = 50_000  # ``ddb verify`` audits the entry lists of partitions up to this many items


def _incarnation(store: Store) -> str:
    """This disk's id: made (and synced) the first time the store opens, kept for the store's life."""
    raw = store.get_meta(INCARNATION)
    if raw is not None:
        return raw.decode()
    incarnation = uuid.uuid4().hex
    batch = store.batch()
    store.put_meta(batch, INCARNATION, incarnation.encode())
    store.write(batch, sync=True)
    return incarnation


def _strictly_inside(lo: int, hi: int, outer_lo: int, outer_hi: int) -> bool:
    return outer_lo <= lo and hi <= outer_hi and (lo, hi) != (outer_lo, outer_hi)


class _Spans:
    """Partition ranges (table id, lo, hi), to ask whether one is a descendant of a partition ``[lo, hi)``:
    the same table, strictly inside (ranges only ever split, so nested means newer). A map's ranges of one
    table are disjoint, so a look-up scans the few that start inside ``[lo, hi)``: O(log n)."""

    def __init__(self, spans: Iterable[tuple[int, int, int]]) -> None:
        self._by_table: dict[int, list[tuple[int, int]]] = {}
        for table_id, lo, hi in spans:
            self._by_table.setdefault(table_id, []).append((lo, hi))
        for ranges in self._by_table.values():
            ranges.sort()

    def has_descendant(self, table_id: int, lo: int, hi: int) -> bool:
        ranges = self._by_table.get(table_id, [])
        at = bisect.bisect_left(ranges, (lo, -1))
        while at < len(ranges) and ranges[at][0] < hi:
            if _strictly_inside(ranges[at][0], ranges[at][1], lo, hi):
                return True
            at += 1
        return False
