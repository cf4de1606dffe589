"""`ddb fault` without a cluster: link rules land in the fault table; signals reach a dummy node process
that this test starts (and stops) itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from deploy import cluster
from deploy.chaos import injector as injector_module
from deploy.chaos.injector import ClusterInjector, replicas_converged
from deploy.chaos.schedule import LEADER, FaultKind, FaultWindow
from deploy.cli import cli
from deploy.cluster import State, pid_alive
from deploy.fault import process_paused
from runtime.config import ClusterConfig, NodeSpec, build_cluster_config
from runtime.faults import FaultTable, RuleKind
from runtime.process import write_pidfile


@pytest.fixture
def config(tmp_path: Path) -> ClusterConfig:
    cfg = build_cluster_config(tmp_path / "data", base_port=23100)
    cfg.save()
    return cfg


class Dummies:
    """Dummy 'nodes': sleeping Pythons whose argv says --node NAME, so the pidfile checks accept them."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "--node", name],
                                start_new_session=True)
        self.procs.append(proc)
        # Until the child has exec'd, /proc shows the parent's argv and the pidfile check (rightly) refuses it.
        cmdline = Path(f"/proc/{proc.pid}/cmdline")
        assert wait_for(lambda: b"--node" in cmdline.read_bytes()), "the dummy node did not start"
        write_pidfile(self.config.pid_path(name), proc.pid)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def dummies(config: ClusterConfig) -> Iterator[Dummies]:
    d = Dummies(config)
    try:
        yield d
    finally:
        d.stop_all()


def ddb(config: ClusterConfig, *args: str) -> Result:
    return CliRunner().invoke(cli, ["fault", *args, "--data-dir", config.data_dir], catch_exceptions=False)


