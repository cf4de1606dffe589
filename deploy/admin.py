"""`ddb verify` (compare every partition's replicas by checksum) and the auto-admin part of `ddb status`.

How verify compares at one point of the log: it asks each replica of a partition for ``checksum`` (an
``ADMIN`` request: the replica's applied index and an ordered hash of its items, computed in one event-loop
turn, so the two belong together). Replicas at the same applied index must have the same checksum; when
their applied indexes differ (writes in flight), it asks again until they meet or the timeout passes. A
partition under steady writes may never meet: verify then says so ("did not settle") and fails; run it on a
quiet cluster (or pause the load). No write is ever blocked by verify.

A replica that is receiving a snapshot (``receiving`` in its answer: its items are half copied, its
applied index is reset) is "catching up", never a checksum mismatch: verify waits for it like for writes in
flight. Verify fails, naming the partition, when: a replica's checksum differs at the same applied index
(among complete replicas); fewer than 3 replicas of the map answer and are complete when the wait ends (a
replica does not answer, or is still catching up); a repair is still under way; replicas never reached the
same applied index within the timeout; a replica's GSI entry list (``storagenode.entries``) disagrees with
its items (each replica audits its built lists while it computes its checksum).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import orjson

from proto.kinds import AdminOp, ControlOp, Kind, partition_group
from runtime.config import ClusterConfig, ConfigError, Role, default_data_dir
from runtime.transport import Transport, TransportError


@dataclass(slots=True)
class PartitionCheck:
    partition: int
    table: str
    replicas: list[str]
    ok: bool = False
    problem: str = ""
    applied: int = 0
    checksums: dict[str, str] = field(default_factory=dict)
    catching_up: list[str] = field(default_factory=list)  # replicas receiving a snapshot at the last look

    def to_json(self) -> dict[str, Any]:
        return {"partition": self.partition, "table": self.table, "replicas": self.replicas, "ok": self.ok,
                "problem": self.problem, "applied": self.applied, "checksums": self.checksums,
                "catching_up": self.catching_up}


async def _ask(transport: Transport, peer: str, group: str, kind: int, request: dict[str, Any],
               timeout_ms: int) -> dict[str, Any]:
    raw = await transport.call(peer, group, kind, orjson.dumps(request), timeout_ms=timeout_ms)
    answer: dict[str, Any] = orjson.loads(raw)
    return answer


async def fetch_map(transport: Transport, config: ClusterConfig, timeout_ms: int = 2_000) -> dict[str, Any]:
    errors = []
    for node in config.by_role(Role.CONTROL):
        try:
            answer = await _ask(transport, node.name, "cp", Kind.CONTROL,
                                {"op": ControlOp.GET_MAP.value, "since": -1, "wait_ms": 0}, timeout_ms)
        except (TransportError, orjson.JSONDecodeError) as exc:
            errors.append(f"{node.name}: {exc}")
            continue
        if "ok" in answer:
            partition_map: dict[str, Any] = answer["ok"]
            return partition_map
        errors.append(f"{node.name}: {answer}")
    raise click.ClickException("no control-plane node gave the partition map: " + "; ".join(errors))


async def check_partition(transport: Transport, pid: int, part: dict[str, Any], table: str,
                          timeout_s: float, interval_s: float = 0.1) -> PartitionCheck:
    replicas = list(part["replicas"])
    check = PartitionCheck(pid, table, replicas)
    if part.get("joining"):
        check.problem = f"repair under way: {part['joining']} replacing {part.get('replacing')}"
        return check
    if len(replicas) < 3:
        check.problem = f"only {len(replicas)} replicas in the map"
        return check
    group = partition_group(pid)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        answers = await asyncio.gather(*(_ask(transport, r, group, Kind.ADMIN, {"op": AdminOp.CHECKSUM.value},
                                              2_000) for r in replicas), return_exceptions=True)
        missing = [f"{r} ({a})" if isinstance(a, BaseException) else f"{r} ({a.get('error')})"
                   for r, a in zip(replicas, answers, strict=True)
                   if isinstance(a, BaseException) or "ok" not in a]
        check.catching_up = [r for r, a in zip(replicas, answers, strict=True)
                             if isinstance(a, dict) and (a.get("ok") or {}).get("receiving")]
        if missing or check.catching_up:
            # A replica mid-transfer is not compared: its checksum is of half a state.
            parts = [f"no answer from {', '.join(missing)}"] if missing else []
            parts += [f"{r} catching up (receiving a snapshot)" for r in check.catching_up]
            check.checksums = {}
            check.problem = "fewer than 3 live, complete replicas: " + "; ".join(parts)
        else:
            results = {r: a["ok"] for r, a in zip(replicas, answers, strict=True) if isinstance(a, dict)}
            applied = {r["applied"] for r in results.values()}
            check.checksums = {r: res["checksum"] for r, res in results.items()}
            wrong = [f"{name} on {r}" for r, res in sorted(results.items())
                     for name in (res.get("entry_lists") or {}).get("wrong", ())]
            if len(applied) == 1:
                check.applied = applied.pop()
                if len(set(check.checksums.values())) != 1:
                    check.problem = f"checksums differ at applied index {check.applied}"
                elif wrong:
                    check.problem = "GSI entry lists disagree with their replica's items: " + ", ".join(wrong)
                else:
                    check.ok, check.problem = True, ""
                return check
            check.problem = "replicas did not settle at one applied index: " + ", ".join(
                f"{r}@{res['applied']}" for r, res in sorted(results.items()))
        if loop.time() >= deadline:
            return check
        await asyncio.sleep(interval_s)


async def verify_cluster(config: ClusterConfig, timeout_s: float) -> list[PartitionCheck]:
    peers = {n.name: n.grpc_address for n in config.nodes}
    transport = Transport(f"verify-{os.getpid()}", peers, config.limits)
    try:
        partition_map = await fetch_map(transport, config)
        names = {t["table_id"]: name for name, t in partition_map.get("tables", {}).items()}
        parts = sorted((int(pid), p) for pid, p in partition_map.get("partitions", {}).items())
        return list(await asyncio.gather(*(check_partition(transport, pid, p, names.get(p["table_id"], ""),
                                                           timeout_s) for pid, p in parts)))
    finally:
        await transport.close()


@click.command()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data folder [default: $DDB_DATA_DIR or ./data in the repository]")
@click.option("--timeout", "timeout_s", type=float, default=10.0, show_default=True,
              help="Seconds to wait for a partition's replicas to reach one applied index")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON")
def verify(data_dir: Path | None, timeout_s: float, as_json: bool) -> None:
    """Compare the replicas of every partition by checksum; exit 1 naming any partition that differs or
    has fewer than 3 live replicas."""
    try:
        config = ClusterConfig.load(default_data_dir(data_dir) / "cluster.json")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    checks = asyncio.run(verify_cluster(config, timeout_s))
    bad = [c for c in checks if not c.ok]
    if as_json:
        click.echo(orjson.dumps({"ok": not bad, "partitions": [c.to_json() for c in checks]},
                                option=orjson.OPT_INDENT_2).decode())
    else:
        for c in checks:
            state = "ok" if c.ok else f"FAILED: {c.problem}"
            click.echo(f"p{c.partition:<5} {c.table:<20} {' '.join(c.replicas):<20} applied {c.applied:<8} {state}")
        click.echo(f"{len(checks) - len(bad)}/{len(checks)} partitions verified"
                   + (f"; failed: {', '.join(f'p{c.partition}' for c in bad)}" if bad else ""))
    if bad:
        raise SystemExit(1)


# ---- `ddb status`: repairs and splits -----------------------------------------------------------------


def admin_status(reports: list[Any]) -> dict[str, Any]:
    """Repairs in progress and recent history, from the control-plane leader's report (its ``detail``)."""
    for report in reports:
        detail = report.detail or {}
        if report.role == "control" and detail.get("cp_leader") == report.name and "admin" in detail:
            admin: dict[str, Any] = detail["admin"]
            return admin
    return {}


