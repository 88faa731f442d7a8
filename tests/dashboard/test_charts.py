"""The dashboards' figures are pure functions of plain rows: checked here without a browser and
without a database (no django_db mark: pytest-django refuses any query)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import plotly.graph_objects as go
import pytest

from drift import charts as drift_charts
from drift.histograms import histogram_chart
from experiments import charts as experiment_charts
from features import charts as feature_charts
from registry import charts as registry_charts
from tradingsite.dashboard.figures import SEVERITY_COLORS, figure_json

T0 = datetime(2026, 1, 5, 21, tzinfo=UTC)


def valid(figure: go.Figure) -> go.Figure:
    """The charts skip plotly's validation for speed (tradingsite.dashboard.figures.figure):
    rebuilding the figure with it raises on any misspelt or ill-typed property."""
    go.Figure(figure.to_dict())
    return figure


def _annotation_texts(figure: go.Figure) -> list[str]:
    return [a.text for a in figure.layout.annotations]


# --- drift ------------------------------------------------------------------------------------


def test_the_severity_heatmap_has_a_row_per_model_and_the_worst_severity_per_day() -> None:
    rows = [
        {"model": "alpha", "version": 1, "at": T0, "severity": "LOW"},
        {"model": "alpha", "version": 2, "at": T0 + timedelta(hours=2), "severity": "HIGH"},
        {"model": "beta", "version": 1, "at": T0, "severity": "NONE"},
        {"model": "beta", "version": 1, "at": T0 + timedelta(days=4), "severity": "MEDIUM"},
    ]
    figure = valid(drift_charts.severity_heatmap(rows))
    (heatmap,) = figure.data
    assert isinstance(heatmap, go.Heatmap)
    assert list(heatmap.y) == ["beta", "alpha"]
    assert list(heatmap.x) == ["2026-01-05", "2026-01-09"]
    # ranks NONE 0 .. HIGH 3; alpha's day has LOW and HIGH: the cell is HIGH (v2)
    assert [list(r) for r in heatmap.z] == [[0, 2], [3, None]]
    assert [list(r) for r in heatmap.text] == [["NONE", "MEDIUM"], ["HIGH", ""]]
    assert heatmap.customdata[1][0] == "v2"
    assert heatmap.texttemplate == "%{text}"  # the severity is written in every cell


def test_the_severity_colour_scale_gives_each_rank_its_palette_colour() -> None:
    scale = drift_charts.SEVERITY_COLORSCALE
    for rank, name in enumerate(("NONE", "LOW", "MEDIUM", "HIGH")):
        middle = (rank + 0.5) / 4
        pairs = zip(scale, scale[1:], strict=False)
        band = [color for (low, color), (high, _) in pairs if low <= middle <= high]
        assert SEVERITY_COLORS[name] in band


def test_reports_within_three_days_are_bucketed_by_hour() -> None:
    rows = [
        {"model": "m", "version": 1, "at": T0, "severity": "NONE"},
        {"model": "m", "version": 1, "at": T0 + timedelta(hours=5), "severity": "LOW"},
    ]
    assert list(valid(drift_charts.severity_heatmap(rows)).data[0].x) == [
        "2026-01-05 21:00",
        "2026-01-06 02:00",
    ]


def test_no_reports_draws_a_message_instead_of_an_empty_frame() -> None:
    figure = valid(drift_charts.severity_heatmap([]))
    assert not figure.data
    assert "No drift reports yet" in _annotation_texts(figure)[0]


def test_feature_scores_put_the_largest_on_top_with_severity_colour_and_text() -> None:
    features = [
        {"name": "rsi", "score": 0.05, "severity": "NONE"},
        {"name": "macd", "score": 0.31, "severity": "HIGH"},
        {"name": "atr", "score": 0.15, "severity": "LOW"},
        {"name": "untested", "score": None, "severity": "NONE"},
    ]
    figure = valid(drift_charts.feature_scores(features, thresholds=[0.1, 0.2, 0.25]))
    (bars,) = figure.data
    assert bars.orientation == "h"
    assert list(bars.y) == ["rsi", "atr", "macd"]  # drawn bottom-up: macd on top
    assert list(bars.x) == [0.05, 0.15, 0.31]
    assert list(bars.text) == ["NONE", "LOW", "HIGH"]
    assert list(bars.marker.color) == [SEVERITY_COLORS[s] for s in ("NONE", "LOW", "HIGH")]
    assert [shape.x0 for shape in figure.layout.shapes] == [0.1, 0.2, 0.25]
    assert _annotation_texts(figure) == ["LOW ≥ 0.1", "MEDIUM ≥ 0.2", "HIGH ≥ 0.25"]


def test_a_large_score_graded_none_is_hatched_and_labelled_not_significant() -> None:
    features = [
        {"name": "atr_14", "score": 7.07, "severity": "NONE", "p_value": 0.1312},
        {"name": "rsi", "score": 0.05, "severity": "NONE", "p_value": 0.9},
        {"name": "macd", "score": 0.31, "severity": "HIGH", "p_value": 1e-6},
    ]
    (bars,) = valid(drift_charts.feature_scores(features, thresholds=[0.1, 0.2, 0.25])).data
    assert list(bars.y) == ["rsi", "macd", "atr_14"]
    assert list(bars.text) == ["NONE", "HIGH", "NONE · not significant (p 0.13)"]
    assert list(bars.marker.pattern.shape) == ["", "", "/"]
    (plain,) = valid(drift_charts.feature_scores(features)).data  # no cut points: no claim
    assert list(plain.text) == ["NONE", "HIGH", "NONE"]


def test_the_distribution_overlay_compares_reference_and_current_shares_per_bin() -> None:
    statistics = {
        "kind": "numeric",
        "histogram": {"edges": [0.0, 1.0], "categories": None,
                      "reference": [25, 50, 25], "current": [10, 30, 60]},
    }  # fmt: skip
    figure = valid(
        drift_charts.distribution_overlay(
            histogram_chart(name="rsi", severity="HIGH", statistics=statistics)
        )
    )
    reference, current = figure.data
    assert (reference.name, current.name) == ("reference", "current window")
    assert list(reference.x) == ["< 0", "[0, 1)", "≥ 1"]
    assert list(reference.y) == [0.25, 0.5, 0.25]
    assert list(current.y) == [0.1, 0.3, 0.6]
    assert list(current.customdata) == [10, 30, 60]
    assert figure.layout.barmode == "group"


def test_a_categorical_overlay_uses_the_categories() -> None:
    statistics = {"kind": "categorical",
                  "histogram": {"edges": None, "categories": ["up", "down"],
                                "reference": [5, 5], "current": [9, 1]}}  # fmt: skip
    figure = valid(
        drift_charts.distribution_overlay(
            histogram_chart(name="sign", severity="LOW", statistics=statistics)
        )
    )
    assert list(figure.data[0].x) == ["up", "down"]
    assert "category" in figure.layout.xaxis.title.text


def test_a_missing_histogram_says_so() -> None:
    figure = valid(
        drift_charts.distribution_overlay(
            histogram_chart(name="rsi", severity="NONE", statistics={})
        )
    )
    assert not figure.data
    assert "No histogram" in _annotation_texts(figure)[0]


def test_the_feature_timeline_draws_one_marker_trace_per_severity_and_marks_this_report() -> None:
    points = [
        {"at": T0 + timedelta(days=d), "score": 0.05 * d, "severity": s, "report_id": d}
        for d, s in enumerate(["NONE", "NONE", "LOW", "HIGH"])
    ]
    figure = valid(drift_charts.feature_timeline(points, name="rsi", current_report_id=3))
    line, *markers = figure.data
    assert line.mode == "lines" and list(line.y) == [0.0, 0.05, 0.1, 0.15000000000000002]
    assert [m.name for m in markers] == ["NONE", "LOW", "HIGH"]
    assert [m.marker.symbol for m in markers] == ["circle", "square", "x"]
    assert list(markers[-1].marker.size) == [14]  # the report on screen stands out


# --- registry ---------------------------------------------------------------------------------


def _transition(minutes: int, version: int, from_stage: str, to_stage: str, outcome: str) -> dict:
    return {"at": T0 + timedelta(minutes=minutes), "version": version, "from_stage": from_stage,
            "to_stage": to_stage, "outcome": outcome, "actor": "boss", "reason": "r"}  # fmt: skip


def test_stage_periods_follow_the_applied_transitions_only() -> None:
    history = [
        _transition(0, 1, "None", "Production", "applied"),
        _transition(10, 2, "None", "Production", "refused"),
        _transition(20, 1, "Production", "Archived", "applied"),
        _transition(20, 2, "None", "Production", "overridden"),
    ]
    now = T0 + timedelta(minutes=30)
    periods = registry_charts.stage_periods(history, now=now)
    assert {(p["version"], p["stage"], p["start"], p["end"]) for p in periods} == {
        (1, "Production", T0, T0 + timedelta(minutes=20)),
        (1, "Archived", T0 + timedelta(minutes=20), now),
        (2, "Production", T0 + timedelta(minutes=20), now),
    }


def test_the_stage_timeline_has_lanes_per_version_and_a_marker_per_attempt() -> None:
    history = [
        _transition(0, 1, "None", "Production", "applied"),
        _transition(10, 2, "None", "Production", "refused"),
    ]
    figure = valid(registry_charts.stage_timeline(history, now=T0 + timedelta(hours=1)))
    names = [trace.name for trace in figure.data]
    assert names == ["Production", "applied", "refused"]
    refused = figure.data[2]
    assert refused.marker.symbol == "x" and list(refused.y) == ["v2"]
    assert list(figure.layout.yaxis.categoryarray) == ["v1", "v2"]


def test_version_metrics_group_bars_by_metric_and_outline_the_highlighted_version() -> None:
    versions = [
        {"version": 1, "stage": "Production", "metrics": {"accuracy": 0.5, "roc_auc": 0.51}},
        {"version": 2, "stage": "None", "metrics": {"accuracy": 0.57, "roc_auc": None}},
    ]
    figure = valid(
        registry_charts.version_metrics(
            versions, keys=["accuracy", "roc_auc", "sharpe"], highlight=1
        )
    )
    v1, v2 = figure.data
    assert list(v1.x) == ["accuracy", "roc_auc"]  # sharpe: nobody has it
    assert list(v2.y) == [0.57, None]
    assert v1.marker.line.width > 0 and v2.marker.line.width == 0


# --- experiments ------------------------------------------------------------------------------

RUNS = [{"run_id": "a" * 32, "name": "first"}, {"run_id": "b" * 32, "name": ""}]


def test_metric_curves_draw_one_panel_per_metric_and_one_line_per_run() -> None:
    histories = {
        "loss": [{"step": s, "values": {"a" * 32: 1 / s, "b" * 32: 2 / s}} for s in (1, 2, 3)],
        "acc": [{"step": s, "values": {"a" * 32: 0.5 + s / 10}} for s in (1, 2)],
        "final_only": [{"step": 0, "values": {"a" * 32: 1.0}}],
    }
    figure = valid(experiment_charts.metric_curves(histories, RUNS))
    assert [(t.name, t.xaxis, t.yaxis) for t in figure.data] == [
        ("first", "x", "y"), ("bbbbbbbb", "x", "y"), ("first", "x2", "y2"),
    ]  # fmt: skip
    assert list(figure.data[1].y) == [2.0, 1.0, 2 / 3]
    assert _annotation_texts(figure) == ["loss", "acc"]  # a single step is no curve
    assert [t.showlegend for t in figure.data] == [True, True, False]
    assert figure.data[0].line.color == figure.data[2].line.color  # one colour per run


def test_many_metrics_make_a_grid_of_panels_inside_the_figure() -> None:
    histories = {
        f"fold_{k}/loss": [{"step": s, "values": {"a" * 32: s * k}} for s in (1, 2)]
        for k in range(14)
    }
    figure = valid(experiment_charts.metric_curves(histories, RUNS))
    assert len(figure.data) == experiment_charts.MAX_CURVES  # 12 panels at most
    domains = [figure.layout[f"yaxis{i if i > 1 else ''}"].domain for i in range(1, 13)]
    assert all(0 <= low < high <= 1 for low, high in domains)
    assert domains[0][1] == 1 and domains[-1][0] == 0  # 4 rows of 3 fill the height


def test_parallel_coordinates_keep_params_that_differ_and_final_metrics() -> None:
    ids = [r["run_id"] for r in RUNS]
    params = {"C": {ids[0]: "0.5", ids[1]: "1.0"}, "penalty": {ids[0]: "l1", ids[1]: "l2"},
              "folds": {ids[0]: "5", ids[1]: "5"}}  # fmt: skip
    metrics = {"roc_auc": {ids[0]: {"value": 0.55}, ids[1]: {"value": 0.6}},
               "fold_1/roc_auc": {ids[0]: {"value": 0.5}}}  # fmt: skip
    figure = valid(experiment_charts.parallel_coordinates(RUNS, params, metrics))
    (trace,) = figure.data
    assert isinstance(trace, go.Parcoords)
    dims = {d.label: d for d in trace.dimensions}
    assert list(dims) == ["C", "penalty", "roc_auc"]  # folds is the same everywhere
    assert list(dims["C"].values) == [0.5, 1.0]
    assert list(dims["penalty"].ticktext) == ["l1", "l2"]
    assert list(trace.line.color) == [0.55, 0.6]


def test_parallel_coordinates_need_two_runs() -> None:
    figure = valid(experiment_charts.parallel_coordinates(RUNS[:1], {}, {}))
    assert not figure.data


# --- features ---------------------------------------------------------------------------------


def test_the_quality_heatmap_has_a_row_per_feature_and_a_column_per_job() -> None:
    history = [
        {"job_id": 1, "at": T0, "score": 90, "features": {"rsi": 95.0, "atr": 85.0}},
        {"job_id": 2, "at": T0 + timedelta(days=1), "score": 70, "features": {"rsi": 60.0}},
    ]
    figure = valid(feature_charts.quality_heatmap(history, features=["rsi", "atr"]))
    (heatmap,) = figure.data
    assert list(heatmap.y) == ["rsi", "atr"]
    assert [list(r) for r in heatmap.z] == [[95.0, 60.0], [85.0, None]]
    assert [list(r) for r in heatmap.text] == [["95", "60"], ["85", ""]]
    assert (heatmap.zmin, heatmap.zmax) == (0, 100)


def test_the_quality_trend_shows_the_alert_threshold() -> None:
    history = [{"job_id": 1, "at": T0, "score": 91.0, "features": {}}]
    figure = valid(feature_charts.quality_trend(history, threshold=80))
    assert list(figure.data[0].y) == [91.0]
    assert figure.layout.shapes[0].y0 == 80


def test_freshness_bars_label_stale_symbols_against_the_ttl() -> None:
    symbols = [{"symbol": "AAPL", "age_seconds": 3600.0}, {"symbol": "SPY", "age_seconds": 9e5},
               {"symbol": "NEW", "age_seconds": None}]  # fmt: skip
    figure = valid(feature_charts.freshness_bars(symbols, ttl_seconds=86_400))
    (bars,) = figure.data
    assert list(bars.y) == ["SPY", "AAPL"]
    assert list(bars.text) == ["stale", "fresh"]
    assert list(bars.x) == [250.0, 1.0]


def test_figures_serialize_to_plain_json_for_json_script() -> None:
    figure = valid(feature_charts.quality_parts(
        {"score": 90, "features": {"rsi": {"completeness": 100, "validity": 80,
                                           "freshness": 100, "stability": 70, "score": 88}}}
    ))  # fmt: skip
    data = figure_json(figure)
    assert data["data"][0]["type"] == "heatmap"
    assert data["data"][0]["x"] == ["completeness", "validity", "freshness", "stability", "score"]
    assert len(json.dumps(data["layout"]["template"])) < 100  # not a 7 kB stock template


def test_the_validation_in_these_tests_catches_a_misspelt_property() -> None:
    from tradingsite.dashboard.figures import figure, trace

    unchecked = figure(trace("bar", x=[1], colour="red"), {})  # built: nothing is checked
    with pytest.raises(ValueError, match="colour"):
        valid(unchecked)
