"""The load bench's figures and its printed table (bench/load/run.py): per phase and endpoint the
target and achieved rate, p50/p99/max from the scheduled send time, errors by status, and the
verdict against reliability.md T4; ratios to the empty-app baseline; wrk capacity; resources."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

# T4: (p99 bound in ms, whether any error fails it too)
T4 = {"health": (50.0, True), "list": (250.0, False), "write": (500.0, False)}
LABELS = {
    "health": "GET /health",
    "list": "GET /market/bars limit=50 (auth)",
    "online": "GET /feature-views/../online",
    "predict": "POST /models/../predict",
    "write": "POST /market/bars (1 new bar)",
}
RSS_GROWTH_MAX, FD_DRIFT_MAX = 0.10, 0.05  # T4 soak
SOAK_WARMUP_S = 60.0


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q% of the values at or below it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Phase:
    name: str  # baseline | alone | mixed | soak
    duration_s: float
    rates: dict[str, float]  # kind -> requests a second scheduled
    results: dict[str, list]  # kind -> [[offset s, latency ms, status, send lag ms], ...]
    resources: list[tuple[float, float, int, int]] = field(default_factory=list)
    cpu_s: float = 0.0  # CPU time of the server's processes during the phase

    def latencies(self, kind: str) -> list[float]:
        return [s[1] for s in self.results[kind]]

    def lags(self) -> list[float]:
        return [s[3] for samples in self.results.values() for s in samples]


@dataclass
class Row:
    phase: str
    kind: str
    rate: float
    achieved: float
    p50: float
    p99: float
    worst: float
    errors: Counter
    count: int
    cpu: str  # the server's CPU during the phase: % of one core (and ms per request when alone)

    @property
    def verdict(self) -> str:
        if self.kind not in T4:
            return ""
        bound, strict = T4[self.kind]
        ok = self.p99 < bound and not (strict and self.errors)
        rule = f"p99<{bound:g}" + (" & 0 err" if strict else "")
        return f"{rule}: {'PASS' if ok else 'MISS'}"


def rows(phase: Phase, expected: dict[str, int]) -> list[Row]:
    out = []
    for kind, samples in phase.results.items():
        latencies = [s[1] for s in samples]
        errors = Counter(s[2] for s in samples if s[2] != expected.get(kind, 200))
        answered = sum(1 for s in samples if s[2])
        cpu = f"{100 * phase.cpu_s / phase.duration_s:.0f}%"
        if len(phase.results) == 1 and samples:
            cpu += f" {1000 * phase.cpu_s / len(samples):.1f}ms/r"
        out.append(Row(phase.name, kind, phase.rates[kind], answered / phase.duration_s,
                       percentile(latencies, 50), percentile(latencies, 99),
                       max(latencies, default=math.nan), errors, len(samples), cpu))  # fmt: skip
    return out


def parse_wrk(text: str) -> dict[str, float]:
    """Requests/sec and the 50%/99% latency lines of `wrk --latency`, in ms."""
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}

    def latency(label: str) -> float:
        match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        return float(match[1]) * units[match[2]] if match else math.nan

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    return {
        "rps": float(rps[1]) if rps else math.nan,
        "p50": latency("50%"),
        "p99": latency("99%"),
        "non_2xx": float(non_2xx[1]) if non_2xx else 0.0,
        "socket_errors": float(bool(errors)),
    }


def _errors(counter: Counter) -> str:
    if not counter:
        return "0"
    return ", ".join(f"{'no answer' if s == 0 else s} x{n}" for s, n in sorted(counter.items()))


def _row_line(row: Row, label: str) -> str:
    return (f"  {row.phase:<8} {label:<34} {row.rate:5.1f}/s {row.achieved:7.1f}/s "
            f"{row.p50:8.2f} {row.p99:8.2f} {row.worst:8.1f}  {_errors(row.errors):<14} "
            f"{row.cpu:<13} {row.verdict}")  # fmt: skip


def _resources(phase: Phase, pool_bound: int) -> list[str]:
    if not phase.resources:
        return [f"  {phase.name}: no resource samples (shorter than one sampling interval)"]
    first, last = phase.resources[0], phase.resources[-1]
    peak_pg = max(r[3] for r in phase.resources)
    return [
        f"  {phase.name}: server RSS (all processes) {first[1]:.0f} -> {last[1]:.0f} MB, "
        f"open FDs (not the load's connections) {first[2]} -> {last[2]}, "
        f"PostgreSQL connections max {peak_pg} "
        f"(pool bound {pool_bound}: {'PASS' if peak_pg <= pool_bound else 'MISS'})"
    ]


def _soak(phase: Phase, pool_bound: int) -> list[str]:
    """T4's soak criteria, from the first sample after SOAK_WARMUP_S (or 20% of the run)."""
    warm_after = min(SOAK_WARMUP_S, 0.2 * phase.duration_s)
    warm = [r for r in phase.resources if r[0] >= warm_after]
    if len(warm) < 2:
        return ["  soak: too short for a verdict (fewer than two samples after warm-up)"]
    rss0, fd0 = warm[0][1], warm[0][2]
    growth = warm[-1][1] / rss0 - 1
    # A leak grows to the end; the peak shows pools (Redis, PostgreSQL) filling under bursts.
    drift = (warm[-1][2] - fd0) / fd0
    peak = max(abs(r[2] - fd0) for r in warm) / fd0
    peak_pg = max(r[3] for r in phase.resources)
    fives = sum(1 for samples in phase.results.values() for s in samples if s[2] >= 500)
    lost = sum(1 for samples in phase.results.values() for s in samples if not s[2])
    answered = sum(1 for samples in phase.results.values() for s in samples if s[2])

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    return [
        f"  soak {phase.duration_s / 60:g} min, warm-up {warm_after:.0f} s: RSS {rss0:.0f} -> "
        f"{warm[-1][1]:.0f} MB ({growth:+.1%}; < {RSS_GROWTH_MAX:.0%}: "
        f"{verdict(growth < RSS_GROWTH_MAX)})",
        f"  soak: open FDs (not the load's connections) {fd0} -> {warm[-1][2]} "
        f"({drift:+.1%} at the end, within {FD_DRIFT_MAX:.0%}: "
        f"{verdict(abs(drift) <= FD_DRIFT_MAX)}; largest deviation meanwhile {peak:.1%})",
        f"  soak: PostgreSQL connections max {peak_pg} (<= pool bound {pool_bound}: "
        f"{verdict(peak_pg <= pool_bound)}); 5xx {fives} and unanswered {lost} of "
        f"{answered + lost} ({verdict(fives == lost == 0)})",
    ]  # fmt: skip


