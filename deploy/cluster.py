"""Launching and supervising a local cluster's processes: the library under the `ddb` CLI.

Processes run detached (their own session), write their logs under ``<data>/logs`` and their PIDs
under ``<data>/run``, so any shell can find and stop them later. A process that dies stays dead until
someone runs `ddb up` again: nothing restarts it behind the operator's back.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import orjson

from proto.build import ensure_built
from runtime.config import (
    REPO_ROOT,
    ClusterConfig,
    ConfigError,
    NodeSpec,
    Role,
    build_cluster_config,
)
from runtime.process import read_pidfile, write_pidfile

ensure_built()
from proto.gen import node_pb2  # noqa: E402


class State:
    RUNNING = "running"
    DEAD = "dead"  # its pidfile says it should run, but the process is gone (crashed or killed)
    STOPPED = "stopped"  # stopped cleanly, or never started


# -- config ------------------------------------------------------------------------------------------


def load_or_create_config(data_dir: Path, nodes_per_az: int | None = None, base_port: int | None = None
                          ) -> tuple[ClusterConfig, bool]:
    """The data folder's config, created from defaults and options on first use. The topology of an
    existing data folder is fixed: asking for another one is an error, not a silent rewrite."""
    path = data_dir / "cluster.json"
    if path.exists():
        config = ClusterConfig.load(path)
        if nodes_per_az is not None and nodes_per_az != config.nodes_per_az:
            raise ConfigError(f"{data_dir} holds a cluster with {config.nodes_per_az} nodes per AZ, not "
                              f"{nodes_per_az}; use another --data-dir (or remove this one) for a new size")
        router = config.by_role(Role.ROUTER)[0]
        if base_port is not None and base_port != router.http_port:
            raise ConfigError(f"{data_dir} holds a cluster whose ports start at {router.http_port}, not "
                              f"{base_port}; use another --data-dir for other ports")
        if Path(config.data_dir).resolve() != data_dir.resolve():
            raise ConfigError(f"{path} was written for data dir {config.data_dir}; it was moved, "
                              "so its paths are wrong")
        return config, False
    config = build_cluster_config(data_dir, nodes_per_az=nodes_per_az or 3, base_port=base_port)
    config.save()
    return config, True


# -- processes ---------------------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead, even if nobody reaped it yet
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def is_node_process(pid: int, name: str) -> bool:
    """Is pid a live process running node ``name`` (not a stranger that reused the PID)?"""
    if not pid_alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return sys.platform != "linux"  # no /proc to check with: trust the pidfile
    except PermissionError:
        return True
    return any(a == b"--node" and b == name.encode() for a, b in zip(argv, argv[1:], strict=False))


def node_state(config: ClusterConfig, name: str) -> tuple[str, int | None]:
    pid = read_pidfile(config.pid_path(name))
    if pid is None:
        return State.STOPPED, None
    return (State.RUNNING if is_node_process(pid, name) else State.DEAD), pid


def router_available() -> bool:
    """Whether router/__main__.py exists yet (another part of the project writes it)."""
    try:
        return importlib.util.find_spec("router.__main__") is not None
    except ImportError:
        return False


def spawn(config: ClusterConfig, node: NodeSpec) -> subprocess.Popen[bytes]:
    """Start one node detached, stdout and stderr appended to ``<data>/logs/<node>.out``."""
    console = config.console_path(node.name)
    console.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("PYTHONUNBUFFERED", "1")
    argv = [sys.executable, "-m", node.role.package, "--config", str(config.config_path), "--node", node.name]
    with open(console, "ab") as out:
        out.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    write_pidfile(config.pid_path(node.name), proc.pid)  # the process rewrites it; this covers its start
    return proc


def console_tail(config: ClusterConfig, name: str, lines: int = 12) -> str:
    try:
        text = config.console_path(name).read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


@dataclass
class StopResult:
    name: str
    pid: int | None
    outcome: str  # "stopped" | "killed" | "was dead" | "was not running" | "still running"


def signal_group(pid: int, sig: int) -> None:
    """Signal the node's process group (it leads its own session), or just the pid."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop_nodes(config: ClusterConfig, names: Sequence[str] | None = None, grace_s: float = 10.0,
               poll_s: float = 0.05) -> list[StopResult]:
    """SIGTERM every running node, SIGKILL those still alive after ``grace_s``; remove pidfiles."""
    results: dict[str, StopResult] = {}
    live: dict[str, int] = {}
    for name in names or config.names():
        state, pid = node_state(config, name)
        if state == State.RUNNING and pid is not None:
            live[name] = pid
            signal_group(pid, signal.SIGTERM)
            signal_group(pid, signal.SIGCONT)  # a paused process must wake up to hear the SIGTERM
        else:
            results[name] = StopResult(name, pid, "was dead" if state == State.DEAD else "was not running")
    deadline = time.monotonic() + grace_s
    while live and time.monotonic() < deadline:
        for name, pid in list(live.items()):
            if not pid_alive(pid):
                results[name] = StopResult(name, pid, "stopped")
                del live[name]
        time.sleep(poll_s)
    for pid in live.values():
        signal_group(pid, signal.SIGKILL)
    kill_deadline = time.monotonic() + 5.0
    for name, pid in live.items():
        while pid_alive(pid) and time.monotonic() < kill_deadline:
            time.sleep(poll_s)
        results[name] = StopResult(name, pid, "still running" if pid_alive(pid) else "killed")
    for name, result in results.items():
        if result.outcome != "still running":
            config.pid_path(name).unlink(missing_ok=True)
    return [results[name] for name in names or config.names()]


