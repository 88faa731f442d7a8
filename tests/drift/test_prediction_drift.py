"""Prediction drift: the distribution of the predicted P(up) in a scan's window against the
training predictions stored in the reference, with the features' statistics and grading. From
the prediction log the logged probabilities are compared; from materialized features the
version's own model (loaded and verified by registry.serving) is run on the window's rows.
Without a prediction column or a usable model the report says why, never a number."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from django.core.management import call_command
from django.test import Client
from scipy import stats
from scipy.spatial.distance import jensenshannon

from drift.metrics import PREDICTION_FEATURE, severity_samples
from drift.reference import histogram_counts, reference_statistics
from drift.services import current_window, drift_scan_all, drift_scan_version
from drift.services.predictions import NO_REFERENCE
from drift.severity import Severity, overall_severity
from drift.statistics import PSI_EPSILON, prediction_drift_statistics
from experiments.storage import blob_path, blob_write
from experiments.training import build_model, model_from_bytes, model_to_bytes
from registry import serving
from registry.models import ModelVersion, PredictionLog, Stage
from tests.drift.conftest import FEATURES, FIRST_DAY, SYMBOLS, client_for
from tradingsite.models import Event

MakeVersion = Callable[..., ModelVersion]
N_TRAIN = 400


# --- pure: the statistics are scipy's, the rule is the features' ------------------------------


def _reference(ref_p: np.ndarray, **kwargs: Any) -> dict[str, Any]:
    frame = pd.DataFrame({"x": np.arange(len(ref_p), dtype=float)})
    stored = reference_statistics(frame, ["x"], ref_p, sample_size=len(ref_p), **kwargs)
    return json.loads(json.dumps(stored))  # as the version stores it


def test_prediction_drift_numbers_are_scipys_on_the_same_probabilities() -> None:
    rng = np.random.default_rng(71)
    ref_p = rng.beta(5, 5, 800)
    cur_p = rng.beta(6, 4, 300)
    reference = _reference(ref_p)
    drift = prediction_drift_statistics(reference, cur_p)
    sample = np.asarray(reference["prediction"]["sample"])
    assert drift.name == "prediction" and drift.kind == "numeric" and drift.n_cur == 300
    exact = stats.ks_2samp(sample, cur_p, method="exact")
    assert drift.ks_statistic == pytest.approx(exact.statistic, abs=1e-9)
    assert drift.p_value == pytest.approx(exact.pvalue, rel=1e-9)
    assert drift.autocorrelation_time == 1.0  # no τ stored, no series: rows independent
    assert drift.p_value_adjusted == drift.p_value == drift.p_value_corrected
    w = stats.wasserstein_distance(sample, cur_p)
    assert drift.wasserstein == pytest.approx(w, abs=1e-9)
    assert drift.wasserstein_normed == pytest.approx(w / np.std(ref_p, ddof=1), abs=1e-9)
    edges = reference["prediction"]["edges"]
    ref_share = histogram_counts(ref_p, edges) / len(ref_p)
    cur_share = histogram_counts(cur_p, edges) / len(cur_p)
    expected_psi = np.sum(
        (np.maximum(cur_share, PSI_EPSILON) - np.maximum(ref_share, PSI_EPSILON))
        * np.log(np.maximum(cur_share, PSI_EPSILON) / np.maximum(ref_share, PSI_EPSILON))
    )
    assert drift.psi == pytest.approx(expected_psi, abs=1e-9)
    assert drift.jensen_shannon == pytest.approx(
        jensenshannon(ref_share, cur_share, base=2), abs=1e-9
    )
    assert drift.severity == Severity.HIGH  # shifted by half a reference std and more


def test_a_stored_tau_gives_the_p_value_on_effective_sample_sizes() -> None:
    rng = np.random.default_rng(72)
    n_series, length = 4, 500
    ref_p = np.empty(n_series * length)
    for s in range(n_series):  # an AR(1) path per symbol: predictions are autocorrelated
        path = np.zeros(length)
        for t in range(1, length):
            path[t] = 0.9 * path[t - 1] + rng.normal(0, 0.3)
        ref_p[s * length : (s + 1) * length] = 1 / (1 + np.exp(-path))
    series = np.repeat(np.arange(n_series), length)
    reference = _reference(ref_p, series=series)
    tau = reference["prediction"]["autocorrelation_time"]
    assert tau > 5
    cur_p = np.clip(ref_p[:200] + 0.05, 0, 1)
    drift = prediction_drift_statistics(reference, cur_p)
    assert drift.autocorrelation_time == pytest.approx(tau)
    n, m = len(ref_p), len(cur_p)
    n_eff = 1 / (1 / n + (tau - 1) / n)
    m_eff = m / tau
    en = n_eff * m_eff / (n_eff + m_eff)
    expected = stats.kstwo.sf(drift.ks_statistic, round(en))
    assert drift.p_value_adjusted == pytest.approx(expected, rel=1e-9)
    assert drift.p_value_adjusted > drift.p_value  # far fewer independent draws than rows


def test_a_reference_without_a_prediction_column_is_refused() -> None:
    frame = pd.DataFrame({"x": np.arange(50.0)})
    stored = reference_statistics(frame, ["x"])
    with pytest.raises(ValueError, match="no prediction column"):
        prediction_drift_statistics(stored, np.full(10, 0.5))
    with pytest.raises(ValueError, match="stored reference"):
        prediction_drift_statistics([1.0, 2.0], np.full(10, 0.5))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("features", "prediction", "expected"),
    [
        ("NONE", None, "NONE"),
        ("LOW", "NONE", "LOW"),
        ("LOW", "HIGH", "HIGH"),
        ("HIGH", "NONE", "HIGH"),
        ("NONE", "MEDIUM", "MEDIUM"),
    ],
)
def test_the_report_severity_is_the_higher_of_features_and_predictions(
    features: str, prediction: str | None, expected: str
) -> None:
    assert overall_severity(features, prediction) == Severity(expected)


# --- scans: a version with a real model and training predictions ------------------------------


@pytest.fixture(autouse=True)
def _no_models_held(settings: Any, tmp_path: Path) -> Iterator[None]:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    serving.serving_cache_clear()
    yield
    serving.serving_cache_clear()


def _train(seed: int = 3) -> tuple[Any, pd.DataFrame]:
    """A logistic model on N(0, 1) features whose label leans on alpha, and its training rows."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(0.0, 1.0, (N_TRAIN, len(FEATURES))), columns=FEATURES)
    label = (frame["alpha"] + rng.normal(0.0, 1.0, N_TRAIN) > 0).astype(int)
    return build_model().fit(frame, label), frame