def _wrk_line(name: str, figures: dict[str, float] | str) -> str:
    if isinstance(figures, str):
        return f"  {name}: {figures}"
    return (f"  {name:<22} {figures['rps']:9.0f} req/s  p50 {figures['p50']:6.2f} ms  "
            f"p99 {figures['p99']:6.2f} ms  non-2xx {figures['non_2xx']:.0f}")  # fmt: skip


def render(
    *,
    base: Phase,
    measured: list[Phase],
    wrk_empty: dict[str, float] | str,
    wrk_app: dict[str, float] | str,
    soak: Phase | None,
    header: str,
    expected: dict[str, int],
    pool_bound: int,
    mix_scale: float,
    server_cpus: int,
) -> str:
    lines = [header, "  latency from the scheduled send time (open loop), in ms; server CPU: "
             "% of one core (per request when alone)",
             f"  {'phase':<8} {'endpoint':<34} {'target':>7} {'achieved':>9} {'p50':>8} "
             f"{'p99':>8} {'max':>8}  {'errors':<14} {'server CPU':<13} T4"]  # fmt: skip
    base_row = rows(base, expected)[0]
    lines.append(_row_line(base_row, "GET /health (empty ASGI app)").rstrip())
    by_phase: dict[tuple[str, str], Row] = {}
    for phase in [*measured, *([soak] if soak else [])]:
        for row in rows(phase, expected):
            by_phase[(row.phase, row.kind)] = row
            lines.append(_row_line(row, LABELS[row.kind]).rstrip())
    alone = [p for p in measured if p.name == "alone"]
    need = sum(p.cpu_s / p.duration_s for p in alone)
    lines.append(
        f"  mixed = every endpoint at once, each rate x{mix_scale:.2f}: the full mix "
        f"({sum(r for p in alone for r in p.rates.values()):.0f}/s) takes {need:.2f} CPUs of "
        f"the server by the alone phases' CPU, which has {server_cpus}"
    )
    lines.append("  ratios to the baseline (tradingsite /health over the empty app, same server):")
    for name in ("alone", "mixed"):
        if (row := by_phase.get((name, "health"))) is not None:
            lines.append(f"    {name}: p50 {row.p50 / base_row.p50:.2f}x, "
                         f"p99 {row.p99 / base_row.p99:.2f}x")  # fmt: skip
    lags = [lag for phase in [base, *measured] for lag in phase.lags()]
    lines.append(f"  generator send lag (a late send counts in the latency): "
                 f"p99 {percentile(lags, 99):.2f} ms, max {max(lags):.1f} ms")  # fmt: skip
    lines.append("  capacity, wrk -t1 -c32 -d10s --latency (closed loop):")
    lines += [
        _wrk_line("empty ASGI app /health", wrk_empty),
        _wrk_line("tradingsite /health", wrk_app),
    ]
    if isinstance(wrk_empty, dict) and isinstance(wrk_app, dict):
        lines.append(f"    tradingsite/empty: {wrk_app['rps'] / wrk_empty['rps']:.2f}x the req/s")
    lines.append("  resources:")
    for phase in measured:
        if phase.resources:
            lines += _resources(phase, pool_bound)
    if soak is not None:
        lines += _soak(soak, pool_bound)
    return "\n".join(lines)
