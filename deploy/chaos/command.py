"""`ddb chaos`: a seeded chaos run against the local cluster (or against the fake endpoint).

    ddb chaos --duration 60 --seed 7 [--workload register|append|bank] [--faults kill,pause,partition,slow,wipe]
    ddb chaos --duration 20 --seed 3 --fake stale      # a deliberately broken fake: the checker must fail it
    ddb chaos --check <data>/chaos/7/history.jsonl --workload register   # re-check a recorded history

Exit status: 0 pass, 1 fail (the seed and the first violation are printed), 2 unknown (the checker's
budget ran out somewhere), 3 unavailable (the workload needs what the cluster lacks).
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from pathlib import Path

import click

from deploy.chaos.checker import RunVerdict, check_history
from deploy.chaos.history import History
from deploy.chaos.runner import ChaosConfig, FinalVerdict, ReplicaCheck, RunResult, Topology, run_chaos
from deploy.chaos.schedule import ALL_FAULTS, DEFAULT_FAULTS, FaultKind
from deploy.chaos.workloads import WORKLOADS
from deploy.cluster import http_serving
from runtime.config import REPO_ROOT, ClusterConfig, ConfigError, Role, default_data_dir

EXIT = {FinalVerdict.PASS: 0, FinalVerdict.FAIL: 1, FinalVerdict.UNKNOWN: 2, FinalVerdict.UNAVAILABLE: 3}


def _faults(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[FaultKind, ...]:
    try:
        return FaultKind.parse_list(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _verify_hook(config: ClusterConfig, table: str) -> ReplicaCheck:
    """`ddb verify` compares replicas byte for byte; it is another part's command, used once it exists.
    Until then, replicas must at least converge: all reporting, each applied all that was committed."""
    root = click.get_current_context().find_root().command
    if not isinstance(root, click.Group) or "verify" not in root.commands:
        from deploy.chaos.injector import replicas_converged

        return lambda: replicas_converged(config, table)

    def verify() -> tuple[bool | None, str]:
        done = subprocess.run([sys.executable, "-m", "deploy", "verify", "--data-dir", config.data_dir],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
        tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
        return done.returncode == 0, " / ".join(tail) or f"exit {done.returncode}"

    return verify


def _finish(result: RunResult, out_dir: Path) -> None:
    from deploy.chaos.report import write_report

    text = write_report(result, out_dir)
    click.echo("")
    click.echo(text, nl=False)
    click.echo(f"report: {out_dir / 'report.txt'}   timeline: {out_dir / 'timeline.html'}   "
               f"history: {out_dir / 'history.jsonl'}")
    if result.verdict is FinalVerdict.FAIL:
        click.echo(f"FAILED: seed {result.config.seed}. {result.reasons[0] if result.reasons else ''}")
        click.echo(f"replay the same fault schedule: {result.config.rerun_command()}")
    sys.exit(EXIT[result.verdict])


@click.command("chaos")
@click.option("--duration", "duration_s", type=click.FloatRange(min=1.0), default=60.0, show_default=True,
              help="Seconds of workload under faults (healing, recovery and checking come after)")
@click.option("--seed", type=int, default=None, help="Decides the fault schedule [default: random, printed]")
@click.option("--workload", type=click.Choice(WORKLOADS), default="register", show_default=True)
@click.option("--faults", "faults", default=",".join(f.value for f in DEFAULT_FAULTS), show_default=True,
              callback=_faults, help="Comma-separated fault kinds, or none: "
                                     + ", ".join(f.value for f in ALL_FAULTS))
@click.option("--clients", type=click.IntRange(1, 64), default=5, show_default=True, help="Concurrent clients")
@click.option("--timeout-ms", type=click.IntRange(min=50), default=2000, show_default=True,
              help="Per-request timeout; a request that times out is indeterminate")
@click.option("--fake", type=click.Choice(["correct", "stale", "lossy"]), default=None,
              help="Run against an in-process fake endpoint (stale/lossy are broken on purpose)")
@click.option("--check", "check_path", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Only re-check a recorded history.jsonl")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data folder [default: $DDB_DATA_DIR or ./data in the repository]")
def chaos(duration_s: float, seed: int | None, workload: str, faults: tuple[FaultKind, ...], clients: int,
          timeout_ms: int, fake: str | None, check_path: Path | None, data_dir: Path | None) -> None:
    """Drive a workload under seeded faults, heal, and check the history (linearizable, nothing lost)."""
    if check_path is not None:
        if workload == "bank":
            raise click.UsageError("--check works for the register and append workloads")
        report = check_history(workload, History.load(check_path))
        click.echo(report.summary())
        for violation in sorted(report.violations, key=lambda v: v.time_s)[:20]:
            click.echo(violation.describe())
        sys.exit({RunVerdict.PASS: 0, RunVerdict.FAIL: 1, RunVerdict.UNKNOWN: 2}[report.verdict])
    if seed is None:
        seed = random.SystemRandom().randrange(1, 10**6)
    config = ChaosConfig(seed=seed, duration_s=duration_s, workload=workload, faults=faults, clients=clients,
                         request_timeout_s=timeout_ms / 1000.0)
    folder = default_data_dir(data_dir)
    out_dir = folder / "chaos" / (f"fake-{fake}-{seed}" if fake else str(seed))
    if fake is not None:
        result = asyncio.run(_run_fake(config, fake, out_dir))
        _finish(result, out_dir)
    try:
        cluster_config = ClusterConfig.load(folder / "cluster.json")
    except ConfigError as exc:
        raise click.ClickException(f"{exc} (or try `ddb chaos --fake correct`)") from None
    router = cluster_config.by_role(Role.ROUTER)[0]
    assert router.http_port is not None
    if not http_serving(router.host, router.http_port, timeout_s=1.0):
        raise click.ClickException(f"nothing serves {cluster_config.router_endpoint}: start the cluster with `ddb up`")
    endpoint = f"http://{router.host}:{router.http_port}"
    from deploy.chaos.injector import ClusterInjector, fault_targets

    topology = Topology(fault_targets(cluster_config), list(cluster_config.azs))
    injector = ClusterInjector(cluster_config, config.table)
    result = asyncio.run(run_chaos(config, endpoint, injector, topology, out_dir,
                                   verify_replicas=_verify_hook(cluster_config, config.table), log=click.echo))
    _finish(result, out_dir)


async def _run_fake(config: ChaosConfig, flaws: str, out_dir: Path) -> RunResult:
    from deploy.chaos.fake import FakeDynamo, FakeFlaws, FakeInjector  # only this mode needs the fake

    fake = FakeDynamo(FakeFlaws.named(flaws), seed=config.seed)
    endpoint = await fake.start()
    try:
        topology = Topology(list(FakeInjector.NODES), list(FakeInjector.AZS))
        return await run_chaos(config, endpoint, FakeInjector(fake), topology, out_dir, log=click.echo)
    finally:
        await fake.stop()
