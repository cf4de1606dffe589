"""The router process: the HTTP front door over the cluster backend.

``RouterApp.start`` builds the ``ClusterBackend`` on the process's transport and starts the HTTP front door
on the node's ``http_port`` at once (requests that come before the first partition map get a retryable
ServiceUnavailableException rather than a hanging connection); the process declares itself ready once the
first map is held, or after a bounded wait. The listener uses SO_REUSEPORT, so several routers of one host may share
port 8000 to use more cores.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from router.cluster import BackendConfig, ClusterBackend
from router.front import FrontConfig, FrontDoor, Outcome
from router.http import HttpLimits, HttpServer
from runtime.config import Role
from runtime.process import ProcessApp, ProcessHost

log = logging.getLogger("ddb.router.app")

FIRST_MAP_WAIT_MS = 10_000


class RouterApp(ProcessApp):
    def __init__(self, cluster: BackendConfig | None = None, front: FrontConfig | None = None) -> None:
        self._cluster_config = cluster
        self._front_config = front
        self.backend: ClusterBackend | None = None
        self.http: HttpServer | None = None
        self.port = 0
        self._outcomes: dict[tuple[str, int], int] = {}

    async def start(self, host: ProcessHost) -> None:
        control = [node.name for node in host.config.by_role(Role.CONTROL)]
        limits = host.config.limits
        backend = self.backend = ClusterBackend(host.transport, control, self._cluster_config)
        await backend.start()
        host.metrics.add_collector(self._collect)
        front = FrontDoor(backend, self._front_config, observer=self._observe)
        self.http = HttpServer(front.handle, HttpLimits(max_body_bytes=limits.http_max_body_bytes))
        assert host.node.http_port is not None, "a router node has an http_port"
        self.port = await self.http.start(host.node.host, host.node.http_port, reuse_port=True)
        log.info("serving DynamoDB on %s:%s", host.node.host, self.port)
        # Waiting for the first map happens in the background, so SIGTERM is obeyed at once meanwhile.
        host.spawn(self._become_ready(host, backend), name="router-first-map")

    async def _become_ready(self, host: ProcessHost, backend: ClusterBackend) -> None:
        if await backend.wait_for_map(FIRST_MAP_WAIT_MS):
            log.info("first partition map: version %s", backend.map_version)
        else:
            log.warning("no partition map after %s ms; serving anyway (item requests answer 503)",
                        FIRST_MAP_WAIT_MS)
        host.ready = True

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.stop()
        if self.backend is not None:
            await self.backend.stop()

    def status(self) -> dict[str, Any]:
        if self.backend is None:
            return {}
        return {"map_version": self.backend.map_version, "tables": len(self.backend.routing.map.tables)}

    def fill_status(self, reply: Any) -> None:
        if self.backend is not None and self.backend.map_version >= 0:
            reply.partition_map_version = self.backend.map_version

    def _observe(self, outcome: Outcome) -> None:
        key = (outcome.operation or "unknown", outcome.status)
        self._outcomes[key] = self._outcomes.get(key, 0) + 1

    def _collect(self) -> list[Metric]:
        requests = CounterMetricFamily("ddb_router_requests", "requests answered", labels=["operation", "status"])
        for (operation, status), count in sorted(self._outcomes.items()):
            requests.add_metric([operation, str(status)], count)
        families: list[Metric] = [requests]
        if self.backend is not None:
            backend = CounterMetricFamily("ddb_router_backend", "cluster backend events", labels=["event"])
            for event, count in sorted(self.backend.stats.items()):
                backend.add_metric([event], count)
            version = GaugeMetricFamily("ddb_router_map_version", "partition map version held")
            version.add_metric([], self.backend.map_version)
            transactions = CounterMetricFamily("ddb_router_transactions",
                                               "TransactWriteItems this router coordinated, by outcome",
                                               labels=["outcome"])
            for outcome, count in sorted(self.backend.transactions.stats.items()):
                transactions.add_metric([outcome], count)
            families += [backend, version, transactions]
        return families
