"""Fixtures for tier-4 tests: real `ddb` processes, every one stopped by PID when the test ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from deploy.cluster import is_node_process
from runtime.config import REPO_ROOT


class Ddb:
    """Runs the `ddb` CLI as a separate process, as a user would, and remembers every PID it saw."""

    def __init__(self, data_dir: Path, base_port: int) -> None:
        self.data_dir = data_dir
        self.base_port = base_port
        self.seen: dict[int, str] = {}

    def run(self, *args: str, check: bool = True, timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "deploy", *args, "--data-dir", str(self.data_dir)]
        done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s)
        self.record_pids()
        if check:
            assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done

    def up(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("up", "--base-port", str(self.base_port), *args)

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = orjson.loads(self.run("status", "--json").stdout)
        for node in body["nodes"]:
            if node["pid"]:
                self.seen[node["pid"]] = node["name"]
        return body

    def nodes(self) -> dict[str, dict[str, Any]]:
        """`ddb status`'s nodes by name."""
        return {node["name"]: node for node in self.status()["nodes"]}

    def record_pids(self) -> None:
        for pidfile in (self.data_dir / "run").glob("*.pid"):
            try:
                self.seen[int(pidfile.read_text())] = pidfile.stem
            except (ValueError, FileNotFoundError):
                pass

    def kill_all(self) -> None:
        self.record_pids()
        for pid, name in self.seen.items():
            if is_node_process(pid, name):
                os.kill(pid, signal.SIGCONT)  # a paused (SIGSTOPped) process dies too, and at once
                os.kill(pid, signal.SIGKILL)

    # ---- helpers for tests that break the cluster on purpose -------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.base_port}"

    def config(self) -> Any:
        from runtime.config import ClusterConfig

        return ClusterConfig.load(self.data_dir / "cluster.json")

    def client(self, *, attempts: int = 3, read_timeout_s: float = 10.0) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="anything",
            aws_secret_access_key="anything",
            # total_max_attempts counts the first try; botocore's max_attempts would count retries only.
            config=Config(retries={"total_max_attempts": attempts, "mode": "standard"}, connect_timeout=2,
                          read_timeout=read_timeout_s, max_pool_connections=64),
        )

    def streams_client(self, *, attempts: int = 3) -> Any:
        """boto3's DynamoDB Streams client, at the same endpoint (as DynamoDB Local serves both)."""
        import boto3
        from botocore.config import Config

        return boto3.client("dynamodbstreams", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="anything", aws_secret_access_key="anything",
                            config=Config(retries={"total_max_attempts": attempts, "mode": "standard"},
                                          connect_timeout=2, read_timeout=10))

    def pid_of(self, name: str) -> int:
        pid = int((self.data_dir / "run" / f"{name}.pid").read_text())
        self.seen[pid] = name
        return pid

    def kill(self, *names: str) -> None:
        """SIGKILL, as a crash: nothing is flushed, nothing is restarted."""
        for name in names:
            pid = self.pid_of(name)
            if is_node_process(pid, name):
                os.kill(pid, signal.SIGKILL)

    def restart(self, *names: str) -> None:
        from deploy.cluster import spawn

        config = self.config()
        for name in names:
            proc = spawn(config, config.node(name))
            self.seen[proc.pid] = name


@pytest.fixture
def ddb_at(tmp_path: Path) -> Iterator[Callable[[int], Ddb]]:
    """A `ddb` runner on a fresh data folder with ports from base_port; its processes die with the test."""
    runners: list[Ddb] = []

    def make(base_port: int) -> Ddb:
        runners.append(Ddb(tmp_path / f"data-{base_port}", base_port))
        return runners[-1]

    yield make
    for runner in runners:
        runner.kill_all()
