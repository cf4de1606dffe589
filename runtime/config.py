"""The cluster config: one validated description of every process, port, folder, timing and limit.

`ddb up` resolves it once (built-in defaults plus command-line options), writes it to
``<data>/cluster.json``, and every process starts with ``--config <data>/cluster.json --node <name>``,
so all processes agree on who lives where. Every value is checked in ``__post_init__``; a bad value raises
``ConfigError`` naming the field, the value and the rule it breaks.

Node names say where they live: ``sn-b2`` is storage node 2 in AZ b, ``cp-a`` is the control-plane replica
in AZ a, ``rr-1`` is router 1 and ``aa-1`` auto-admin 1 (routers and auto-admins belong to no AZ).
"""

from __future__ import annotations

import dataclasses
import enum
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson

CONFIG_VERSION = 1
CONFIG_FILE = "cluster.json"
DATA_DIR_ENV = "DDB_DATA_DIR"
# The repository root: the default data folder is ./data under it.
REPO_ROOT = Path(__file__).resolve().parents[1]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 8000
DEFAULT_GRPC_BASE_PORT = 7000
DEFAULT_METRICS_BASE_PORT = 7500
DEFAULT_AZS = ("a", "b", "c")
SCHEDULING_POLICIES = ("batch", "normal")
MAX_NODES_PER_AZ = 64
# A snapshot chunk may exceed its bound by one record: an item (400 KB at most) with its key and framing.
SNAPSHOT_RECORD_ROOM_BYTES = 512 << 10


class ConfigError(ValueError):
    """The cluster config is invalid; the message says which field and why."""


class Role(enum.StrEnum):
    STORAGE = "storage"
    CONTROL = "control"
    ROUTER = "router"
    AUTOADMIN = "autoadmin"

    @property
    def package(self) -> str:
        """The Python package whose ``__main__`` runs a process of this role."""
        return _PACKAGES[self]

    @property
    def prefix(self) -> str:
        return _PREFIXES[self]


_PACKAGES = {Role.STORAGE: "storagenode", Role.CONTROL: "control_plane", Role.ROUTER: "router",
             Role.AUTOADMIN: "autoadmin"}
_PREFIXES = {Role.STORAGE: "sn", Role.CONTROL: "cp", Role.ROUTER: "rr", Role.AUTOADMIN: "aa"}
_AZ_RE = re.compile(r"^[a-z]$")
_NAME_RE = {
    Role.STORAGE: re.compile(r"^sn-(?P<az>[a-z])(?P<index>[1-9][0-9]*)$"),
    Role.CONTROL: re.compile(r"^cp-(?P<az>[a-z])$"),
    Role.ROUTER: re.compile(r"^rr-(?P<index>[1-9][0-9]*)$"),
    Role.AUTOADMIN: re.compile(r"^aa-(?P<index>[1-9][0-9]*)$"),
}


def _fail(where: str, value: object, rule: str) -> ConfigError:
    return ConfigError(f"{where} = {value!r}: {rule}")


