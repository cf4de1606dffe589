"""The storage node's process: ``StorageNode`` on the common process host (``runtime.process``)."""

from __future__ import annotations

import asyncio
from typing import Any

from runtime.process import ProcessApp, ProcessHost
from runtime.store import Store
from runtime.transport import Message
from storagenode.node import StorageNode


class StorageApp(ProcessApp):
    def __init__(self) -> None:
        self.node: StorageNode | None = None
        self.store: Store | None = None

    async def start(self, host: ProcessHost) -> None:
        self.store = Store(host.node_dir / "store")
        self.node = StorageNode(host.node.name, host.config, host.transport, self.store)
        host.metrics.add_collector(self.node.collect_metrics)
        host.metrics.add_collector(self.node.items.collect_metrics)  # throttles per partition
        self.node.start()
        host.spawn(self._ready_after_first_map(host), name="ready")

    async def _ready_after_first_map(self, host: ProcessHost) -> None:
        assert self.node is not None
        await self.node.first_map.wait()
        host.ready = True

    async def stop(self) -> None:
        node, self.node = self.node, None  # from now on, requests and messages find no node
        if node is not None:
            await node.stop()
        if self.store is not None:
            await asyncio.sleep(0)  # let cancelled handlers unwind before the store goes
            self.store.close()

    def on_message(self, sender: str, message: Message) -> None:
        if self.node is not None:
            self.node.on_message(sender, message)

    def on_request(self, sender: str, message: Message) -> Any:
        if self.node is None:
            raise LookupError("the storage node is starting")
        return self.node.on_request(sender, message)

    def status(self) -> dict[str, Any]:
        if self.node is None:
            return {}
        throttles = self.node.items.throttles
        # "<table> p<partition> <kind>" -> requests throttled here (``ddb status`` sums them over the nodes)
        node = self.node
        # "<table> p<partition>" -> items a transaction holds locked, in the partitions this node leads
        locks = {f"{h.table} p{pid}": len(h.data.locks) for pid, h in sorted(node.hosted.items())
                 if h.data.locks and node.is_leader(h)}
        return {**node.status(),
                "throttled": {f"{table} p{pid} {kind}": n for (table, pid, kind), n in sorted(throttles.items())},
                "txn_locks": locks}

    def fill_status(self, reply: Any) -> None:
        if self.node is not None:
            self.node.fill_status(reply)
