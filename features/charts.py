"""Feature store figures for the dashboards: pure functions of plain rows (no Django)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from tradingsite.dashboard.figures import (
    BLUE,
    GREEN,
    INK,
    VERMILLION,
    base_layout,
    empty_figure,
    figure,
    trace,
)

QUALITY_PARTS = ("completeness", "validity", "freshness", "stability")


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def quality_heatmap(history: Sequence[Mapping[str, Any]], *, features: Sequence[str]) -> go.Figure:
    """Quality score (0-100) per feature (rows) per materialization (columns, oldest left),
    each cell also printed as a number. `history`: {"job_id", "at", "score", "features"}."""
    if not history:
        return empty_figure("No succeeded materialization yet: nothing was scored.")
    columns = [f"#{h['job_id']} {h['at']:%m-%d %H:%M}" for h in history]
    rows = list(features)
    z = [[_finite(h["features"].get(name)) for h in history] for name in rows]
    text = [["" if v is None else f"{v:.0f}" for v in line] for line in z]
    heatmap = trace("heatmap",
        x=columns, y=rows, z=z, text=text, zmin=0, zmax=100, colorscale="Cividis",
        xgap=1, ygap=1, colorbar={"title": {"text": "score"}, "thickness": 12},
        hovertemplate="%{y}<br>%{x}<br>quality %{z:.1f}<extra></extra>",
    )  # fmt: skip
    if len(columns) <= 30:
        heatmap["texttemplate"] = "%{text}"
        heatmap["textfont"] = {"size": 10}
    layout = base_layout(
        height=max(220, 70 + 22 * len(rows)),
        xaxis={"type": "category", "title": {"text": "materialization job (UTC)"},
               "showgrid": False},
        yaxis={"type": "category", "autorange": "reversed", "showgrid": False},
        margin={"t": 16},
    )  # fmt: skip
    return figure(heatmap, layout)


def quality_trend(history: Sequence[Mapping[str, Any]], *, threshold: float) -> go.Figure:
    """The view's overall quality score per materialization, with the alert threshold."""
    points = [(h["at"], _finite(h.get("score"))) for h in history]
    points = [(at, s) for at, s in points if s is not None]
    if not points:
        return empty_figure("No quality score yet.")
    line = trace("scatter",
        x=[at for at, _ in points], y=[s for _, s in points], mode="lines+markers",
        name="view quality", line={"color": BLUE, "width": 2},
        hovertemplate="%{x}<br>quality %{y:.1f}<extra></extra>",
    )  # fmt: skip
    layout = base_layout(
        height=240,
        yaxis={"range": [0, 105], "title": {"text": "quality (0-100)"}},
        xaxis={"title": {"text": "finished (UTC)"}},
        shapes=[{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": threshold,
                 "y1": threshold, "line": {"dash": "dot", "color": VERMILLION}}],
        annotations=[{"text": f"alert below {threshold:g}", "xref": "paper", "x": 1,
                      "y": threshold, "showarrow": False, "xanchor": "right",
                      "yanchor": "top", "font": {"size": 10, "color": VERMILLION}}],
        showlegend=False,
    )  # fmt: skip
    return figure(line, layout)


def freshness_bars(symbols: Sequence[Mapping[str, Any]], *, ttl_seconds: float) -> go.Figure:
    """Hours since each symbol's newest materialized bar, against the view's ttl; stale bars
    in vermillion and labelled "stale", fresh ones green and labelled "fresh"."""
    known = [s for s in symbols if _finite(s.get("age_seconds")) is not None]
    if not known:
        return empty_figure("No materialized bars yet.")
    ordered = sorted(known, key=lambda s: s["symbol"], reverse=True)
    hours = [s["age_seconds"] / 3600 for s in ordered]
    stale = [s["age_seconds"] > ttl_seconds for s in ordered]
    bars = trace("bar",
        orientation="h", x=hours, y=[s["symbol"] for s in ordered],
        marker={"color": [VERMILLION if x else GREEN for x in stale],
                "line": {"color": INK, "width": 0.5}},
        text=["stale" if x else "fresh" for x in stale], textposition="outside",
        cliponaxis=False, hovertemplate="%{y}: %{x:.1f} h old<br>%{text}<extra></extra>",
    )  # fmt: skip
    ttl_hours = ttl_seconds / 3600
    layout = base_layout(
        height=max(180, 70 + 26 * len(ordered)),
        xaxis={"title": {"text": "hours since the newest bar"}, "rangemode": "tozero"},
        yaxis={"type": "category", "showgrid": False},
        shapes=[{"type": "line", "yref": "paper", "y0": 0, "y1": 1, "x0": ttl_hours,
                 "x1": ttl_hours, "line": {"dash": "dot", "color": INK}}],
        annotations=[{"text": f"ttl {ttl_hours:g} h", "yref": "paper", "y": 1, "x": ttl_hours,
                      "showarrow": False, "xanchor": "left", "yanchor": "bottom",
                      "font": {"size": 10}}],
        margin={"t": 24, "r": 56},
        showlegend=False,
    )  # fmt: skip
    return figure(bars, layout)


def quality_parts(quality: Mapping[str, Any]) -> go.Figure:
    """One materialization's four quality components per feature, as a heatmap with numbers.
    `quality`: a job's quality JSON ({"score", "features": {name: {part: value}}})."""
    features = quality.get("features") or {}
    if not features:
        return empty_figure("This job recorded no quality scores.")
    names = sorted(features)
    parts = [*QUALITY_PARTS, "score"]
    z = [[_finite(features[name].get(part)) for part in parts] for name in names]
    heatmap = trace("heatmap",
        x=parts, y=names, z=z, zmin=0, zmax=100, colorscale="Cividis",
        text=[["" if v is None else f"{v:.0f}" for v in row] for row in z],
        texttemplate="%{text}", textfont={"size": 10}, xgap=1, ygap=1,
        colorbar={"title": {"text": "score"}, "thickness": 12},
        hovertemplate="%{y}<br>%{x}: %{z:.1f}<extra></extra>",
    )  # fmt: skip
    layout = base_layout(
        height=max(220, 70 + 22 * len(names)),
        xaxis={"side": "top", "showgrid": False},
        yaxis={"type": "category", "autorange": "reversed", "showgrid": False},
        margin={"t": 40},
    )  # fmt: skip
    return figure(heatmap, layout)
