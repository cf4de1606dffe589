"""GroupHost.write_barrier: a new leader decides no write before it has applied every earlier write."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from paxos.errors import NotLeader
from paxos.replica import Role
from runtime.replication import GroupHost
from tests.inproc.test_replication import NODES, Net, leader, start

pytestmark = pytest.mark.timeout(60)


class MutableNet(Net):
    """Also drops what a muted node sends, while it still hears the others."""

    def __init__(self) -> None:
        super().__init__()
        self.mute: set[str] = set()

    def sender(self, frm: str) -> Any:
        inner = super().sender(frm)
        net = self

        class _Sender:
            def send(self, peer: str, group: str, kind: int, payload: bytes) -> bool:
                return False if frm in net.mute else bool(inner.send(peer, group, kind, payload))

        return _Sender()


async def test_new_leader_applies_earlier_writes_before_its_barrier_resolves(tmp_path: Path) -> None:
    net = MutableNet()
    parts = {n: start(net, tmp_path, n) for n in NODES}
    try:
        first = await leader(net)
        host = net.hosts[first]
        assert (await host.write_barrier("g")) is None
        follower = next(n for n in NODES if n != first)
        with pytest.raises(NotLeader):
            net.hosts[follower].write_barrier("g")
        # Ask for the barrier the moment a survivor sees itself leader (before its no-op commits).
        barriers: dict[str, asyncio.Future[None]] = {}
        seen: dict[str, list[bytes]] = {}  # what the new leader had applied when its barrier resolved
        for name, (h, _, machine) in parts.items():
            if name != first:
                def on_role(role: Role, leader_name: str, h: GroupHost = h, name: str = name) -> None:
                    if role is Role.LEADER and name not in barriers:
                        barrier = barriers[name] = h.write_barrier("g")
                        applied = parts[name][2].applied
                        if barrier.done():
                            seen[name] = list(applied)
                        else:
                            barrier.add_done_callback(lambda _: seen.__setitem__(name, list(applied)))
                machine.on_role = on_role  # type: ignore[method-assign]
        # acknowledged on the first leader, which dies before the others learn the commit index
        futures = [host.propose("g", b"w%d" % i) for i in range(30)]
        # Once the followers hold the entries, the leader goes mute: it still hears their acknowledgements
        # (and acknowledges the writes), but nobody learns the commit index from it.
        target = host.groups["g"].replica.log.last_index
        others = [parts[n][0].groups["g"].replica for n in NODES if n != first]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while any(r.log.last_index < target for r in others) and loop.time() < deadline:
            await asyncio.sleep(0)
        net.mute.add(first)
        acked = await asyncio.wait_for(asyncio.gather(*futures), 5)
        assert len(acked) == 30
        net.down.add(first)
        await host.stop()
        parts[first][1].close()
        del net.hosts[first]
        deadline = loop.time() + 5
        while not barriers and loop.time() < deadline:
            await asyncio.sleep(0.005)
        assert len(barriers) == 1, "one new leader"
        ((second, barrier),) = barriers.items()
        await asyncio.wait_for(barrier, 5)
        assert [b"w%d" % i for i in range(30)] == seen[second][:30], "a write decided now would miss earlier writes"
    finally:
        for name, (h, store, _) in parts.items():
            if name in net.hosts:
                await h.stop()
                store.close()
