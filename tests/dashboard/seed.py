"""Demo content for the dashboard tests: users in the analyst and model admin roles, feature
views with materializations and quality, an experiment with runs (params, metric histories,
artifacts), registered models with versions, stage history, and drift reports with per-feature
results computed by drift.statistics. Written through the services where they exist; the drift
reports directly (a scan needs weeks of materialized rows).

Used by the unit tests (in their test database) and by the browser test, whose server runs in
another process: `manage.py shell -c "from tests.dashboard.seed import seed; seed()"`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone

from drift.models import DriftFeatureResult, DriftReport
from drift.reference import reference_statistics
from drift.severity import overall_severity
from drift.statistics import drift_statistics, prediction_drift_statistics
from experiments.models import Run
from experiments.services import run_artifact_store, run_create, run_finish, run_log_batch
from experiments.services.experiments import experiment_get_or_create
from experiments.train import MODEL_ARTIFACT, REFERENCE_ARTIFACT
from features.models import FeatureDefinition, FeatureView, MaterializationJob
from features.store import feature_definitions_sync
from features.transforms import FEATURE_SPECS
from registry.models import ModelVersion, Stage
from registry.services import model_version_create_from_run, version_transition
from tests.registry.conftest import model_document
from tradingsite.dashboard.roles import ANALYST_GROUP, MODEL_ADMIN_GROUP, roles_ensure
from tradingsite.events import event_publish

PASSWORD = "dash-Board-pass-7"
ANALYST, ADMIN = "ana", "boss"
EXPERIMENT = "next-bar-direction"
MODELS = ("next-bar-direction", "mean-reversion")
SYMBOLS = ("AAPL", "MSFT", "SPY")
ROWS = 400  # rows per side of a drift comparison


def users() -> dict[str, Any]:
    """`ana` (analyst) and `boss` (model admin who may also override the policy)."""
    roles_ensure()
    model = get_user_model()
    made = {}
    for name, group in ((ANALYST, ANALYST_GROUP), (ADMIN, MODEL_ADMIN_GROUP)):
        user = model.objects.filter(username=name).first() or model.objects.create_user(
            name, password=PASSWORD
        )
        user.groups.add(Group.objects.get(name=group))
        made[name] = user
    made[ADMIN].user_permissions.add(Permission.objects.get(codename="override_promotion_policy"))
    return made


def feature_view(
    name: str, n_features: int, *, now: datetime, names: list[str] | None = None
) -> FeatureView:
    """A view version over the first `n_features` built-in features (or `names`), with two
    succeeded materializations (quality per feature) and a running one."""
    feature_definitions_sync()
    names = names or sorted(FEATURE_SPECS)[:n_features]
    version = FeatureView.objects.filter(name=name).count() + 1
    view = FeatureView.objects.create(
        name=name, version=version, feature_names=names, timeframe="1d",
        ttl_seconds=5 * 86_400, watermark=now - timedelta(hours=20),
        description=f"{n_features} technical indicators",
    )  # fmt: skip
    view.features.set(FeatureDefinition.objects.filter(name__in=names))
    rng = np.random.default_rng(version)
    Status = MaterializationJob.Status
    for age_days, done in ((6, True), (3, True), (0, False)):
        partials = {
            symbol: {"worker": "celery@worker-1", "rows_written": 250, "features": {},
                     "newest": (now - timedelta(hours=20 + 30 * i * age_days)).isoformat()}
            for i, symbol in enumerate(SYMBOLS if done else SYMBOLS[:1])
        }  # fmt: skip
        scores = {n: float(np.clip(rng.normal(91, 6), 40, 100)) for n in names}
        quality = {"score": round(float(np.mean(list(scores.values()))), 2),
                   "features": {n: {"completeness": 100.0, "validity": s, "freshness": 100.0,
                                    "stability": s, "score": round(s, 2)}
                                for n, s in scores.items()}}  # fmt: skip
        MaterializationJob.objects.create(
            view=view, mode="incremental",
            status=Status.SUCCEEDED if done else Status.RUNNING,
            symbols=list(SYMBOLS), symbols_done=len(partials), rows_written=250 * len(partials),
            quality=quality if done else {}, partials=partials,
            started_at=now - timedelta(days=age_days, minutes=3),
            finished_at=now - timedelta(days=age_days) if done else None,
        )  # fmt: skip
    return view


def training_frame(names: list[str], *, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(0.0, 1.0, (ROWS, len(names))), columns=names)


def finished_run(view: FeatureView, *, name: str, metrics: dict[str, float], seed: int) -> Run:
    """A finished run of the experiment with params, metric histories and the model and
    reference artifacts a registered version needs."""
    experiment = experiment_get_or_create(name=EXPERIMENT, description="next-bar direction")
    run = run_create(
        experiment=experiment, name=name, feature_view=view,
        training_set={"view": view.name, "version": view.version, "symbols": list(SYMBOLS)},
    )  # fmt: skip
    run_log_batch(
        run=run, params={"C": str(0.5 * seed), "folds": "5", "feature_view": view.name,
                         "penalty": "l2" if seed % 2 else "l1"},
    )  # fmt: skip
    points = []
    for fold in range(1, 6):
        drift = 0.01 * fold * (seed % 3)
        points += [
            {"key": "walk_forward/accuracy", "value": metrics["accuracy"] - 0.02 + drift,
             "step": fold},
            {"key": "walk_forward/log_loss", "value": 0.70 - 0.01 * fold - drift, "step": fold},
        ]  # fmt: skip
    run_log_batch(run=run, metrics=points)
    run_log_batch(run=run, metrics=metrics)
    frame = training_frame(view.feature_names, seed=seed)
    reference = reference_statistics(frame, view.feature_names, bins=10, sample_size=ROWS)
    run_artifact_store(run=run, name=MODEL_ARTIFACT, data=model_document(seed))
    run_artifact_store(run=run, name=REFERENCE_ARTIFACT, data=json.dumps(reference).encode())
    run_artifact_store(run=run, name="notes/readme.txt", data=b"seeded by tests.dashboard")
    return run_finish(run=run)


def drift_report(
    version: ModelVersion, *, window_end: datetime, shift: float, seed: int, publish: bool = True
) -> DriftReport:
    """A report of `version` for the day ending `window_end`: each feature's current window
    shifted by up to `shift` reference stds (features further down the list shift more)."""
    from drift.services.reports import report_payload

    names = list(version.feature_view.feature_names)
    rng = np.random.default_rng(seed)
    reference = rng.normal(0.0, 1.0, (ROWS, len(names)))
    shifts = np.linspace(0.0, shift, len(names))
    current = rng.normal(0.0, 1.0, (ROWS, len(names))) + shifts
    graded = drift_statistics(reference, current, names).as_dict()
    # the predicted P(up): training predictions vs the window's, which move with the shift
    trained = rng.beta(5.0, 5.0, ROWS)
    served = np.clip(rng.beta(5.0, 5.0, ROWS) + 0.1 * shift, 0.0, 1.0)
    with_predictions = reference_statistics(
        pd.DataFrame({names[0]: reference[:, 0]}), names[:1], trained, sample_size=ROWS
    )
    prediction = prediction_drift_statistics(with_predictions, served)
    with transaction.atomic():
        report = DriftReport.objects.create(
            model_version=version, feature_view=version.feature_view,
            window_start=window_end - timedelta(days=1), window_end=window_end, n_rows=ROWS,
            symbols=list(SYMBOLS),
            severity=overall_severity(graded["severity"], prediction.severity),
            share_drifted=graded["drift_share"], n_features_tested=graded["n_tested"],
            n_features_drifted=graded["n_drifted"], thresholds=graded["thresholds"],
            prediction_severity=prediction.severity, prediction_statistics=prediction.as_dict(),
        )  # fmt: skip
        features = DriftFeatureResult.objects.bulk_create(
            DriftFeatureResult(
                report=report, name=f["name"], severity=f["severity"], drifted=f["drifted"],
                psi=f["psi"], ks_statistic=f["ks_statistic"],
                p_value_corrected=f["p_value_corrected"],
                wasserstein_normed=f["wasserstein_normed"], jensen_shannon=f["jensen_shannon"],
                statistics=f,
            )
            for f in graded["features"]
        )  # fmt: skip
        if publish:
            event_publish(
                type="drift.report.created",
                subject=f"model:{version.model.name}",
                payload=report_payload(report, features),
            )
    return report


def seed(*, n_features: int = 12, reports: int = 8) -> dict[str, Any]:
    """Everything the dashboards show; returns the main objects by name."""
    now = timezone.now().replace(microsecond=0)
    people = users()
    admin = people[ADMIN]
    view = feature_view("core_technical", n_features, now=now)
    runs = [
        finished_run(view, name=f"demo-{i}", seed=i, metrics=metrics)
        for i, metrics in enumerate(
            (
                {"accuracy": 0.50, "roc_auc": 0.51, "log_loss": 0.69, "sharpe": 0.1},
                {"accuracy": 0.57, "roc_auc": 0.59, "log_loss": 0.66, "sharpe": 0.8},
                {"accuracy": 0.55, "roc_auc": 0.56, "log_loss": 0.68, "sharpe": 0.4},
            ),
            start=1,
        )
    ]
    first = model_version_create_from_run(model_name=MODELS[0], run=runs[0], user=admin)
    version_transition(version=first, to_stage=Stage.STAGING, actor=admin, reason="smoke test")
    version_transition(
        version=first, to_stage=Stage.PRODUCTION, actor=admin, reason="first model",
        override_justification="baseline model, no edge expected",
    )  # fmt: skip
    candidate = model_version_create_from_run(model_name=MODELS[0], run=runs[1], user=admin)
    other = model_version_create_from_run(model_name=MODELS[1], run=runs[2], user=admin)
    version_transition(version=other, to_stage=Stage.PRODUCTION, actor=admin, reason="launch")
    shifts = np.linspace(0.0, 0.9, reports)
    for k in range(reports):
        end = now - timedelta(days=reports - k)
        drift_report(first, window_end=end, shift=float(shifts[k]), seed=100 + k, publish=False)
        drift_report(other, window_end=end, shift=float(shifts[k]) / 3, seed=200 + k,
                     publish=False)  # fmt: skip
    return {"users": people, "view": view, "runs": runs, "production": first,
            "candidate": candidate, "other": other, "now": now}  # fmt: skip


def publish_report(model: str = MODELS[1], shift: float = 1.5) -> int:
    """A new drift report of `model`'s Production version, now, with its event: what the
    browser test watches arrive live. Returns the report id."""
    version = ModelVersion.objects.select_related("model", "feature_view").get(
        model__name=model, stage=Stage.PRODUCTION
    )
    report = drift_report(version, window_end=datetime.now(UTC), shift=shift, seed=999)
    return report.pk


def seed_for_browser() -> None:
    """seed(), then print (last line, JSON) the ids the browser test's pages need."""
    seeded = seed()
    report = (
        DriftReport.objects.filter(model_version=seeded["production"]).order_by("-window_end")
    ).first()
    job = MaterializationJob.objects.order_by("-id").first()
    runs = seeded["runs"]
    print(
        json.dumps(
            {
                "report": report.pk,
                "experiment": runs[0].experiment_id,
                "runs": [run.run_uuid for run in runs],
                "job": job.pk,
            }
        )
    )


def wide_report(n_features: int = 50, *, model: str = "wide-model") -> DriftReport:
    """A drift report over `n_features` features (more than the built-in ones: synthetic
    names), for the render-time test and bench, with a few earlier reports for its timelines."""
    now = timezone.now().replace(microsecond=0)
    names = [f"feature_{i:03d}" for i in range(n_features)]
    view = feature_view(f"wide_{n_features}", n_features, now=now, names=names)
    run = finished_run(view, name=f"wide-{n_features}", seed=7, metrics={"accuracy": 0.55})
    version = model_version_create_from_run(model_name=f"{model}-{n_features}", run=run, user=None)
    version = ModelVersion.objects.select_related("model", "feature_view").get(pk=version.pk)
    for k in range(5):
        drift_report(version, window_end=now - timedelta(days=6 - k), shift=0.2 * k,
                     seed=300 + k, publish=False)  # fmt: skip
    return drift_report(version, window_end=now, shift=1.2, seed=399, publish=False)