def wait_for(predicate: object, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


# -- link faults -------------------------------------------------------------------------------------------


def test_partition_slow_list_and_heal(config: ClusterConfig) -> None:
    table = FaultTable(config.faults_path)
    assert ddb(config, "list").output.strip() == "no faults"
    res = ddb(config, "partition", "az-a", "sn-b1")
    assert res.exit_code == 0 and "az-a <-> sn-b1: cut" in res.output
    res = ddb(config, "partition", "sn-c1", "cp-a", "--oneway")
    assert res.exit_code == 0
    res = ddb(config, "slow", "az-b", "az-c", "--ms", "250")
    assert res.exit_code == 0
    rules = table.list()
    assert [(r.kind, r.a, r.b, r.oneway, r.delay_ms) for r in rules] == [
        (RuleKind.DROP, "az-a", "sn-b1", False, 0),
        (RuleKind.DROP, "sn-c1", "cp-a", True, 0),
        (RuleKind.DELAY, "az-b", "az-c", False, 250),
    ]
    listing = ddb(config, "list").output
    assert "sn-c1 -> cp-a: cut" in listing and "slow +250 ms" in listing
    res = ddb(config, "heal", "sn-b1", "az-a")
    assert res.exit_code == 0 and len(table.list()) == 2
    res = ddb(config, "heal")
    assert "2 link fault(s) removed" in res.output and table.list() == []


@pytest.mark.parametrize("args, message", [
    (["partition", "sn-z9", "sn-a1"], "not in the cluster config"),
    (["partition", "az-q", "sn-a1"], "unknown AZ"),
    (["partition", "sn-a1", "sn-a1"], "from itself"),
    (["slow", "sn-a1", "sn-b1"], "Missing option '--ms'"),
    (["slow", "sn-a1", "sn-b1", "--ms", "0"], "0"),
    (["heal", "sn-a1"], "give both A and B"),
    (["kill", "sn-a1"], "not running"),
    (["stop", "bogus"], "not in the cluster config"),
    (["wipe", "cp-a"], "only storage nodes"),
])
def test_bad_arguments_are_refused(config: ClusterConfig, args: list[str], message: str) -> None:
    res = CliRunner().invoke(cli, ["fault", *args, "--data-dir", config.data_dir])
    assert res.exit_code != 0
    assert message in res.output
    assert FaultTable(config.faults_path).list() == []


def test_without_a_cluster_config(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["fault", "list", "--data-dir", str(tmp_path / "none")])
    assert res.exit_code != 0 and "ddb up" in res.output


# -- process faults ----------------------------------------------------------------------------------------


def test_stop_cont_kill_a_dummy_node(config: ClusterConfig, dummies: Dummies) -> None:
    proc = dummies.start("sn-a1")
    res = ddb(config, "stop", "sn-a1")
    assert res.exit_code == 0 and f"SIGSTOP to pid {proc.pid}" in res.output
    assert wait_for(lambda: process_paused(proc.pid))
    assert "process  sn-a1: paused" in ddb(config, "list").output
    assert "sn-a1 is still paused" in ddb(config, "heal").output
    res = ddb(config, "cont", "sn-a1")
    assert res.exit_code == 0
    assert wait_for(lambda: not process_paused(proc.pid))
    res = ddb(config, "kill", "sn-a1")
    assert res.exit_code == 0 and "SIGKILL" in res.output
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert cluster.node_state(config, "sn-a1")[0] == State.DEAD
    assert "process  sn-a1: dead" in ddb(config, "list").output
    res = CliRunner().invoke(cli, ["fault", "kill", "sn-a1", "--data-dir", config.data_dir])
    assert res.exit_code != 0 and "dead" in res.output


def test_restart_a_killed_and_a_running_node(config: ClusterConfig, dummies: Dummies,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_spawn(cfg: ClusterConfig, node: NodeSpec) -> subprocess.Popen[bytes]:
        return dummies.start(node.name)

    monkeypatch.setattr(cluster, "spawn", fake_spawn)
    first = dummies.start("sn-b2")
    ddb(config, "kill", "sn-b2")
    first.wait(timeout=10)
    res = ddb(config, "restart", "sn-b2")
    assert res.exit_code == 0, res.output
    second = dummies.procs[-1]
    assert second.pid != first.pid and f"started pid {second.pid}" in res.output
    assert cluster.node_state(config, "sn-b2") == (State.RUNNING, second.pid)
    res = ddb(config, "restart", "sn-b2")  # running: stopped gracefully first
    assert res.exit_code == 0 and "stopped pid" in res.output
    assert second.wait(timeout=10) == -signal.SIGTERM
    third = dummies.procs[-1]
    assert pid_alive(third.pid) and cluster.node_state(config, "sn-b2") == (State.RUNNING, third.pid)


def test_chaos_injector_resolves_the_leader_and_undoes_on_the_same_node(
        config: ClusterConfig, dummies: Dummies, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "spawn", lambda cfg, node: dummies.start(node.name))
    leaders = iter(["sn-c2", "sn-a1"])  # the leader moves once the first one is killed
    monkeypatch.setattr(injector_module, "leader_of", lambda cfg, table: next(leaders))
    victim = dummies.start("sn-c2")
    injector = ClusterInjector(config, "chaos_register")
    window = FaultWindow(1, FaultKind.KILL, 1.0, 2.0, LEADER)
    assert injector.begin(window).startswith("@leader is sn-c2: kill sn-c2")
    assert victim.wait(timeout=10) == -signal.SIGKILL
    assert "restart sn-c2" in injector.end(window)  # the node that was killed, not today's leader
    assert cluster.node_state(config, "sn-c2")[0] == State.RUNNING
    cut = FaultWindow(2, FaultKind.PARTITION, 3.0, 4.0, LEADER, "*")
    assert "sn-a1 <-> *: cut" in injector.begin(cut)
    assert [r.describe() for r in FaultTable(config.faults_path).list()] == ["sn-a1 <-> *: cut"]
    injector.end(cut)
    assert FaultTable(config.faults_path).list() == []


def _report(name: str, applied: int, commit: int = 10, role: str = "follower") -> cluster.NodeReport:
    replica = {"table": "chaos_register", "partition_id": "1", "hash_lo": 0, "hash_hi": 2**64 - 1, "role": role,
               "leader": "sn-a1", "replicas": ["sn-a1", "sn-b1", "sn-c1"], "commit_index": commit,
               "applied_index": applied, "last_index": commit, "ballot": 1}
    return cluster.NodeReport(name, "storage", name[3], State.RUNNING, 1, {"ready": True}, [replica])


def test_replicas_converge_or_the_run_says_which_lag(config: ClusterConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    rounds = iter([[_report("sn-a1", 10, role="leader"), _report("sn-b1", 7)],
                   [_report("sn-a1", 10, role="leader"), _report("sn-b1", 10), _report("sn-c1", 10)]])
    monkeypatch.setattr(cluster, "reports", lambda *a, **k: next(rounds))
    ok, what = replicas_converged(config, "chaos_register", timeout_s=5, poll_s=0.01)
    assert ok is True and "1@10" in what
    monkeypatch.setattr(cluster, "reports", lambda *a, **k: [_report("sn-a1", 10, role="leader"),
                                                              _report("sn-b1", 4), _report("sn-c1", 10)])
    ok, what = replicas_converged(config, "chaos_register", timeout_s=0.05, poll_s=0.01)
    assert ok is False and "sn-b1 lags 6" in what
    monkeypatch.setattr(cluster, "reports", lambda *a, **k: [])
    assert replicas_converged(config, "chaos_register", timeout_s=0.05, poll_s=0.01)[0] is None


def test_wipe_kills_deletes_the_store_and_starts_the_node_empty(config: ClusterConfig, dummies: Dummies,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_spawn(cfg: ClusterConfig, node: NodeSpec) -> subprocess.Popen[bytes]:
        assert not (cfg.node_dir(node.name) / "store").exists(), "started before its store was gone"
        return dummies.start(node.name)

    monkeypatch.setattr(cluster, "spawn", fake_spawn)
    store = config.node_dir("sn-c1") / "store"
    store.mkdir(parents=True)
    (store / "000001.log").write_bytes(b"data")
    (config.node_dir("sn-c1") / "keep.txt").write_text("not the disk")
    first = dummies.start("sn-c1")
    res = ddb(config, "wipe", "sn-c1")
    assert res.exit_code == 0, res.output
    assert first.wait(timeout=10) == -signal.SIGKILL
    second = dummies.procs[-1]
    assert f"killed pid {first.pid}, deleted its store, started pid {second.pid}" in res.output
    assert not store.exists() and (config.node_dir("sn-c1") / "keep.txt").exists()
    assert cluster.node_state(config, "sn-c1") == (State.RUNNING, second.pid)
