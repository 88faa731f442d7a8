"""Registry figures for the dashboards: pure functions of plain rows (no Django)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import plotly.graph_objects as go

from tradingsite.dashboard.figures import (
    BLUE,
    INK,
    ORANGE,
    PINK,
    VERMILLION,
    base_layout,
    empty_figure,
    figure,
    series_color,
    trace,
)

STAGE_COLORS = {"Production": BLUE, "Staging": ORANGE, "None": "#c3cad2", "Archived": "#e4e7eb"}
# Each outcome its colour and its shape (readable without colour).
OUTCOME_STYLE = {
    "applied": (INK, "circle"),
    "overridden": (PINK, "diamond"),
    "refused": (VERMILLION, "x"),
    "conflict": (ORANGE, "triangle-up"),
}
APPLIED = ("applied", "overridden")


def stage_periods(
    transitions: Sequence[Mapping[str, Any]], *, now: datetime
) -> list[dict[str, Any]]:
    """Which stage each version was in, when: {"version", "stage", "start", "end"} from the
    applied transitions (oldest first). A version's time before its first transition is not
    drawn (its registration is not a transition)."""
    current: dict[int, tuple[str, datetime]] = {}
    periods = []
    for t in sorted(transitions, key=lambda t: t["at"]):
        if t["outcome"] not in APPLIED:
            continue
        if t["version"] in current:
            stage, start = current[t["version"]]
            periods.append(
                {"version": t["version"], "stage": stage, "start": start, "end": t["at"]}
            )
        current[t["version"]] = (t["to_stage"], t["at"])
    for version, (stage, start) in current.items():
        periods.append({"version": version, "stage": stage, "start": start, "end": now})
    return periods


def stage_timeline(transitions: Sequence[Mapping[str, Any]], *, now: datetime) -> go.Figure:
    """One lane per version: bars for its stages over time, a marker per transition attempt
    (applied, overridden, refused, conflict). `transitions`: {"at", "version", "from_stage",
    "to_stage", "outcome", "actor", "reason"}."""
    if not transitions:
        return empty_figure("No stage transitions yet.")
    lanes = sorted({t["version"] for t in transitions})
    labels = {v: f"v{v}" for v in lanes}
    traces: list[dict[str, Any]] = []
    periods = stage_periods(transitions, now=now)
    for stage, color in STAGE_COLORS.items():
        xs: list[Any] = []
        ys: list[Any] = []
        for p in periods:
            if p["stage"] == stage:
                xs += [p["start"], p["end"], None]
                ys += [labels[p["version"]]] * 2 + [None]
        if xs:
            traces.append(
                trace("scatter",
                    x=xs, y=ys, mode="lines", name=stage, line={"color": color, "width": 14},
                    hoverinfo="skip", legendgroup="stage",
                )
            )  # fmt: skip
    for outcome, (color, symbol) in OUTCOME_STYLE.items():
        chosen = [t for t in transitions if t["outcome"] == outcome]
        if not chosen:
            continue
        traces.append(
            trace("scatter",
                x=[t["at"] for t in chosen],
                y=[labels[t["version"]] for t in chosen],
                mode="markers",
                name=outcome,
                marker={"color": color, "symbol": symbol, "size": 11,
                        "line": {"color": "white", "width": 1}},
                customdata=[
                    [t["from_stage"], t["to_stage"], t.get("actor") or "—", t.get("reason", "")]
                    for t in chosen
                ],
                hovertemplate="%{y}: %{customdata[0]} → %{customdata[1]} (" + outcome
                + ")<br>%{x}<br>by %{customdata[2]}: %{customdata[3]}<extra></extra>",
            )
        )  # fmt: skip
    layout = base_layout(
        height=max(200, 90 + 40 * len(lanes)),
        xaxis={"type": "date", "title": {"text": "time (UTC)"}},
        yaxis={"type": "category", "categoryorder": "array",
               "categoryarray": [labels[v] for v in lanes], "showgrid": False},
    )  # fmt: skip
    return figure(traces, layout)


def version_metrics(
    versions: Sequence[Mapping[str, Any]], *, keys: Sequence[str], highlight: int | None = None
) -> go.Figure:
    """Grouped bars: each metric in `keys`, one bar per version (the `highlight`ed version
    outlined). `versions`: {"version", "stage", "metrics": {key: value}}."""
    keys = [k for k in keys if any(_finite(v["metrics"].get(k)) is not None for v in versions)]
    if not versions or not keys:
        return empty_figure("No metrics recorded for these versions.")
    traces = []
    for index, version in enumerate(sorted(versions, key=lambda v: v["version"])):
        values = [_finite(version["metrics"].get(k)) for k in keys]
        traces.append(
            trace(
                "bar",
                x=list(keys),
                y=values,
                name=f"v{version['version']} ({version['stage']})",
                marker={
                    "color": series_color(index),
                    "line": {"color": INK, "width": 2.5 if version["version"] == highlight else 0},
                },
                hovertemplate="%{x}: %{y:.4f}<extra>v" + str(version["version"]) + "</extra>",
            )
        )
    return figure(traces, base_layout(height=300, barmode="group", yaxis={"title": "value"}))


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