def _check_positive(owner: object, prefix: str, *names: str) -> None:
    for name in names:
        value = getattr(owner, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise _fail(f"{prefix}.{name}", value, "must be a positive number")


def _check_port(where: str, port: object) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise _fail(where, port, "must be a TCP port in 1..65535")


def role_of(name: str) -> Role:
    """The role a node name declares (``sn-b2`` -> STORAGE); ConfigError if the name fits no role."""
    for role, pattern in _NAME_RE.items():
        if pattern.match(name):
            return role
    raise _fail("node name", name, "must look like sn-<az><n>, cp-<az>, rr-<n> or aa-<n>")


def az_of(name: str) -> str | None:
    """The AZ a node name declares (``sn-b2`` -> ``b``), or None for routers and auto-admins."""
    match = _NAME_RE[role_of(name)].match(name)
    assert match is not None
    return match.groupdict().get("az")


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One process of the cluster: who it is and where it listens."""

    name: str
    host: str
    grpc_port: int
    metrics_port: int
    http_port: int | None = None  # routers only: the DynamoDB endpoint

    def __post_init__(self) -> None:
        role = role_of(self.name)
        where = f"nodes[{self.name}]"
        if not self.host:
            raise _fail(f"{where}.host", self.host, "must not be empty")
        _check_port(f"{where}.grpc_port", self.grpc_port)
        _check_port(f"{where}.metrics_port", self.metrics_port)
        if role is Role.ROUTER:
            _check_port(f"{where}.http_port", self.http_port)
        elif self.http_port is not None:
            raise _fail(f"{where}.http_port", self.http_port, "only routers serve HTTP")

    @property
    def role(self) -> Role:
        return role_of(self.name)

    @property
    def az(self) -> str | None:
        return az_of(self.name)

    @property
    def grpc_address(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    def ports(self) -> list[int]:
        return [p for p in (self.grpc_port, self.metrics_port, self.http_port) if p is not None]


@dataclass(frozen=True, slots=True)
class PaxosTiming:
    """Replication timing. Everything is counted in ticks of ``tick_ms``, as the pure core counts time.

    The lease must expire, even on the fastest clock allowed by ``max_clock_drift_ratio``, before any
    follower's election timeout can fire, so a new leader never serves while an old lease holds.
    """

    tick_ms: int = 50
    # A leader's heartbeat every 250 ms: four per election timeout, and two may be lost before the lease
    # (renewed by their answers) lapses. Idle groups cost little: a 9-node cluster with 12 partitions idles at
    # 0.25 cores of CPU instead of 0.41 with a heartbeat every 2 ticks.
    heartbeat_interval_ticks: int = 5
    election_timeout_ticks: int = 20
    lease_ticks: int = 16  # the leader lease: at most this, and never longer than the drift bound allows
    max_clock_drift_ratio: float = 0.01
    # False: a partition's new commit index reaches its followers with the next ACCEPT or leader tick rather
    # than in a HEARTBEAT (and its reply) of its own, so followers apply up to one tick late.
    eager_commit_news: bool = False
    # Thrifty replication: a partition leader sends new entries at once to one follower (a quorum with
    # itself) and to the other on each tick, in one fuller ACCEPT (paxos.types.Config.thrifty).
    thrifty_replication: bool = True

    def __post_init__(self) -> None:
        _check_positive(self, "paxos", "tick_ms", "heartbeat_interval_ticks", "election_timeout_ticks",
                        "lease_ticks")
        for name in ("eager_commit_news", "thrifty_replication"):
            if not isinstance(getattr(self, name), bool):
                raise _fail(f"paxos.{name}", getattr(self, name), "must be true or false")
        if not isinstance(self.max_clock_drift_ratio, int | float) or not 0 <= self.max_clock_drift_ratio < 0.5:
            raise _fail("paxos.max_clock_drift_ratio", self.max_clock_drift_ratio, "must be in [0, 0.5)")
        if self.heartbeat_interval_ticks * 2 > self.election_timeout_ticks:
            raise _fail("paxos.heartbeat_interval_ticks", self.heartbeat_interval_ticks,
                        f"must be at most half of election_timeout_ticks ({self.election_timeout_ticks}) "
                        "so a follower hears at least two heartbeats before it suspects the leader")
        if self.lease_ticks * (1 + self.max_clock_drift_ratio) >= self.election_timeout_ticks:
            raise _fail("paxos.lease_ticks", self.lease_ticks,
                        f"times (1 + max_clock_drift_ratio {self.max_clock_drift_ratio}) must be below "
                        f"election_timeout_ticks ({self.election_timeout_ticks}): a lease must end before "
                        "a new leader can be elected")

    @property
    def election_timeout_ms(self) -> int:
        return self.election_timeout_ticks * self.tick_ms

    @property
    def lease_ms(self) -> int:
        return self.lease_ticks * self.tick_ms


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on queues, batches, in-flight work and waiting. Nothing in a process is unbounded."""

    max_batch_envelopes: int = 1024  # envelopes per stream write
    max_batch_bytes: int = 1 << 20  # payload bytes per stream write (a single bigger envelope goes alone)
    linger_turns: int = 3  # loop turns a stream writer waits while its queue still grows (bigger batches)
    # ACCEPT messages a partition leader has in flight to one follower. One: what is proposed while a round
    # is out goes in the next ACCEPT, so rounds are few and full (half the Paxos messages per put;
    # docs/performance.md has what that did and did not buy).
    replication_inflight_accepts: int = 1
    peer_queue_limit: int = 10_000  # envelopes waiting to be written to one peer
    max_in_flight_per_peer: int = 4096  # outstanding requests to one peer, and served for one peer
    max_grpc_message_bytes: int = 16 << 20
    request_timeout_ms: int = 5_000  # default for transport.call
    connect_timeout_ms: int = 1_000
    reconnect_backoff_min_ms: int = 50
    reconnect_backoff_max_ms: int = 2_000
    health_timeout_ms: int = 1_000
    http_max_body_bytes: int = 16 << 20
    router_max_in_flight: int = 10_000
    shutdown_grace_ms: int = 3_000
    # Snapshot transfer (``runtime.snapshot_stream``): a partition's state streamed in chunks of records.
    # A chunk is closed once it reaches this (so it may exceed it by one record); keep it under max_batch_bytes
    # so a chunk shares stream writes with other traffic (a bigger one is written alone).
    snapshot_chunk_bytes: int = 512 << 10
    snapshot_chunks_in_flight: int = 4  # unanswered chunks per transfer (flow control)
    snapshot_chunk_timeout_ms: int = 10_000  # one chunk's answer; a timeout restarts the transfer later
    snapshot_transfer_timeout_ms: int = 3_600_000  # a whole transfer (10 GB at ~3 MB/s)
    snapshot_max_transfers: int = 4  # outgoing transfers of one process at a time
    snapshot_catchup_hold_ms: int = 60_000  # after a transfer, the leader keeps the log tail the receiver needs

    def __post_init__(self) -> None:
        _check_positive(self, "limits", *(f.name for f in dataclasses.fields(self)))
        if self.max_batch_bytes >= self.max_grpc_message_bytes:
            raise _fail("limits.max_batch_bytes", self.max_batch_bytes,
                        f"must be below max_grpc_message_bytes ({self.max_grpc_message_bytes})")
        if self.snapshot_chunk_bytes + SNAPSHOT_RECORD_ROOM_BYTES > self.max_grpc_message_bytes:
            raise _fail("limits.snapshot_chunk_bytes", self.snapshot_chunk_bytes,
                        f"plus room for one more record ({SNAPSHOT_RECORD_ROOM_BYTES}) must fit in "
                        f"max_grpc_message_bytes ({self.max_grpc_message_bytes})")
        if self.snapshot_chunk_timeout_ms > self.snapshot_transfer_timeout_ms:
            raise _fail("limits.snapshot_chunk_timeout_ms", self.snapshot_chunk_timeout_ms,
                        f"must not exceed snapshot_transfer_timeout_ms ({self.snapshot_transfer_timeout_ms})")
        if self.reconnect_backoff_min_ms > self.reconnect_backoff_max_ms:
            raise _fail("limits.reconnect_backoff_min_ms", self.reconnect_backoff_min_ms,
                        f"must not exceed reconnect_backoff_max_ms ({self.reconnect_backoff_max_ms})")


@dataclass(frozen=True, slots=True)
class DebugSettings:
    """Deliberate weaknesses, to prove that the checkers catch them (``ddb chaos``). Never on by default."""

    # Storage-node leaders answer a write once it is proposed, before a quorum holds it durably: an
    # acknowledged write can then be lost when the leader dies.
    ack_before_quorum: bool = False


@dataclass(frozen=True, slots=True)
class AdminPolicy:
    """What the auto-admin and the control plane decide with: repair, splits, new tables."""

    repair_delay_s: float = 10.0  # a node silent this long is declared dead and its replicas repaired
    node_heartbeat_interval_ms: int = 500
    split_size_bytes: int = 10 * 1000**3
    split_heat_fraction: float = 0.8  # of the per-partition limit, sustained...
    split_heat_window_s: float = 30.0  # ...this long, triggers a split by heat
    partitions_per_new_table: int = 4  # spread a new table over the nodes from the start
    partition_max_rcu: int = 3000
    partition_max_wcu: int = 1000
    # Admission control: each partition replica admits requests from two token buckets (write and read
    # units) refilled at the limits above, holding at most this many seconds of unused capacity. A hard
    # per-partition limit, so about one second (DynamoDB's 300 s burst is a table-level allowance).
    partition_burst_s: float = 1.0
    # Time to live: UpdateTimeToLive is refused this long after the table's last change (DynamoDB: an hour;
    # shorten it for tests and demos). Each partition's leader looks for expired items every
    # ttl_sweep_interval_s, at most ttl_sweep_items items per partition per look, and deletes at most
    # ttl_sweep_deletes of them (DynamoDB deletes within days; here within a few sweeps).
    ttl_update_cooldown_s: float = 3600.0
    ttl_sweep_interval_s: float = 5.0
    ttl_sweep_items: int = 1000
    ttl_sweep_deletes: int = 100

    def __post_init__(self) -> None:
        _check_positive(self, "admin", *(f.name for f in dataclasses.fields(self)))
        if self.partition_burst_s > 300:
            raise _fail("admin.partition_burst_s", self.partition_burst_s,
                        "must be at most 300 (DynamoDB keeps at most 300 s of unused capacity)")
        if self.split_heat_fraction > 1:
            raise _fail("admin.split_heat_fraction", self.split_heat_fraction, "must be in (0, 1]")
        if self.node_heartbeat_interval_ms * 2 > self.repair_delay_s * 1000:
            raise _fail("admin.repair_delay_s", self.repair_delay_s,
                        f"must cover at least two node heartbeats ({self.node_heartbeat_interval_ms} ms each)")


T = TypeVar("T")


@dataclass(frozen=True)
class ClusterConfig:
    """The whole cluster. ``nodes`` is explicit so a multi-host deploy can list its own hosts."""

    data_dir: str
    nodes: tuple[NodeSpec, ...]
    azs: tuple[str, ...] = DEFAULT_AZS
    paxos: PaxosTiming = field(default_factory=PaxosTiming)
    limits: Limits = field(default_factory=Limits)
    admin: AdminPolicy = field(default_factory=AdminPolicy)
    debug: DebugSettings = field(default_factory=DebugSettings)
    fault_poll_ms: int = 100
    # Linux scheduling policy of every ddb process: "batch" (SCHED_BATCH: a thread woken by a message does
    # not preempt the one running, so a busy process finishes its turn and fewer context switches happen
    # per request; measured in docs/performance.md) or "normal" (SCHED_OTHER).
    scheduling_policy: str = "batch"
    # Python's cyclic garbage collector in every ddb process: a young-generation collection runs after this
    # many net allocations (Python's default is 700), and with ``gc_freeze_at_start`` what the process
    # allocated while starting (modules, descriptors, the config) is moved out of the collector's sight
    # once it is ready, so full collections do not walk it again and again. Worth about 4 % more puts and
    # 2 % more gets, with no more memory (docs/performance.md, eighth round).
    gc_young_allocations: int = 20_000
    gc_freeze_at_start: bool = True
    version: int = CONFIG_VERSION

    def __post_init__(self) -> None:
        if self.version != CONFIG_VERSION:
            raise _fail("version", self.version, f"this build reads config version {CONFIG_VERSION}")
        if not self.data_dir:
            raise _fail("data_dir", self.data_dir, "must not be empty")
        _check_positive(self, "config", "fault_poll_ms")
        _check_positive(self, "config", "gc_young_allocations")
        if self.scheduling_policy not in SCHEDULING_POLICIES:
            raise _fail("scheduling_policy", self.scheduling_policy, f"must be one of {list(SCHEDULING_POLICIES)}")
        if len(self.azs) < 1 or len(set(self.azs)) != len(self.azs):
            raise _fail("azs", self.azs, "must list at least one AZ, each once")
        for az in self.azs:
            if not isinstance(az, str) or not _AZ_RE.match(az):
                raise _fail("azs", self.azs, "each AZ is one lower-case letter")
        names = [n.name for n in self.nodes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise _fail("nodes", duplicates, "node names must be unique")
        endpoints: dict[tuple[str, int], str] = {}
        for node in self.nodes:
            if node.az is not None and node.az not in self.azs:
                raise _fail(f"nodes[{node.name}]", node.az, f"lives in an AZ not in azs {list(self.azs)}")
            for port in node.ports():
                other = endpoints.setdefault((node.host, port), node.name)
                if other != node.name or node.ports().count(port) > 1:
                    raise _fail(f"nodes[{node.name}]", f"{node.host}:{port}", f"port already used by {other}")
        for az in self.azs:
            if not any(n.role is Role.STORAGE and n.az == az for n in self.nodes):
                raise _fail("nodes", f"az {az}", "every AZ needs at least one storage node")
        control = [n for n in self.nodes if n.role is Role.CONTROL]
        if len(control) not in (1, 3, 5):
            raise _fail("nodes", [n.name for n in control], "the control plane needs 1, 3 or 5 replicas")
        if not any(n.role is Role.ROUTER for n in self.nodes):
            raise _fail("nodes", names, "the cluster needs at least one router")

    # -- lookups ---------------------------------------------------------------------------------------

    def node(self, name: str) -> NodeSpec:
        for node in self.nodes:
            if node.name == name:
                return node
        raise ConfigError(f"node {name!r} is not in the cluster config (known: {', '.join(self.names())})")

    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def by_role(self, role: Role) -> list[NodeSpec]:
        return [n for n in self.nodes if n.role is role]

    def az_map(self) -> dict[str, str | None]:
        return {n.name: n.az for n in self.nodes}

    @property
    def nodes_per_az(self) -> int:
        return max(sum(1 for n in self.by_role(Role.STORAGE) if n.az == az) for az in self.azs)

    @property
    def router_endpoint(self) -> str:
        router = self.by_role(Role.ROUTER)[0]
        return f"http://{'localhost' if router.host == DEFAULT_HOST else router.host}:{router.http_port}"

    # -- where things live under the data folder --------------------------------------------------------

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def config_path(self) -> Path:
        return self.data_path / CONFIG_FILE

    @property
    def faults_path(self) -> Path:
        return self.data_path / "faults.json"

    def node_dir(self, name: str) -> Path:
        """The node's own folder (its RocksDB, its Paxos log)."""
        return self.data_path / "nodes" / name

    def log_path(self, name: str) -> Path:
        return self.data_path / "logs" / f"{name}.log"

    def console_path(self, name: str) -> Path:
        """stdout and stderr of the process (tracebacks from crashes land here)."""
        return self.data_path / "logs" / f"{name}.out"

    def pid_path(self, name: str) -> Path:
        return self.data_path / "run" / f"{name}.pid"

    # -- JSON -------------------------------------------------------------------------------------------

    def to_json(self) -> bytes:
        return orjson.dumps(dataclasses.asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, raw: bytes | str) -> ClusterConfig:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"cluster config is not valid JSON: {exc}") from None
        return _build(cls, data, "config")

    def save(self, path: Path | None = None) -> Path:
        """Write atomically (temp file + rename) so a starting process never reads half a config."""
        target = path or self.config_path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(self.to_json())
        os.replace(tmp, target)
        return target

    @classmethod
    def load(cls, path: Path) -> ClusterConfig:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"no cluster config at {path} (run `ddb up` first)") from None
        return cls.from_json(raw)


