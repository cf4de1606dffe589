"""The pieces of `ddb status` and `ddb down` that need no cluster: aggregation and process checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from deploy.cluster import NodeReport, State, is_node_process, load_or_create_config, partitions, pid_alive


def replica(role: str, applied: int, commit: int, leader: str = "sn-a1") -> dict[str, object]:
    return {"table": "t", "partition_id": "p0", "hash_lo": 0, "hash_hi": 2**64 - 1, "role": role,
            "leader": leader, "replicas": ["sn-a1", "sn-b1", "sn-c1"], "commit_index": commit,
            "applied_index": applied, "last_index": commit, "ballot": 3}


def test_partitions_group_replicas_and_compute_lag() -> None:
    reports = [
        NodeReport("sn-a1", "storage", "a", State.RUNNING, 1, replicas=[replica("leader", 10, 10)]),
        NodeReport("sn-b1", "storage", "b", State.RUNNING, 2, replicas=[replica("follower", 7, 9)]),
        NodeReport("sn-c1", "storage", "c", State.DEAD, 3),
    ]
    (part,) = partitions(reports)
    assert part["leader"] == "sn-a1"
    assert part["replicas"] == ["sn-a1", "sn-b1"]
    assert part["commit_index"] == 10
    assert part["lag"] == {"sn-a1": 0, "sn-b1": 3}


def test_a_follower_names_the_leader_when_the_leader_does_not_report() -> None:
    reports = [NodeReport("sn-b1", "storage", "b", State.RUNNING, 2, replicas=[replica("follower", 5, 5)])]
    assert partitions(reports)[0]["leader"] == "sn-a1"


def test_dead_and_zombie_processes_are_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # wait for the exit without reaping it
    assert not pid_alive(child.pid), "an exited, unreaped child is a zombie: dead"
    child.wait()
    assert not pid_alive(child.pid)
    assert pid_alive(os.getpid())
    assert not is_node_process(os.getpid(), "sn-a1"), "our own PID is alive but is not node sn-a1"


def test_config_is_created_once_and_then_reused(tmp_path: Path) -> None:
    config, created = load_or_create_config(tmp_path, nodes_per_az=2, base_port=21900)
    assert created and config.nodes_per_az == 2
    again, created = load_or_create_config(tmp_path)
    assert not created and again == config
