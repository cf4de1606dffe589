"""A run's figures as JSON (the record) and as tables (the JSON rendered); the comparison of several runs."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from deploy.bench.histogram import Summary, new_histogram
from deploy.bench.runner import RunResult


@dataclass(frozen=True, slots=True)
class RunInfo:
    target: str
    endpoint: str
    workload: str
    title: str
    client: str
    clients: int
    records: int
    consistent: bool
    value_bytes: int
    item_bytes: int
    load_s: float | None = None
    loaded: int = 0


def server_json(server_cpu_s: dict[str, float] | None, elapsed_s: float, operations: int) -> dict[str, Any] | None:
    """The server's CPU over the run (``deploy.bench.server_cpu``), in total and by process."""
    if not server_cpu_s:
        return None
    total = sum(server_cpu_s.values())
    return {"processes": len(server_cpu_s), "cpu_s": round(total, 3), "cores": round(total / elapsed_s, 2),
            "us_per_op": round(1e6 * total / max(1, operations), 1),
            "by_process_cpu_s": {name: round(seconds, 3) for name, seconds in sorted(server_cpu_s.items())}}


def to_json(info: RunInfo, result: RunResult, server_cpu_s: dict[str, float] | None = None) -> dict[str, Any]:
    """``server_cpu_s``: CPU seconds by server process over the run, if they could be read."""
    recorder = result.recorder
    elapsed = max(result.elapsed_s, 1e-9)
    total = new_histogram(3)
    by_op: dict[str, Any] = {}
    for op, histogram in recorder.by_op.items():
        total.add(histogram)
        failed = sum(n for (o, _), n in recorder.errors.items() if o is op)
        by_op[op.value] = {**Summary.of(histogram).to_json(), "errors": failed,
                           "ops_per_s": round(histogram.get_total_count() / elapsed, 1)}
    timeline = []
    for index, second in enumerate(recorder.seconds):
        summary = Summary.of(second.histogram)
        timeline.append({"second": index + 1, "ops": second.ok, "errors": second.errors,
                         "p50_ms": round(summary.p50_ms, 3), "p99_ms": round(summary.p99_ms, 3),
                         "partial": index + 1 > elapsed})
    load = None
    if info.load_s is not None:
        load = {"records": info.loaded, "seconds": round(info.load_s, 2),
                "items_per_s": round(info.loaded / info.load_s, 1) if info.load_s > 0 else None}
    return {
        "target": info.target, "endpoint": info.endpoint, "workload": info.workload, "title": info.title,
        "client": info.client, "clients": info.clients, "records": info.records, "consistent": info.consistent,
        "value_bytes": info.value_bytes, "item_bytes": info.item_bytes, "load": load,
        "elapsed_s": round(result.elapsed_s, 3), "ops": recorder.ok, "errors": recorder.failed,
        "cancelled": result.cancelled, "ops_per_s": round(recorder.ok / elapsed, 1),
        "client_cpu_percent": round(100.0 * result.client_cpu_s / elapsed, 1),
        "client_cpu_us_per_op": round(1e6 * result.client_cpu_s / max(1, recorder.ok + recorder.failed), 1),
        "server_cpu": server_json(server_cpu_s, elapsed, recorder.ok + recorder.failed),
        "latency": Summary.of(total).to_json(), "by_op": by_op,
        "errors_by_type": {f"{op.value} {name}": n for (op, name), n in sorted(
            recorder.errors.items(), key=lambda kv: -kv[1])},
        "timeline": timeline,
    }


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def render(console: Console, report: dict[str, Any], timeline: bool = True) -> None:
    """Print one run: the setup line, latency by operation, errors, and the per-second timeline."""
    read_mode = "strongly consistent" if report["consistent"] else "eventually consistent"
    console.print(f"[bold]{report['title']}[/] against [bold]{report['target']}[/] ({report['endpoint']}): "
                  f"{report['clients']} clients ({report['client']}), {report['records']:,} records of "
                  f"~{report['item_bytes']} B, {read_mode} reads")
    if report["load"]:
        load = report["load"]
        rate = f", {load['items_per_s']:,.0f} items/s" if load["items_per_s"] else ""
        console.print(f"loaded {load['records']:,} records in {load['seconds']:.1f} s{rate}")
    table = Table(title_justify="left", show_edge=False)
    for column in ("operation", "ops", "ops/s", "mean ms", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms",
                   "errors"):
        table.add_column(column, justify="left" if column == "operation" else "right")
    rows = [(name, figures) for name, figures in report["by_op"].items()]
    if len(rows) > 1:
        rows.append(("all", {**report["latency"], "ops_per_s": report["ops_per_s"], "errors": report["errors"]}))
    for name, figures in rows:
        table.add_row(name, f"{figures['count']:,}", f"{figures['ops_per_s']:,.0f}", _ms(figures["mean_ms"]),
                      _ms(figures["p50_ms"]), _ms(figures["p95_ms"]), _ms(figures["p99_ms"]),
                      _ms(figures["p99.9_ms"]), _ms(figures["max_ms"]), f"{figures['errors']:,}")
    console.print(table)
    console.print(f"[bold]{report['ops_per_s']:,.0f} ops/s[/] over {report['elapsed_s']:.1f} s, "
                  f"p50 {_ms(report['latency']['p50_ms'])} ms, p99 {_ms(report['latency']['p99_ms'])} ms, "
                  f"p99.9 {_ms(report['latency']['p99.9_ms'])} ms, {report['errors']:,} errors"
                  + (f", {report['cancelled']} operations cancelled at the end" if report["cancelled"] else ""))
    console.print(f"client: {report['client_cpu_percent']:.0f} % of a core, "
                  f"{report['client_cpu_us_per_op']:.0f} µs of CPU per operation"
                  + (" [yellow](near a full core: the client may be the bottleneck)[/]"
                     if report["client_cpu_percent"] > 85 else ""))
    server = report.get("server_cpu")
    if server:
        console.print(f"server: {server['processes']} process{'es' if server['processes'] > 1 else ''}, "
                      f"{server['cores']:.2f} cores, {server['us_per_op']:,.0f} µs of CPU per operation")
    if report["errors_by_type"]:
        console.print("errors: " + ", ".join(f"{name} x{n:,}" for name, n in report["errors_by_type"].items()))
    if timeline and report["timeline"]:
        seconds = Table(title="per second", title_justify="left", show_edge=False)
        for column in ("s", "ops/s", "p50 ms", "p99 ms", "errors"):
            seconds.add_column(column, justify="right")
        for entry in report["timeline"]:
            seconds.add_row(f"{entry['second']}" + ("*" if entry["partial"] else ""), f"{entry['ops']:,}",
                            _ms(entry["p50_ms"]), _ms(entry["p99_ms"]), f"{entry['errors']:,}")
        console.print(seconds)


