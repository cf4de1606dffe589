"""Turning a fault window into actions on a running cluster (through `deploy.fault`), and undoing them."""

from __future__ import annotations

import time
from typing import Protocol

from deploy import cluster, fault
from deploy.chaos.schedule import LEADER, FaultKind, FaultWindow, resolved
from runtime.config import ClusterConfig, Role


class Injector(Protocol):
    def begin(self, window: FaultWindow) -> str: ...

    def end(self, window: FaultWindow) -> str: ...

    def heal_all(self) -> list[str]: ...


def fault_targets(config: ClusterConfig) -> list[str]:
    """The processes a chaos run may kill or pause: storage nodes and control-plane replicas. The router
    is the clients' only door and the auto-admin is not on the data path, so they are left alone."""
    return [n.name for n in config.nodes if n.role in (Role.STORAGE, Role.CONTROL)]


def leader_of(config: ClusterConfig, table: str, timeout_s: float = 1.0) -> str | None:
    """The node that leads (a partition of) ``table`` now, as the storage nodes report it."""
    reports = cluster.reports(config, [n.name for n in config.by_role(Role.STORAGE)], full=True,
                              timeout_s=timeout_s)
    for part in cluster.partitions(reports):
        if part["table"] == table and part["leader"]:
            return str(part["leader"])
    return None


class ClusterInjector:
    def __init__(self, config: ClusterConfig, table: str) -> None:
        self.config = config
        self.table = table
        self._resolved: dict[int, FaultWindow] = {}

    def begin(self, window: FaultWindow) -> str:
        if window.target == LEADER:
            leader = leader_of(self.config, self.table)
            if leader is None:
                return f"could not inject: no node reports a leader for {self.table}"
            window = resolved(window, leader)
            self._resolved[window.index] = window
            return f"@leader is {leader}: " + self._begin(window)
        return self._begin(window)

    def end(self, window: FaultWindow) -> str:
        if window.target == LEADER:
            if window.index not in self._resolved:
                return "nothing to undo"
            window = self._resolved.pop(window.index)
        return self._end(window)

    def _begin(self, window: FaultWindow) -> str:
        try:
            if window.kind is FaultKind.KILL:
                return fault.kill_node(self.config, window.target).describe()
            if window.kind is FaultKind.PAUSE:
                return fault.stop_node(self.config, window.target).describe()
            if window.kind is FaultKind.WIPE:
                return fault.wipe_node(self.config, window.target, start=False).describe()
            if window.kind is FaultKind.PARTITION:
                return "added " + fault.partition(self.config, window.target, window.peer).describe()
            return "added " + fault.slow(self.config, window.target, window.peer, window.delay_ms).describe()
        except fault.FaultCommandError as exc:
            return f"could not inject: {exc}"

    def _end(self, window: FaultWindow) -> str:
        try:
            if window.kind in (FaultKind.KILL, FaultKind.WIPE):
                return fault.restart_node(self.config, window.target).describe()
            if window.kind is FaultKind.PAUSE:
                return fault.cont_node(self.config, window.target).describe()
            removed = fault.heal(self.config, window.target, window.peer)
            return "removed " + ", ".join(r.describe() for r in removed) if removed else "no rule to remove"
        except fault.FaultCommandError as exc:
            return f"could not undo: {exc}"

    def heal_all(self) -> list[str]:
        """Remove every link fault, resume paused processes, restart dead ones."""
        notes = [f"removed {r.describe()}" for r in fault.heal(self.config)]
        for name, what, _pid in fault.process_faults(self.config):
            try:
                result = fault.cont_node(self.config, name) if what == "paused" else fault.restart_node(self.config, name)
                notes.append(result.describe())
            except fault.FaultCommandError as exc:
                notes.append(f"could not heal {name}: {exc}")
        return notes


def replicas_converged(config: ClusterConfig, table: str, timeout_s: float = 60.0,
                       poll_s: float = 1.0) -> tuple[bool | None, str]:
    """A weaker stand-in for `ddb verify`: wait until every partition of ``table`` has all its replicas
    reporting and each has applied everything committed. (Equal applied indexes, not equal bytes.)"""
    deadline = time.monotonic() + timeout_s
    storage = [n.name for n in config.by_role(Role.STORAGE)]
    last = "no storage node reported a replica of the table"
    while True:
        parts = [p for p in cluster.partitions(cluster.reports(config, storage, full=True, timeout_s=1.0))
                 if p["table"] == table]
        if parts:
            behind = [f"{p['partition_id']}: " + ", ".join(f"{n} lags {lag}" for n, lag in p["lag"].items() if lag)
                      for p in parts if any(p["lag"].values())]
            short = [f"{p['partition_id']}: only {', '.join(p['replicas'])} report" for p in parts
                     if len(p["replicas"]) < len(config.azs)]
            if not behind and not short:
                commits = ", ".join(f"{p['partition_id']}@{p['commit_index']}" for p in parts)
                return True, (f"{len(parts)} partition(s), every replica applied all it committed ({commits}); "
                              "applied indexes compared, not bytes")
            last = "; ".join(behind + short)
        if time.monotonic() >= deadline:
            return (False if parts else None), f"after {timeout_s:g} s: {last}"
        time.sleep(poll_s)
