"""The process host in-process: how a role plugs in (ProcessApp), reached over the real transport and
the Node service, and a graceful stop."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from deploy.cluster import ask_node
from runtime.config import build_cluster_config
from runtime.faults import FaultTable
from runtime.process import ProcessApp, ProcessHost, read_pidfile
from runtime.transport import Message, RemoteError

pytestmark = pytest.mark.timeout(60)


class KeyValueApp(ProcessApp):
    """A toy role: answers requests from a dict, counts one-way messages, reports one replica."""

    def __init__(self) -> None:
        self.data = {b"k": b"v"}
        self.notes: list[tuple[str, bytes]] = []

    async def start(self, host: ProcessHost) -> None:
        self.host = host
        host.spawn(asyncio.sleep(3600), name="background")
        host.ready = True

    def on_message(self, sender: str, message: Message) -> None:
        self.notes.append((sender, message.payload))

    async def on_request(self, sender: str, message: Message) -> bytes:
        return self.data[message.payload]

    def status(self) -> dict[str, Any]:
        return {"keys": len(self.data)}

    def fill_status(self, reply: Any) -> None:
        reply.replicas.add(table="t", partition_id="p0", role="leader", leader=self.host.node.name,
                           replicas=["sn-a1", "sn-b1", "sn-c1"], commit_index=4, applied_index=4)


async def test_apps_plug_into_the_host(tmp_path: Path) -> None:
    config = build_cluster_config(tmp_path, nodes_per_az=1, base_port=21700)
    apps = {name: KeyValueApp() for name in ("sn-a1", "sn-b1")}
    hosts = {name: ProcessHost(config, config.node(name), app) for name, app in apps.items()}
    runs = [asyncio.create_task(host.run()) for host in hosts.values()]
    try:
        for _ in range(200):
            if all(h.ready for h in hosts.values()):
                break
            await asyncio.sleep(0.02)
        a = hosts["sn-a1"]
        assert await a.transport.call("sn-b1", "p0", 1, b"k") == b"v"
        with pytest.raises(RemoteError, match="KeyError"):
            await a.transport.call("sn-b1", "p0", 1, b"missing")
        assert a.transport.send("sn-b1", "p0", 2, b"note")
        for _ in range(100):
            if apps["sn-b1"].notes:
                break
            await asyncio.sleep(0.02)
        assert apps["sn-b1"].notes == [("sn-a1", b"note")]

        reply = await ask_node(config.node("sn-b1"), "Status", timeout_s=2.0)
        assert (reply.health.name, reply.health.role, reply.health.az, reply.health.ready) == (
            "sn-b1", "storage", "b", True)
        assert orjson.loads(reply.health.status_json)["keys"] == 1
        assert [(r.partition_id, r.leader, r.commit_index) for r in reply.replicas] == [("p0", "sn-b1", 4)]
        assert read_pidfile(config.pid_path("sn-b1")) == os.getpid()

        # The fault file in the data folder is obeyed within the poll interval.
        FaultTable(config.faults_path).add_partition("az-a", "az-b")
        await asyncio.sleep(config.fault_poll_ms / 1000.0 * 1.5)
        assert not a.transport.send("sn-b1", "p0", 2, b"cut")
        FaultTable(config.faults_path).heal()
        await asyncio.sleep(config.fault_poll_ms / 1000.0 * 1.5)
        assert await a.transport.call("sn-b1", "p0", 1, b"k") == b"v"
    finally:
        for host in hosts.values():
            host.request_stop()
        codes = await asyncio.wait_for(asyncio.gather(*runs), 10)
    assert codes == [0, 0]
    assert read_pidfile(config.pid_path("sn-b1")) is None, "a graceful stop removes the pidfile"


SCHEDULING_PROBE = """
import os, threading
from runtime.process import set_scheduling_policy
stop = threading.Event()
before = threading.Thread(target=stop.wait)
before.start()
policies = []
for policy in ("batch", "normal"):
    assert set_scheduling_policy(policy) is None
    after = threading.Thread(target=stop.wait)
    after.start()
    policies.append([os.sched_getscheduler(t) for t in (0, before.native_id, after.native_id)])
stop.set()
print(policies == [[os.SCHED_BATCH] * 3, [os.SCHED_OTHER] * 3])
"""


def test_scheduling_policy_covers_running_and_later_threads() -> None:
    """In a child process, so this one keeps its own policy."""
    out = subprocess.run([sys.executable, "-c", SCHEDULING_PROBE], capture_output=True, text=True, timeout=30,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
