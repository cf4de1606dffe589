"""The `ddb` command line: start, inspect and stop a local cluster.

    ddb up [--nodes-per-az N] [--data-dir DIR] [--base-port P]
    ddb status [--json]
    ddb down

The data folder (``--data-dir``, else ``$DDB_DATA_DIR``, else ``./data``) holds everything: the cluster
config, each node's data, logs and pidfiles, and the fault table. Running processes are found through it,
so `ddb status` and `ddb down` work from any shell.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from deploy import cluster
from deploy.admin import admin_lines, admin_status, verify
from deploy.bench.command import bench
from deploy.chaos.command import chaos
from deploy.cluster import State
from deploy.fault import fault
from proto.build import ensure_built
from runtime.config import MAX_NODES_PER_AZ, ClusterConfig, ConfigError, Role, default_data_dir

console = Console(highlight=False, soft_wrap=True)
DATA_DIR_OPTION = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Data folder [default: $DDB_DATA_DIR or ./data in the repository]")


def _load(data_dir: Path | None) -> ClusterConfig:
    path = default_data_dir(data_dir) / "cluster.json"
    try:
        return ClusterConfig.load(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """ddb: a DynamoDB-compatible database running as a real distributed cluster."""


# -- up ----------------------------------------------------------------------------------------------


def _port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _usage(config: ClusterConfig, router_up: bool) -> str:
    endpoint = config.router_endpoint
    lines = []
    if router_up:
        lines += [
            f"[bold green]ddb is up[/]: {len(config.nodes)} processes, endpoint [bold]{endpoint}[/]",
            "",
            "  boto3:",
            "    import boto3",
            f'    ddb = boto3.client("dynamodb", endpoint_url="{endpoint}", region_name="us-east-1",',
            '                       aws_access_key_id="ddb", aws_secret_access_key="ddb")',
            "    ddb.list_tables()",
            "  AWS CLI:",
            f"    aws dynamodb list-tables --endpoint-url {endpoint} --region us-east-1",
            "    (any access key works; export AWS_ACCESS_KEY_ID=ddb AWS_SECRET_ACCESS_KEY=ddb if none is set)",
        ]
    else:
        lines += [f"[bold yellow]ddb is up without a router[/]: the endpoint {endpoint} is not served yet."]
    lines += [
        "",
        "  ddb status   processes by AZ, partitions",
        "  ddb down     stop every process (the data stays in the data folder)",
        f"  data folder  {config.data_dir}",
    ]
    return "\n".join(lines)


def _wait_until_healthy(config: ClusterConfig, procs: dict[str, Any], deadline: float) -> list[str]:
    """Wait for the started nodes to answer Health with ready; returns the names that did not."""
    grpc_nodes = [name for name in procs if config.node(name).role is not Role.ROUTER]
    waiting = set(procs)
    failed: list[str] = []
    with console.status(f"waiting for {len(waiting)} processes to be ready") as status:
        while waiting and time.monotonic() < deadline:
            for name in sorted(waiting):
                code = procs[name].poll()
                if code is not None:
                    failed.append(name)
                    waiting.discard(name)
                    console.print(f"[red]{name} exited with code {code}[/] while starting; "
                                  f"last lines of {config.console_path(name)}:")
                    console.print(cluster.console_tail(config, name), markup=False)
            asking = [n for n in grpc_nodes if n in waiting]
            if asking:
                for report in cluster.reports(config, asking, timeout_s=0.5):
                    if report.healthy:
                        waiting.discard(report.name)
            for name in [n for n in waiting if config.node(n).role is Role.ROUTER]:
                node = config.node(name)
                assert node.http_port is not None
                if cluster.http_serving(node.host, node.http_port, timeout_s=0.5):
                    waiting.discard(name)
            status.update(f"waiting for {len(waiting)} of {len(procs)} processes to be ready: "
                          f"{', '.join(sorted(waiting))}")
            if waiting:
                time.sleep(0.25)
    return failed + sorted(waiting)


@cli.command()
@click.option("--nodes-per-az", type=click.IntRange(1, MAX_NODES_PER_AZ), default=None,
              help="Storage nodes per AZ for a new data folder [default: 3]")
@DATA_DIR_OPTION
@click.option("--base-port", type=click.IntRange(1024, 65000), default=None,
              help="Put every port from here up (router HTTP first), instead of 8000 and 7000+")
@click.option("--timeout", "timeout_s", type=float, default=120.0, show_default=True,
              help="Seconds to wait for every process to be ready")
def up(nodes_per_az: int | None, data_dir: Path | None, base_port: int | None, timeout_s: float) -> None:
    """Start the cluster (or the processes of it that are not running) and wait until it serves."""
    ensure_built()
    folder = default_data_dir(data_dir)
    try:
        config, created = cluster.load_or_create_config(folder, nodes_per_az, base_port)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if created:
        console.print(f"new cluster: {len(config.nodes)} processes, {config.nodes_per_az} storage "
                      f"node{'s' if config.nodes_per_az > 1 else ''} per AZ, data in {config.data_dir}")
    router_ok = cluster.router_available()
    states = {name: cluster.node_state(config, name) for name in config.names()}
    to_start = [n for n in config.nodes if states[n.name][0] != State.RUNNING]
    if not router_ok:
        skipped = [n.name for n in to_start if n.role is Role.ROUTER]
        to_start = [n for n in to_start if n.role is not Role.ROUTER]
        if skipped:
            console.print(f"[yellow]router/__main__.py does not exist yet: not starting {', '.join(skipped)}; "
                          "waiting for the router is skipped[/]")
    if not to_start:
        console.print(f"ddb is already running ({config.data_dir}); `ddb status` shows it, `ddb down` stops it")
        console.print(_usage(config, router_ok))
        return
    for node in to_start:
        state, pid = states[node.name]
        if state == State.DEAD:
            console.print(f"{node.name} is dead (pid {pid}); starting it again")
    taken = [(n.name, p) for n in to_start for p in n.ports() if _port_taken(n.host, p)]
    if taken:
        raise click.ClickException("ports already in use: " + ", ".join(f"{p} ({name})" for name, p in taken)
                                   + ". Is another cluster running? Try --base-port or `ddb down`.")
    procs = {node.name: cluster.spawn(config, node) for node in to_start}
    console.print(f"started {len(procs)} processes: {', '.join(procs)}")
    failed = _wait_until_healthy(config, procs, time.monotonic() + timeout_s)
    if failed:
        console.print(f"[red]not ready after {timeout_s:.0f} s: {', '.join(failed)}[/]. "
                      f"Logs: {config.data_path / 'logs'}. The others keep running; `ddb down` stops them.")
        sys.exit(1)
    console.print(_usage(config, router_ok))


# -- down --------------------------------------------------------------------------------------------


@cli.command()
@DATA_DIR_OPTION
@click.option("--grace", "grace_s", type=float, default=10.0, show_default=True,
              help="Seconds between SIGTERM and SIGKILL")
def down(data_dir: Path | None, grace_s: float) -> None:
    """Stop every process of the cluster (SIGTERM, then SIGKILL). The data stays."""
    config = _load(data_dir)
    results = cluster.stop_nodes(config, grace_s=grace_s)
    acted = [r for r in results if r.outcome in ("stopped", "killed", "still running")]
    for result in results:
        if result.outcome != "was not running":
            console.print(f"  {result.name:<6} pid {result.pid or '-':>7}  {result.outcome}")
    if any(r.outcome == "still running" for r in results):
        raise click.ClickException("some processes survived SIGKILL")
    console.print(f"ddb is down ({len(acted)} processes stopped); data kept in {config.data_dir}"
                  if acted else "ddb was not running")


# -- status ------------------------------------------------------------------------------------------


def _uptime(ms: int) -> str:
    seconds = ms // 1000
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@cli.command()
@DATA_DIR_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of tables")
def status(data_dir: Path | None, as_json: bool) -> None:
    """Every process by AZ (PID, alive, healthy, uptime) and every partition (leader, replicas, lag)."""
    config = _load(data_dir)
    reports = cluster.reports(config, full=True, timeout_s=config.limits.health_timeout_ms / 1000.0)
    parts = cluster.partitions(reports)
    router = config.by_role(Role.ROUTER)[0]
    assert router.http_port is not None
    serving = cluster.http_serving(router.host, router.http_port, timeout_s=0.5)
    if as_json:
        body = {"endpoint": config.router_endpoint, "endpoint_serving": serving, "data_dir": config.data_dir,
                "nodes": [r.to_json() for r in reports], "partitions": parts, "admin": admin_status(reports)}
        click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"ddb cluster in {config.data_dir}", title_justify="left")
    for column in ("AZ", "node", "role", "PID", "process", "health", "uptime", "gRPC", "metrics"):
        table.add_column(column, no_wrap=True)
    by_az: dict[str, list[cluster.NodeReport]] = {}
    for report in reports:
        by_az.setdefault(f"az-{report.az}" if report.az else "-", []).append(report)
    for az in sorted(by_az, key=lambda a: (a == "-", a)):
        for report in by_az[az]:
            node = config.node(report.name)
            process = {State.RUNNING: "[green]alive[/]", State.DEAD: "[bold red]DEAD[/]",
                       State.STOPPED: "[dim]stopped[/]"}[report.state]
            if report.health is not None:
                health = "[green]ready[/]" if report.health["ready"] else "[yellow]not ready[/]"
                uptime = _uptime(report.health["uptime_ms"])
            else:
                health = "[red]no answer[/]" if report.state == State.RUNNING else "-"
                uptime = "-"
            table.add_row(az, report.name, report.role, str(report.pid or "-"), process, health, uptime,
                          str(node.grpc_port), str(node.metrics_port))
        table.add_section()
    console.print(table)
    healthy = sum(r.healthy for r in reports)
    console.print(f"{healthy}/{len(reports)} processes healthy; endpoint {config.router_endpoint} "
                  + ("[green]serving[/]" if serving else "[red]not serving[/]"))
    versions = {r.name: r.partition_map_version for r in reports if r.partition_map_version}
    if versions:
        console.print("partition map version: " + ", ".join(f"{n} v{v}" for n, v in sorted(versions.items())))
    for line in admin_lines(admin_status(reports)):
        console.print(line, markup=False)
    # Counts the storage nodes report, summed over them: requests a partition throttled, and items that
    # transactions under way hold locked (held past a few seconds, a lock's coordinator is gone: its
    # partition's leader resolves it).
    for field, title in (("throttled", "throttled requests (over a partition's limit): "),
                         ("txn_locks", "items locked by transactions under way: ")):
        summed: dict[str, int] = {}
        for report in reports:
            for what, count in (((report.health or {}).get("status") or {}).get(field) or {}).items():
                summed[what] = summed.get(what, 0) + int(count)
        if summed:
            console.print(title + ", ".join(f"{what} {n}" for what, n in sorted(summed.items())), markup=False)
    if not parts:
        console.print("partitions: none reported yet (no tables, or the storage nodes do not host replicas yet)")
        return
    ptable = Table(title="partitions", title_justify="left")
    for column in ("table", "partition", "hash range", "leader", "replicas", "commit", "lag"):
        ptable.add_column(column)
    for part in parts:
        lag = ", ".join(f"{name}:{n}" for name, n in part["lag"].items())
        ptable.add_row(part["table"], part["partition_id"], f"{part['hash_lo']:016x}-{part['hash_hi']:016x}",
                       part["leader"] or "[red]none[/]", " ".join(part["replicas"]), str(part["commit_index"]), lag)
    console.print(ptable)


cli.add_command(bench)
cli.add_command(fault)
cli.add_command(chaos)
cli.add_command(verify)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