def _build(cls: type[T], data: object, where: str) -> T:
    """Rebuild a (nested) config dataclass from parsed JSON, rejecting unknown and mistyped fields."""
    if not isinstance(data, Mapping):
        raise _fail(where, data, f"must be a JSON object for {cls.__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise _fail(where, unknown, f"unknown field(s) for {cls.__name__}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        kwargs[name] = _convert(hints[name], value, f"{where}.{name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)  # type: ignore[arg-type]
    if origin is tuple:
        if not isinstance(value, list):
            raise _fail(where, value, "must be a JSON list")
        (item_hint, _ellipsis) = typing.get_args(hint)
        return tuple(_convert(item_hint, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(inner, value, where)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str) and (not isinstance(value, hint) or isinstance(value, bool)):
        raise _fail(where, value, f"must be a JSON {hint.__name__}")
    return value


def default_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--data-dir`` if given, else ``$DDB_DATA_DIR``, else ``./data`` under the repository."""
    if explicit:
        return Path(explicit).resolve()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).resolve()
    return REPO_ROOT / "data"


def build_cluster_config(
    data_dir: str | os.PathLike[str],
    *,
    nodes_per_az: int = 3,
    azs: tuple[str, ...] = DEFAULT_AZS,
    routers: int = 1,
    host: str = DEFAULT_HOST,
    http_port: int = DEFAULT_HTTP_PORT,
    grpc_base_port: int = DEFAULT_GRPC_BASE_PORT,
    metrics_base_port: int = DEFAULT_METRICS_BASE_PORT,
    base_port: int | None = None,
    paxos: PaxosTiming | None = None,
    limits: Limits | None = None,
    admin: AdminPolicy | None = None,
) -> ClusterConfig:
    """The local cluster: one control-plane replica per AZ, ``nodes_per_az`` storage nodes per AZ,
    routers and one auto-admin. Node i (in the order below) gets gRPC port ``grpc_base_port + i`` and
    metrics port ``metrics_base_port + i``; router r serves HTTP on ``http_port + r``.

    ``base_port`` packs every port from there upwards instead (HTTP first, then gRPC, then metrics), for
    tests and clusters side by side."""
    if isinstance(nodes_per_az, bool) or not isinstance(nodes_per_az, int) or not 1 <= nodes_per_az <= MAX_NODES_PER_AZ:
        raise _fail("nodes_per_az", nodes_per_az, f"must be an integer in 1..{MAX_NODES_PER_AZ}")
    if not isinstance(routers, int) or not 1 <= routers <= 16:
        raise _fail("routers", routers, "must be an integer in 1..16")
    names = [f"cp-{az}" for az in azs]
    names += [f"sn-{az}{i}" for az in azs for i in range(1, nodes_per_az + 1)]
    names += [f"rr-{i}" for i in range(1, routers + 1)] + ["aa-1"]
    if base_port is not None:
        _check_port("base_port", base_port)
        _check_port("base_port (highest port)", base_port + routers + 2 * len(names))
        http_port, grpc_base_port = base_port, base_port + routers
        metrics_base_port = grpc_base_port + len(names)
    nodes = []
    for i, name in enumerate(names):
        router_index = int(name[3:]) - 1 if name.startswith("rr-") else None
        nodes.append(NodeSpec(
            name=name, host=host, grpc_port=grpc_base_port + i, metrics_port=metrics_base_port + i,
            http_port=None if router_index is None else http_port + router_index,
        ))
    return ClusterConfig(
        data_dir=str(Path(data_dir).resolve()), nodes=tuple(nodes), azs=tuple(azs),
        paxos=paxos or PaxosTiming(), limits=limits or Limits(), admin=admin or AdminPolicy(),
    )
