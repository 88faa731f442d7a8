"""Drift figures for the dashboards: pure functions of plain rows (no Django), returning Plotly
figures (STYLE §9). Severity is drawn in the colour-blind safe palette and always also written
out (cell text, bar labels, marker shapes, colour bar ticks)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import plotly.graph_objects as go

from tradingsite.dashboard.figures import (
    BLUE,
    GREY,
    INK,
    ORANGE,
    SEVERITIES,
    SEVERITY_COLORS,
    SEVERITY_SYMBOLS,
    base_layout,
    empty_figure,
    figure,
    severity_rank,
    trace,
)

# A discrete colour scale over ranks 0..3 (NONE..HIGH): each rank one flat band.
SEVERITY_COLORSCALE = [
    [edge, SEVERITY_COLORS[name]]
    for i, name in enumerate(SEVERITIES)
    for edge in (i / len(SEVERITIES), (i + 1) / len(SEVERITIES))
]
MAX_CELL_LABELS = 40  # columns up to which each heatmap cell also carries its severity as text


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def cut_lines(thresholds: Sequence[float] | None, *, axis: str) -> dict[str, list[dict]]:
    """Dotted lines at the LOW / MEDIUM / HIGH cut points, labelled, as layout shapes (plain
    dicts: plotly's add_vline costs ~10 ms a line in validation)."""
    shapes, annotations = [], []
    other = "y" if axis == "x" else "x"
    for index, (cut, level) in enumerate(zip(thresholds or (), SEVERITIES[1:], strict=False)):
        shapes.append(
            {"type": "line", f"{axis}0": cut, f"{axis}1": cut, f"{other}0": 0, f"{other}1": 1,
             "xref": "x" if axis == "x" else "paper", "yref": "y" if axis == "y" else "paper",
             "line": {"dash": "dot", "color": GREY, "width": 1}}
        )  # fmt: skip
        # staggered, so the labels of close cut points do not overlap
        where = 1 + 0.06 * index if axis == "x" else (1 if index % 2 == 0 else 0)
        annotations.append(
            {"text": f"{level} ≥ {cut:g}", axis: cut, other: where, "showarrow": False,
             "xref": "x" if axis == "x" else "paper", "yref": "y" if axis == "y" else "paper",
             "xanchor": "center" if axis == "x" else ("right" if index % 2 == 0 else "left"),
             "yanchor": "bottom", "font": {"size": 10, "color": GREY}}
        )  # fmt: skip
    return {"shapes": shapes, "annotations": annotations}


def time_bucket(at: datetime, bucket: str) -> str:
    return at.strftime("%Y-%m-%d") if bucket == "day" else at.strftime("%Y-%m-%d %H:00")


def choose_bucket(times: Sequence[datetime]) -> str:
    """Days when the reports span three days or more, else hours."""
    if not times:
        return "day"
    return "day" if (max(times) - min(times)).total_seconds() >= 3 * 86_400 else "hour"


def severity_heatmap(rows: Sequence[Mapping[str, Any]], *, bucket: str | None = None) -> go.Figure:
    """Models × time: each cell the highest severity of the model's reports in that day (or
    hour). `rows`: {"model", "version", "at", "severity"}; cells without a report stay blank."""
    if not rows:
        return empty_figure("No drift reports yet: the drift scan writes one per model and window.")
    bucket = bucket or choose_bucket([row["at"] for row in rows])
    columns = sorted({time_bucket(row["at"], bucket) for row in rows})
    models = sorted({row["model"] for row in rows}, reverse=True)  # alphabetical, top down
    worst: dict[tuple[str, str], tuple[int, str]] = {}
    for row in rows:
        key = (row["model"], time_bucket(row["at"], bucket))
        rank = severity_rank(row["severity"])
        if rank > worst.get(key, (-1, ""))[0]:
            worst[key] = (rank, f"v{row['version']}")
    z = [[worst.get((m, c), (None, ""))[0] for c in columns] for m in models]
    text = [
        [SEVERITIES[worst[(m, c)][0]] if (m, c) in worst else "" for c in columns] for m in models
    ]
    hover = [[worst.get((m, c), (None, ""))[1] for c in columns] for m in models]
    heatmap = trace(
        "heatmap",
        x=columns,
        y=models,
        z=z,
        text=text,
        customdata=hover,
        zmin=-0.5,
        zmax=len(SEVERITIES) - 0.5,
        colorscale=SEVERITY_COLORSCALE,
        xgap=2,
        ygap=2,
        hovertemplate="%{y} %{customdata}<br>%{x}<br>severity %{text}<extra></extra>",
        showscale=False,  # the page prints the legend as severity badges (text and colour)
    )
    if len(columns) <= MAX_CELL_LABELS:
        heatmap["texttemplate"] = "%{text}"
        heatmap["textfont"] = {"size": 10, "color": INK}
    layout = base_layout(
        height=max(180, 70 + 34 * len(models)),
        xaxis={"type": "category", "title": {"text": "window end (UTC)"}, "showgrid": False},
        yaxis={"showgrid": False},
        margin={"t": 16},
    )
    return figure(heatmap, layout)


def feature_scores(
    features: Sequence[Mapping[str, Any]],
    *,
    score_label: str = "PSI",
    thresholds: Sequence[float] | None = None,
) -> go.Figure:
    """One bar per feature (largest score on top), coloured and labelled by its severity, with
    the score's LOW / MEDIUM / HIGH cut points. `features`: {"name", "score", "severity"} and
    optionally "p_value" (the one severity was graded on).

    A score past the first cut point graded NONE (a slow feature whose shift the test cannot
    tell from autocorrelation in this window) is hatched and labelled "not significant" with
    its p-value, so a long bar reading NONE does not look like a mistake."""
    scored = [f for f in features if _finite(f.get("score")) is not None]
    if not scored:
        return empty_figure("No feature could be scored in this window.")
    ordered = sorted(scored, key=lambda f: float(f["score"]))  # plotly draws bottom-up
    first_cut = min(thresholds) if thresholds else None
    unproven = [
        first_cut is not None and f["severity"] == "NONE" and float(f["score"]) >= first_cut
        for f in ordered
    ]
    labels = [
        f"{f['severity']} · not significant{_p_text(f.get('p_value'))}" if flag else f["severity"]
        for f, flag in zip(ordered, unproven, strict=True)
    ]
    return figure(
        trace(
            "bar",
            orientation="h",
            x=[float(f["score"]) for f in ordered],
            y=[f["name"] for f in ordered],
            marker={
                "color": [SEVERITY_COLORS.get(f["severity"], GREY) for f in ordered],
                "line": {"color": INK, "width": 0.5},
                "pattern": {"shape": ["/" if flag else "" for flag in unproven]},
            },
            text=labels,
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}<br>" + score_label + " %{x:.4f}<br>%{text}<extra></extra>",
        ),
        base_layout(
            height=max(220, 60 + 22 * len(ordered)),
            xaxis={"title": {"text": score_label}, "rangemode": "tozero"},
            yaxis={"type": "category", "showgrid": False},
            margin={"t": 16 + 14 * len(thresholds or ()), "r": 72},
            bargap=0.25,
            **cut_lines(thresholds, axis="x"),
        ),
    )


