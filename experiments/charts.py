"""Experiment figures for the dashboards: pure functions of plain rows (no Django). Inputs are
shaped like experiments.selectors.run_compare's output (histories aligned by step)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from tradingsite.dashboard.figures import (
    GRID,
    base_layout,
    empty_figure,
    figure,
    series_color,
    trace,
)

MAX_CURVES = 12  # metric panels per figure
MAX_DIMENSIONS = 16  # axes of the parallel coordinates


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def run_label(run: Mapping[str, Any]) -> str:
    return run.get("name") or run["run_id"][:8]


def metric_curves(
    histories: Mapping[str, Sequence[Mapping[str, Any]]],
    runs: Sequence[Mapping[str, Any]],
    *,
    columns: int = 3,
) -> go.Figure:
    """One panel per metric with more than one step, one line per run (same colour in every
    panel). `histories`: {key: [{"step", "values": {run_id: value}}]}; `runs`: {"run_id",
    "name"}."""
    keys = [k for k, points in histories.items() if len(points) > 1][:MAX_CURVES]
    if not keys:
        return empty_figure("No metric was logged at more than one step.")
    columns = min(columns, len(keys))
    rows = math.ceil(len(keys) / columns)
    height = max(300, 60 + 260 * rows)
    plot_height = height - 80 - 48  # less the top and bottom margins
    # the legend sits above the first row's panel titles
    layout = base_layout(height=height, margin={"t": 80}, legend={"y": 1 + 34 / plot_height})
    # ~80 px between rows: the x axis title of one row, the panel title of the next
    layout.update(panel_axes(keys, columns=columns, gap_y=min(0.3, 80 / plot_height)))
    traces = []
    for index, key in enumerate(keys):
        suffix = "" if index == 0 else str(index + 1)
        for run_index, run in enumerate(runs):
            points = [
                (p["step"], _finite(p["values"].get(run["run_id"])))
                for p in histories[key]
                if run["run_id"] in p["values"]
            ]
            if not points:
                continue
            traces.append(
                trace("scatter",
                    x=[step for step, _ in points], y=[value for _, value in points],
                    xaxis=f"x{suffix}", yaxis=f"y{suffix}",
                    mode="lines+markers", name=run_label(run), legendgroup=run["run_id"],
                    showlegend=index == 0, line={"color": series_color(run_index), "width": 2},
                    marker={"size": 5}, connectgaps=False,
                    hovertemplate=run_label(run) + "<br>step %{x}: %{y:.4g}<extra>" + key
                    + "</extra>",
                )
            )  # fmt: skip
    return figure(traces, layout)


def panel_axes(titles: Sequence[str], *, columns: int, gap_y: float = 0.12) -> dict[str, Any]:
    """Axes (and title annotations) of a grid of small panels, one per title, filled row by
    row: what plotly's make_subplots builds, as plain layout keys (it costs ~60 ms a figure).
    `gap_y`: the space between rows, as a share of the plot's height."""
    rows = math.ceil(len(titles) / columns)
    gap_x = 0.07
    gap_y = gap_y if rows > 1 else 0.0
    width = (1 - gap_x * (columns - 1)) / columns
    height = (1 - gap_y * (rows - 1)) / rows
    axes: dict[str, Any] = {"annotations": []}
    for index, title in enumerate(titles):
        row, col = divmod(index, columns)
        suffix = "" if index == 0 else str(index + 1)
        # rounded into [0, 1]: 1 - n·(h + gap) can come out as -5e-17, which plotly refuses
        x0 = round(col * (width + gap_x), 6)
        y1 = round(1 - row * (height + gap_y), 6)
        y0 = max(0.0, round(y1 - height, 6))
        x1 = min(1.0, round(x0 + width, 6))
        axes[f"xaxis{suffix}"] = {
            "domain": [x0, x1], "anchor": f"y{suffix}", "title": {"text": "step"},
            "gridcolor": GRID, "zeroline": False,
        }  # fmt: skip
        axes[f"yaxis{suffix}"] = {
            "domain": [y0, y1], "anchor": f"x{suffix}", "gridcolor": GRID,
            "zeroline": False, "automargin": True,
        }  # fmt: skip
        axes["annotations"].append(
            {"text": title, "x": (x0 + x1) / 2, "y": y1, "xref": "paper", "yref": "paper",
             "xanchor": "center", "yanchor": "bottom", "showarrow": False,
             "font": {"size": 12}}
        )  # fmt: skip
    return axes