@pytest.fixture
def make_model_version(make_version: MakeVersion) -> Callable[..., ModelVersion]:
    """make_version's version, with a stored model artifact and a reference that holds the
    model's predictions on its training rows (as experiments.train stores it)."""

    def make(*, shift: float = 3.0, with_artifact: bool = True, **kwargs: Any) -> ModelVersion:
        version = make_version(shift=shift, **kwargs)
        pipeline, frame = _train()
        proba = pipeline.predict_proba(frame)[:, 1]
        reference = reference_statistics(
            frame, FEATURES, proba, series=np.repeat(SYMBOLS, N_TRAIN // 2), sample_size=N_TRAIN
        )
        version.reference_statistics = json.loads(json.dumps(reference))
        fields = ["reference_statistics"]
        if with_artifact:
            version.artifact_sha256, _ = blob_write([model_to_bytes(pipeline)], max_bytes=1 << 20)
            fields.append("artifact_sha256")
        version.save(update_fields=fields)
        return version

    return make


def _logged(version: ModelVersion, *, days: int, shift: float, proba: Callable[..., Any]) -> None:
    """One logged prediction per symbol and day: features N(shift, 1), P(up) from `proba`."""
    rng = np.random.default_rng(9)
    PredictionLog.objects.bulk_create(
        PredictionLog(
            model_version=version,
            symbol=symbol,
            as_of=FIRST_DAY + timedelta(days=day),
            features=list(rng.normal(shift, 1.0, len(FEATURES))),
            probability=float(proba(rng)),
            signal="long",
            stale=False,
            latency_ms=1.0,
        )
        for day in range(days)
        for symbol in SYMBOLS
    )


def _reference_sample(version: ModelVersion) -> np.ndarray:
    return np.asarray(version.reference_statistics["prediction"]["sample"], dtype=float)


@pytest.mark.django_db
def test_from_materialized_features_the_versions_model_is_run_on_the_window(
    make_model_version: Callable[..., ModelVersion],
) -> None:
    version = make_model_version(shift=3.0)
    report = drift_scan_version(version).report
    assert report is not None and report.source == "features"
    assert report.prediction_severity == "HIGH" and report.prediction_reason == ""
    # the same numbers from the artifact run by hand on the same window
    window = current_window(version)
    model = model_from_bytes(blob_path(version.artifact_sha256).read_bytes())
    cur_p = model.predict_proba(window.matrix)[:, 1]
    stored = report.prediction_statistics
    assert stored["n_cur"] == window.n_rows == 120
    sample = _reference_sample(version)
    assert stored["ks_statistic"] == pytest.approx(
        stats.ks_2samp(sample, cur_p).statistic, abs=1e-9
    )
    assert stored["wasserstein"] == pytest.approx(
        stats.wasserstein_distance(sample, cur_p), abs=1e-9
    )
    assert sum(stored["histogram"]["current"]) == 120
    assert sum(stored["histogram"]["reference"]) == N_TRAIN
    # loaded once, through serving: the process now serves this Production version
    assert serving.serving_cache_snapshot()[version.model.name] == (1, version.artifact_sha256)


@pytest.mark.django_db
def test_a_version_not_in_production_is_run_through_the_same_verifying_loader(
    make_model_version: Callable[..., ModelVersion],
) -> None:
    version = make_model_version(shift=0.0, stage=Stage.STAGING)
    report = drift_scan_version(version).report
    assert report is not None
    assert report.prediction_severity in {"NONE", "LOW"}, report.prediction_statistics
    assert report.severity in {"NONE", "LOW"}
    assert serving.serving_cache_snapshot() == {}  # nothing cached for serving


@pytest.mark.django_db
def test_from_the_prediction_log_the_logged_probabilities_are_compared(
    make_model_version: Callable[..., ModelVersion], settings: Any
) -> None:
    """Unchanged inputs, but the model answered ~0.9 on all of them: the report is HIGH on
    its predictions alone, and the logged numbers are the ones compared (no model is loaded:
    this version's artifact is not even stored)."""
    settings.DRIFT_MIN_PREDICTION_ROWS = 100
    version = make_model_version(shift=0.0, with_artifact=False)
    _logged(version, days=60, shift=0.0, proba=lambda rng: rng.uniform(0.85, 0.95))
    report = drift_scan_version(version).report
    assert report is not None and report.source == "predictions"
    assert report.n_features_drifted == 0  # the inputs did not move...
    assert report.prediction_severity == "HIGH"  # ...the outputs did
    assert report.severity == "HIGH"
    # one log row per (symbol, bar); the statistics do not depend on the rows' order
    logged = np.array(
        PredictionLog.objects.filter(model_version=version).values_list("probability", flat=True)
    )
    stored = report.prediction_statistics
    sample = _reference_sample(version)
    assert stored["n_cur"] == 120
    assert stored["ks_statistic"] == pytest.approx(
        stats.ks_2samp(sample, logged).statistic, abs=1e-9
    )
    assert stored["wasserstein"] == pytest.approx(
        stats.wasserstein_distance(sample, logged), abs=1e-9
    )
    scan_text = drift_scan_all(trigger="test").detail  # the window is already reported
    assert "HIGH, 0% of features drifted, predictions HIGH" in scan_text
    alert = Event.objects.get(type="drift.alert")
    assert alert.payload["prediction_severity"] == "HIGH"
    assert alert.payload["features_drifted"] == []


@pytest.mark.django_db
def test_logged_predictions_like_the_training_ones_are_not_drift(
    make_model_version: Callable[..., ModelVersion], settings: Any
) -> None:
    settings.DRIFT_MIN_PREDICTION_ROWS = 100
    version = make_model_version(shift=0.0, with_artifact=False)
    sample = _reference_sample(version)
    _logged(version, days=60, shift=0.0, proba=lambda rng: rng.choice(sample))
    report = drift_scan_version(version).report
    assert report is not None and report.source == "predictions"
    assert report.prediction_severity in {"NONE", "LOW"}
    assert report.severity in {"NONE", "LOW"}
    assert not Event.objects.filter(type__startswith="drift.alert").exists()


@pytest.mark.django_db
def test_the_window_keeps_the_latest_logged_probability_of_each_symbol_and_bar(
    make_model_version: Callable[..., ModelVersion], settings: Any
) -> None:
    """A bar asked about twice counts once, with the probability answered last (as its
    features): the earlier answers (0.01) are not compared."""
    settings.DRIFT_MIN_PREDICTION_ROWS = 100
    version = make_model_version(shift=0.0, with_artifact=False)
    _logged(version, days=60, shift=0.0, proba=lambda rng: 0.01)
    _logged(version, days=60, shift=0.0, proba=lambda rng: 0.7)  # logged later: these count
    window = current_window(version)
    assert window.n_rows == 120 and window.predictions is not None
    np.testing.assert_array_equal(window.predictions, np.full(120, 0.7))
    report = drift_scan_version(version).report
    assert report is not None and report.prediction_statistics["n_cur"] == 120


@pytest.mark.django_db
def test_without_a_usable_model_artifact_the_report_says_why(
    make_model_version: Callable[..., ModelVersion],
) -> None:
    version = make_model_version(shift=3.0, with_artifact=False)
    report = drift_scan_version(version).report
    assert report is not None and report.source == "features"
    assert report.prediction_severity == "" and report.prediction_statistics is None
    assert "missing from the artifact store" in report.prediction_reason
    assert report.severity == "HIGH"  # graded on its features alone
    payload = Event.objects.get(type="drift.report.created").payload
    assert payload["prediction_severity"] is None
    assert "artifact" in payload["prediction_reason"]


@pytest.mark.django_db
def test_a_tampered_model_artifact_is_not_run(
    make_model_version: Callable[..., ModelVersion],
) -> None:
    version = make_model_version(shift=3.0)
    path = blob_path(version.artifact_sha256)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b'"intercept": ', b'"intercept": 1'))
    report = drift_scan_version(version).report
    assert report is not None and report.prediction_severity == ""
    assert "sha256" in report.prediction_reason


