"""Streamed snapshots in the replication driver, over real RocksDB stores and an in-memory network: compaction
exports nothing, a follower behind a compacted log gets the state in chunks, a transfer whose checksum does
not match is refused and leaves the replica unreadable."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from paxos.errors import PaxosError
from paxos.replica import Role
from paxos.types import Snapshot
from runtime.replication import DriverConfig, GroupHost
from runtime.snapshot_stream import KIND_SNAPSHOT, StreamConfig, decode_request, encode_request
from runtime.store import Store

pytestmark = pytest.mark.timeout(60)

NODES = ("n1", "n2", "n3")
START, END = b"\x10", b"\x11"  # the machine's item range
STREAM = StreamConfig(chunk_bytes=4096, chunks_in_flight=3, chunk_timeout_ms=1000, transfer_timeout_ms=10_000,
                      catchup_hold_ms=2000)
FAST = DriverConfig(tick_ms=5, election_timeout_ticks=10, heartbeat_interval_ticks=2, compact_after_entries=50,
                    stream=STREAM)


class KV:
    """A state machine whose state is its item range: ``key=value`` commands."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.exports = 0

    def apply(self, batch: Any, index: int, data: bytes) -> Any:
        if data:
            key, value = data.split(b"=", 1)
            batch.put(START + key, value)
        return index

    def snapshot_data(self) -> bytes:
        self.exports += 1
        raise AssertionError("a streamed group must never export its state")

    def restore(self, batch: Any, snapshot: Snapshot) -> None:
        assert not snapshot.data
        batch.delete_range(START, END)

    def on_role(self, role: Role, leader: str) -> None:
        pass

    def state_spans(self) -> tuple[tuple[bytes, bytes], ...] | None:
        return ((START, END),)


class Net:
    def __init__(self) -> None:
        self.hosts: dict[str, GroupHost] = {}
        self.down: set[str] = set()
        self.corrupt_chunks = 0  # flip a byte in this many of the next snapshot chunks on the way

    def endpoint(self, frm: str) -> Any:
        net = self

        class _Endpoint:
            def send(self, peer: str, group: str, kind: int, payload: bytes) -> bool:
                if frm in net.down or peer in net.down or peer not in net.hosts:
                    return False
                host = net.hosts[peer]
                asyncio.get_running_loop().call_soon(host.on_paxos_message, frm, group, payload)
                return True

            async def call(self, peer: str, group: str, kind: int, payload: bytes,
                           timeout_ms: float | None = None) -> bytes:
                assert kind == KIND_SNAPSHOT
                if frm in net.down or peer in net.down or peer not in net.hosts:
                    raise ConnectionError(peer)
                await asyncio.sleep(0)
                header, data = decode_request(payload)
                if header["op"] == "chunk" and net.corrupt_chunks > 0:
                    net.corrupt_chunks -= 1
                    payload = encode_request(header, data[:-1] + bytes([data[-1] ^ 1]))
                return await net.hosts[peer].streams.on_request(frm, group, payload)

        return _Endpoint()


def start(net: Net, tmp: Path, name: str) -> tuple[GroupHost, Store, KV]:
    store = Store(tmp / name)
    endpoint = net.endpoint(name)
    host = GroupHost(name, store, endpoint, FAST, rng=random.Random(name), caller=endpoint)
    machine = KV(store)
    host.add_group("g", 7, NODES, machine)
    net.hosts[name] = host
    net.down.discard(name)
    host.start()
    return host, store, machine


async def stop(net: Net, name: str, store: Store) -> None:
    net.down.add(name)
    await net.hosts.pop(name).stop()
    store.close()


