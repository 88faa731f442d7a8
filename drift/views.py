"""Drift dashboards: the report list (filters, pages, new reports appear live) and the report
detail: severity banner, per-feature table sorted by score, the drift score bar chart, the
prediction drift (training vs current distribution of the predicted P(up), or why it is absent),
and for the chosen feature its reference-vs-current distribution and its drift timeline."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from drift.charts import distribution_overlay, feature_scores, feature_timeline
from drift.forms import ReportFilterForm
from drift.histograms import histogram_chart
from drift.models import SEVERITY_RANK, DriftFeatureResult, DriftReport
from drift.selectors import drift_reports
from registry.models import RegisteredModel
from tradingsite.dashboard.access import dashboard_view
from tradingsite.dashboard.figures import figure_json
from tradingsite.dashboard.roles import DRIFT_PERMISSION
from tradingsite.dashboard.selectors import LEAN_VERSION

REPORTS_PER_PAGE = 25
TIMELINE_REPORTS = 60
# The score features are ranked and charted by, then the fallbacks when a test did not give it.
SCORES = (("psi", "PSI"), ("jensen_shannon", "Jensen–Shannon"), ("wasserstein_normed", "W₁/σ"))


@dashboard_view(DRIFT_PERMISSION)
def report_list(request: HttpRequest) -> HttpResponse:
    names = list(RegisteredModel.objects.order_by("name").values_list("name", flat=True))
    form = ReportFilterForm(request.GET or None, model_names=names)
    reports = drift_reports(filters=form.report_filter() if form.is_bound else None).defer(
        *LEAN_VERSION
    )
    page = Paginator(reports, REPORTS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "reports": page.object_list}
    if request.GET.get("fragment") == "reports":
        return render(request, "drift/_report_table.html", context)
    return render(request, "drift/report_list.html", context)


def feature_score(row: DriftFeatureResult) -> tuple[float | None, str]:
    """The feature's drift score and its name: PSI, else the first effect size it has."""
    for field, label in SCORES:
        value = getattr(row, field)
        if value is not None:
            return float(value), label
    return None, ""


def ranked_features(report: DriftReport) -> list[dict[str, Any]]:
    """The report's features, worst first: by severity, then score."""
    rows = []
    for row in report.features.all():
        score, label = feature_score(row)
        rows.append({"row": row, "name": row.name, "severity": row.severity, "score": score,
                     "score_label": label})  # fmt: skip
    return sorted(
        rows, key=lambda r: (-SEVERITY_RANK.get(r["severity"], -1), -(r["score"] or 0.0), r["name"])
    )


def _timeline_points(report: DriftReport, name: str) -> list[dict[str, Any]]:
    """The feature's PSI and severity in the model's latest reports (any version). One query
    of four columns: drift.selectors.drift_feature_timeline loads every report's model version
    with its reference statistics (hundreds of kB of JSON each), ~200 ms for 60 reports."""
    rows = (
        DriftFeatureResult.objects.filter(
            report__model_version__model_id=report.model_version.model_id, name=name
        )
        .order_by("-report__window_end", "-report_id")
        .values_list("report_id", "report__window_end", "severity", "psi")[:TIMELINE_REPORTS]
    )
    return [
        {"report_id": pk, "at": at, "severity": severity, "score": psi}
        for pk, at, severity, psi in rows
    ]


PREDICTION_LABEL = "predicted P(up)"
PREDICTION_SCORES = (
    ("psi", "PSI"), ("ks_statistic", "KS D"), ("p_value_corrected", "p (τ-adjusted)"),
    ("wasserstein_normed", "W₁/σ"), ("jensen_shannon", "Jensen–Shannon"),
    ("n_cur", "predictions in window"), ("n_ref", "training predictions"),
)  # fmt: skip


def prediction_context(report: DriftReport) -> dict[str, Any]:
    """The prediction drift card: severity, main statistics and the overlay chart, or the
    reason it was not computed."""
    stats = report.prediction_statistics if report.prediction_severity else None
    if stats is None:
        return {"computed": False, "reason": report.prediction_reason}
    chart = histogram_chart(name=PREDICTION_LABEL, severity=report.prediction_severity,
                            statistics=stats)  # fmt: skip
    return {
        "computed": True,
        "severity": report.prediction_severity,
        "origin": "logged with the predictions"
        if report.source == DriftReport.Source.PREDICTIONS
        else "the model run on the window's features",
        "scores": [(label, stats.get(key)) for key, label in PREDICTION_SCORES],
        "chart": figure_json(distribution_overlay(chart)),
    }


def _report(pk: int) -> DriftReport:
    """drift.selectors.drift_report_detail, without the version's heavy JSON columns."""
    return (
        DriftReport.objects.select_related("model_version__model", "feature_view", "scan")
        .defer(*LEAN_VERSION)
        .prefetch_related(Prefetch("features", queryset=DriftFeatureResult.objects.order_by("id")))
        .get(pk=pk)
    )


@dashboard_view(DRIFT_PERMISSION)
def report_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        report = _report(pk)
    except DriftReport.DoesNotExist as exc:
        raise Http404(f"no drift report {pk}") from exc
    features = ranked_features(report)
    by_name = {f["name"]: f for f in features}
    chosen = by_name.get(request.GET.get("feature", "")) or (features[0] if features else None)
    psi_cuts = (report.thresholds or {}).get("psi")
    for f in features:  # a large score the test could not call significant (drift.charts)
        f["unproven"] = bool(
            psi_cuts and f["severity"] == "NONE" and (f["score"] or 0.0) >= min(psi_cuts)
        )
    context: dict[str, Any] = {
        "report": report,
        "version": report.model_version,
        "features": features,
        "chosen": chosen,
        "thresholds": report.thresholds or {},
        "prediction": prediction_context(report),
        "scores_chart": figure_json(
            feature_scores(
                [
                    {
                        "name": f["name"],
                        "score": f["score"],
                        "severity": f["severity"],
                        "p_value": f["row"].p_value_corrected,
                    }
                    for f in features
                ],
                score_label="PSI",
                thresholds=psi_cuts,
            )
        ),  # fmt: skip
    }
    if chosen is not None:
        row = chosen["row"]
        context["overlay_chart"] = figure_json(
            distribution_overlay(
                histogram_chart(name=row.name, severity=row.severity, statistics=row.statistics)
            )
        )
        context["timeline_chart"] = figure_json(
            feature_timeline(
                _timeline_points(report, row.name),
                name=row.name,
                current_report_id=report.pk,
                thresholds=psi_cuts,
            )
        )
        context["statistics"] = {
            key: value
            for key, value in (row.statistics or {}).items()
            if key not in ("histogram", "name", "severity") and not isinstance(value, dict | list)
        }
    return render(request, "drift/report_detail.html", context)
