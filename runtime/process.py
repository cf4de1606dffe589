"""The common process host: what every ddb process does around its own role.

    python -m storagenode --config <data>/cluster.json --node sn-b2

parses those arguments, loads the shared config, installs uvloop, logs JSON lines to
``<data>/logs/<node>.log``, writes ``<data>/run/<node>.pid``, serves the ``Node`` service (Health,
Status) and the ``Transport`` service on the node's gRPC port and Prometheus metrics on its metrics
port, and stops gracefully on SIGTERM or SIGINT (removing its pidfile).

A role plugs in by subclassing ``ProcessApp``:

    class StorageApp(ProcessApp):
        def add_services(self, host, server): ...          # extra gRPC services, before the server starts
        async def start(self, host): ...; host.ready = True  # open storage, spawn drivers (host.spawn)
        def on_message(self, sender, message): ...          # one-way transport messages (Paxos)
        async def on_request(self, sender, message): ...    # transport requests -> response payload
        def status(self): return {...}                      # the small JSON blob in Health
        def fill_status(self, reply): reply.replicas.add(...)  # partitions for `ddb status`
        async def stop(self): ...

    def main() -> None: run_process(Role.STORAGE, StorageApp)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import orjson

from proto.build import ensure_built
from runtime.clock import SYSTEM_CLOCK, Clock
from runtime.config import ClusterConfig, ConfigError, NodeSpec, Role
from runtime.faults import FaultWatcher
from runtime.logs import get_logger, setup_logging
from runtime.metrics import Metrics
from runtime.transport import Message, Transport

ensure_built()
from proto.gen import node_pb2  # noqa: E402

log = get_logger("process")
EXIT_CONFIG = 2  # bad arguments or config: do not retry
EXIT_PORT_IN_USE = 3


class ProcessApp:
    """What a role adds to the host. The default serves Node/Health only and is ready once started."""

    def add_services(self, host: ProcessHost, server: grpc.aio.Server) -> None:
        """Register extra gRPC services; called before the server starts."""

    async def start(self, host: ProcessHost) -> None:
        host.ready = True

    async def stop(self) -> None:
        """Release what start() acquired; the host cancels tasks started with host.spawn afterwards."""

    def on_message(self, sender: str, message: Message) -> None:
        log.warning("unhandled one-way message", sender=sender, group=message.group, kind=message.kind)

    def on_request(self, sender: str, message: Message) -> Any:
        raise NotImplementedError(f"no handler for group {message.group!r} kind {message.kind}")

    def status(self) -> dict[str, Any]:
        """A small JSON-able blob carried by Health (e.g. replica count, leader of the control plane)."""
        return {}

    def fill_status(self, reply: Any) -> None:
        """Add what `ddb status` shows (``reply.replicas.add(...)``, ``reply.partition_map_version``)."""


class ProcessHost:
    """One running ddb process: config, identity, transport, metrics and the gRPC server."""

    def __init__(self, config: ClusterConfig, node: NodeSpec, app: ProcessApp, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self.node = node
        self.app = app
        self.clock = clock
        self.ready = False
        self.started_ms = clock.monotonic_ms()
        self.node_dir = config.node_dir(node.name)
        self.metrics = Metrics(node.name)
        self.faults = FaultWatcher(config.faults_path, config.az_map(), config.fault_poll_ms, clock)
        peers = {n.name: n.grpc_address for n in config.nodes if n.name != node.name}
        self.transport = Transport(node.name, peers, config.limits, faults=self.faults,
                                   on_message=self._on_message, on_request=self._on_request)
        self.metrics.add_collector(self.transport.collect_metrics)
        self.server: grpc.aio.Server | None = None
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    # Indirection so an app may swap its handlers after start.
    def _on_message(self, sender: str, message: Message) -> None:
        self.app.on_message(sender, message)

    def _on_request(self, sender: str, message: Message) -> Any:
        return self.app.on_request(sender, message)

    @property
    def uptime_ms(self) -> int:
        return int(self.clock.monotonic_ms() - self.started_ms)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """Start a background task that lives until the process stops; a crash in it is logged."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task crashed", task=task.get_name(), exc_info=task.exception())

    def request_stop(self) -> None:
        self._stopping.set()

    # -- the Node service ------------------------------------------------------------------------------

    def health(self) -> Any:
        node = self.node
        status: dict[str, Any] = {"grpc": node.grpc_address, "metrics_port": node.metrics_port}
        if node.http_port is not None:
            status["http_port"] = node.http_port
        if self.faults.rules:
            status["fault_rules"] = len(self.faults.rules)
        try:
            status.update(self.app.status())
        except Exception as exc:  # a status bug must not make a healthy process look dead
            status["status_error"] = repr(exc)
        return node_pb2.HealthReply(
            name=node.name, role=node.role.value, az=node.az or "", pid=os.getpid(), uptime_ms=self.uptime_ms,
            ready=self.ready, status_json=orjson.dumps(status, default=repr).decode(),
        )

    async def _health_rpc(self, request: Any, context: Any) -> Any:
        return self.health()

    async def _status_rpc(self, request: Any, context: Any) -> Any:
        reply = node_pb2.StatusReply(health=self.health())
        self.app.fill_status(reply)
        return reply

    def _node_service(self) -> grpc.GenericRpcHandler:
        handlers = {
            "Health": grpc.unary_unary_rpc_method_handler(
                self._health_rpc, request_deserializer=node_pb2.HealthRequest.FromString,
                response_serializer=node_pb2.HealthReply.SerializeToString),
            "Status": grpc.unary_unary_rpc_method_handler(
                self._status_rpc, request_deserializer=node_pb2.StatusRequest.FromString,
                response_serializer=node_pb2.StatusReply.SerializeToString),
        }
        return grpc.method_handlers_generic_handler("ddb.Node", handlers)

    # -- lifecycle -------------------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        self.node_dir.mkdir(parents=True, exist_ok=True)
        server = grpc.aio.server(options=self.transport.server_options())
        server.add_generic_rpc_handlers((self._node_service(),))
        self.transport.add_to_server(server)
        self.app.add_services(self, server)
        try:
            bound = server.add_insecure_port(self.node.grpc_address)
        except RuntimeError:
            bound = 0
        if not bound:
            log.error("gRPC port in use", address=self.node.grpc_address)
            print(f"{self.node.name}: cannot listen on {self.node.grpc_address} (port in use?)", file=sys.stderr)
            return EXIT_PORT_IN_USE
        try:
            self.metrics.serve(self.node.host, self.node.metrics_port)
        except OSError as exc:
            log.error("metrics port in use", port=self.node.metrics_port, error=str(exc))
            print(f"{self.node.name}: cannot serve metrics on port {self.node.metrics_port}: {exc}", file=sys.stderr)
            return EXIT_PORT_IN_USE
        self.server = server
        await server.start()
        write_pidfile(self.config.pid_path(self.node.name))
        log.info("started", role=self.node.role.value, grpc=self.node.grpc_address, pid=os.getpid())
        try:
            await self.app.start(self)
            if self.config.gc_freeze_at_start:
                gc.collect()
                gc.freeze()
            log.info("ready" if self.ready else "started, not ready yet")
            await self._stopping.wait()
            log.info("stopping")
        finally:
            await self._shutdown()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        return 0

    async def _shutdown(self) -> None:
        grace_s = self.config.limits.shutdown_grace_ms / 1000.0
        self.ready = False
        try:
            await asyncio.wait_for(self.app.stop(), grace_s)
        except Exception:
            log.exception("app stop failed")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.transport.close()
        if self.server is not None:
            await self.server.stop(grace=grace_s / 2)
        self.metrics.stop()
        remove_pidfile(self.config.pid_path(self.node.name))
        log.info("stopped")


