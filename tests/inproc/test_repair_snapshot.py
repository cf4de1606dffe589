"""Streamed snapshots on real storage nodes over gRPC (fake control plane): a partition several times bigger
than the transport's message limit is repaired onto a new node in chunks, reads at the receiver never see a
half-copied state, and a transfer cut short (receiver restarted, or sender stopped) starts again and
completes; a follower behind a compacted log catches up by snapshot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dynamo.keycodec import hash_range
from proto.kinds import partition_group
from runtime.config import Limits, build_cluster_config
from runtime.replication import _META_RECEIVING, DriverConfig
from runtime.snapshot_stream import StreamConfig
from runtime.store import Store
from runtime.transport import TransportError
from storagenode.streams import span as stream_span
from tests.inproc.test_repair import FOUNDERS, SPARE, RepairCluster, membership, repair_map
from tests.inproc.test_storage_node import PARTS, TABLE_ID, TIMING, item, pid_of, until

pytestmark = pytest.mark.timeout(120)

PID = 11  # the big partition
ITEM_BYTES = 100_000
ITEMS = 110  # 11 MB in partition 11: over five times max_grpc_message_bytes
LIMITS = Limits(reconnect_backoff_min_ms=20, reconnect_backoff_max_ms=200, connect_timeout_ms=300,
                request_timeout_ms=3000, max_grpc_message_bytes=2 << 20, max_batch_bytes=1 << 20,
                snapshot_chunk_bytes=128 << 10)
STREAM = StreamConfig(chunk_bytes=LIMITS.snapshot_chunk_bytes, chunks_in_flight=2, chunk_timeout_ms=2000,
                      transfer_timeout_ms=30_000, max_transfers=4, catchup_hold_ms=10_000)
DRIVER = DriverConfig(tick_ms=TIMING.tick_ms, election_timeout_ticks=TIMING.election_timeout_ticks,
                      heartbeat_interval_ticks=TIMING.heartbeat_interval_ticks, compact_after_entries=10,
                      max_bytes_per_message=LIMITS.max_grpc_message_bytes // 4, stream=STREAM)


class SnapshotCluster(RepairCluster):
    """The repair cluster with a 2 MB message limit and small snapshot chunks."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.limits, self.driver = LIMITS, DRIVER
        self.config = build_cluster_config(tmp, nodes_per_az=2, base_port=29200, paxos=TIMING, limits=LIMITS)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[SnapshotCluster]:
    c = SnapshotCluster(tmp_path)
    await c.start()
    try:
        yield c
    finally:
        await c.close()


def big_keys() -> list[str]:
    keys = [f"big{i}" for i in range(2000) if pid_of(f"big{i}") == PID]
    return keys[:ITEMS]


def big_item(pk: str) -> dict[str, Any]:
    return item(pk, blob={"S": pk[-1] * ITEM_BYTES})


async def fill(c: SnapshotCluster) -> list[str]:
    keys = big_keys()
    for start in range(0, len(keys), 8):
        answers = await asyncio.gather(*(c.call("PutItem", {"Item": big_item(pk)}, timeout_s=20)
                                         for pk in keys[start:start + 8]))
        assert all(a == {"ok": {}} for a in answers), answers
    return keys


def partition_stats(c: SnapshotCluster, node: str) -> tuple[int, int, str]:
    rng = hash_range(TABLE_ID, *PARTS[PID])
    store = c.stores[node]
    stats = store.stats(rng.start, rng.end)
    return stats.count, stats.bytes, store.checksum(rng.start, rng.end)


class ReadWatcher:
    """Eventually consistent reads of written keys at one node, as fast as it answers: every ``ok`` must
    hold the full item (a half-copied replica answers ``unavailable`` instead)."""

    def __init__(self, c: SnapshotCluster, node: str, keys: list[str]) -> None:
        self.c, self.node, self.keys = c, node, keys
        self.answers: dict[str, int] = {}
        self.bad: list[Any] = []
        self.stopped = False
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        turn = 0
        while not self.stopped:
            pk = self.keys[turn % len(self.keys)]
            turn += 1
            try:
                answer = await self.c.ask(self.node, "GetItem", {"Key": item(pk)}, pk=pk)
            except (TransportError, KeyError):
                answer = {"down": True}
            kind = next(iter(answer))
            self.answers[kind] = self.answers.get(kind, 0) + 1
            if "ok" in answer and answer["ok"].get("Item") != big_item(pk):
                self.bad.append((pk, str(answer)[:100]))
            await asyncio.sleep(0.002)

    async def stop(self) -> None:
        self.stopped = True
        await self.task


async def wait_swapped(c: SnapshotCluster, timeout_s: float = 40) -> None:
    def swapped(pid: int) -> bool:
        m = membership(c, pid)
        return m is not None and SPARE in m["voters"] and "sn-a1" not in m["voters"] and not m["outgoing"] \
            and not m["learners"]

    await until(lambda: all(swapped(pid) for pid in PARTS), timeout_s=timeout_s, what="the spare swapped in")


async def wait_same(c: SnapshotCluster, a: str, b: str, timeout_s: float = 20) -> None:
    await until(lambda: partition_stats(c, a) == partition_stats(c, b), timeout_s=timeout_s,
                what=f"{a} and {b} hold the same partition")


