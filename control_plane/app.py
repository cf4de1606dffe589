"""The control-plane process: the "cp" Paxos group over the metadata, and the CONTROL request service.

Every control-plane node runs one replica of the group "cp" (store group 0, in its own RocksDB under the
node's folder). All of them answer ``get_map`` from their applied state; the leader alone serves table
operations and heartbeats (the others answer ``{"redirect": leader}``). The leader also does its duties in
one loop: register the config's storage nodes, and flip CREATING tables to ACTIVE once every partition has
a leader, as heartbeats tell.

Request flow at the leader (``proto.kinds`` has the payloads): reads pass a read barrier (lease held and
everything committed applied) and answer from the metadata; changes are serialised by one lock, planned
against the applied state (``control_plane.tables``), proposed, and answered from the applied result.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
from prometheus_client.core import GaugeMetricFamily, Metric

from control_plane import tables
from control_plane.machine import CP_GROUP, CP_GROUP_NUMBER, MetadataMachine
from control_plane.metadata import Metadata, MetadataError, TableInfo, encode_command
from control_plane.view import ClusterView
from dynamo.errors import DynamoError, InternalServerError, SerializationException, ValidationException
from paxos.errors import LeaseNotReady, NotLeader, ProposalDropped
from proto.kinds import ControlOp, Kind, partition_group
from runtime.config import Role
from runtime.logs import get_logger
from runtime.process import ProcessApp, ProcessHost
from runtime.replication import DriverConfig, GroupHost, Indeterminate
from runtime.store import Store
from runtime.transport import Dispatcher, Message

log = get_logger("control_plane")


class ControlPlaneApp(ProcessApp):
    def __init__(
        self,
        *,
        propose_timeout_ms: int = 3_000,
        barrier_timeout_ms: int = 2_000,
        duty_interval_ms: int = 100,
        create_table_wait_ms: int = 1_500,
        max_map_wait_ms: int = 30_000,
        max_map_waiters: int = 1_024,
        compact_after_entries: int = 1_000,
        new_uuid: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.propose_timeout_ms = propose_timeout_ms
        self.barrier_timeout_ms = barrier_timeout_ms
        self.duty_interval_ms = duty_interval_ms
        self.create_table_wait_ms = create_table_wait_ms
        self.max_map_wait_ms = max_map_wait_ms
        self.max_map_waiters = max_map_waiters
        self.compact_after_entries = compact_after_entries
        self.new_uuid = new_uuid
        self._map_waiters = 0
        self._map_changed = asyncio.Event()
        self._duty_now = asyncio.Event()  # a heartbeat may let a CREATING table turn ACTIVE: look at once
        self._encoded_map: tuple[int, bytes] | None = None
        self._lock = asyncio.Lock()  # one table change at a time: each is planned on the latest state
        self._serving = False  # peers may reach the transport before start() is done or after stop()
        self._leader_since_ms: float | None = None  # when this replica was first seen leading (liveness)
        self._dispatch = Dispatcher()
        self._dispatch.on_one_way(Kind.PAXOS, self._on_paxos)
        self._dispatch.on_call(Kind.CONTROL, self._on_control)

    # ---- lifecycle -----------------------------------------------------------------------------------

    async def start(self, host: ProcessHost) -> None:
        self.host = host
        self.name = host.node.name
        config = host.config
        self.voters = tuple(n.name for n in config.by_role(Role.CONTROL))
        self.view = ClusterView(stale_after_ms=3 * config.admin.node_heartbeat_interval_ms)
        self.store = Store(host.node_dir)
        self.machine = MetadataMachine(self.store, on_map_change=self._on_map_change)
        driver = DriverConfig.from_timing(
            config.paxos, compact_after_entries=self.compact_after_entries, persist_snapshot_data=True
        )
        self.groups = GroupHost(self.name, self.store, host.transport, driver)
        # A new cluster's control plane is first led by the first replica the config lists (a restarted one
        # elects as usual): the cluster can create tables a second or two sooner.
        self.groups.add_group(CP_GROUP, CP_GROUP_NUMBER, self.voters, self.machine,
                              first_leader=self.name == self.voters[0])
        self._requests = host.metrics.counter("cp_requests", "control requests served", ["op", "outcome"])
        host.metrics.add_collector(self._collect_metrics)
        self.groups.start()
        self._serving = True
        host.spawn(self._duties(), name="cp-duties")
        host.ready = True
        log.info("control plane started", voters=list(self.voters), applied=self.meta.applied_index)

    async def stop(self) -> None:
        if not self._serving:
            return
        self._serving = False
        await self.groups.stop()
        # Paxos messages keep arriving until the host closes the transport: with the group gone they are
        # ignored instead of reaching a closed store.
        self.groups.remove_group(CP_GROUP, drop_data=False)
        self.store.close()

    @property
    def meta(self) -> Metadata:
        return self.machine.meta

    def now_ms(self) -> float:
        return self.host.clock.monotonic_ms()

    def is_leader(self) -> bool:
        return self.groups.leader_of(CP_GROUP) == self.name

    # ---- transport ------------------------------------------------------------------------------------

    def on_message(self, sender: str, message: Message) -> None:
        self._dispatch.message(sender, message)

    def on_request(self, sender: str, message: Message) -> Any:
        return self._dispatch.request(sender, message)

    def _on_paxos(self, sender: str, message: Message) -> None:
        if self._serving and message.group == CP_GROUP:
            self.groups.on_paxos_message(sender, message.group, message.payload)

    async def _on_control(self, sender: str, message: Message) -> bytes:
        op, outcome, answer = await self._serve_control(message.payload)
        if self._serving:
            self._requests.labels(op, outcome).inc()
        return answer

    async def _serve_control(self, payload: bytes) -> tuple[str, str, bytes]:
        """(operation, outcome, answer) for one CONTROL request."""
        try:
            request = orjson.loads(payload)
            if not isinstance(request, dict):
                raise ValueError("not an object")
            op = ControlOp(str(request.get("op")))
        except ValueError as exc:
            return "unknown", "error", _error(SerializationException(f"bad control request: {exc}"))
        if not self._serving:
            return op.value, "redirect", _redirect("")
        if op is ControlOp.GET_MAP:
            return op.value, "ok", await self._get_map(request)
        if not self.is_leader():
            return op.value, "redirect", _redirect(self.groups.leader_of(CP_GROUP))
        handler = self._handlers[op]
        try:
            return op.value, "ok", orjson.dumps({"ok": await handler(self, request)})
        except DynamoError as err:
            return op.value, "error", _error(err)
        except (NotLeader, ProposalDropped, LeaseNotReady):
            return op.value, "redirect", _redirect("" if self.is_leader() else self.groups.leader_of(CP_GROUP))
        except (Indeterminate, TimeoutError):
            return op.value, "unknown", _error(InternalServerError(
                "the control plane could not confirm the change in time; its outcome is unknown"))
        except (KeyError, TypeError) as exc:
            return op.value, "error", _error(ValidationException(f"malformed {op.value} request: {exc!r}"))

    def _collect_metrics(self) -> Iterable[Metric]:
        if not self._serving:
            return
        now_ms = self.now_ms()
        heard = self.view.last_heartbeat_ms
        for name, doc, value in (
            ("ddb_cp_leader", "1 on the control-plane leader", 1.0 if self.is_leader() else 0.0),
            ("ddb_cp_map_version", "partition map version applied here", float(self.meta.map_version)),
            ("ddb_cp_tables", "tables in the applied metadata", float(len(self.meta.tables))),
            ("ddb_cp_partitions", "partitions in the applied metadata", float(len(self.meta.partitions))),
            ("ddb_cp_nodes_alive", "storage nodes heard from recently (leader only)",
             float(sum(self.view.is_fresh(at, now_ms) for at in heard.values()))),
            ("ddb_cp_map_waiters", "get_map long polls waiting", float(self._map_waiters)),
        ):
            family = GaugeMetricFamily(name, doc)
            family.add_metric([], value)
            yield family

    # ---- the replicated log ----------------------------------------------------------------------------

    async def _barrier(self) -> None:
        """Wait until this leader may answer from its applied state (lease held, all committed applied)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.barrier_timeout_ms / 1000.0
        while True:
            try:
                await asyncio.wait_for(self.groups.read_barrier(CP_GROUP), max(0.0, deadline - loop.time()))
                return
            except LeaseNotReady:
                if loop.time() >= deadline:
                    raise
                await asyncio.sleep(0.01)  # a new leader waits out its predecessor's lease

    async def _propose(self, command: bytes) -> Any:
        """Propose and wait for the applied result; a refused command comes back as its DynamoError."""
        future = self.groups.propose(CP_GROUP, command)
        result = await asyncio.wait_for(future, self.propose_timeout_ms / 1000.0)
        if isinstance(result, MetadataError):
            raise tables.as_dynamo_error(result)
        return result

    def _on_map_change(self) -> None:
        self._encoded_map = None
        self._map_changed.set()
        self._map_changed = asyncio.Event()

    # ---- get_map (any replica) --------------------------------------------------------------------------

    async def _get_map(self, request: dict[str, Any]) -> bytes:
        since = request.get("since", -1)
        wait_ms = request.get("wait_ms", 0)
        if not isinstance(since, int) or not isinstance(wait_ms, int | float):
            return _error(ValidationException("get_map takes integer since and wait_ms"))
        wait_ms = min(max(0.0, float(wait_ms)), float(self.max_map_wait_ms))
        if self.meta.map_version <= since and wait_ms > 0 and self._map_waiters < self.max_map_waiters:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait_ms / 1000.0
            self._map_waiters += 1
            try:
                await self._until_map(lambda: self.meta.map_version > since, deadline)
            finally:
                self._map_waiters -= 1
        return self._map_answer()

    async def _until_map(self, done: Callable[[], bool], deadline: float) -> None:
        """Wait until ``done()`` holds of the applied metadata, checked at each change, or the loop's clock
        passes ``deadline``."""
        loop = asyncio.get_running_loop()
        while not done() and loop.time() < deadline:
            try:
                await asyncio.wait_for(self._map_changed.wait(), deadline - loop.time())
            except TimeoutError:
                return

    def _map_answer(self) -> bytes:
        version = self.meta.map_version
        if self._encoded_map is None or self._encoded_map[0] != version:
            self._encoded_map = (version, b'{"ok":' + orjson.dumps(self.meta.to_map()) + b"}")
        return self._encoded_map[1]

    # ---- table operations (leader) -------------------------------------------------------------------------

    def _usage(self, table: TableInfo) -> tuple[int, int]:
        return self.view.usage([partition_group(pid) for pid in table.partition_ids])

    async def _create_table(self, request: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            await self._barrier()
            await self._register_nodes()  # a table created right after an election needs them placed
            command = tables.plan_create(
                self.meta, request["request"], partitions=self.host.config.admin.partitions_per_new_table,
                now_s=round(self.host.clock.wall_ms()) / 1000.0, table_uuid=self.new_uuid(),
                avoid=self._unplaceable())
            table = await self._propose(command)
        await self._until_not_creating(table.name, table.table_id)
        # The answer says CREATING, as DynamoDB's always does, even when the table is ACTIVE by now.
        return {"TableDescription": tables.describe(table, _region(request), self._usage)}

    def _unplaceable(self) -> frozenset[str]:
        """Storage nodes a new partition should not go to while others can: not heard lately, or on a disk
        the map does not record yet (they host nothing until it does)."""
        now_ms = self.now_ms()
        heard = self.view.last_heartbeat_ms
        return frozenset(name for name, node in self.meta.nodes.items()
                         if name not in heard or not self.view.is_fresh(heard[name], now_ms)
                         or not node.incarnation or self.view.incarnations.get(name, node.incarnation) != node.incarnation)

    async def _until_not_creating(self, name: str, table_id: int) -> None:
        """Wait (at most ``create_table_wait_ms``) for a new table to turn ACTIVE. Here that takes well under a
        second, but the SDKs' waiters (boto3's ``table_exists``, ``aws dynamodb wait table-exists``) look
        again only 20 s after a DescribeTable that says CREATING: answering once the table is ACTIVE saves
        every such client those 20 s. A table that takes longer is answered CREATING, and turns ACTIVE later."""
        def not_creating() -> bool:
            table = self.meta.tables.get(name)
            return table is None or table.table_id != table_id or table.status != "CREATING"

        await self._until_map(not_creating, asyncio.get_running_loop().time() + self.create_table_wait_ms / 1000.0)

    async def _describe_table(self, request: dict[str, Any]) -> dict[str, Any]:
        await self._barrier()
        return tables.describe_table(self.meta, _table_name(request), _region(request), self._usage)

    async def _list_tables(self, request: dict[str, Any]) -> dict[str, Any]:
        await self._barrier()
        return tables.list_tables(self.meta, request.get("request") or {})

    async def _delete_table(self, request: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            await self._barrier()
            table = await self._propose(tables.plan_delete(self.meta, _table_name(request)))
        return {"TableDescription": tables.describe(table, _region(request), self._usage, status="DELETING")}

    async def _update_table(self, request: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            await self._barrier()
            command = tables.plan_update(self.meta, request["request"],
                                         now_s=round(self.host.clock.wall_ms()) / 1000.0)
            if command is None:
                table = self.meta.tables[request["request"]["TableName"]]
            else:
                table = await self._propose(command)
        if command is not None and "StreamSpecification" in request["request"]:
            await self._until_nodes_follow(table, self.meta.map_version)
        # The change is recorded at once; DynamoDB answers UPDATING and soon shows ACTIVE again.
        return {"TableDescription": tables.describe(table, _region(request), self._usage, status="UPDATING")}

    async def _until_nodes_follow(self, table: TableInfo, version: int) -> None:
        """Wait (at most ``create_table_wait_ms``) until every live node holding a replica of ``table`` says
        it follows map ``version``: a stream enabled (or disabled) then covers every write acknowledged after
        the answer, since a leader stamps writes by the map it follows. A node silent that long (dead, cut
        off) is not waited for; its replicas are not leading anything the others would accept anyway."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.create_table_wait_ms / 1000.0
        nodes = {node for pid in table.partition_ids if pid in self.meta.partitions
                 for node in self.meta.partitions[pid].replicas}
        while loop.time() < deadline:
            ages = self.view.node_ages_ms(self.now_ms())
            behind = [node for node in nodes if self.view.map_versions.get(node, 0) < version
                      and ages.get(node, float("inf")) < self.create_table_wait_ms]
            if not behind:
                return
            await asyncio.sleep(0.01)
        log.info("UpdateTable answered before every node followed its map", table=table.name, version=version)

    async def _tag_resource(self, request: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            await self._barrier()
            await self._propose(tables.plan_tag(self.meta, request["request"]))
        return {}

    async def _untag_resource(self, request: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            await self._barrier()
            await self._propose(tables.plan_untag(self.meta, request["request"]))
        return {}

    async def _update_ttl(self, request: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            await self._barrier()
            command = tables.plan_update_ttl(self.meta, request["request"],
                                             now_s=round(self.host.clock.wall_ms()) / 1000.0,
                                             cooldown_s=self.host.config.admin.ttl_update_cooldown_s)
            table = await self._propose(command)
        spec = request["request"]["TimeToLiveSpecification"]
        log.info("time to live changed", table=table.name, attribute=table.ttl_attribute or None)
        return {"TimeToLiveSpecification": {"Enabled": spec["Enabled"], "AttributeName": spec["AttributeName"]}}

    async def _read(self, answer: Callable[[Metadata, dict[str, Any]], dict[str, Any]],
                    request: dict[str, Any]) -> dict[str, Any]:
        """A request answered from the applied metadata alone, past the read barrier."""
        await self._barrier()
        return answer(self.meta, request["request"])

    async def _describe_ttl(self, request: dict[str, Any]) -> dict[str, Any]:
        return await self._read(tables.describe_ttl, request)

    async def _describe_backups(self, request: dict[str, Any]) -> dict[str, Any]:
        return await self._read(tables.describe_continuous_backups, request)

    async def _update_backups(self, request: dict[str, Any]) -> dict[str, Any]:
        # Nothing changes: point-in-time recovery stays off (enabling it is refused), so no command.
        return await self._read(tables.update_continuous_backups, request)

    async def _list_tags(self, request: dict[str, Any]) -> dict[str, Any]:
        return await self._read(tables.list_tags, request)

    async def _heartbeat(self, request: dict[str, Any]) -> dict[str, Any]:
        node = request.get("node")
        if not isinstance(node, str) or not node:
            raise ValidationException("heartbeat needs the node's name")
        self.view.heartbeat(node, request, self.now_ms())
        known = self.meta.nodes.get(node)
        if any(table.status == "CREATING" for table in self.meta.tables.values()) or (
                known is not None and self.view.incarnations.get(node, known.incarnation) != known.incarnation):
            self._duty_now.set()  # a table may turn ACTIVE, or a node's disk needs recording
        return {"map_version": self.meta.map_version}

    # ---- the auto-admin (leader) -------------------------------------------------------------------------

    def leader_since_ms(self) -> float:
        if self._leader_since_ms is None:
            self._leader_since_ms = self.now_ms()
        return self._leader_since_ms

    def _check_lease(self, request: dict[str, Any]) -> None:
        holder, until_ms = self.meta.admin_lease
        if not holder or request.get("holder") != holder or until_ms <= self.host.clock.wall_ms():
            raise ValidationException(f"the caller does not hold the auto-admin lease (held by {holder!r})")

    async def _admin_lease(self, request: dict[str, Any]) -> dict[str, Any]:
        holder, duration_ms = request["holder"], request["duration_ms"]
        if not isinstance(holder, str) or not holder or not isinstance(duration_ms, int) or duration_ms <= 0:
            raise ValidationException("admin_lease takes a holder name and a positive integer duration_ms")
        async with self._lock:
            await self._barrier()
            result: dict[str, Any] = await self._propose(encode_command(
                "admin_lease", holder=holder, duration_ms=duration_ms, now_ms=round(self.host.clock.wall_ms())))
        return result

    async def _admin_state(self, request: dict[str, Any]) -> dict[str, Any]:
        """What the auto-admin decides with: the map, node liveness, each group's replica reports."""
        await self._barrier()
        meta = self.meta
        now_ms = self.now_ms()
        since_ms = self.leader_since_ms()
        delay_ms = self.host.config.admin.repair_delay_s * 1000.0
        heard = self.view.last_heartbeat_ms
        nodes = {name: {"az": info.az,
                        "alive": name in heard and self.view.is_fresh(heard[name], now_ms),
                        "dead": self.view.is_dead(name, now_ms, delay_ms, since_ms)}
                 for name, info in meta.nodes.items()}
        reports = {
            part.group: {r.node: {"role": r.role, "leader": r.leader, "commit": r.commit, "applied": r.applied,
                                  "voters": list(r.voters), "learners": list(r.learners),
                                  "outgoing": list(r.outgoing), "split": r.split, "wcu_per_s": r.wcu_per_s,
                                  "fresh": self.view.is_fresh(r.at_ms, now_ms)}
                         for r in self.view.reports(part.group)}
            for part in meta.partitions.values()
        }
        usage = {part.group: list(self.view.usage([part.group])) for part in meta.partitions.values()}
        policy = self.host.config.admin
        return {"map": meta.to_map(), "nodes": nodes, "reports": reports, "usage": usage,
                "lease": list(meta.admin_lease), "history": meta.history,
                "policy": {"split_size_bytes": policy.split_size_bytes,
                           "split_heat_wcu": policy.split_heat_fraction * policy.partition_max_wcu}}

    async def _begin_repair(self, request: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            await self._barrier()
            self._check_lease(request)
            part = await self._propose(encode_command(
                "begin_repair", partition=int(request["partition"]), old=request["old"], new=request["new"],
                at=round(self.host.clock.wall_ms()) / 1000.0))
        log.info("repair begun", group=part.group, old=part.replacing, new=part.joining)
        return {"partition": part.partition_id, "replicas": list(part.replicas), "joining": part.joining}

    async def _finish_repair(self, request: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            await self._barrier()
            self._check_lease(request)
            part = await self._propose(encode_command(
                "finish_repair", partition=int(request["partition"]), new=request.get("new"),
                at=round(self.host.clock.wall_ms()) / 1000.0))
        log.info("repair finished", group=part.group, replicas=list(part.replicas))
        return {"partition": part.partition_id, "replicas": list(part.replicas), "joining": part.joining}

    async def _begin_split(self, request: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            await self._barrier()
            self._check_lease(request)
            part = await self._propose(encode_command(
                "begin_split", partition=int(request["partition"]), mid=str(int(request["mid"])),
                reason=str(request.get("reason") or ""), at=round(self.host.clock.wall_ms()) / 1000.0))
        log.info("split begun", group=part.group, split=[str(x) for x in part.split or ()])
        return {"partition": part.partition_id, "split": [str(x) for x in part.split or ()]}

    async def _finish_split(self, request: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            await self._barrier()
            self._check_lease(request)
            children = await self._propose(encode_command(
                "finish_split", partition=int(request["partition"]), index=int(request.get("index") or 0),
                at=round(self.host.clock.wall_ms()) / 1000.0))
        log.info("split finished", partition=request["partition"], children=[c.partition_id for c in children])
        return {"children": [c.partition_id for c in children]}

    _handlers: dict[ControlOp, Callable[[ControlPlaneApp, dict[str, Any]], Awaitable[dict[str, Any]]]] = {
        ControlOp.CREATE_TABLE: _create_table,
        ControlOp.DESCRIBE_TABLE: _describe_table,
        ControlOp.LIST_TABLES: _list_tables,
        ControlOp.DELETE_TABLE: _delete_table,
        ControlOp.UPDATE_TABLE: _update_table,
        ControlOp.TAG_RESOURCE: _tag_resource,
        ControlOp.UNTAG_RESOURCE: _untag_resource,
        ControlOp.LIST_TAGS: _list_tags,
        ControlOp.UPDATE_TTL: _update_ttl,
        ControlOp.DESCRIBE_TTL: _describe_ttl,
        ControlOp.DESCRIBE_BACKUPS: _describe_backups,
        ControlOp.UPDATE_BACKUPS: _update_backups,
        ControlOp.HEARTBEAT: _heartbeat,
        ControlOp.ADMIN_LEASE: _admin_lease,
        ControlOp.ADMIN_STATE: _admin_state,
        ControlOp.BEGIN_REPAIR: _begin_repair,
        ControlOp.FINISH_REPAIR: _finish_repair,
        ControlOp.BEGIN_SPLIT: _begin_split,
        ControlOp.FINISH_SPLIT: _finish_split,
    }

    # ---- leader duties --------------------------------------------------------------------------------------

    async def _duties(self) -> None:
        interval_s = self.duty_interval_ms / 1000.0
        while True:
            try:
                await asyncio.wait_for(self._duty_now.wait(), interval_s)
            except TimeoutError:
                pass
            self._duty_now.clear()
            if not self.is_leader():
                self._leader_since_ms = None
                continue
            self.leader_since_ms()
            try:
                await self._leader_round()
            except (NotLeader, ProposalDropped, LeaseNotReady, Indeterminate, TimeoutError) as exc:
                log.debug("leader duty interrupted", error=repr(exc))
            except DynamoError as exc:
                log.warning("leader duty refused", error=repr(exc))

    async def _register_nodes(self) -> None:
        """Register the config's storage nodes the metadata lacks (or knows at another address)."""
        for spec in self.host.config.by_role(Role.STORAGE):
            known = self.meta.nodes.get(spec.name)
            if known is None or (known.az, known.address) != (spec.az, spec.grpc_address):
                await self._propose(encode_command("register_node", name=spec.name, az=spec.az,
                                                   address=spec.grpc_address))

    async def _record_incarnations(self) -> None:
        """Record each storage node's disk as its heartbeats name it. The node hosts nothing until then; a
        new disk under a known name marks the node's replicas lost (``Metadata._node_incarnation``)."""
        for name, incarnation in sorted(self.view.incarnations.items()):
            known = self.meta.nodes.get(name)
            if known is None or known.incarnation == incarnation:
                continue
            await self._propose(encode_command("node_incarnation", name=name, incarnation=incarnation,
                                               at=round(self.host.clock.wall_ms()) / 1000.0))
            if known.incarnation:
                log.warning("storage node came back with a wiped disk: its replicas are lost and will be replaced",
                            storage_node=name, old=known.incarnation, new=incarnation)
            else:
                log.info("storage node's disk recorded", storage_node=name, incarnation=incarnation)

    async def _leader_round(self) -> None:
        async with self._lock:
            await self._barrier()
            await self._register_nodes()
            await self._record_incarnations()
            now_ms = self.now_ms()
            for table in list(self.meta.tables.values()):
                if table.status != "CREATING":
                    continue
                if all(self.view.leader(partition_group(pid), now_ms) for pid in table.partition_ids):
                    await self._propose(encode_command("set_table_status", name=table.name,
                                                       table_id=table.table_id, status="ACTIVE"))
                    log.info("table active", table=table.name, table_id=table.table_id)
            self.view.forget_groups({partition_group(pid) for pid in self.meta.partitions})

    # ---- status --------------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        if not self._serving:
            return {}
        cp = self.groups.describe(CP_GROUP)
        now_ms = self.now_ms()
        return {
            "cp_role": cp["role"],
            "cp_leader": cp["leader"],
            "cp_commit_index": cp["commit_index"],
            "map_version": self.meta.map_version,
            "tables": len(self.meta.tables),
            "partitions": len(self.meta.partitions),
            "node_heartbeat_age_ms": {n: round(age) for n, age in self.view.node_ages_ms(now_ms).items()},
        }

    def fill_status(self, reply: Any) -> None:
        """This replica of the "cp" group in ``replicas`` (``ddb status`` merges replicas by the node that
        reports them, so storage nodes report their own); the heartbeat view goes to ``detail_json``."""
        if not self._serving:
            return
        meta = self.meta
        reply.partition_map_version = meta.map_version
        cp = self.groups.describe(CP_GROUP)
        reply.replicas.add(
            table="", partition_id=CP_GROUP, role=cp["role"], leader=cp["leader"], replicas=list(self.voters),
            commit_index=cp["commit_index"], applied_index=cp["applied_index"], last_index=cp["last_index"],
            ballot=cp["ballot"])
        reply.detail_json = orjson.dumps(self.cluster_view()).decode()

    def cluster_view(self) -> dict[str, Any]:
        """Nodes (last heartbeat, alive) and partitions (leader, replicas, commit and lag per replica) as the
        storage nodes' heartbeats tell this replica; only the leader hears them."""
        meta = self.meta
        now_ms = self.now_ms()
        names = {t.table_id: t.name for t in meta.tables.values()}
        partitions: dict[str, Any] = {}
        for part in meta.partitions.values():
            reports = self.view.reports(part.group)
            top = max((r.commit for r in reports), default=0)
            partitions[part.group] = {
                "table": names.get(part.table_id, ""), "hash_lo": str(part.hash_lo), "hash_hi": str(part.hash_hi),
                "replicas": list(part.replicas), "lost": list(part.lost),
                "leader": self.view.leader(part.group, now_ms),
                "commit_index": top,
                "reports": {r.node: {"role": r.role, "leader": r.leader, "commit_index": r.commit,
                                     "applied_index": r.applied, "lag": top - r.applied,
                                     "age_ms": round(now_ms - r.at_ms)} for r in reports},
            }
        heard = self.view.last_heartbeat_ms
        nodes = {
            name: {"az": info.az, "address": info.address,
                   "heartbeat_age_ms": round(now_ms - heard[name]) if name in heard else None,
                   "alive": name in heard and self.view.is_fresh(heard[name], now_ms)}
            for name, info in sorted(meta.nodes.items())
        }
        repairs = [{"partition": p.partition_id, "old": p.replacing, "new": p.joining}
                   for p in meta.repairs_in_progress()]
        splits = [{"partition": p.partition_id, "mid": str(p.split[0]), "left": p.split[1], "right": p.split[2]}
                  for p in meta.splits_in_progress() if p.split]
        holder, until_ms = meta.admin_lease
        return {"cp_leader": self.groups.leader_of(CP_GROUP), "map_version": meta.map_version, "nodes": nodes,
                "tables": {t.name: t.status for t in meta.tables.values()}, "partitions": partitions,
                "admin": {"lease_holder": holder, "lease_until_ms": until_ms, "repairs": repairs, "splits": splits,
                          "history": meta.history[-20:]}}


def _region(request: dict[str, Any]) -> str:
    region = request.get("region")
    return region if isinstance(region, str) and region else tables.DEFAULT_REGION


def _table_name(request: dict[str, Any]) -> str:
    name = request.get("name")
    if name is None and isinstance(request.get("request"), dict):
        name = request["request"].get("TableName")
    if not isinstance(name, str):
        raise ValidationException("the request names no table")
    return name


def _error(err: DynamoError) -> bytes:
    return orjson.dumps({"error": err.to_body()})


def _redirect(leader: str) -> bytes:
    return orjson.dumps({"redirect": leader})


__all__ = ["ControlPlaneApp"]
