"""Three control-plane processes in one event loop over real gRPC on 127.0.0.1, driven by a client that
speaks the CONTROL contract (proto/kinds.py) the way a router or a storage node does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import generate_latest

from control_plane.app import ControlPlaneApp
from deploy.cluster import ask_node
from dynamo.errors import DynamoError, ResourceInUseException, ResourceNotFoundException
from proto.kinds import Kind, error_from_body
from runtime.config import AdminPolicy, ClusterConfig, Limits, PaxosTiming, build_cluster_config
from runtime.process import ProcessHost
from runtime.transport import Timeout, Transport, TransportError

pytestmark = pytest.mark.timeout(60)
CPS = ("cp-a", "cp-b", "cp-c")
ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/"
FAST = PaxosTiming(tick_ms=10, heartbeat_interval_ticks=2, election_timeout_ticks=20, lease_ticks=16)


class Cluster:
    def __init__(self, config: ClusterConfig, compact_after_entries: int, create_table_wait_ms: int) -> None:
        self.config = config
        self.compact_after_entries = compact_after_entries
        self.create_table_wait_ms = create_table_wait_ms
        self.hosts: dict[str, ProcessHost] = {}
        self.runs: dict[str, asyncio.Task[int]] = {}
        peers = {n.name: n.grpc_address for n in config.nodes if n.name in CPS}
        self.client = Transport("rr-1", peers, config.limits)

    async def start(self, name: str) -> None:
        host = ProcessHost(self.config, self.config.node(name), ControlPlaneApp(
            duty_interval_ms=50, compact_after_entries=self.compact_after_entries,
            create_table_wait_ms=self.create_table_wait_ms))
        self.hosts[name] = host
        self.runs[name] = asyncio.create_task(host.run())
        for _ in range(500):
            if host.ready:
                return
            assert not self.runs[name].done(), f"{name} exited: {self.runs[name].result()}"
            await asyncio.sleep(0.01)
        raise AssertionError(f"{name} did not start")

    async def stop(self, name: str) -> None:
        self.hosts[name].request_stop()
        assert await asyncio.wait_for(self.runs.pop(name), 10) == 0
        del self.hosts[name]

    def app(self, name: str) -> ControlPlaneApp:
        app = self.hosts[name].app
        assert isinstance(app, ControlPlaneApp)
        return app

    async def leader(self, timeout_s: float = 5.0) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            for name in self.hosts:
                if self.app(name).is_leader():
                    return name
            await asyncio.sleep(0.01)
        raise AssertionError("no control-plane leader")

    async def raw(self, target: str, op: str, /, **fields: Any) -> dict[str, Any]:
        payload = orjson.dumps({"op": op, **fields})
        answer: dict[str, Any] = orjson.loads(await self.client.call(target, "cp", Kind.CONTROL, payload, 3000))
        return answer

    async def ask(self, op: str, timeout_s: float = 8.0, **fields: Any) -> Any:
        """Call the leader, following redirects and retrying while there is none, as a router does."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        target = next(iter(self.hosts))
        while loop.time() < deadline:
            try:
                answer = await self.raw(target, op, **fields)
            except TransportError:
                answer = {"redirect": ""}
            if "ok" in answer:
                return answer["ok"]
            if "error" in answer:
                raise error_from_body(answer["error"])
            leader = answer["redirect"]
            if leader in self.hosts:
                target = leader
            else:
                await asyncio.sleep(0.05)
                alive = list(self.hosts)
                target = alive[(alive.index(target) + 1) % len(alive)] if target in alive else alive[0]
        raise AssertionError(f"{op}: no answer from a leader")

    async def heartbeat_all(self, partitions: list[str], leader_node: str = "sn-a1") -> None:
        """Fake storage-node heartbeats: every node hosts every partition, sn-a1 leads them."""
        for node in ("sn-a1", "sn-b1", "sn-c1"):
            replicas = [{"group": f"p{pid}", "role": "leader" if node == leader_node else "follower",
                         "leader": leader_node, "commit": 7, "applied": 7 if node == leader_node else 5}
                        for pid in partitions]
            stats = {f"p{pid}": {"items": 2, "bytes": 100} for pid in partitions} if node == leader_node else {}
            result = await self.ask("heartbeat", node=node, replicas=replicas, stats=stats)
            assert isinstance(result["map_version"], int)

    async def close(self) -> None:
        for name in list(self.hosts):
            await self.stop(name)
        await self.client.close()


