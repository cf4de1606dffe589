"""The cluster config: defaults describe the 14-process cluster; bad values fail with clear messages."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.config import (
    AdminPolicy,
    ClusterConfig,
    ConfigError,
    Limits,
    NodeSpec,
    PaxosTiming,
    Role,
    az_of,
    build_cluster_config,
    default_data_dir,
    role_of,
)


def test_default_cluster_is_fourteen_processes(tmp_path: Path) -> None:
    config = build_cluster_config(tmp_path)
    assert config.names() == [
        "cp-a", "cp-b", "cp-c",
        "sn-a1", "sn-a2", "sn-a3", "sn-b1", "sn-b2", "sn-b3", "sn-c1", "sn-c2", "sn-c3",
        "rr-1", "aa-1",
    ]
    assert config.node("rr-1").http_port == 8000
    assert config.router_endpoint == "http://localhost:8000"
    assert config.node("sn-b2").az == "b" and config.node("sn-b2").role is Role.STORAGE
    assert config.node("aa-1").az is None
    assert config.nodes_per_az == 3
    ports = [p for n in config.nodes for p in n.ports()]
    assert len(ports) == len(set(ports)) == 14 * 2 + 1
    assert config.pid_path("sn-a1") == tmp_path.resolve() / "run" / "sn-a1.pid"


def test_nodes_per_az_one_is_eight_processes(tmp_path: Path) -> None:
    config = build_cluster_config(tmp_path, nodes_per_az=1, base_port=21000)
    assert len(config.nodes) == 8
    assert config.node("rr-1").http_port == 21000
    assert sorted(p for n in config.nodes for p in n.ports()) == list(range(21000, 21017))


def test_round_trips_through_json(tmp_path: Path) -> None:
    config = build_cluster_config(tmp_path, nodes_per_az=2, paxos=PaxosTiming(tick_ms=10))
    path = config.save()
    assert path == tmp_path.resolve() / "cluster.json"
    assert ClusterConfig.load(path) == config
    assert not list(tmp_path.glob(".*.tmp")), "the atomic write leaves no temp file"


@given(st.integers(1, 8), st.sampled_from([("a",), ("a", "b", "c"), ("x", "y", "z")]), st.integers(1, 3))
@settings(max_examples=25, deadline=None)
def test_any_built_cluster_round_trips(nodes_per_az: int, azs: tuple[str, ...], routers: int) -> None:
    config = build_cluster_config("/tmp/ddb-x", nodes_per_az=nodes_per_az, azs=azs, routers=routers)
    assert ClusterConfig.from_json(config.to_json()) == config
    assert config.nodes_per_az == nodes_per_az
    assert all(az_of(n) in (*azs, None) for n in config.names())


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: PaxosTiming(tick_ms=0), "paxos.tick_ms = 0: must be a positive number"),
        (lambda: PaxosTiming(lease_ticks=20, election_timeout_ticks=20), "a lease must end before"),
        (lambda: PaxosTiming(lease_ticks=19, election_timeout_ticks=20, max_clock_drift_ratio=0.1),
         "paxos.lease_ticks = 19"),
        (lambda: PaxosTiming(heartbeat_interval_ticks=11), "at most half of election_timeout_ticks"),
        (lambda: PaxosTiming(max_clock_drift_ratio=0.7), "must be in [0, 0.5)"),
        (lambda: Limits(peer_queue_limit=-1), "limits.peer_queue_limit = -1"),
        (lambda: Limits(max_batch_bytes=32 << 20), "must be below max_grpc_message_bytes"),
        (lambda: Limits(reconnect_backoff_min_ms=5000), "must not exceed reconnect_backoff_max_ms"),
        (lambda: AdminPolicy(repair_delay_s=0.5), "must cover at least two node heartbeats"),
        (lambda: AdminPolicy(split_heat_fraction=1.5), "must be in (0, 1]"),
        (lambda: NodeSpec("sn-a1", "127.0.0.1", 70000, 1), "grpc_port = 70000: must be a TCP port"),
        (lambda: NodeSpec("node7", "127.0.0.1", 1, 2), "must look like sn-<az><n>"),
        (lambda: NodeSpec("rr-1", "127.0.0.1", 1, 2), "http_port = None: must be a TCP port"),
        (lambda: NodeSpec("sn-a1", "127.0.0.1", 1, 2, http_port=3), "only routers serve HTTP"),
        (lambda: build_cluster_config("/d", nodes_per_az=0), "nodes_per_az = 0"),
        (lambda: build_cluster_config("/d", http_port=7001), "port already used by"),
        (lambda: build_cluster_config("/d", azs=("a", "a")), "each once"),
        (lambda: build_cluster_config("/d", azs=("a", "b")), "control plane needs 1, 3 or 5"),
    ],
)
def test_bad_values_are_rejected_clearly(make: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        make()  # type: ignore[operator]
    assert message in str(info.value)


def test_cluster_level_rules(tmp_path: Path) -> None:
    good = build_cluster_config(tmp_path)
    no_router = [n for n in good.nodes if n.role is not Role.ROUTER]
    with pytest.raises(ConfigError, match="at least one router"):
        dataclasses.replace(good, nodes=tuple(no_router))
    no_b = [n for n in good.nodes if not n.name.startswith("sn-b")]
    with pytest.raises(ConfigError, match="az b.*at least one storage node"):
        dataclasses.replace(good, nodes=tuple(no_b))
    with pytest.raises(ConfigError, match="unique"):
        dataclasses.replace(good, nodes=(*good.nodes, good.nodes[0]))
    with pytest.raises(ConfigError, match="not in the cluster config"):
        good.node("sn-z9")


def test_json_errors_name_the_field(tmp_path: Path) -> None:
    data = orjson.loads(build_cluster_config(tmp_path).to_json())
    data["paxos"]["tick_ms"] = "fast"
    with pytest.raises(ConfigError, match=r"config.paxos.tick_ms = 'fast': must be a JSON int"):
        ClusterConfig.from_json(orjson.dumps(data))
    data["paxos"]["tick_ms"] = 50
    data["limits"]["queue"] = 1
    with pytest.raises(ConfigError, match=r"config.limits = \['queue'\]: unknown field"):
        ClusterConfig.from_json(orjson.dumps(data))
    with pytest.raises(ConfigError, match="not valid JSON"):
        ClusterConfig.from_json(b"{")
    with pytest.raises(ConfigError, match="run `ddb up` first"):
        ClusterConfig.load(tmp_path / "missing.json")


def test_scheduling_policy_defaults_to_batch_and_is_checked(tmp_path: Path) -> None:
    config = build_cluster_config(tmp_path)
    assert config.scheduling_policy == "batch"
    data = orjson.loads(config.to_json())
    del data["scheduling_policy"]  # a config written before the field existed
    assert ClusterConfig.from_json(orjson.dumps(data)).scheduling_policy == "batch"
    data["scheduling_policy"] = "realtime"
    with pytest.raises(ConfigError, match=r"scheduling_policy = 'realtime': must be one of \['batch', 'normal'\]"):
        ClusterConfig.from_json(orjson.dumps(data))


def test_garbage_collector_settings(tmp_path: Path) -> None:
    import gc

    from runtime.process import tune_gc

    config = build_cluster_config(tmp_path)
    assert (config.gc_young_allocations, config.gc_freeze_at_start) == (20_000, True)
    data = orjson.loads(config.to_json())
    del data["gc_young_allocations"], data["gc_freeze_at_start"]  # a config written before the fields existed
    assert ClusterConfig.from_json(orjson.dumps(data)).gc_young_allocations == 20_000
    data["gc_young_allocations"] = 0
    with pytest.raises(ConfigError, match=r"gc_young_allocations = 0: must be a positive number"):
        ClusterConfig.from_json(orjson.dumps(data))
    before = gc.get_threshold()
    try:
        tune_gc(config)
        assert gc.get_threshold() == (20_000, *before[1:])
    finally:
        gc.set_threshold(*before)


def test_names_say_where_nodes_live() -> None:
    assert (role_of("sn-b2"), az_of("sn-b2")) == (Role.STORAGE, "b")
    assert (role_of("cp-c"), az_of("cp-c")) == (Role.CONTROL, "c")
    assert (role_of("rr-12"), az_of("rr-12")) == (Role.ROUTER, None)
    assert Role.CONTROL.package == "control_plane"
    for bad in ("sn-b0", "sn-B2", "cp-ab", "rr-0", "aa", ""):
        with pytest.raises(ConfigError):
            role_of(bad)


def test_data_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDB_DATA_DIR", str(tmp_path / "env"))
    assert default_data_dir() == tmp_path / "env"
    assert default_data_dir(tmp_path / "flag") == tmp_path / "flag"
    monkeypatch.delenv("DDB_DATA_DIR")
    assert default_data_dir().name == "data"


def test_storage_nodes_take_their_replication_settings_from_the_config(tmp_path: Path) -> None:
    from storagenode.node import driver_config

    config = build_cluster_config(
        tmp_path, paxos=PaxosTiming(lease_ticks=9, eager_commit_news=True, thrifty_replication=False),
        limits=Limits(replication_inflight_accepts=4),
    )
    paxos = driver_config(config).paxos_config("sn-a1", ("sn-a1", "sn-b1", "sn-c1"))
    assert paxos.lease_ticks == 9  # the configured cap, below the drift bound (17)
    assert paxos.eager_commit_news and paxos.max_inflight_messages == 4 and not paxos.thrifty
    defaults = driver_config(build_cluster_config(tmp_path / "d")).paxos_config("sn-a1", ("sn-a1",))
    assert defaults.lease_ticks == 16 and not defaults.eager_commit_news and defaults.max_inflight_messages == 1
    assert defaults.thrifty