# -- asking processes how they are ---------------------------------------------------------------------


@dataclass
class NodeReport:
    name: str
    role: str
    az: str | None
    state: str
    pid: int | None
    health: dict[str, Any] | None = None  # the Health reply, None if it did not answer
    replicas: list[dict[str, Any]] = field(default_factory=list)
    partition_map_version: int = 0  # control-plane replicas report the map version they hold
    detail: dict[str, Any] | None = None
    error: str | None = None

    @property
    def healthy(self) -> bool:
        return self.state == State.RUNNING and self.health is not None and bool(self.health.get("ready"))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "az": self.az, "state": self.state, "pid": self.pid,
                "healthy": self.healthy, "health": self.health, "replicas": self.replicas,
                "partition_map_version": self.partition_map_version, "detail": self.detail, "error": self.error}


def _health_dict(reply: Any) -> dict[str, Any]:
    try:
        status = orjson.loads(reply.status_json) if reply.status_json else {}
    except orjson.JSONDecodeError:
        status = {"unparsed": reply.status_json}
    return {"name": reply.name, "role": reply.role, "az": reply.az or None, "pid": reply.pid,
            "uptime_ms": reply.uptime_ms, "ready": reply.ready, "status": status}


def _replica_dict(replica: Any) -> dict[str, Any]:
    return {"table": replica.table, "partition_id": replica.partition_id, "hash_lo": replica.hash_lo,
            "hash_hi": replica.hash_hi, "role": replica.role, "leader": replica.leader,
            "replicas": list(replica.replicas), "commit_index": replica.commit_index,
            "applied_index": replica.applied_index, "last_index": replica.last_index, "ballot": replica.ballot}


async def ask_node(node: NodeSpec, method: str, timeout_s: float) -> Any:
    request_type, reply_type = ((node_pb2.HealthRequest, node_pb2.HealthReply) if method == "Health"
                                else (node_pb2.StatusRequest, node_pb2.StatusReply))
    async with grpc.aio.insecure_channel(node.grpc_address) as channel:
        rpc = channel.unary_unary(f"/ddb.Node/{method}", request_serializer=request_type.SerializeToString,
                                  response_deserializer=reply_type.FromString)
        return await rpc(request_type(), timeout=timeout_s)


async def _report(config: ClusterConfig, node: NodeSpec, full: bool, timeout_s: float) -> NodeReport:
    state, pid = node_state(config, node.name)
    report = NodeReport(node.name, node.role.value, node.az, state, pid)
    if state != State.RUNNING:
        return report
    try:
        if full:
            reply = await ask_node(node, "Status", timeout_s)
            report.health = _health_dict(reply.health)
            report.replicas = [_replica_dict(r) for r in reply.replicas]
            report.partition_map_version = reply.partition_map_version
            if reply.detail_json:
                report.detail = orjson.loads(reply.detail_json)
        else:
            report.health = _health_dict(await ask_node(node, "Health", timeout_s))
    except grpc.aio.AioRpcError as exc:
        report.error = f"{exc.code().name}: {exc.details()}"
    return report


async def gather_reports(config: ClusterConfig, names: Iterable[str] | None = None, full: bool = False,
                         timeout_s: float = 1.0) -> list[NodeReport]:
    nodes = [config.node(n) for n in (names or config.names())]
    return list(await asyncio.gather(*(_report(config, n, full, timeout_s) for n in nodes)))


def reports(config: ClusterConfig, names: Iterable[str] | None = None, full: bool = False,
            timeout_s: float = 1.0) -> list[NodeReport]:
    return asyncio.run(gather_reports(config, names, full, timeout_s))


def http_serving(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """Does something answer HTTP on host:port? (Any status line counts: the router is up.)"""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: ddb\r\nConnection: close\r\n\r\n")
            return sock.recv(16).startswith(b"HTTP/")
    except OSError:
        return False


def partitions(reports_: Iterable[NodeReport]) -> list[dict[str, Any]]:
    """Replicas reported by the nodes, grouped by partition: leader, members, commit index and lag."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for report in reports_:
        for replica in report.replicas:
            key = (replica["table"], replica["partition_id"])
            group = groups.setdefault(key, {"table": key[0], "partition_id": key[1], "hash_lo": replica["hash_lo"],
                                            "hash_hi": replica["hash_hi"], "leader": "", "replicas": {},
                                            "commit_index": 0})
            group["replicas"][report.name] = replica
            if replica["role"] == "leader":
                group["leader"] = report.name
            elif not group["leader"] and replica["leader"]:
                group["leader"] = replica["leader"]
            group["commit_index"] = max(group["commit_index"], replica["commit_index"])
    out = []
    for key in sorted(groups):
        group = groups[key]
        commit = group["commit_index"]
        group["lag"] = {name: commit - r["applied_index"] for name, r in sorted(group["replicas"].items())}
        group["replicas"] = sorted(group["replicas"])
        out.append(group)
    return out