def write_pidfile(path: Path, pid: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{pid or os.getpid()}\n")
    os.replace(tmp, path)


def read_pidfile(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def remove_pidfile(path: Path) -> None:
    """Remove our own pidfile only: a newer process of the same name may have replaced it."""
    if read_pidfile(path) == os.getpid():
        path.unlink(missing_ok=True)


def parse_args(role: Role, argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m {role.package}", description=f"ddb {role.value} process")
    parser.add_argument("--config", required=True, type=Path, help="the cluster config (<data>/cluster.json)")
    parser.add_argument("--node", required=True, help=f"this process's node name (e.g. {role.prefix}-...)")
    parser.add_argument("--log-level", default=os.environ.get("DDB_LOG_LEVEL", "INFO"))
    return parser.parse_args(argv)


def load_identity(role: Role, config_path: Path, name: str) -> tuple[ClusterConfig, NodeSpec]:
    config = ClusterConfig.load(config_path)
    node = config.node(name)
    if node.role is not role:
        raise ConfigError(f"node {name!r} is a {node.role.value} node, not {role.value}; "
                          f"start it with python -m {node.role.package}")
    return config, node


def set_scheduling_policy(policy: str) -> str | None:
    """Give this process's threads the configured Linux scheduling policy (``ClusterConfig.scheduling_policy``);
    threads started later inherit it. Returns why it could not, or None. Neither policy needs privileges."""
    setter = getattr(os, "sched_setscheduler", None)
    if setter is None:
        return "this platform has no sched_setscheduler"
    number = os.SCHED_BATCH if policy == "batch" else os.SCHED_OTHER
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]  # no /proc: this thread only (the process has no others yet)
    for tid in threads:
        try:
            setter(tid, number, os.sched_param(0))
        except ProcessLookupError:
            continue  # a thread that ended meanwhile
        except OSError as exc:
            return f"{exc.strerror} (errno {exc.errno})"
    return None


def tune_gc(config: ClusterConfig) -> None:
    """The configured young-generation threshold of Python's cyclic collector (the older ones kept)."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(config.gc_young_allocations, older, oldest)


def run_process(role: Role, app_factory: Callable[[], ProcessApp] = ProcessApp,
                argv: Sequence[str] | None = None) -> int:
    """Parse arguments, load the config, and run the process until SIGTERM. Returns the exit code."""
    args = parse_args(role, argv)
    try:
        config, node = load_identity(role, args.config, args.node)
    except ConfigError as exc:
        print(f"ddb {role.value}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(node.name, config.log_path(node.name), args.log_level)
    failure = set_scheduling_policy(config.scheduling_policy)
    if failure is not None:
        log.warning("scheduling policy not applied", policy=config.scheduling_policy, reason=failure)
    tune_gc(config)
    host = ProcessHost(config, node, app_factory())
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; stay runnable without it
        return asyncio.run(host.run())
    return uvloop.run(host.run())
