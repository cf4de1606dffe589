"""What a chaos run tells people: ``report.txt`` (the summary and the verdict) and ``timeline.html`` (one
self-contained page: throughput and latency over time as inline SVG, with the fault windows drawn on)."""

from __future__ import annotations

import html
import math
from collections import Counter
from pathlib import Path

import orjson

from deploy.chaos.checker import FINAL_CLIENT
from deploy.chaos.history import Op, Outcome
from deploy.chaos.runner import FinalVerdict, RunResult
from deploy.chaos.schedule import FaultKind

FAULT_COLORS = {FaultKind.KILL: "#e4572e", FaultKind.PAUSE: "#f3a712", FaultKind.PARTITION: "#7b2cbf",
                FaultKind.SLOW: "#29a3a3", FaultKind.WIPE: "#8c564b"}
OUTCOME_COLORS = {Outcome.OK: "#2a9d3f", Outcome.FAIL: "#f08c00", Outcome.INFO: "#d62828"}
MAX_VIOLATIONS_LISTED = 20


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def _counts_line(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counter.most_common()) or "none"


def _window_stats(ops: list[Op]) -> str:
    if not ops:
        return "no operations started"
    counts = Counter(o.outcome.value for o in ops)
    latencies = sorted(o.latency_ms for o in ops if o.outcome is Outcome.OK)
    tail = f", ok p99 {percentile(latencies, 0.99):.0f} ms" if latencies else ""
    return f"{len(ops)} ops started ({_counts_line(counts)}){tail}"


def text_report(result: RunResult) -> str:
    cfg = result.config
    ops = result.history.ops
    workers = [o for o in ops if o.client != FINAL_CLIENT]
    finals = [o for o in ops if o.client == FINAL_CLIENT]
    lines = [
        "ddb chaos report",
        "================",
        f"seed {cfg.seed} | workload {cfg.workload} | duration {cfg.duration_s:g} s | {cfg.clients} clients | "
        f"faults {','.join(f.value for f in cfg.faults) or 'none'}",
        f"endpoint {result.endpoint} | table {cfg.table} | keys {result.run_tag}-* | wall time {result.wall_time_s:.1f} s",
        "",
        f"VERDICT: {result.verdict.value}",
    ]
    lines += [f"  - {r}" for r in result.reasons]
    lines += ["", f"fault schedule (seed {cfg.seed}: the same seed gives the same schedule):"]
    if not result.faults:
        lines.append("  (no faults)")
    for record in result.faults:
        lines.append(f"  {record.window.describe()}")
        when = (f"began t={record.began_s:.1f}s" if record.began_s is not None else "never began") + (
            f", ended t={record.ended_s:.1f}s" if record.ended_s is not None else "")
        lines.append(f"      {when}: " + " / ".join(record.notes))
        if record.began_s is not None:
            inside = [o for o in workers if record.began_s <= o.start_s < (record.ended_s or math.inf)]
            lines.append(f"      during it: {_window_stats(inside)}")
    if result.healed_at_s is not None:
        lines.append(f"healed at t={result.healed_at_s:.1f}s: " + ("; ".join(result.heal_notes) or "nothing to heal"))
        lines.append("recovered " + (f"{result.recovered_after_s:.1f} s after healing" if result.recovered_after_s
                                     is not None else "NOT AT ALL"))
    outcomes = Counter(o.outcome.value for o in workers)
    lines += ["", f"operations: {len(workers)} by the clients ({_counts_line(outcomes)}), "
                  f"{len(finals)} final reads ({sum(o.outcome is Outcome.OK for o in finals)} ok)"]
    by_kind: dict[str, Counter[str]] = {}
    for o in workers:
        by_kind.setdefault(o.kind.value, Counter())[o.outcome.value] += 1
    for kind, counter in sorted(by_kind.items()):
        lines.append(f"  {kind:<9} {_counts_line(counter)}")
    errors = Counter(o.error for o in workers if o.error)
    lines.append(f"  errors by type: {_counts_line(Counter({str(k): v for k, v in errors.items()}))}")
    span = max((o.end_s for o in workers), default=0.0)
    if span > 0:
        ok_count = outcomes.get(Outcome.OK.value, 0)
        lines.append(f"  throughput: {len(workers) / span:.1f} ops/s ({ok_count / span:.1f} ok/s) over {span:.1f} s")
    latencies = sorted(o.latency_ms for o in workers if o.outcome is Outcome.OK)
    if latencies:
        lines.append(f"  latency of ok ops: p50 {percentile(latencies, 0.5):.1f} ms, p99 "
                     f"{percentile(latencies, 0.99):.1f} ms, max {latencies[-1]:.1f} ms")
    lines.append("")
    if result.check is not None:
        lines.append(result.check.summary())
        ordered = sorted(result.check.violations, key=lambda v: v.time_s)
        if len(ordered) > 1:
            lines.append("violations (by time):")
            lines += ["  " + v.describe().replace("\n", "\n  ") for v in ordered[:MAX_VIOLATIONS_LISTED]]
            if len(ordered) > MAX_VIOLATIONS_LISTED:
                lines.append(f"  ... and {len(ordered) - MAX_VIOLATIONS_LISTED} more")
    else:
        lines.append("checker: not run")
    passed, what = result.replicas
    verdict = {True: "converged", False: "NOT CONVERGED", None: "not checked"}[passed]
    lines.append(f"replicas after healing: {verdict} ({what})")
    passed, what = result.stream
    if passed is not None or cfg.workload == "append":
        verdict = {True: "agrees", False: "DISAGREES", None: "not checked"}[passed]
        lines.append(f"stream after healing: {verdict} ({what})")
    lines += ["", f"rerun: {cfg.rerun_command()}"]
    return "\n".join(lines) + "\n"


