"""Chart-ready reference vs current histograms of stored feature results (pure, no Django)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def bin_labels(edges: Sequence[float]) -> list[str]:
    """Labels of the len(edges) + 1 bins that `drift.reference.histogram_counts` counts: the
    first open below, then [a, b) intervals, the last open above."""
    if not edges:
        return ["all values"]
    labels = [f"< {_fmt(edges[0])}"]
    labels += [f"[{_fmt(a)}, {_fmt(b)})" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return [*labels, f"≥ {_fmt(edges[-1])}"]


def _side(counts: Sequence[Any] | None) -> dict[str, list]:
    values = [int(c) for c in counts or []]
    total = sum(values)
    return {"counts": values, "shares": [c / total if total else None for c in values]}


def histogram_chart(*, name: str, severity: str, statistics: dict[str, Any]) -> dict[str, Any]:
    """Reference vs current counts and shares per bin (or category) of one feature result."""
    histogram = statistics.get("histogram") or {}
    edges, categories = histogram.get("edges"), histogram.get("categories")
    if categories is not None:
        bins = [_fmt(c) if isinstance(c, float) else str(c) for c in categories]
    else:
        bins = bin_labels(edges or [])
    return {
        "name": name,
        "kind": statistics.get("kind"),
        "severity": severity,
        "bins": bins,
        "edges": edges,
        "categories": categories,
        "reference": _side(histogram.get("reference")),
        "current": _side(histogram.get("current")),
    }