async def leader(net: Net, timeout_s: float = 5.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        for name, host in net.hosts.items():
            if name not in net.down and host.groups["g"].replica.role is Role.LEADER:
                return name
        await asyncio.sleep(0.01)
    raise AssertionError("no leader elected")


async def write(net: Net, count: int, prefix: str, value_bytes: int = 200) -> None:
    done = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while done < count and loop.time() < deadline:
        name = await leader(net)
        batch = [f"{prefix}{i:05d}=".encode() + bytes([65 + i % 26]) * value_bytes for i in range(done, count)][:32]
        try:
            await asyncio.wait_for(asyncio.gather(*(net.hosts[name].propose("g", c) for c in batch)), 2.0)
            done += len(batch)
        except (PaxosError, TimeoutError):
            await asyncio.sleep(0.02)
    assert done == count


async def until(predicate: Any, timeout_s: float = 10.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_compaction_exports_nothing_and_a_lagging_follower_gets_the_state_in_chunks(tmp_path: Path) -> None:
    net = Net()
    parts = {n: start(net, tmp_path, n) for n in NODES}
    try:
        name = await leader(net)
        lagging = next(n for n in NODES if n != name)
        await stop(net, lagging, parts[lagging][1])
        await write(net, 400, "k")
        for n in NODES:
            if n != lagging:
                assert net.hosts[n].groups["g"].snapshot_index >= 300, n
        parts[lagging] = start(net, tmp_path, lagging)
        host = net.hosts[lagging]
        await until(lambda: host.groups["g"].replica.applied >= 400 and host.serves_reads("g"), what="catch up")
        assert host.streams.received_chunks >= 400 * 200 // 4096
        stores = [parts[n][1] for n in NODES]
        await until(lambda: len({s.checksum(START, END) for s in stores}) == 1, what="same state everywhere")
        assert stores[0].stats(START, END).count == 400
        assert all(m.exports == 0 for _, _, m in parts.values())
    finally:
        for n in list(net.hosts):
            await stop(net, n, parts[n][1])


async def test_compaction_cost_does_not_grow_with_the_state(tmp_path: Path) -> None:
    """With a big state already in the range, compacting writes the same small records as with none."""
    store = Store(tmp_path / "one")
    net = Net()
    endpoint = net.endpoint("n1")
    host = GroupHost("n1", store, endpoint, FAST, rng=random.Random(1), caller=endpoint)
    machine = KV(store)
    batch = store.batch()
    for i in range(20_000):
        batch.put(START + b"pre%06d" % i, b"x" * 100)
    store.write(batch, sync=False)
    host.add_group("g", 7, ("n1",), machine)
    net.hosts["n1"] = host
    host.start()
    try:
        await leader(net)
        loop = asyncio.get_running_loop()
        for _ in range(3):
            index = host.groups["g"].snapshot_index
            await write(net, 60, f"w{index}-")
            started = loop.time()
            await until(lambda index=index: host.groups["g"].snapshot_index > index, what="a compaction")
            assert loop.time() - started < 1.0
        assert machine.exports == 0
    finally:
        await host.stop()
        store.close()


async def test_a_transfer_with_a_wrong_checksum_is_refused_and_the_next_one_completes(tmp_path: Path) -> None:
    net = Net()
    parts = {n: start(net, tmp_path, n) for n in NODES}
    try:
        name = await leader(net)
        lagging = next(n for n in NODES if n != name)
        await stop(net, lagging, parts[lagging][1])
        await write(net, 120, "k")
        net.corrupt_chunks = 1
        parts[lagging] = start(net, tmp_path, lagging)
        host = net.hosts[lagging]

        async def ask(header: dict[str, Any], data: bytes = b"") -> bytes:
            return await host.streams.on_request(name, "g", encode_request(header, data))

        assert b"below the promised" in await ask({"op": "begin", "id": "t", "ballot": [0, ""], "index": 10_000})
        assert b"no transfer" in await ask({"op": "chunk", "id": "none", "seq": 0}, b"")
        await until(lambda: net.corrupt_chunks == 0, what="a corrupted chunk")
        leader_streams = net.hosts[name].streams
        await until(lambda: leader_streams.failed_transfers >= 1, what="the receiver refuses the transfer")
        assert not host.serves_reads("g")
        await until(lambda: host.serves_reads("g"), what="the next transfer completes")
        assert leader_streams.completed_transfers >= 1
        stores = [parts[n][1] for n in NODES]
        await until(lambda: len({s.checksum(START, END) for s in stores}) == 1, what="same state everywhere")
        assert stores[0].stats(START, END).count == 120
    finally:
        for n in list(net.hosts):
            await stop(net, n, parts[n][1])
