"""The asyncio replication driver over real RocksDB stores, with an in-memory network between hosts."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from pathlib import Path
from typing import Any

import pytest

from paxos.errors import NotLeader, PaxosError
from paxos.replica import Role
from paxos.types import Snapshot
from runtime.replication import DriverConfig, GroupHost
from runtime.store import Store

NODES = ("n1", "n2", "n3")
FAST = DriverConfig(tick_ms=5, election_timeout_ticks=10, heartbeat_interval_ticks=2, compact_after_entries=50)


class Log:
    """A state machine that records what it applied (in memory, rebuilt from snapshots)."""

    def __init__(self) -> None:
        self.applied: list[bytes] = []

    def apply(self, batch: Any, index: int, data: bytes) -> Any:
        if data:
            self.applied.append(data)
        return len(self.applied)

    def snapshot_data(self) -> bytes:
        return b"\n".join(self.applied)

    def restore(self, batch: Any, snapshot: Snapshot) -> None:
        self.applied = snapshot.data.split(b"\n") if snapshot.data else []

    def on_role(self, role: Role, leader: str) -> None:
        pass


class Net:
    def __init__(self) -> None:
        self.hosts: dict[str, GroupHost] = {}
        self.down: set[str] = set()

    def sender(self, frm: str) -> Any:
        net = self

        class _Sender:
            def send(self, peer: str, group: str, kind: int, payload: bytes) -> bool:
                if frm in net.down or peer in net.down or peer not in net.hosts:
                    return False
                host = net.hosts[peer]
                asyncio.get_running_loop().call_soon(host.on_paxos_message, frm, group, payload)
                return True

        return _Sender()


class CountingStore(Store):
    log_range_deletes = 0

    def delete_log_suffix(self, batch: Any, group: int, from_index: int) -> None:
        self.log_range_deletes += 1
        super().delete_log_suffix(batch, group, from_index)


def start(net: Net, tmp: Path, name: str, config: DriverConfig = FAST) -> tuple[GroupHost, CountingStore, Log]:
    store = CountingStore(tmp / name)
    host = GroupHost(name, store, net.sender(name), config, rng=random.Random(name))
    machine = Log()
    host.add_group("g", 7, NODES, machine)
    net.hosts[name] = host
    host.start()
    return host, store, machine


async def leader(net: Net, timeout_s: float = 5.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        for name, host in net.hosts.items():
            if name not in net.down and host.groups["g"].replica.role is Role.LEADER:
                return name
        await asyncio.sleep(0.01)
    raise AssertionError("no leader elected")


async def propose_until(net: Net, data: bytes, timeout_s: float = 5.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        name = await leader(net)
        try:
            return await asyncio.wait_for(net.hosts[name].propose("g", data), 1.0)
        except (PaxosError, TimeoutError):
            await asyncio.sleep(0.02)
    raise AssertionError(f"could not commit {data!r}")


async def settle(machines: list[Log], count: int, timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if all(len(m.applied) >= count for m in machines):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not all replicas applied {count}: {[len(m.applied) for m in machines]}")


async def test_commands_commit_and_apply_everywhere_in_order(tmp_path: Path) -> None:
    net = Net()
    # One leader throughout: FAST's 50 ms election timeout can elapse on a loaded machine (the full suite), and
    # a new leader's first round may truncate a follower's suffix, which is no append's doing.
    steady = dataclasses.replace(FAST, election_timeout_ticks=200)
    parts = [start(net, tmp_path, n, steady) for n in NODES]
    try:
        name = await leader(net)
        results = await asyncio.gather(*(net.hosts[name].propose("g", b"c%d" % i) for i in range(200)))
        assert sorted(results) == list(range(1, 201))
        await settle([m for _, _, m in parts], 200)
        expected = [b"c%d" % i for i in range(200)]
        assert all(m.applied == expected for _, _, m in parts)
        assert net.hosts[name].fsyncs < 200, "proposals in one turn must share fsyncs"
        # Appending never range-deletes the log: RocksDB range tombstones pile up (memory, replay time).
        assert all(store.log_range_deletes == 0 for _, store, _ in parts)
        follower = next(n for n in NODES if n != name)
        with pytest.raises(NotLeader):
            net.hosts[follower].propose("g", b"x")
    finally:
        for host, store, _ in parts:
            await host.stop()
            store.close()


async def test_leader_failover_and_restart_catch_up(tmp_path: Path) -> None:
    net = Net()
    parts = {n: start(net, tmp_path, n) for n in NODES}
    try:
        for i in range(20):
            await propose_until(net, b"a%d" % i)
        old = await leader(net)
        net.down.add(old)
        host, store, _ = parts[old]
        await host.stop()
        store.close()
        del net.hosts[old]
        for i in range(100):  # enough to compact the survivors' logs past what the old leader has
            await propose_until(net, b"b%d" % i)
        # restart the old leader from its store: it must catch up (by snapshot) and agree
        net.down.discard(old)
        parts[old] = start(net, tmp_path, old)
        await propose_until(net, b"last")
        machines = [parts[n][2] for n in NODES]
        await settle(machines, 121)
        survivors = [parts[n][2].applied for n in NODES if n != old]
        assert survivors[0] == survivors[1]
        assert parts[old][2].applied[-1] == b"last"
        assert parts[old][2].applied == survivors[0][-len(parts[old][2].applied):]
    finally:
        for host, store, _ in parts.values():
            await host.stop()
            store.close()


async def test_a_new_groups_first_leader_is_elected_at_once_even_before_its_peers_host_it(tmp_path: Path) -> None:
    """With an election timeout of a second, only the replica asked to lead first campaigns early: it keeps
    trying on each tick until its peers, started a little later, answer. Restarted, nobody campaigns early."""
    slow = DriverConfig(tick_ms=5, election_timeout_ticks=200, heartbeat_interval_ticks=20)
    net = Net()
    hosts: dict[str, tuple[GroupHost, Store]] = {}

    def launch(name: str, first_leader: bool) -> GroupHost:
        store = Store(tmp_path / name)
        host = GroupHost(name, store, net.sender(name), slow, rng=random.Random(name))
        host.add_group("g", 7, NODES, Log(), first_leader=first_leader)
        net.hosts[name] = host
        hosts[name] = (host, store)
        host.start()
        return host

    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        launch("n2", first_leader=True)
        await asyncio.sleep(0.05)  # n2's first campaigns find no peers
        launch("n1", first_leader=False)
        launch("n3", first_leader=False)
        assert await leader(net, timeout_s=0.5) == "n2"
        assert loop.time() - started < 0.5  # an election timeout is 1 s
        await propose_until(net, b"x")
        for host, store in hosts.values():
            await host.stop()
            store.close()
        hosts.clear()
        net.hosts.clear()
        for name in NODES:  # restarted: n2 has promised a ballot now, so it waits like the others
            launch(name, first_leader=name == "n2")
        await asyncio.sleep(0.3)
        assert all(h.groups["g"].replica.role is not Role.LEADER for h, _ in hosts.values())
    finally:
        for host, store in hosts.values():
            await host.stop()
            store.close()
