"""The server's CPU time over a run, read from ``/proc``: what an operation costs the server, beside what it
costs the client (``RunResult.client_cpu_s``).

The server is whatever listens on the endpoint's port on this machine; for a ddb router it is every process of
its cluster (the processes started with the same ``--config`` file), since a request's cost is spread over the
router, the storage nodes and the control plane. CPU time is user + system time of every thread. Linux only:
elsewhere, or for an endpoint on another machine, nothing is measured. A figure that moves less with the
machine's load than throughput does, because it counts work, not waiting.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from runtime.proc_stat import PROC, cpu_seconds

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp
# The ddb processes whose ``--config`` names their cluster (python -m <package> --config ... --node ...).
_DDB_PACKAGES = frozenset({"router", "storagenode", "control_plane", "autoadmin"})


@dataclass(frozen=True, slots=True)
class ServerProcess:
    pid: int
    name: str  # the ddb node name (--node), else the command's name


def _args(pid: int, proc: Path) -> list[str]:
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _after(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args[:-1] else None


def _ddb_config(args: list[str]) -> str | None:
    """The cluster config a ddb process was started with (``python -m storagenode --config ...``), if it is one."""
    return _after(args, "--config") if _after(args, "-m") in _DDB_PACKAGES else None


def _name(pid: int, args: list[str], proc: Path) -> str:
    node = _after(args, "--node")
    if node:
        return node
    try:
        return (proc / str(pid) / "comm").read_text().strip()
    except OSError:
        return str(pid)


def listening_pids(port: int, proc: Path = PROC) -> set[int]:
    """The processes holding a TCP socket that listens on ``port`` (any address, IPv4 or IPv6)."""
    inodes: set[str] = set()
    for table in ("net/tcp", "net/tcp6"):
        try:
            lines = (proc / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    pids: set[int] = set()
    if not inodes:
        return pids
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    pids.add(int(entry.name))
                    break
        except OSError:
            continue  # gone, or not ours to read
    return pids


def server_processes(port: int, proc: Path = PROC) -> list[ServerProcess]:
    """What serves ``port`` here: the listening processes, widened to their whole cluster for ddb."""
    pids = listening_pids(port, proc)
    configs = {config for config in (_ddb_config(_args(pid, proc)) for pid in pids) if config}
    if configs:
        for entry in proc.iterdir():
            if entry.name.isdigit() and _ddb_config(_args(int(entry.name), proc)) in configs:
                pids.add(int(entry.name))
    return sorted((ServerProcess(pid, _name(pid, _args(pid, proc), proc)) for pid in pids), key=lambda p: p.name)


def is_local(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


class ServerCpu:
    """CPU seconds the server's processes spend between ``start()`` and ``stop()``."""

    def __init__(self, processes: list[ServerProcess], proc: Path = PROC) -> None:
        self.processes = processes
        self._proc = proc
        self._start: dict[int, float] = {}

    @classmethod
    def for_endpoint(cls, host: str, port: int) -> ServerCpu | None:
        if not PROC.is_dir() or not is_local(host):
            return None
        processes = server_processes(port)
        return cls(processes) if processes else None

    def start(self) -> None:
        self._start = {}
        for process in self.processes:
            seconds = cpu_seconds(process.pid, self._proc)
            if seconds is not None:
                self._start[process.pid] = seconds

    def stop(self) -> dict[str, float]:
        """CPU seconds by process name, for the processes alive at both ends (one that died is left out)."""
        spent: dict[str, float] = {}
        for process in self.processes:
            before = self._start.get(process.pid)
            after = cpu_seconds(process.pid, self._proc)
            if before is not None and after is not None:
                spent[process.name] = spent.get(process.name, 0.0) + after - before
        return spent