def admin_lines(admin: dict[str, Any]) -> list[str]:
    if not admin:
        return ["auto-admin: no control-plane leader answered"]
    lines = [f"auto-admin lease: {admin.get('lease_holder') or 'none'}"]
    repairs = admin.get("repairs") or []
    lines.append("repairs in progress: " + (", ".join(f"p{r['partition']} {r['old']} -> {r['new']}"
                                                     for r in repairs) or "none"))
    splits = admin.get("splits") or []
    lines.append("splits in progress: " + (", ".join(f"p{x['partition']} at {x['mid']} -> p{x['left']} p{x['right']}"
                                                    for x in splits) or "none"))
    history = admin.get("history") or []
    if history:
        lines.append("recent repairs and splits:")
        for event in history[-10:]:
            if event.get("kind") == "wiped":
                lost = " ".join(f"p{pid}" for pid in event.get("lost") or ()) or "none"
                lines.append(f"  wiped disk on {event.get('node')}: replicas lost {lost} at {event.get('at')}")
                continue
            reason = f" ({event['reason']})" if event.get("reason") else ""
            lines.append(f"  {event.get('kind')}{reason} p{event.get('partition')} {event.get('old', '')} -> "
                         f"{event.get('new', '')} {event.get('state')} at {event.get('at')}")
    return lines
