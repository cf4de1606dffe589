"""``ddb bench``: the click command. The benchmark's modules are imported when it runs, so the rest of the
``ddb`` command line does not pay for them (nor need the histogram package)."""

from __future__ import annotations

from pathlib import Path

import click

WORKLOAD_NAMES = ("a", "b", "c", "d", "e", "f", "put", "get", "query", "query-gsi", "txn")
DEFAULT_ENDPOINT = "http://localhost:8000"


def cluster_endpoint() -> str:
    """The local cluster's router (its config says the port, which ``ddb up --base-port`` may have moved)."""
    from runtime.config import ClusterConfig, ConfigError, default_data_dir

    try:
        return ClusterConfig.load(default_data_dir() / "cluster.json").router_endpoint
    except (ConfigError, OSError):
        return DEFAULT_ENDPOINT


@click.command()
@click.option("--endpoint", default=None,
              help="Any DynamoDB-API server [default: the router of the cluster in $DDB_DATA_DIR or ./data, "
                   "else http://localhost:8000]")
@click.option("--workload", "-w", type=click.Choice(WORKLOAD_NAMES), default="get", show_default=True,
              help="YCSB core workload a-f, or plain put / get / query (10 items per partition key) / "
                   "query-gsi (10 items per index key) / txn (TransactWriteItems of 2 puts)")
@click.option("--records", type=click.IntRange(1), default=10_000, show_default=True,
              help="Records loaded before the run (the key space)")
@click.option("--ops", type=click.IntRange(1), default=None, help="Stop after this many operations")
@click.option("--duration", "duration_s", type=click.FloatRange(0.1), default=None,
              help="Stop after this many seconds [default: 10 unless --ops]")
@click.option("--clients", type=click.IntRange(1, 1024), default=32, show_default=True,
              help="Concurrent clients, each with one connection and one request in flight")
@click.option("--consistent", is_flag=True, help="Strongly consistent reads (GetItem, Query)")
@click.option("--value-bytes", type=click.IntRange(1, 390_000), default=170, show_default=True,
              help="Size of each item's value attribute (170 makes items of about 200 bytes)")
@click.option("--client", "client_kind", type=click.Choice(["http", "boto3"]), default="http", show_default=True,
              help="http: the light asyncio client; boto3: what a boto3 program sees (thread per client)")
@click.option("--table", default="ddb_bench", show_default=True, help="The benchmark's table (dropped and created)")
@click.option("--no-load", is_flag=True, help="Use the table as it is: no create, no load")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the key and value choices")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the figures as JSON to this file ('-': JSON only, on stdout)")
@click.option("--compare", is_flag=True,
              help="Run against --endpoint (if it serves) and then each installed peer in turn; print ratios")
@click.option("--peers", "peer_names", default=None,
              help="With --compare: comma-separated peers [default: every installed one of moto,dynalite,ddblocal]; "
                   "NAME=URL measures a server already running there (another build of the cluster, say)")
@click.option("--interleave", "interleave_s", type=click.FloatRange(0.5), default=None,
              help="With --compare: start every target first, then measure them in turns of this many seconds "
                   "until each has had --duration (the machine's changes of speed fall on all alike)")
@click.option("--warmup", "warmup_s", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Seconds of the workload run first and not recorded (JIT, caches)")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.01), default=10.0, show_default=True,
              help="Seconds before a request counts as failed ('timed out') and its connection is replaced")
@click.option("--no-timeline", is_flag=True, help="Leave the per-second table out of the printed report")
def bench(endpoint: str | None, workload: str, records: int, ops: int | None, duration_s: float | None, clients: int,
          consistent: bool, value_bytes: int, client_kind: str, table: str, no_load: bool, seed: int,
          json_path: Path | None, compare: bool, peer_names: str | None, interleave_s: float | None,
          warmup_s: float, timeout_s: float, no_timeline: bool) -> None:
    """Measure throughput and latency (p50/p95/p99/p99.9, per second) of any DynamoDB-API endpoint.

    \b
    ddb bench --workload get --clients 32 --duration 20
    ddb bench --workload a --records 100000 --ops 200000 --json a.json
    ddb bench --workload put --compare        # ddb, then moto, dynalite, DynamoDB Local
    ddb bench --workload put --compare --interleave 2 --duration 20   # all of them in 2 s turns
    ddb bench --compare --peers base=http://localhost:8100 --interleave 2   # A/B against another cluster
    """
    try:
        from deploy.bench.main import BenchOptions, main
    except ImportError as exc:
        if exc.name != "hdrh" and not (exc.name or "").startswith("hdrh."):
            raise
        raise click.ClickException("ddb bench needs the hdrhistogram package: pip install hdrhistogram") from None

    if ops is not None and duration_s is not None:
        raise click.UsageError("give --ops or --duration, not both")
    if interleave_s is not None and (not compare or ops is not None):
        raise click.UsageError("--interleave goes with --compare and a --duration, not --ops")
    options = BenchOptions(
        endpoint=endpoint or cluster_endpoint(), workload=workload, records=records, ops=ops,
        duration_s=duration_s if duration_s is not None or ops is not None else 10.0, clients=clients,
        consistent=consistent, value_bytes=value_bytes, client=client_kind, table=table, load=not no_load,
        seed=seed, json_path=json_path, compare=compare,
        peers=tuple(p.strip() for p in peer_names.split(",") if p.strip()) if peer_names else None,
        timeline=not no_timeline, warmup_s=warmup_s, timeout_s=timeout_s, interleave_s=interleave_s)
    main(options)