def _p_text(p_value: Any) -> str:
    p = _finite(p_value)
    return "" if p is None else f" (p {p:.2g})"


def distribution_overlay(chart: Mapping[str, Any] | None) -> go.Figure:
    """The reference and the current window's share of rows per bin (numeric) or category,
    side by side: what PSI and Jensen–Shannon compared. `chart`: drift.histograms'
    histogram_chart() of a stored feature result (bins, reference/current counts and shares)."""
    name = (chart or {}).get("name", "this feature")
    if not chart or not chart["reference"]["counts"] or not chart["current"]["counts"]:
        return empty_figure(f"No histogram was stored for {name}.")
    bins = [str(b) for b in chart["bins"]]
    reference = chart["reference"]["shares"]
    current = chart["current"]["shares"]
    if not (len(bins) == len(reference) == len(current)) or not any(reference + current):
        return empty_figure(f"The stored histogram of {name} has no rows to compare.")
    axis = f"{name} ({'category' if chart.get('categories') is not None else 'bin'})"
    traces = [
        trace("bar", x=bins, y=reference, name="reference", marker={"color": BLUE},
              customdata=chart["reference"]["counts"],
              hovertemplate="%{x}<br>reference %{y:.1%} (%{customdata} rows)<extra></extra>"),
        trace("bar", x=bins, y=current, name="current window",
              marker={"color": ORANGE, "pattern": {"shape": "/"}},
              customdata=chart["current"]["counts"],
              hovertemplate="%{x}<br>current %{y:.1%} (%{customdata} rows)<extra></extra>"),
    ]  # fmt: skip
    layout = base_layout(
        height=300,
        barmode="group",
        bargap=0.15,
        xaxis={"type": "category", "title": {"text": axis}, "tickangle": -30},
        yaxis={"title": {"text": "share of rows"}, "tickformat": ".0%"},
    )
    return figure(traces, layout)


def feature_timeline(
    points: Sequence[Mapping[str, Any]],
    *,
    name: str,
    score_label: str = "PSI",
    current_report_id: int | None = None,
    thresholds: Sequence[float] | None = None,
) -> go.Figure:
    """One feature's score across past reports of the same model version, each marker in its
    severity's colour and shape. `points`: {"at", "score", "severity", "report_id"}."""
    scored = [p for p in points if _finite(p.get("score")) is not None]
    if not scored:
        return empty_figure(f"No earlier reports scored {name}.")
    scored = sorted(scored, key=lambda p: p["at"])
    traces: list[dict[str, Any]] = [
        trace("scatter",
            x=[p["at"] for p in scored], y=[float(p["score"]) for p in scored], mode="lines",
            line={"color": GREY, "width": 1}, hoverinfo="skip", showlegend=False,
        )
    ]  # fmt: skip
    for severity in SEVERITIES:
        chosen = [p for p in scored if p["severity"] == severity]
        if not chosen:
            continue
        traces.append(
            trace(
                "scatter",
                x=[p["at"] for p in chosen],
                y=[float(p["score"]) for p in chosen],
                mode="markers",
                name=severity,
                marker={
                    "color": SEVERITY_COLORS[severity],
                    "symbol": SEVERITY_SYMBOLS[severity],
                    "size": [14 if p.get("report_id") == current_report_id else 9 for p in chosen],
                    "line": {"color": INK, "width": 1},
                },
                customdata=[p.get("report_id") for p in chosen],
                hovertemplate="%{x}<br>"
                + score_label
                + " %{y:.4f}<br>"
                + severity
                + "<br>report %{customdata}<extra></extra>",
            )
        )
    xaxis: dict[str, Any] = {"title": {"text": "window end (UTC)"}, "type": "date"}
    if len({p["at"] for p in scored}) == 1:  # one report: a day either side, not microseconds
        only = scored[0]["at"]
        only = datetime.fromisoformat(only) if isinstance(only, str) else only
        xaxis["range"] = [only - timedelta(days=1), only + timedelta(days=1)]
    layout = base_layout(
        height=280,
        xaxis=xaxis,
        yaxis={"title": {"text": score_label}, "rangemode": "tozero"},
        **cut_lines(thresholds, axis="y"),
    )
    return figure(traces, layout)
