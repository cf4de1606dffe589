"""Short real runs against the peers that scripts/install-peers.sh installed (skipped when they are not there):
the same benchmark must work unchanged against other DynamoDB-API servers, and peers stop by their PID."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

pytest.importorskip("hdrh", reason="the hdrhistogram package is not installed (ddb bench needs it)")
from click.testing import CliRunner
from rich.console import Console

from deploy.bench import peers
from deploy.bench.command import bench
from deploy.bench.main import BenchOptions, bench_once

QUIET = Console(file=open(os.devnull, "w"), width=120)  # noqa: SIM115 - lives for the test session
INSTALLED = peers.installed()


def needs(name: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(name not in INSTALLED, reason=f"{name} is not installed in {peers.peers_dir()}: "
                              "scripts/install-peers.sh installs it (about a minute, so not from a test)")


@needs("moto")
async def test_short_runs_against_moto_server() -> None:
    with peers.start("moto") as peer:
        for workload in ("put", "get", "query"):
            report = await bench_once(BenchOptions(endpoint=peer.endpoint, workload=workload, records=100, ops=150,
                                                   duration_s=None, clients=4, table=f"bench_{workload}"), QUIET)
            assert report["ops"] == 150 and report["errors"] == 0, report["errors_by_type"]
        pid = peer.process.pid
    assert peer.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@needs("dynalite")
async def test_ycsb_workloads_against_dynalite() -> None:
    with peers.start("dynalite") as peer:
        for workload in ("a", "d", "e", "f"):
            report = await bench_once(BenchOptions(endpoint=peer.endpoint, workload=workload, records=200, ops=200,
                                                   duration_s=None, clients=4, consistent=True), QUIET)
            assert report["ops"] == 200 and report["errors"] == 0, report["errors_by_type"]
    assert peer.process.poll() is not None


def test_installed_lists_only_what_is_present(tmp_path: Path) -> None:
    assert peers.installed(tmp_path) == []
    server = tmp_path / "moto" / "bin" / "moto_server"
    server.parent.mkdir(parents=True)
    server.write_text("#!/bin/sh\n")
    assert peers.installed(tmp_path) == ["moto"]


def test_starting_a_missing_peer_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(peers.PeerError, match="install-peers.sh"):
        peers.start("dynalite", tmp_path)
    with pytest.raises(peers.PeerError, match="unknown peer"):
        peers.start("cassandra", tmp_path)


def test_a_peer_that_exits_at_start_is_reported(tmp_path: Path) -> None:
    server = tmp_path / "moto" / "bin" / "moto_server"
    server.parent.mkdir(parents=True)
    server.write_text("#!/bin/sh\necho 'no such luck' >&2\nexit 3\n")
    server.chmod(0o755)
    with pytest.raises(peers.PeerError, match="(?s)exited with code 3.*no such luck"):
        peers.start("moto", tmp_path, timeout_s=10)


@needs("dynalite")
def test_compare_without_a_cluster_measures_the_peers(tmp_path: Path) -> None:
    out = tmp_path / "compare.json"
    result = CliRunner().invoke(bench, ["--compare", "--peers", "dynalite", "--endpoint", "http://127.0.0.1:1",
                                        "--workload", "put", "--records", "100", "--ops", "200", "--clients", "4",
                                        "--no-load", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "nothing answers at http://127.0.0.1:1" in result.output
    assert "dynalite ÷ target ops/s" in result.output
    runs = orjson.loads(out.read_bytes())["runs"]
    assert [run["target"] for run in runs] == ["dynalite"] and runs[0]["ops"] == 200 and runs[0]["errors"] == 0
