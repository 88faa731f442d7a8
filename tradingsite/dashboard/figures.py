"""What every dashboard chart shares: a colour-blind safe palette (Okabe & Ito), severity colours
that always travel with their text label, and one plain layout. Pure: plotly only, no Django.

Figures use the "none" template and style themselves: the stock templates add ~7 kB of JSON and
~15 ms of serialization to every figure, which a report page with several charts cannot afford.
Traces are plain dicts made into a figure without plotly's property validation (`figure()`), which
costs ~10 ms per figure; the chart tests validate every figure instead.
"""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go

# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency.
BLUE, ORANGE, GREEN, PINK = "#0072B2", "#E69F00", "#009E73", "#CC79A7"
SKY, VERMILLION, YELLOW, BLACK = "#56B4E9", "#D55E00", "#F0E442", "#000000"
GREY, INK, GRID = "#8a939d", "#1f2933", "#e4e7eb"
SERIES = (BLUE, ORANGE, GREEN, PINK, SKY, VERMILLION, BLACK, YELLOW)

SEVERITIES = ("NONE", "LOW", "MEDIUM", "HIGH")
SEVERITY_COLORS = {"NONE": GREEN, "LOW": YELLOW, "MEDIUM": ORANGE, "HIGH": VERMILLION}
# Marker shapes too, so a severity reads without colour (and in a greyscale print).
SEVERITY_SYMBOLS = {"NONE": "circle", "LOW": "square", "MEDIUM": "diamond", "HIGH": "x"}
MISSING = GRID


def severity_rank(severity: str | None) -> int:
    """NONE 0 ... HIGH 3; unknown or missing -1."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


def series_color(index: int) -> str:
    return SERIES[index % len(SERIES)]


def base_layout(*, height: int = 320, **overrides: Any) -> dict[str, Any]:
    """A light layout: system font, thin grid, legend on top, tight margins."""
    layout: dict[str, Any] = {
        "template": "none",
        "height": height,
        "margin": {"l": 56, "r": 16, "t": 36, "b": 48},
        "font": {"family": "system-ui, sans-serif", "size": 12, "color": INK},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "colorway": list(SERIES),
        "xaxis": {"gridcolor": GRID, "zeroline": False, "automargin": True},
        "yaxis": {"gridcolor": GRID, "zeroline": False, "automargin": True},
        "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        "hoverlabel": {"font": {"family": "system-ui, sans-serif"}},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(layout.get(key), dict):
            layout[key] = {**layout[key], **value}
        else:
            layout[key] = value
    return layout


def trace(kind: str, **properties: Any) -> dict[str, Any]:
    """A trace of plotly type `kind` ("bar", "scatter", "heatmap", ...) as a plain dict."""
    return {"type": kind, **properties}


def figure(data: dict[str, Any] | list[dict[str, Any]], layout: dict[str, Any]) -> go.Figure:
    """A plotly Figure of plain dict traces and layout, unvalidated (see the module docstring):
    tests.dashboard.test_charts rebuilds each chart's figure with validation."""
    traces = [data] if isinstance(data, dict) else list(data)
    return go.Figure(data=traces, layout=layout, _validate=False)


def empty_figure(message: str, *, height: int = 200) -> go.Figure:
    """A figure that says why there is nothing to draw (instead of an empty frame)."""
    layout = base_layout(height=height)
    layout["xaxis"] = {"visible": False}
    layout["yaxis"] = {"visible": False}
    layout["annotations"] = [
        {"text": message, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper",
         "yref": "paper", "font": {"size": 14, "color": GREY}}
    ]  # fmt: skip
    return figure([], layout)


def figure_json(figure: go.Figure) -> dict[str, Any]:
    """What a view hands its template for `json_script` (STYLE §9)."""
    return json.loads(figure.to_json())