@pytest.mark.django_db
def test_without_training_predictions_in_the_reference_the_report_says_why(
    make_version: MakeVersion,
) -> None:
    report = drift_scan_version(make_version(shift=3.0)).report
    assert report is not None
    assert report.prediction_severity == "" and report.prediction_reason == NO_REFERENCE
    assert report.prediction_statistics is None


# --- API, metrics, dashboard ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_report_detail_and_histograms_carry_the_prediction_drift(
    make_model_version: Callable[..., ModelVersion], admin: Any
) -> None:
    report = drift_scan_version(make_model_version(shift=3.0)).report
    assert report is not None
    client = client_for(admin)
    detail = client.get(f"/api/v1/drift/reports/{report.pk}").json()
    block = detail["prediction"]
    assert block["computed"] is True and block["origin"] == "model"
    assert block["severity"] == detail["prediction_severity"] == "HIGH"
    assert block["n"] == 120 and block["n_reference"] == N_TRAIN and block["reason"] == ""
    assert block["psi"] == report.prediction_statistics["psi"] > 0.25
    assert block["ks_statistic"] == report.prediction_statistics["ks_statistic"]
    assert "histogram" not in block["statistics"]
    assert block["statistics"]["autocorrelation_time"] >= 1
    assert [f["name"] for f in detail["features"]] == FEATURES  # not a feature
    listed = client.get("/api/v1/drift/reports").json()["results"]
    assert listed[0]["prediction_severity"] == "HIGH"
    histograms = client.get(f"/api/v1/drift/reports/{report.pk}/histograms?feature=alpha").json()
    assert [f["name"] for f in histograms["features"]] == ["alpha"]
    chart = histograms["prediction"]
    assert chart["name"] == "prediction" and chart["severity"] == "HIGH"
    assert sum(chart["reference"]["counts"]) == N_TRAIN and sum(chart["current"]["counts"]) == 120
    assert len(chart["bins"]) == len(chart["reference"]["counts"]) == len(chart["edges"]) + 1
    assert histograms["prediction_reason"] == ""


