"""`make run`'s demo set-up: a login for the newcomer, demo market bars, the default feature view,
a tracked training run, and its model registered and in Production (development only)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from experiments.models import Run
from experiments.train import DEFAULT_EXPERIMENT, model_train
from features.demo import DEMO_SYMBOLS, demo_bars, late_regime_first_bar
from features.models import Bar
from features.services import bars_upsert
from features.store import feature_view_ensure_default
from registry.errors import RegistryError
from registry.models import ModelVersion, PredictionLog, RegisteredModel, Stage
from registry.services import model_version_create_from_run, policy_check, version_transition
from registry.serving import MAX_PREDICT_SYMBOLS, predict

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "admin"  # noqa: S105 - development profile only; refused in production
# A read-only dashboard login beside the admin (the analyst role), development only too.
DEMO_ANALYST = "analyst"
DEMO_ANALYST_PASSWORD = "analyst"  # noqa: S105
DEMO_MODEL = "next-bar-direction"
# The demo bars are a random walk with a late regime change: the model has no edge (accuracy and
# ROC AUC ~0.5), so the default policy's metric floors refuse it, by design. The demo admin
# overrides them with this recorded justification; the hash and permission rules still apply.
DEMO_OVERRIDE = "demo model, no edge expected"


class Command(BaseCommand):
    help = (
        "Create the demo admin user (admin / admin) and load demo market bars, each only if "
        "absent. Refused in production."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.IS_PRODUCTION:
            raise CommandError("bootstrap_demo is for development; use create_api_user instead")
        users = get_user_model().objects
        if not users.filter(username=DEMO_USERNAME).exists():
            users.create_superuser(DEMO_USERNAME, "admin@example.com", DEMO_PASSWORD)
            self.stdout.write(f"Created demo user {DEMO_USERNAME!r}.")
        self._ensure_analyst()
        self._load_demo_bars()
        view = feature_view_ensure_default()
        job = view.jobs.first()
        if job is not None:
            self.stdout.write(
                f"Feature view {view}: {job.rows_written} rows materialized, "
                f"quality {job.quality.get('score')}."
            )
        self._train_demo_model()
        self._register_demo_model()
        self._predict_demo()
        self.stdout.write(
            f"Log in as {DEMO_USERNAME} / {DEMO_PASSWORD} (browser), or get an API token with:\n"
            f"  curl -s -X POST localhost:{settings.PORT}/api/v1/auth/token/ "
            f"-H 'Content-Type: application/json' "
            f'-d \'{{"username":"{DEMO_USERNAME}","password":"{DEMO_PASSWORD}"}}\''
        )
        self.stdout.write(
            f"Dashboards: http://localhost:{settings.PORT}/dashboard/ as {DEMO_USERNAME} / "
            f"{DEMO_PASSWORD} (superuser: every role) or {DEMO_ANALYST} / "
            f"{DEMO_ANALYST_PASSWORD} (analyst: read-only, every API write is a 403); "
            "development only. Users for training scripts (MLflow) or data loads: "
            "manage.py create_api_user NAME --role researcher / --role data-engineer."
        )
        if ModelVersion.objects.filter(model__name=DEMO_MODEL, stage=Stage.PRODUCTION).exists():
            self.stdout.write(
                "and predict with the demo model (TOKEN = the token's access value):\n"
                f"  curl -s -X POST localhost:{settings.PORT}/api/v1/models/{DEMO_MODEL}/predict "
                "-H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' "
                f"-d '{{\"symbols\": {json.dumps(list(DEMO_SYMBOLS[:2]))}}}'"
            )

    def _ensure_analyst(self) -> None:
        """The demo analyst: reads every dashboard and the API, writes nothing (once: kept if
        present). The demo's own writes (bars, training, registration) run as services or as
        the superuser admin, so the analyst needs no other role."""
        from django.contrib.auth.models import Group

        from tradingsite.dashboard.roles import ANALYST_GROUP, roles_ensure

        roles_ensure()
        users = get_user_model().objects
        analyst = users.filter(username=DEMO_ANALYST).first()
        if analyst is None:
            analyst = users.create_user(DEMO_ANALYST, "analyst@example.com", DEMO_ANALYST_PASSWORD)
            self.stdout.write(f"Created demo user {DEMO_ANALYST!r} (analyst, read-only).")
        analyst.groups.add(Group.objects.get(name=ANALYST_GROUP))

    def _train_demo_model(self) -> None:
        """Seed §10 step 5: one tracked training run, on the bars before the demo's late regime
        change, so that drift monitoring later compares the new regime with what it learned."""
        if Run.objects.filter(experiment__name=DEFAULT_EXPERIMENT).exists():
            return
        symbols = [s for s in DEMO_SYMBOLS if Bar.objects.filter(symbol=s, timeframe="1d").exists()]
        if not symbols:
            return
        ends = []
        for symbol in symbols:
            stamps = (
                Bar.objects.filter(symbol=symbol, timeframe="1d")
                .order_by("ts")
                .values_list("ts", flat=True)
            )
            ends.append(stamps[late_regime_first_bar(stamps.count()) - 1])
        run = model_train(symbols=symbols, end=min(ends), run_name="demo", source="bootstrap_demo")
        latest = dict(run.latest_metrics.values_list("key", "value"))
        self.stdout.write(
            f"Trained demo run {run.run_uuid} on bars up to {min(ends):%Y-%m-%d}: accuracy "
            f"{latest.get('accuracy', float('nan')):.3f}, ROC AUC {latest.get('roc_auc', 0):.3f}."
        )

    def _register_demo_model(self) -> None:
        """Register the demo run's model as next-bar-direction v1 and promote it to Production
        through the promotion policy, as the demo admin (once: skipped if the model exists)."""
        if RegisteredModel.objects.filter(name=DEMO_MODEL).exists():
            return
        run = (
            Run.objects.filter(
                experiment__name=DEFAULT_EXPERIMENT, name="demo", status=Run.Status.FINISHED
            )
            .order_by("-start_time")
            .first()
        )
        if run is None:
            return
        admin = get_user_model().objects.get(username=DEMO_USERNAME)
        version = model_version_create_from_run(
            model_name=DEMO_MODEL, run=run, user=admin, description="bootstrap_demo's model"
        )
        check = policy_check(version=version, to_stage=Stage.PRODUCTION, actor=admin)
        failed = [r.rule for r in check.results if not r.passed]
        transition = version_transition(
            version=version,
            to_stage=Stage.PRODUCTION,
            actor=admin,
            reason="demo",
            override_justification=DEMO_OVERRIDE if failed else "",
        )
        how = f"overriding {', '.join(failed)} ({DEMO_OVERRIDE!r})" if failed else "policy passed"
        self.stdout.write(
            f"Registered {DEMO_MODEL} v{version.version} and promoted it to Production "
            f"({transition.outcome}: {how})."
        )

    def _predict_demo(self) -> None:
        """A first few predictions of the Production demo model through the serving path, so the
        prediction log (drift monitoring's current window) is not empty (once: skipped if the
        model has predictions already)."""
        if PredictionLog.objects.filter(model_version__model__name=DEMO_MODEL).exists():
            return
        version = ModelVersion.objects.filter(
            model__name=DEMO_MODEL, stage=Stage.PRODUCTION
        ).first()
        if version is None or version.training_set is None:
            return
        symbols = list(version.training_set.get("symbols") or [])[:MAX_PREDICT_SYMBOLS]
        if not symbols:
            return
        admin = get_user_model().objects.get(username=DEMO_USERNAME)
        try:
            batch = predict(
                model_name=DEMO_MODEL, symbols=symbols, user=admin, request_id="bootstrap_demo"
            )
        except RegistryError as exc:
            self.stdout.write(f"Demo predictions skipped: {exc}")
            return
        shown = ", ".join(
            f"{e['symbol']} {e['signal']} ({e['probability']:.3f})"
            if e["error"] is None
            else f"{e['symbol']} {e['error']}"
            for e in batch.entries
        )
        self.stdout.write(f"Predicted with {DEMO_MODEL} v{batch.served.version}: {shown}.")

    def _load_demo_bars(self) -> None:
        """Demo bars go into an empty store only, so real or imported data is never mixed in."""
        if stored := Bar.objects.count():
            self.stdout.write(f"Market data present ({stored} bars); demo bars not loaded.")
            return
        # The series ends at the last daily close, so the demo's features are fresh today.
        today_close = timezone.now().replace(hour=21, minute=0, second=0, microsecond=0)
        last_close = today_close if today_close <= timezone.now() else today_close - timedelta(1)
        frame = demo_bars(end=last_close)
        result = bars_upsert(frame=frame, timeframe="1d")
        symbols = ", ".join(sorted(frame["symbol"].unique()))
        self.stdout.write(
            f"Loaded {result.created} demo daily bars for {symbols} "
            f"({frame['ts'].min():%Y-%m-%d} to {frame['ts'].max():%Y-%m-%d})."
        )
