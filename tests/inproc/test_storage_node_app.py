"""The storage node's process app on the real process host (gRPC server, Node service, transport), three of
them in one event loop with a fake control plane on cp-a's configured port."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path
from typing import Any

import grpc.aio
import orjson
import pytest

from proto.build import ensure_built
from proto.kinds import Kind, partition_group
from runtime.config import Role, build_cluster_config
from runtime.process import ProcessHost
from runtime.transport import Transport, TransportError
from storagenode.app import StorageApp
from tests.inproc.test_storage_node import LIMITS, NODES, TIMING, FakeControlPlane, item, pid_of, serve

ensure_built()
from proto.gen import node_pb2  # noqa: E402

pytestmark = pytest.mark.timeout(60)
BASE_PORT = 26700


async def test_three_storage_processes_serve_items_and_status(tmp_path: Path) -> None:
    config = build_cluster_config(tmp_path, nodes_per_az=1, base_port=BASE_PORT, paxos=TIMING, limits=LIMITS)
    fake = FakeControlPlane()
    peers = {n.name: n.grpc_address for n in config.nodes}
    cp = Transport("cp-a", peers, LIMITS, on_request=fake.on_request)
    cp_server, _ = await serve(cp, config.node("cp-a").grpc_port)
    client = Transport("rr-1", peers, LIMITS)
    hosts = [ProcessHost(config, config.node(name), StorageApp()) for name in NODES]
    runs = [asyncio.create_task(h.run()) for h in hosts]
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not all(h.ready for h in hosts) and loop.time() < deadline:
            assert not any(r.done() for r in runs), [r.result() for r in runs if r.done()]
            await asyncio.sleep(0.02)
        assert all(h.ready for h in hosts), "ready once the first map arrived"
        pk = "app-key"
        request = {"op": "PutItem", "table": "t", "table_id": 4, "map_version": 1, "consistent": False,
                   "request": {"TableName": "t", "Item": item(pk, v={"N": "5"})}}
        group = partition_group(pid_of(pk))
        target, answer = NODES[0], {}
        while loop.time() < deadline:
            try:
                answer = orjson.loads(await client.call(target, group, Kind.ITEM, orjson.dumps(request)))
            except TransportError:
                answer = {}
            if "ok" in answer:
                break
            target = answer.get("redirect") or NODES[(NODES.index(target) + 1) % 3]
            await asyncio.sleep(0.02)
        assert answer == {"ok": {}}
        get = {**request, "op": "GetItem", "consistent": True, "request": {"TableName": "t", "Key": item(pk)}}
        got = orjson.loads(await client.call(target, group, Kind.ITEM, orjson.dumps(get)))
        assert got == {"ok": {"Item": item(pk, v={"N": "5"})}}
        # what `ddb status` reads
        async with grpc.aio.insecure_channel(config.node(target).grpc_address) as channel:
            status = channel.unary_unary("/ddb.Node/Status", request_serializer=node_pb2.StatusRequest.SerializeToString,
                                         response_deserializer=node_pb2.StatusReply.FromString)
            reply: Any = await status(node_pb2.StatusRequest(), timeout=2)
        assert reply.health.ready and reply.health.role == Role.STORAGE.value
        assert reply.partition_map_version == 1
        assert {(r.partition_id, r.table) for r in reply.replicas} == {("11", "t"), ("12", "t")}
        mine = next(r for r in reply.replicas if r.partition_id == group[1:])
        assert mine.role == "leader" and mine.leader == target and list(mine.replicas) == list(NODES)
        assert mine.applied_index >= 2 and mine.hash_hi <= (1 << 64) - 1
        assert orjson.loads(reply.health.status_json)["replicas"] == 2
        # metrics
        url = f"http://127.0.0.1:{config.node(target).metrics_port}/metrics"
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=2).read().decode())
        assert 'ddb_storage_item_requests_total{op="PutItem",outcome="ok"} 1.0' in text
        assert "ddb_storage_replicas 2.0" in text
        # a malformed request gets an error answer and the process keeps running
        bad = orjson.loads(await client.call(target, group, Kind.ITEM, b"not json"))
        assert bad["error"]["__type"].endswith("InternalServerError")
        with pytest.raises(TransportError):
            await client.call(target, group, 99, b"{}")
        assert not any(r.done() for r in runs)
    finally:
        for h in hosts:
            h.request_stop()
        codes = await asyncio.wait_for(asyncio.gather(*runs, return_exceptions=True), 15)
        await client.close()
        await cp.close()
        await cp_server.stop(grace=None)
    assert codes == [0, 0, 0]
    assert all((tmp_path / "nodes" / name / "store").is_dir() for name in NODES)