@asynccontextmanager
async def cluster(tmp_path: Path, base_port: int, compact_after_entries: int = 1000,
                  create_table_wait_ms: int = 0) -> AsyncIterator[Cluster]:
    """Control-plane nodes alone (storage nodes' heartbeats are faked). CreateTable answers at once unless
    ``create_table_wait_ms`` says how long it waits for the table to turn ACTIVE."""
    config = build_cluster_config(tmp_path, nodes_per_az=1, base_port=base_port, paxos=FAST,
                                  admin=AdminPolicy(node_heartbeat_interval_ms=200, partitions_per_new_table=2),
                                  limits=Limits(shutdown_grace_ms=300))
    c = Cluster(config, compact_after_entries, create_table_wait_ms)
    try:
        await asyncio.gather(*(c.start(name) for name in CPS))
        yield c
    finally:
        await c.close()


def table_request(name: str) -> dict[str, Any]:
    return {"TableName": name, "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST"}


async def wait_status(c: Cluster, name: str, status: str, timeout_s: float = 5.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        table: dict[str, Any] = (await c.ask("describe_table", name=name))["Table"]
        if table["TableStatus"] == status or loop.time() > deadline:
            assert table["TableStatus"] == status
            return table
        await asyncio.sleep(0.05)


async def test_table_operations_round_trip(tmp_path: Path) -> None:
    async with cluster(tmp_path, 25000) as c:
        leader = await c.leader()
        follower = next(n for n in CPS if n != leader)
        assert await c.raw(follower, "describe_table", name="x") == {"redirect": leader}

        created = (await c.ask("create_table", request=table_request("Music"), region="eu-west-1"))
        description = created["TableDescription"]
        assert description["TableStatus"] == "CREATING"
        assert description["TableArn"] == "arn:aws:dynamodb:eu-west-1:000000000000:table/Music"
        with pytest.raises(ResourceInUseException, match="Table already exists: Music"):
            await c.ask("create_table", request=table_request("Music"))
        with pytest.raises(ResourceNotFoundException, match="Table: Nope not found"):
            await c.ask("describe_table", name="Nope")

        # Nodes registered by the leader; CREATING until every partition reports a leader. Any control-plane
        # node answers get_map from what it has applied (a follower may lag by a heartbeat); the leader has
        # applied what it acknowledged.
        the_map = (await c.raw(leader, "get_map", since=-1, wait_ms=0))["ok"]
        assert sorted(the_map["nodes"]) == ["sn-a1", "sn-b1", "sn-c1"]
        partitions = the_map["tables"]["Music"]["partitions"]
        assert len(partitions) == 2 and the_map["tables"]["Music"]["status"] == "CREATING"
        await asyncio.sleep(0.2)
        assert (await c.ask("describe_table", name="Music"))["Table"]["TableStatus"] == "CREATING"
        await c.heartbeat_all(partitions)
        table = await wait_status(c, "Music", "ACTIVE")
        assert (table["ItemCount"], table["TableSizeBytes"]) == (4, 200)

        for name in ("Alpha", "Beta", "Gamma"):
            await c.ask("create_table", request=table_request(name))
        page = await c.ask("list_tables", request={"Limit": 2})
        assert page == {"TableNames": ["Alpha", "Beta"], "LastEvaluatedTableName": "Beta"}
        page = await c.ask("list_tables", request={"ExclusiveStartTableName": "Beta"})
        assert page == {"TableNames": ["Gamma", "Music"]}

        updated = await c.ask("update_table", request={
            "TableName": "Music", "BillingMode": "PROVISIONED",
            "ProvisionedThroughput": {"ReadCapacityUnits": 7, "WriteCapacityUnits": 3}})
        assert updated["TableDescription"]["TableStatus"] == "UPDATING"
        table = (await c.ask("describe_table", name="Music"))["Table"]
        assert table["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
        assert table["ProvisionedThroughput"]["ReadCapacityUnits"] == 7

        await c.ask("tag_resource", request={"ResourceArn": ARN + "Music", "Tags": [{"Key": "k", "Value": "v"}]})
        await c.ask("untag_resource", request={"ResourceArn": ARN + "Music", "TagKeys": ["nope"]})
        assert await c.ask("list_tags", request={"ResourceArn": ARN + "Music"}) == {
            "Tags": [{"Key": "k", "Value": "v"}]}
        with pytest.raises(DynamoError, match="Invalid TableArn"):
            await c.ask("list_tags", request={"ResourceArn": "bogus"})

        with pytest.raises(ResourceInUseException, match="Table is being created: Alpha"):
            await c.ask("delete_table", name="Alpha")
        await c.heartbeat_all([p for t in (await c.ask("get_map"))["tables"].values() for p in t["partitions"]])
        await wait_status(c, "Alpha", "ACTIVE")
        deleted = await c.ask("delete_table", name="Alpha")
        assert deleted["TableDescription"]["TableStatus"] == "DELETING"
        with pytest.raises(ResourceNotFoundException):
            await c.ask("describe_table", name="Alpha")

        # Malformed requests get errors, and every process keeps serving.
        assert "error" in orjson.loads(await c.client.call(leader, "cp", Kind.CONTROL, b"{not json", 3000))
        assert "error" in await c.raw(leader, "no_such_op")
        assert "error" in await c.raw(leader, "create_table", request={"TableName": "x"})

        # Every replica's applied map converges; `ddb status` sees partitions and nodes at the leader.
        versions = set()
        for name in CPS:
            versions.add((await c.raw(name, "get_map", since=-1))["ok"]["version"])
        assert len(versions) <= 2  # a follower may lag by the last command for a moment
        await c.heartbeat_all(partitions)
        reply = await ask_node(c.config.node(leader), "Status", timeout_s=2.0)
        assert reply.partition_map_version >= max(versions) - 1
        assert [(r.partition_id, r.role) for r in reply.replicas] == [("cp", "leader")]
        detail = orjson.loads(reply.detail_json)
        assert detail["nodes"]["sn-a1"]["alive"] is True and detail["cp_leader"] == leader
        music = detail["partitions"][f"p{partitions[0]}"]
        assert (music["table"], music["leader"], music["commit_index"]) == ("Music", "sn-a1", 7)
        assert {node: r["lag"] for node, r in music["reports"].items()} == {"sn-a1": 0, "sn-b1": 2, "sn-c1": 2}
        assert orjson.loads(reply.health.status_json)["cp_role"] == "leader"
        metrics = generate_latest(c.hosts[leader].metrics.registry).decode()
        assert "ddb_cp_leader 1.0" in metrics and "ddb_cp_nodes_alive 3.0" in metrics
        assert 'ddb_cp_requests_total{op="create_table",outcome="ok"} 4.0' in metrics


async def test_create_table_answers_once_the_table_is_active_or_after_its_wait(tmp_path: Path) -> None:
    """SDK waiters look again 20 s after a DescribeTable that says CREATING, so CreateTable answers (CREATING, as
    DynamoDB's does) only once the table is ACTIVE, or after ``create_table_wait_ms``."""
    async with cluster(tmp_path, 25300, create_table_wait_ms=2500) as c:  # under the client's 3 s per call
        await c.leader()
        loop = asyncio.get_running_loop()
        started = loop.time()
        create = asyncio.create_task(c.ask("create_table", request=table_request("Music")))

        async def created_partitions() -> list[str]:
            while True:
                the_map = await c.ask("get_map")
                if "Music" in the_map["tables"]:
                    return list(the_map["tables"]["Music"]["partitions"])
                await asyncio.sleep(0.01)

        partitions = await asyncio.wait_for(created_partitions(), 2)
        await asyncio.sleep(0.3)
        assert not create.done()  # no partition has a leader yet
        await c.heartbeat_all(partitions)
        created = await asyncio.wait_for(create, 2)
        assert created["TableDescription"]["TableStatus"] == "CREATING"
        assert loop.time() - started < 2.5  # answered when it turned ACTIVE, not at the end of the wait
        assert (await c.ask("describe_table", name="Music"))["Table"]["TableStatus"] == "ACTIVE"

        started = loop.time()
        created = await c.ask("create_table", request=table_request("Alone"))  # nobody heartbeats for it
        assert loop.time() - started >= 2.5
        assert (await c.ask("describe_table", name="Alone"))["Table"]["TableStatus"] == "CREATING"


async def test_leader_loss_and_restart_keep_the_state(tmp_path: Path) -> None:
    # Logs are compacted every few entries, so the restarted replica catches up from a snapshot.
    async with cluster(tmp_path, 25100, compact_after_entries=4) as c:
        await c.ask("create_table", request=table_request("Before"))
        old = await c.leader()
        await c.stop(old)
        new = await c.leader()
        assert new != old
        table = (await c.ask("describe_table", name="Before"))["Table"]
        assert table["TableName"] == "Before"
        for name in ("After", "More", "Other", "Yet"):
            await c.ask("create_table", request=table_request(name))
        await c.heartbeat_all([p for t in (await c.ask("get_map"))["tables"].values() for p in t["partitions"]])
        await wait_status(c, "Yet", "ACTIVE")
        await wait_status(c, "Before", "ACTIVE")
        await c.ask("tag_resource", request={"ResourceArn": ARN + "Before", "Tags": [{"Key": "k", "Value": "v"}]})
        await c.ask("delete_table", name="Yet")
        names = ["After", "Before", "More", "Other"]
        assert (await c.ask("list_tables", request={}))["TableNames"] == names
        assert c.app(new).groups.groups["cp"].snapshot_index > 0, "the survivors compacted their logs"
        version = c.app(new).meta.map_version

        await c.start(old)  # from its store: it must catch up with what it missed
        for _ in range(300):
            if c.app(old).meta.map_version == version:
                break
            await asyncio.sleep(0.01)
        answer = await c.raw(old, "get_map", since=-1)
        assert answer["ok"]["version"] == version and sorted(answer["ok"]["tables"]) == names
        assert c.app(old).meta.tables["Before"].tags == {"k": "v"}

        # And a restarted leader (all three, one by one) keeps everything.
        for name in CPS:
            await c.stop(name)
            await c.start(name)
        assert (await c.ask("list_tables", request={}))["TableNames"] == names
        assert await c.ask("list_tags", request={"ResourceArn": ARN + "Before"}) == {
            "Tags": [{"Key": "k", "Value": "v"}]}


async def test_get_map_long_poll(tmp_path: Path) -> None:
    async with cluster(tmp_path, 25200) as c:
        await c.ask("create_table", request=table_request("First"))
        leader = await c.leader()
        follower = next(n for n in CPS if n != leader)
        loop = asyncio.get_running_loop()
        for _ in range(300):  # the follower applies what the leader committed
            the_map = (await c.raw(follower, "get_map", since=-1))["ok"]
            current = the_map["version"]
            if "First" in the_map["tables"]:
                break
            await asyncio.sleep(0.01)
        started = loop.time()
        unchanged = await c.raw(follower, "get_map", since=current, wait_ms=150)
        assert unchanged["ok"]["version"] == current and loop.time() - started >= 0.14

        poll = asyncio.ensure_future(c.raw(follower, "get_map", since=current, wait_ms=5000))
        await asyncio.sleep(0.1)
        assert not poll.done()
        await c.ask("create_table", request=table_request("Second"))
        changed = await asyncio.wait_for(poll, 3)
        assert changed["ok"]["version"] > current and "Second" in changed["ok"]["tables"]
        with pytest.raises(Timeout):
            await c.client.call(follower, "cp", Kind.CONTROL,
                                orjson.dumps({"op": "get_map", "since": 10**9, "wait_ms": 400}), 200)


async def test_disks_are_recorded_from_heartbeats_and_a_new_one_marks_replicas_lost(tmp_path: Path) -> None:
    async with cluster(tmp_path, 25400) as c:
        leader = await c.leader()
        created = await c.ask("create_table", request=table_request("Wiped"))
        assert created["TableDescription"]["TableStatus"] == "CREATING"

        async def the_map() -> dict[str, Any]:
            return dict((await c.raw(leader, "get_map", since=-1, wait_ms=0))["ok"])

        assert {n["incarnation"] for n in (await the_map())["nodes"].values()} == {""}
        for node in ("sn-a1", "sn-b1", "sn-c1"):
            await c.ask("heartbeat", node=node, replicas=[], incarnation=f"disk-{node}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        while {n: e["incarnation"] for n, e in (await the_map())["nodes"].items()} != {
                n: f"disk-{n}" for n in ("sn-a1", "sn-b1", "sn-c1")}:
            assert loop.time() < deadline, "disks not recorded"
            await asyncio.sleep(0.05)
        assert all("lost" not in p for p in (await the_map())["partitions"].values())

        await c.ask("heartbeat", node="sn-b1", replicas=[], incarnation="disk-new")
        while (await the_map())["nodes"]["sn-b1"]["incarnation"] != "disk-new":
            assert loop.time() < deadline + 5.0, "new disk not recorded"
            await asyncio.sleep(0.05)
        partitions = (await the_map())["partitions"]
        assert partitions and all(p["lost"] == ["sn-b1"] for p in partitions.values())
        state = await c.ask("admin_state")
        assert state["history"][-1]["kind"] == "wiped" and state["history"][-1]["node"] == "sn-b1"