def render_comparison(console: Console, reports: list[dict[str, Any]]) -> None:
    """ops/s and p50/p99 of each target, and the first target's ratio to each of the others."""
    if not reports:
        return
    base = reports[0]
    table = Table(title=f"{base['title']}, {base['clients']} clients", title_justify="left", show_edge=False)
    for column in ("target", "ops/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "server µs/op",
                   f"{base['target']} ÷ target ops/s", f"{base['target']} ÷ target p99"):
        table.add_column(column, justify="left" if column == "target" else "right")
    for report in reports:
        latency = report["latency"]
        # A target that completed nothing (every request failed) has no ratio: "-", not "nanx".
        throughput_ratio = (f"{base['ops_per_s'] / report['ops_per_s']:.2f}x{_slice_ratio_range(base, report)}"
                            if report["ops_per_s"] else "-")
        p99_ratio = f"{base['latency']['p99_ms'] / latency['p99_ms']:.2f}x" if latency["p99_ms"] else "-"
        table.add_row(report["target"], f"{report['ops_per_s']:,.0f}", _ms(latency["p50_ms"]),
                      _ms(latency["p99_ms"]), _ms(latency["p99.9_ms"]), f"{report['errors']:,}",
                      f"{report['server_cpu']['us_per_op']:,.0f}" if report.get("server_cpu") else "-",
                      throughput_ratio, p99_ratio)
    console.print(table)
    if any("slices" in report for report in reports):
        console.print(f"interleaved: {len(base['slices'])} turns each; in brackets the lowest, highest and median "
                      "ratio of the same turn's ops/s")


def _slice_ratio_range(base: dict[str, Any], report: dict[str, Any]) -> str:
    """' (lo–hi, median m)': the spread and the median of the per-turn throughput ratios of an interleaved
    comparison, else ''. The median is the figure a slow or fast moment of the machine moves least."""
    if report is base or "slices" not in base or "slices" not in report:
        return ""
    ratios = [b["ops_per_s"] / r["ops_per_s"] for b, r in zip(base["slices"], report["slices"], strict=False)
              if r["ops_per_s"]]
    if not ratios:
        return ""
    return f" ({min(ratios):.2f}–{max(ratios):.2f}, median {statistics.median(ratios):.2f})"