# -- timeline ----------------------------------------------------------------------------------------------

WIDTH, PANEL_H, LEFT, RIGHT, TOP, GAP = 1100, 200, 60, 20, 30, 50


def _buckets(span_s: float) -> tuple[float, int]:
    bucket_s = max(1.0, span_s / 300.0)
    return bucket_s, max(1, math.ceil(span_s / bucket_s))


def timeline_html(result: RunResult) -> str:
    ops = [o for o in result.history.ops if o.client != FINAL_CLIENT]
    span_s = max([o.end_s for o in ops] + [result.config.duration_s, result.healed_at_s or 0.0, 1.0])
    bucket_s, n = _buckets(span_s)
    span_s = n * bucket_s
    counts = {outcome: [0] * n for outcome in Outcome}
    latencies: list[list[float]] = [[] for _ in range(n)]
    for o in ops:
        i = min(n - 1, int(o.end_s / bucket_s))
        counts[o.outcome][i] += 1
        if o.outcome is Outcome.OK:
            latencies[i].append(o.latency_ms)
    plot_w = WIDTH - LEFT - RIGHT

    def x(t: float) -> float:
        return LEFT + plot_w * t / span_s

    height = TOP + 2 * PANEL_H + GAP + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" '
             f'font-size="11">']
    panels = [(TOP, "throughput (ops/s)"), (TOP + PANEL_H + GAP, "latency of ok ops (ms, log scale)")]
    for record in result.faults:
        if record.began_s is None:
            continue
        end = record.ended_s if record.ended_s is not None else span_s
        color = FAULT_COLORS[record.window.kind]
        for y0, _ in panels:
            parts.append(f'<rect x="{x(record.began_s):.1f}" y="{y0}" width="{max(1.0, x(end) - x(record.began_s)):.1f}" '
                         f'height="{PANEL_H}" fill="{color}" opacity="0.15"/>')
        parts.append(f'<text x="{x(record.began_s) + 2:.1f}" y="{TOP - 4 if record.window.index % 2 else TOP - 16}" '
                     f'fill="{color}">{html.escape(record.window.label())}</text>')
    if result.healed_at_s is not None:
        hx = x(result.healed_at_s)
        parts.append(f'<line x1="{hx:.1f}" x2="{hx:.1f}" y1="{TOP}" y2="{TOP + 2 * PANEL_H + GAP}" stroke="#333" '
                     f'stroke-dasharray="4 3"/><text x="{hx + 3:.1f}" y="{TOP + 12}">healed</text>')
    for y0, title in panels:
        parts.append(f'<rect x="{LEFT}" y="{y0}" width="{plot_w}" height="{PANEL_H}" fill="none" stroke="#999"/>')
        parts.append(f'<text x="{LEFT}" y="{y0 + PANEL_H + 14}">0 s</text><text x="{WIDTH - RIGHT - 40}" '
                     f'y="{y0 + PANEL_H + 14}">{span_s:.0f} s</text><text x="{LEFT + 4}" y="{y0 + 12}" '
                     f'font-weight="bold">{title}</text>')
    # Throughput: one line per outcome.
    y0 = panels[0][0]
    peak = max([max(c) for c in counts.values()] + [1]) / bucket_s
    parts.append(f'<text x="4" y="{y0 + 10}">{peak:.0f}/s</text><text x="4" y="{y0 + PANEL_H}">0</text>')
    for outcome, series in counts.items():
        points = " ".join(f"{x((i + 0.5) * bucket_s):.1f},{y0 + PANEL_H - PANEL_H * c / bucket_s / peak:.1f}"
                          for i, c in enumerate(series))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{OUTCOME_COLORS[outcome]}" stroke-width="1.5"/>')
    # Latency: p50 and p99 per bucket on a log scale.
    y1 = panels[1][0]
    all_lat = [v for b in latencies for v in b]
    top_ms = max(all_lat + [10.0])
    low_ms = 0.5
    def ly(ms: float) -> float:
        frac = (math.log10(max(ms, low_ms)) - math.log10(low_ms)) / (math.log10(top_ms) - math.log10(low_ms))
        return y1 + PANEL_H - PANEL_H * frac
    parts.append(f'<text x="4" y="{y1 + 10}">{top_ms:.0f} ms</text><text x="4" y="{y1 + PANEL_H}">{low_ms} ms</text>')
    for fraction, color in ((0.5, "#1d4ed8"), (0.99, "#9333ea")):
        points = " ".join(f"{x((i + 0.5) * bucket_s):.1f},{ly(percentile(sorted(b), fraction)):.1f}"
                          for i, b in enumerate(latencies) if b)
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.5"/>')
    legend_y = TOP + 2 * PANEL_H + GAP + 30
    legend = [(OUTCOME_COLORS[Outcome.OK], "ok/s"), (OUTCOME_COLORS[Outcome.FAIL], "fail/s"),
              (OUTCOME_COLORS[Outcome.INFO], "indeterminate/s"), ("#1d4ed8", "p50"), ("#9333ea", "p99")]
    legend += [(c, k.value) for k, c in FAULT_COLORS.items()]
    for i, (color, name) in enumerate(legend):
        lx = LEFT + i * 100
        parts.append(f'<rect x="{lx}" y="{legend_y - 9}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{lx + 14}" y="{legend_y}">{html.escape(name)}</text>')
    parts.append("</svg>")
    verdict_color = "#2a9d3f" if result.verdict is FinalVerdict.PASS else "#d62828"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>ddb chaos seed {result.config.seed}</title>"
            f"</head><body style='font-family:sans-serif'><h2>ddb chaos: seed {result.config.seed}, "
            f"{html.escape(result.config.workload)} - <span style='color:{verdict_color}'>{result.verdict.value}</span>"
            f"</h2>{''.join(parts)}<pre>{html.escape(text_report(result))}</pre></body></html>\n")


def write_report(result: RunResult, out_dir: Path) -> str:
    """Write report.txt, timeline.html and summary.json into out_dir; return the text report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = text_report(result)
    (out_dir / "report.txt").write_text(text)
    (out_dir / "timeline.html").write_text(timeline_html(result))
    first = result.check.first_violation if result.check else None
    summary = {"seed": result.config.seed, "workload": result.config.workload, "verdict": result.verdict.value,
               "reasons": result.reasons, "operations": len(result.history),
               "first_violation": first.describe() if first else None, "rerun": result.config.rerun_command()}
    (out_dir / "summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    return text
