"""`ddb fault`: break a running local cluster on purpose, by hand or from `ddb chaos`.

    ddb fault kill NODE           SIGKILL: the process dies at once (its pidfile stays: `ddb status` says DEAD)
    ddb fault stop NODE           SIGSTOP: the process freezes, sockets open (a gray failure)
    ddb fault cont NODE           SIGCONT: a stopped process resumes
    ddb fault restart NODE        start the node again (after a graceful stop if it is running)
    ddb fault wipe NODE           a storage node loses its disk: SIGKILL, delete its store, start it empty
    ddb fault partition A B [--oneway]   cut the links between A and B (nodes, AZs like az-b, or *)
    ddb fault slow A B --ms N [--oneway] delay every message between A and B by N ms
    ddb fault heal [A B]          remove every link fault, or only those between A and B
    ddb fault list                link faults in force, and processes stopped or dead

Process faults are signals to the node's PID (its process group: a node leads its own session). Link faults
are rules in ``<data>/faults.json``, which every process's transport re-reads within ``fault_poll_ms``:
no root, no iptables. The functions below are what the chaos runner calls; the commands are thin.
"""

from __future__ import annotations

import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import click

from deploy import cluster
from deploy.cluster import State
from runtime.config import ClusterConfig, ConfigError, Role, default_data_dir, role_of
from runtime.faults import ANY, FaultError, FaultRule, FaultTable

PROCESS_ACTIONS = ("kill", "stop", "cont", "restart", "wipe")


class FaultCommandError(Exception):
    """The fault cannot be applied (unknown node, node not running, bad endpoint); the message says why."""


@dataclass(frozen=True, slots=True)
class ProcessFaultResult:
    name: str
    action: str
    pid_before: int | None
    pid_after: int | None
    note: str

    def describe(self) -> str:
        return f"{self.action} {self.name}: {self.note}"