@pytest.mark.django_db
def test_the_api_says_why_prediction_drift_is_absent(make_version: MakeVersion, admin: Any) -> None:
    report = drift_scan_version(make_version(shift=3.0)).report
    assert report is not None
    client = client_for(admin)
    block = client.get(f"/api/v1/drift/reports/{report.pk}").json()["prediction"]
    assert block["computed"] is False and block["severity"] is None and block["n"] is None
    assert block["psi"] is None and block["statistics"] is None
    assert block["reason"] == NO_REFERENCE
    histograms = client.get(f"/api/v1/drift/reports/{report.pk}/histograms").json()
    assert histograms["prediction"] is None
    assert histograms["prediction_reason"] == NO_REFERENCE


@pytest.mark.django_db
def test_the_openapi_schema_describes_the_prediction_block(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    call_command("spectacular", "--format", "openapi-json", "--file", str(out))
    components = json.loads(out.read_text())["components"]["schemas"]
    detail = components["ReportDetail"]["properties"]
    assert "#/components/schemas/PredictionDrift" in json.dumps(detail["prediction"])
    block = components["PredictionDrift"]["properties"]
    assert {"severity", "n", "reason", "psi", "ks_statistic", "statistics"} <= set(block)
    histograms = components["Histograms"]["properties"]
    assert {"prediction", "prediction_reason"} <= set(histograms)


@pytest.mark.django_db
def test_the_severity_gauge_has_the_prediction_drift(
    make_model_version: Callable[..., ModelVersion],
) -> None:
    version = make_model_version(shift=3.0)
    drift_scan_version(version)
    samples = {(model, feature): rank for model, feature, rank in severity_samples()}
    assert samples[(version.model.name, PREDICTION_FEATURE)] == 3


@pytest.mark.django_db
def test_the_report_page_charts_the_prediction_drift_with_its_severity(
    make_model_version: Callable[..., ModelVersion], admin: Any
) -> None:
    report = drift_scan_version(make_model_version(shift=3.0)).report
    assert report is not None
    client = Client()
    client.force_login(admin)
    response = client.get(f"/dashboard/drift/reports/{report.pk}/")
    assert response.status_code == 200
    prediction = response.context["prediction"]
    assert prediction["computed"] and prediction["severity"] == "HIGH"
    chart = prediction["chart"]
    go.Figure(chart)  # a valid plotly figure
    reference, current = chart["data"]
    assert (reference["name"], current["name"]) == ("reference", "current window")
    assert sum(current["customdata"]) == 120
    body = response.content.decode()
    assert 'data-figure="prediction-chart"' in body and 'id="prediction-chart"' in body
    assert "prediction drift" in body and "sev-HIGH" in body


@pytest.mark.django_db
def test_the_report_page_says_why_prediction_drift_is_absent(
    make_version: MakeVersion, admin: Any
) -> None:
    report = drift_scan_version(make_version(shift=3.0)).report
    assert report is not None
    client = Client()
    client.force_login(admin)
    body = client.get(f"/dashboard/drift/reports/{report.pk}/").content.decode()
    assert "prediction-chart" not in body
    assert "Not computed: the reference statistics hold no prediction column" in body