async def test_a_partition_over_the_message_limit_is_repaired_in_chunks(cluster: SnapshotCluster) -> None:
    """... with its stream's records, which travel in the snapshot beside the items."""
    c = cluster
    await until(lambda: all(len(c.nodes[n].hosted) == 2 for n in FOUNDERS), what="partitions hosted")
    c.cp.set_map(repair_map(2, FOUNDERS, stream=True))
    await until(lambda: all(c.nodes[n].streams for n in FOUNDERS), what="the stream is on")
    keys = await fill(c)
    await until(lambda: partition_stats(c, "sn-b1")[0] == len(keys), what="sn-b1 applied every write")
    size = partition_stats(c, "sn-b1")[1]
    assert size > 5 * LIMITS.max_grpc_message_bytes
    await c.stop_node("sn-a1")
    watcher = ReadWatcher(c, SPARE, keys)
    c.cp.set_map(repair_map(3, FOUNDERS, joining=SPARE, replacing="sn-a1", stream=True))
    await wait_swapped(c)
    await until(lambda: c.nodes[SPARE].host.serves_reads(partition_group(PID)), what="the spare serves reads")
    await asyncio.sleep(0.2)
    await watcher.stop()
    assert not watcher.bad, watcher.bad[:3]
    assert watcher.answers.get("unavailable", 0) > 0, watcher.answers  # it did refuse while it had no state
    assert watcher.answers.get("ok", 0) > 0, watcher.answers
    leader = await c.leader_of(PID)
    streams = c.nodes[leader].host.streams
    assert streams.completed_transfers >= 1
    # A chunk closes once it reaches chunk_bytes: at most one more record (100 KB here) past it.
    assert streams.sent_chunks >= size // (LIMITS.snapshot_chunk_bytes + ITEM_BYTES + 1000)
    assert c.nodes[SPARE].host.streams.received_chunks >= size // (LIMITS.snapshot_chunk_bytes + ITEM_BYTES + 1000)
    # Writes go on, and the new replica converges with the others: same items, same checksum.
    c.cp.set_map(repair_map(4, (SPARE, "sn-b1", "sn-c1"), stream=True))
    for i in range(5):
        assert await c.call("PutItem", {"Item": item(f"after{i}", v={"N": str(i)})}) == {"ok": {}}
    await wait_same(c, SPARE, "sn-b1")
    await wait_same(c, SPARE, "sn-c1")
    records = {node: c.stores[node].stats(*stream_span(TABLE_ID, PID)).count for node in (SPARE, "sn-b1")}
    assert records[SPARE] >= len(keys) and records[SPARE] == records["sn-b1"], records
    assert c.stores[SPARE].checksum(*stream_span(TABLE_ID, PID)) == c.stores["sn-b1"].checksum(
        *stream_span(TABLE_ID, PID))
    got = await c.call("GetItem", {"Key": item(keys[7])}, consistent=True)
    assert got == {"ok": {"Item": big_item(keys[7])}}


async def test_a_receiver_restarted_mid_transfer_asks_again_and_completes(cluster: SnapshotCluster) -> None:
    c = cluster
    await until(lambda: all(len(c.nodes[n].hosted) == 2 for n in FOUNDERS), what="partitions hosted")
    keys = await fill(c)
    await c.stop_node("sn-a1")
    c.cp.set_map(repair_map(2, FOUNDERS, joining=SPARE, replacing="sn-a1"))
    group = partition_group(PID)
    await until(lambda: c.nodes[SPARE].host.streams.received_chunks >= 10, timeout_s=20, what="chunks arrive")
    await c.stop_node(SPARE)  # mid-transfer: the marker is on disk, the data half there
    reopened = Store(c.tmp / SPARE)
    try:
        assert reopened.get_group_meta(PID, _META_RECEIVING) is not None
        assert reopened.load_applied_index(PID) == 0
    finally:
        reopened.close()
    await c.start_node(SPARE)
    node = c.nodes[SPARE]
    await until(lambda: PID in node.hosted, what="the spare resumes its replica")
    assert not node.host.serves_reads(group)
    answered = False
    for _ in range(100):  # the router's links to the restarted node come back first
        try:
            answer = await c.ask(SPARE, "GetItem", {"Key": item(keys[0])}, pk=keys[0])
        except TransportError:
            await asyncio.sleep(0.02)
            continue
        assert "unavailable" in answer or answer == {"ok": {"Item": big_item(keys[0])}}, str(answer)[:200]
        answered = True
        break
    assert answered
    await wait_swapped(c)
    await until(lambda: node.host.serves_reads(group), what="the spare serves reads")
    await wait_same(c, SPARE, "sn-b1")
    assert partition_stats(c, SPARE)[0] == len(keys)


async def test_a_follower_behind_a_compacted_log_catches_up_even_when_the_sender_stops(
        cluster: SnapshotCluster) -> None:
    c = cluster
    await until(lambda: all(len(c.nodes[n].hosted) == 2 for n in FOUNDERS), what="partitions hosted")
    await c.stop_node(SPARE)  # not part of this test
    leader = await c.leader_of(PID)
    behind, third = [n for n in FOUNDERS if n != leader]
    await c.stop_node(behind)
    keys = await fill(c)  # ~110 entries: compacted well past what `behind` holds
    assert c.nodes[leader].host.groups[partition_group(PID)].snapshot_index > 0
    await c.start_node(behind)
    await until(lambda: c.nodes[behind].host.streams.received_chunks >= 10, timeout_s=20, what="chunks arrive")
    await c.stop_node(leader)  # the sender goes away mid-transfer
    # `third` leads now (with `behind`'s promise) and streams the snapshot again.
    await until(lambda: c.nodes[third].host.leader_of(partition_group(PID)) == third, timeout_s=20,
                what="a new leader")
    await until(lambda: c.nodes[behind].host.serves_reads(partition_group(PID)), timeout_s=30,
                what="the follower installed a snapshot")
    assert c.nodes[third].host.streams.completed_transfers >= 1
    assert await c.call("PutItem", {"Item": item("later", v={"N": "1"})}, timeout_s=10) == {"ok": {}}
    await wait_same(c, behind, third)
    assert partition_stats(c, behind)[0] == len(keys) + (1 if pid_of("later") == PID else 0)