def _as_numbers(values: Sequence[str | None]) -> list[float] | None:
    numbers = []
    for value in values:
        if value is None:
            return None
        try:
            numbers.append(float(value))
        except ValueError:
            return None
    return numbers


def parallel_coordinates(
    runs: Sequence[Mapping[str, Any]],
    params: Mapping[str, Mapping[str, str]],
    metrics: Mapping[str, Mapping[str, Mapping[str, Any]]],
    *,
    color_metric: str | None = None,
) -> go.Figure:
    """One line per run across its params (those that differ between runs; numeric axes where
    every value is a number, else the values as ticks) and final metrics, coloured by
    `color_metric`. Shapes as run_compare returns them."""
    ids = [run["run_id"] for run in runs]
    if len(ids) < 2:
        return empty_figure("Pick two runs or more to compare them.")
    dimensions: list[dict[str, Any]] = []
    for key in sorted(params):
        values = [params[key].get(run_id) for run_id in ids]
        if len(set(values)) < 2:
            continue  # the same everywhere: no information on an axis
        numbers = _as_numbers(values)
        if numbers is not None:
            dimensions.append({"label": key, "values": numbers})
            continue
        ticks = sorted({v or "—" for v in values})
        dimensions.append(
            {"label": key, "values": [ticks.index(v or "—") for v in values],
             "tickvals": list(range(len(ticks))), "ticktext": ticks}
        )  # fmt: skip
    metric_keys = [k for k in sorted(metrics) if "/" not in k] or sorted(metrics)
    for key in metric_keys:
        values = [_finite((metrics[key].get(run_id) or {}).get("value")) for run_id in ids]
        if all(v is None for v in values):
            continue
        finite = [v for v in values if v is not None]
        floor = min(finite) - (abs(min(finite)) * 0.1 or 1.0)
        # Plotly draws no line through a missing value; the floor marks it under the range.
        dimensions.append({"label": key, "values": [floor if v is None else v for v in values]})
    dimensions = dimensions[:MAX_DIMENSIONS]
    if not dimensions:
        return empty_figure("These runs logged no params or metrics to compare.")
    color_key = (
        color_metric if color_metric in metrics else (metric_keys[0] if metric_keys else None)
    )
    colors = [
        _finite((metrics.get(color_key) or {}).get(run_id, {}).get("value")) if color_key else None
        for run_id in ids
    ]
    line: dict[str, Any] = {"color": [c if c is not None else 0.0 for c in colors]}
    if color_key and any(c is not None for c in colors):
        line.update(colorscale="Cividis", showscale=True, colorbar={"title": {"text": color_key}})
    else:
        line = {"color": "#0072B2"}
    parcoords = trace(
        "parcoords", dimensions=dimensions, line=line, labelangle=-20, labelside="bottom"
    )
    return figure(parcoords, base_layout(height=380, margin={"l": 70, "r": 70, "t": 40, "b": 90}))


def metric_history(points: Mapping[str, Sequence[tuple[int, float | None]]]) -> go.Figure:
    """A single run's metric histories: {key: [(step, value), ...]} (keys with 2+ points)."""
    runs = [{"run_id": "run", "name": "this run"}]
    histories = {
        key: [{"step": step, "values": {"run": value}} for step, value in series]
        for key, series in points.items()
    }
    return metric_curves(histories, runs)