def process_paused(pid: int) -> bool:
    """Is the process stopped by a signal (state T in /proc)?"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, PermissionError):
        return False
    fields = stat.rsplit(")", 1)[1].split()
    return bool(fields) and fields[0] in ("T", "t")


def _running_pid(config: ClusterConfig, name: str, action: str) -> int:
    state, pid = cluster.node_state(config, name)
    if state != State.RUNNING or pid is None:
        detail = f"dead (pid {pid} is gone)" if state == State.DEAD else "not running"
        raise FaultCommandError(f"cannot {action} {name}: it is {detail}")
    return pid


def _check_node(config: ClusterConfig, name: str) -> None:
    try:
        config.node(name)
    except ConfigError as exc:
        raise FaultCommandError(str(exc)) from None


def kill_node(config: ClusterConfig, name: str) -> ProcessFaultResult:
    _check_node(config, name)
    pid = _running_pid(config, name, "kill")
    cluster.signal_group(pid, signal.SIGKILL)
    return ProcessFaultResult(name, "kill", pid, None, f"sent SIGKILL to pid {pid}")


def stop_node(config: ClusterConfig, name: str) -> ProcessFaultResult:
    _check_node(config, name)
    pid = _running_pid(config, name, "stop")
    cluster.signal_group(pid, signal.SIGSTOP)
    return ProcessFaultResult(name, "stop", pid, pid, f"sent SIGSTOP to pid {pid} (resume with `ddb fault cont`)")


def cont_node(config: ClusterConfig, name: str) -> ProcessFaultResult:
    _check_node(config, name)
    pid = _running_pid(config, name, "cont")
    cluster.signal_group(pid, signal.SIGCONT)
    return ProcessFaultResult(name, "cont", pid, pid, f"sent SIGCONT to pid {pid}")


def restart_node(config: ClusterConfig, name: str, grace_s: float = 5.0) -> ProcessFaultResult:
    """Start the node again. A running node is stopped first (SIGTERM, SIGKILL after ``grace_s``)."""
    _check_node(config, name)
    state, pid = cluster.node_state(config, name)
    note = ""
    if state == State.RUNNING:
        (stopped,) = cluster.stop_nodes(config, [name], grace_s=grace_s)
        if stopped.outcome == "still running":
            raise FaultCommandError(f"cannot restart {name}: pid {pid} survived SIGKILL")
        note = f"{stopped.outcome} pid {pid}, "
    proc = cluster.spawn(config, config.node(name))
    return ProcessFaultResult(name, "restart", pid, proc.pid, f"{note}started pid {proc.pid}")


def wipe_node(config: ClusterConfig, name: str, start: bool = True) -> ProcessFaultResult:
    """A storage node's disk dies and is replaced: the process is killed, its store deleted, and (unless
    ``start`` is False: `ddb fault restart` later) it starts again under its name with an empty disk. The
    control plane sees a new disk and has its replicas replaced (they never vote again: docs/design.md,
    "A wiped disk")."""
    _check_node(config, name)
    if role_of(name) != Role.STORAGE:
        raise FaultCommandError(f"cannot wipe {name}: only storage nodes' disks can be wiped")
    state, pid = cluster.node_state(config, name)
    if state == State.RUNNING and pid is not None:
        cluster.signal_group(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while cluster.pid_alive(pid):  # its store must be closed before it goes
            if time.monotonic() > deadline:
                raise FaultCommandError(f"cannot wipe {name}: pid {pid} survived SIGKILL")
            time.sleep(0.02)
    shutil.rmtree(config.node_dir(name) / "store", ignore_errors=True)
    killed = f"killed pid {pid}, " if state == State.RUNNING else ""
    if not start:
        return ProcessFaultResult(name, "wipe", pid, None, f"{killed}deleted its store")
    proc = cluster.spawn(config, config.node(name))
    return ProcessFaultResult(name, "wipe", pid, proc.pid, f"{killed}deleted its store, started pid {proc.pid}")


def apply_process_fault(config: ClusterConfig, action: str, name: str) -> ProcessFaultResult:
    assert action in PROCESS_ACTIONS, action
    return {"kill": kill_node, "stop": stop_node, "cont": cont_node, "restart": restart_node,
            "wipe": wipe_node}[action](config, name)


def check_link_endpoint(config: ClusterConfig, endpoint: str) -> None:
    """A link endpoint must name a node of this cluster, one of its AZs, or * (everyone)."""
    if endpoint == ANY:
        return
    if endpoint.startswith("az-"):
        if endpoint[3:] not in config.azs:
            raise FaultCommandError(f"unknown AZ {endpoint!r}: this cluster has "
                                    + ", ".join(f"az-{a}" for a in config.azs))
        return
    _check_node(config, endpoint)


def partition(config: ClusterConfig, a: str, b: str, oneway: bool = False) -> FaultRule:
    check_link_endpoint(config, a)
    check_link_endpoint(config, b)
    if a == b:
        raise FaultCommandError(f"cannot cut {a} from itself")
    try:
        return FaultTable(config.faults_path).add_partition(a, b, oneway=oneway)
    except FaultError as exc:
        raise FaultCommandError(str(exc)) from None


def slow(config: ClusterConfig, a: str, b: str, ms: int, oneway: bool = False) -> FaultRule:
    check_link_endpoint(config, a)
    check_link_endpoint(config, b)
    try:
        return FaultTable(config.faults_path).add_slow(a, b, ms, oneway=oneway)
    except FaultError as exc:
        raise FaultCommandError(str(exc)) from None


def heal(config: ClusterConfig, a: str | None = None, b: str | None = None) -> list[FaultRule]:
    return FaultTable(config.faults_path).heal(a, b)


def link_faults(config: ClusterConfig) -> list[FaultRule]:
    try:
        return FaultTable(config.faults_path).list()
    except FaultError as exc:
        raise FaultCommandError(f"{config.faults_path}: {exc}") from None


def process_faults(config: ClusterConfig) -> list[tuple[str, str, int | None]]:
    """(node, "paused" | "dead", pid) for every node that is not simply running or cleanly stopped."""
    out: list[tuple[str, str, int | None]] = []
    for name in config.names():
        state, pid = cluster.node_state(config, name)
        if state == State.DEAD:
            out.append((name, "dead", pid))
        elif state == State.RUNNING and pid is not None and process_paused(pid):
            out.append((name, "paused", pid))
    return out


# -- the commands ------------------------------------------------------------------------------------


DATA_DIR_OPTION = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Data folder [default: $DDB_DATA_DIR or ./data in the repository]")


def load_config(data_dir: Path | None) -> ClusterConfig:
    try:
        return ClusterConfig.load(default_data_dir(data_dir) / "cluster.json")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _process_command(action: str, help_text: str) -> click.Command:
    @click.command(action, help=help_text)
    @click.argument("node")
    @DATA_DIR_OPTION
    def command(node: str, data_dir: Path | None) -> None:
        config = load_config(data_dir)
        try:
            result = apply_process_fault(config, action, node)
        except FaultCommandError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(result.describe())

    return command


@click.group("fault")
def fault() -> None:
    """Inject faults into the running cluster: kill, pause or restart processes; cut or slow links."""


fault.add_command(_process_command("kill", "SIGKILL the node's process (it stays dead until restarted)."))
fault.add_command(_process_command("stop", "SIGSTOP the node's process: frozen, connections open."))
fault.add_command(_process_command("cont", "SIGCONT a stopped node's process."))
fault.add_command(_process_command("restart", "Start the node again (stopping it first if it runs)."))
fault.add_command(_process_command("wipe", "A storage node loses its disk: SIGKILL, delete its store, start it "
                                           "empty (its replicas are replaced, never trusted again)."))


@fault.command("partition")
@click.argument("a")
@click.argument("b")
@click.option("--oneway", is_flag=True, help="Cut only the traffic from A to B")
@DATA_DIR_OPTION
def partition_command(a: str, b: str, oneway: bool, data_dir: Path | None) -> None:
    """Cut the links between A and B: node names (sn-b2), AZs (az-b) or * for everyone."""
    config = load_config(data_dir)
    try:
        rule = partition(config, a, b, oneway)
    except FaultCommandError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"added {rule.describe()}")


@fault.command("slow")
@click.argument("a")
@click.argument("b")
@click.option("--ms", type=click.IntRange(min=1), required=True, help="Delay added to each message, in ms")
@click.option("--oneway", is_flag=True, help="Slow only the traffic from A to B")
@DATA_DIR_OPTION
def slow_command(a: str, b: str, ms: int, oneway: bool, data_dir: Path | None) -> None:
    """Delay every message between A and B by --ms milliseconds."""
    config = load_config(data_dir)
    try:
        rule = slow(config, a, b, ms, oneway)
    except FaultCommandError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"added {rule.describe()}")


@fault.command("heal")
@click.argument("a", required=False)
@click.argument("b", required=False)
@DATA_DIR_OPTION
def heal_command(a: str | None, b: str | None, data_dir: Path | None) -> None:
    """Remove every link fault, or only those between A and B. (Processes: `ddb fault cont/restart`.)"""
    if (a is None) != (b is None):
        raise click.UsageError("give both A and B, or neither")
    config = load_config(data_dir)
    removed = heal(config, a, b)
    for rule in removed:
        click.echo(f"removed {rule.describe()}")
    click.echo(f"healed: {len(removed)} link fault(s) removed" if removed else "no link faults to heal")
    for name, what, pid in process_faults(config):
        hint = "ddb fault cont" if what == "paused" else "ddb fault restart"
        click.echo(f"note: {name} is still {what} (pid {pid}); `{hint} {name}`")


@fault.command("list")
@DATA_DIR_OPTION
def list_command(data_dir: Path | None) -> None:
    """Link faults in force, and processes that are paused or dead."""
    config = load_config(data_dir)
    try:
        rules = link_faults(config)
    except FaultCommandError as exc:
        raise click.ClickException(str(exc)) from None
    procs = process_faults(config)
    if not rules and not procs:
        click.echo("no faults")
        return
    for rule in rules:
        click.echo(f"link     {rule.describe()}")
    for name, what, pid in procs:
        click.echo(f"process  {name}: {what} (pid {pid})")
