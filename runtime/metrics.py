"""Prometheus metrics: one registry per process, served as text on the process's metrics port.

Hot paths count in plain integers and publish them through ``add_collector`` (read at scrape time),
so a message costs an integer increment, not a labelled-metric lookup and a lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from http.server import HTTPServer
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

NAMESPACE = "ddb"


class _CallbackCollector(Collector):
    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return self._collect()


class Metrics:
    def __init__(self, node: str) -> None:
        self.node = node
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # CPU, memory, open files of this process
        for collector in (PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        self._server: HTTPServer | None = None

    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(name, doc, labels, namespace=NAMESPACE, registry=self.registry)

    def gauge(self, name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(name, doc, labels, namespace=NAMESPACE, registry=self.registry)

    def histogram(self, name: str, doc: str, labels: Sequence[str] = (), buckets: Sequence[float] | None = None
                  ) -> Histogram:
        kwargs: dict[str, Any] = {"buckets": buckets} if buckets is not None else {}
        return Histogram(name, doc, labels, namespace=NAMESPACE, registry=self.registry, **kwargs)

    def add_collector(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self.registry.register(_CallbackCollector(collect))

    def serve(self, host: str, port: int) -> None:
        """Start the exporter (a daemon thread of prometheus-client) on host:port."""
        assert self._server is None, "metrics exporter already running"
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
