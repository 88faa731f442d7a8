"""POST /api/v1/models/{name}/predict: the Production version on the online features of the view
version it was trained on, loaded once per version, hash-checked, never a pickle, every
prediction logged and announced."""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
from collections.abc import Callable, Iterator
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework.test import APIClient

from experiments import training
from experiments.services import run_artifact_store, run_create, run_finish
from experiments.services.experiments import experiment_get_or_create
from experiments.storage import blob_open, blob_path
from experiments.train import MODEL_ARTIFACT, model_train
from experiments.training import (
    build_model,
    model_from_bytes,
    model_to_bytes,
    positions_from_proba,
)
from features.demo import demo_bars
from features.models import FeatureView
from features.services import bars_upsert
from features.store import (
    _online_key,
    feature_view_ensure_default,
    feature_view_materialize,
    feature_view_register,
    online_features,
)
from features.transforms import CORE_TECHNICAL
from registry import serving
from registry.models import ModelVersion, PredictionLog, Stage
from registry.services import model_version_create_from_run, version_rollback, version_transition
from tests.registry.conftest import client_for
from tradingsite.models import Event
from tradingsite.security.breakers import get_breaker

pytestmark = pytest.mark.django_db
SYMBOLS = ("AAA", "BBB", "CCC")
MODEL = "direction"
URL = f"/api/v1/models/{MODEL}/predict"
OVERRIDE = "tests: tiny data, no edge expected"


@pytest.fixture(autouse=True)
def _no_models_held() -> Iterator[None]:
    serving.serving_cache_clear()
    yield
    serving.serving_cache_clear()


@pytest.fixture
def view() -> FeatureView:
    """core_technical v1, materialized on recent bars (so fresh) for three symbols."""
    end = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    bars_upsert(frame=demo_bars(symbols=SYMBOLS, n_bars=260, end=end), timeframe="1d")
    return feature_view_ensure_default()


@pytest.fixture
def train(view: FeatureView) -> Callable[..., ModelVersion]:
    """Train on the view and register the run's model as the next version of MODEL."""

    def make(c: float = 1.0) -> ModelVersion:
        run = model_train(n_folds=2, model_params={"C": c}, view_name=view.name)
        return model_version_create_from_run(model_name=MODEL, run=run, user=None)

    return make


def promote(version: ModelVersion, actor: Any) -> None:
    version_transition(
        version=version,
        to_stage=Stage.PRODUCTION,
        actor=actor,
        reason="tests",
        override_justification=OVERRIDE,
    )


def load_directly(version: ModelVersion) -> Any:
    with blob_open(version.artifact_sha256) as blob:
        return model_from_bytes(blob.read(), sha256=version.artifact_sha256)


def online_vector(view: FeatureView, symbol: str) -> tuple[np.ndarray, str]:
    [row] = online_features(view=view, symbols=[symbol])
    values = [row["values"][n] for n in view.feature_names]
    return np.array([math.nan if v is None else v for v in values], dtype=float), row["ts"]


def post(client: APIClient, symbols: Any, url: str = URL) -> Any:
    return client.post(url, {"symbols": symbols}, format="json")


def register_raw_artifact(view: FeatureView, data: bytes) -> ModelVersion:
    """A FINISHED run whose model artifact holds `data` as uploaded, registered as MODEL."""
    run = run_create(
        experiment=experiment_get_or_create(name="uploads"), name="upload", feature_view=view
    )
    run_artifact_store(run=run, name=MODEL_ARTIFACT, data=data)
    run = run_finish(run=run)
    return model_version_create_from_run(model_name=MODEL, run=run, user=None)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- what a prediction is --------------------------------------------------------------------


def test_it_answers_what_the_model_says_on_the_online_features(
    train: Callable[..., ModelVersion], overrider: Any, api_client: APIClient, view: FeatureView
) -> None:
    version = train()
    promote(version, overrider)
    response = post(api_client, ["BBB", "AAA", "CCC"])
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["model"], body["version"]) == (MODEL, 1)
    assert body["feature_view"] == {"name": view.name, "version": view.version}
    assert body["latency_ms"] > 0 and body["request_id"] == response["X-Request-ID"]
    model = load_directly(version)
    assert [p["symbol"] for p in body["predictions"]] == ["BBB", "AAA", "CCC"]
    for entry in body["predictions"]:
        vector, ts = online_vector(view, entry["symbol"])
        expected = float(model.predict_proba(vector.reshape(1, -1))[0, 1])
        assert abs(entry["probability"] - expected) <= 1e-12
        position = positions_from_proba([expected])[0]
        assert entry["signal"] == {1.0: "long", -1.0: "short", 0.0: "flat"}[position]
        assert entry["as_of"] == ts and entry["stale"] is False and entry["error"] is None


def test_it_uses_the_feature_view_version_the_model_was_trained_on(
    train: Callable[..., ModelVersion], overrider: Any, api_client: APIClient, view: FeatureView
) -> None:
    promote(train(), overrider)
    newer, created = feature_view_register(name=view.name, feature_names=CORE_TECHNICAL[:4])
    assert created and newer.version == 2
    feature_view_materialize(view=newer, mode="full")
    cache.clear()  # the v1 online entries are refilled from v1's offline rows
    body = post(api_client, ["AAA"]).json()
    assert body["feature_view"] == {"name": view.name, "version": 1}
    row = PredictionLog.objects.get()
    vector, _ = online_vector(view, "AAA")
    assert len(row.features) == len(view.feature_names) == len(CORE_TECHNICAL)
    np.testing.assert_array_equal(np.array(row.features), vector)


def test_a_symbol_without_online_features_gets_its_own_error_entry(
    train: Callable[..., ModelVersion], overrider: Any, api_client: APIClient
) -> None:
    promote(train(), overrider)
    response = post(api_client, ["AAA", "NOPE"])
    assert response.status_code == 200
    ok, missing = response.json()["predictions"]
    assert ok["symbol"] == "AAA" and ok["error"] is None and ok["signal"] in {"long", "short"}
    assert missing["symbol"] == "NOPE" and missing["error"] == "no_features"
    assert missing["signal"] is None and missing["probability"] is None
    assert "core_technical v1" in missing["detail"]
    assert list(PredictionLog.objects.values_list("symbol", flat=True)) == ["AAA"]


def test_stale_features_are_flagged_and_still_answered(
    train: Callable[..., ModelVersion], overrider: Any, api_client: APIClient, view: FeatureView
) -> None:
    promote(train(), overrider)
    entry = cache.get(_online_key(view, "AAA"))
    old = timezone.now() - timedelta(seconds=view.ttl_seconds + 3600)
    cache.set(_online_key(view, "AAA"), {**entry, "ts": old.isoformat()}, None)
    aaa, bbb = post(api_client, ["AAA", "BBB"]).json()["predictions"]
    assert aaa["stale"] is True and aaa["as_of"] == old.isoformat() and aaa["signal"]
    assert bbb["stale"] is False
    assert PredictionLog.objects.get(symbol="AAA").stale is True


def test_with_the_online_store_down_the_offline_store_answers(
    train: Callable[..., ModelVersion], overrider: Any, api_client: APIClient, view: FeatureView
) -> None:
    promote(train(), overrider)
    expected = post(api_client, ["AAA", "BBB", "NOPE"]).json()["predictions"]
    down = mock.patch.object(serving, "online_features", side_effect=RedisConnectionError("down"))
    with down as lookups:
        for _ in range(7):  # the breaker opens after 5 failures; later calls skip the cache
            response = post(api_client, ["AAA", "BBB", "NOPE"])
            assert response.status_code == 200
            assert response.json()["predictions"] == expected
    assert lookups.call_count == 5 and get_breaker("cache").state == "open"
    assert PredictionLog.objects.count() == 2 * 8


# --- loading and reloading -------------------------------------------------------------------


def test_the_model_is_loaded_once_and_promotions_and_rollbacks_take_effect_at_once(
    train: Callable[..., ModelVersion], overrider: Any, api_client: APIClient, view: FeatureView
) -> None:
    v1, v2 = train(c=1.0), train(c=0.001)
    assert v1.artifact_sha256 != v2.artifact_sha256
    promote(v1, overrider)
    vector, _ = online_vector(view, "AAA")

    def served() -> tuple[int, float]:
        body = post(api_client, ["AAA"]).json()
        return body["version"], body["predictions"][0]["probability"]

    def expected(version: ModelVersion) -> float:
        return float(load_directly(version).predict_proba(vector.reshape(1, -1))[0, 1])

    with mock.patch.object(training, "model_from_bytes", wraps=model_from_bytes) as loads:
        for _ in range(3):
            number, p = served()
            assert number == 1 and abs(p - expected(v1)) <= 1e-12
        assert loads.call_count == 1
        promote(v2, overrider)
        number, p = served()
        assert number == 2 and abs(p - expected(v2)) <= 1e-12 and p != expected(v1)
        version_rollback(model=v1.model, actor=overrider, reason="back")
        number, p = served()
        assert number == 1 and abs(p - expected(v1)) <= 1e-12
        assert loads.call_count == 3
    assert serving.serving_cache_snapshot() == {MODEL: (1, v1.artifact_sha256)}


def test_the_warm_path_asks_the_database_once_which_version_is_in_production(
    train: Callable[..., ModelVersion], overrider: Any, api_client: APIClient
) -> None:
    promote(train(), overrider)
    post(api_client, ["AAA"])
    with (
        CaptureQueriesContext(connection) as queries,
        mock.patch.object(serving, "_log_write", wraps=serving._log_write) as log_write,
    ):
        assert post(api_client, ["AAA", "BBB", "CCC"]).status_code == 200
    sql = [q["sql"] for q in queries.captured_queries]
    version_reads = [s for s in sql if 'FROM "registry_modelversion"' in s]
    assert len(version_reads) == 1 and "Production" in str(queries.captured_queries)
    assert log_write.call_count == 1 and len(log_write.call_args.args[0]) == 3
    inserts = [s for s in sql if s.startswith('INSERT INTO "registry_predictionlog"')]
    assert len(inserts) == (0 if connection.vendor == "postgresql" else 1)  # else one COPY
    assert PredictionLog.objects.count() == 4


def test_a_tampered_artifact_is_refused_logged_and_never_cached(
    train: Callable[..., ModelVersion],
    overrider: Any,
    api_client: APIClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    v1, v2 = train(c=1.0), train(c=0.001)
    promote(v1, overrider)
    assert post(api_client, ["AAA"]).json()["version"] == 1  # v1 is loaded and held
    promote(v2, overrider)
    path = blob_path(v2.artifact_sha256)
    original = path.read_bytes()
    document = json.loads(original)
    document["intercept"] += 1.0  # a valid model, but not the one that was registered
    os.chmod(path, 0o644)
    path.write_bytes(json.dumps(document).encode())
    failures = metric("tradingsite_model_loads_total", model=MODEL, outcome="integrity_error")
    with caplog.at_level(logging.ERROR, logger="registry.serving"):
        for _ in range(2):  # refused every time: nothing was cached, v1 is not served instead
            response = post(api_client, ["AAA"])
            assert response.status_code == 409
            assert response.json()["code"] == "artifact_integrity"
            assert "does not hash to its recorded sha256" in response.json()["detail"]
    assert "refusing to serve direction v2" in caplog.text
    assert metric("tradingsite_model_loads_total", model=MODEL, outcome="integrity_error") == (
        failures + 2
    )
    assert serving.serving_cache_snapshot()[MODEL] == (1, v1.artifact_sha256)
    assert set(PredictionLog.objects.values_list("model_version__version", flat=True)) == {1}
    path.write_bytes(original)  # restored: served again, no restart needed
    assert post(api_client, ["AAA"]).json()["version"] == 2


def test_a_missing_artifact_is_refused(
    train: Callable[..., ModelVersion], overrider: Any, api_client: APIClient
) -> None:
    version = train()
    promote(version, overrider)
    blob_path(version.artifact_sha256).unlink()
    response = post(api_client, ["AAA"])
    assert response.status_code == 409 and response.json()["code"] == "artifact_integrity"
    assert "missing" in response.json()["detail"]


class _Canary:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.path}",))


def test_an_uploaded_pickle_is_never_loaded(
    view: FeatureView, overrider: Any, api_client: APIClient, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"
    version = register_raw_artifact(view, pickle.dumps(_Canary(str(canary))))
    promote(version, overrider)  # its hash verifies: the policy cannot tell it is a pickle
    response = post(api_client, ["AAA"])
    assert response.status_code == 409 and response.json()["code"] == "model_unservable"
    assert "not a servable model" in response.json()["detail"]
    assert not canary.exists()
    assert MODEL not in serving.serving_cache_snapshot()


def test_a_model_whose_features_disagree_with_its_view_is_refused(
    view: FeatureView, overrider: Any, api_client: APIClient
) -> None:
    names = ["rsi_14", "ret_1"]
    x = np.random.default_rng(0).normal(size=(50, 2))
    fitted = build_model().fit(pd.DataFrame(x, columns=names), (x[:, 0] > 0).astype(int))
    promote(register_raw_artifact(view, model_to_bytes(fitted)), overrider)
    response = post(api_client, ["AAA"])
    assert response.status_code == 409 and response.json()["code"] == "model_unservable"
    assert "was trained on features ['rsi_14', 'ret_1']" in response.json()["detail"]


# --- the log, the event, the metrics ---------------------------------------------------------


def test_every_prediction_is_logged_with_its_inputs_and_latency(
    train: Callable[..., ModelVersion],
    overrider: Any,
    api_client: APIClient,
    view: FeatureView,
    user: Any,
) -> None:
    version = train()
    promote(version, overrider)
    response = post(api_client, ["AAA", "BBB"])
    body = response.json()
    rows = {row.symbol: row for row in PredictionLog.objects.all()}
    assert set(rows) == {"AAA", "BBB"}
    for entry in body["predictions"]:
        row = rows[entry["symbol"]]
        vector, ts = online_vector(view, entry["symbol"])
        np.testing.assert_array_equal(np.array(row.features), vector)
        assert row.model_version_id == version.pk and row.probability == entry["probability"]
        assert row.signal == entry["signal"] and row.as_of.isoformat() == ts
        assert row.stale is False and 0 < row.latency_ms <= body["latency_ms"]
        assert row.request_id == body["request_id"] and row.requested_by == user


def test_one_predictions_event_per_request(
    train: Callable[..., ModelVersion], overrider: Any, api_client: APIClient
) -> None:
    promote(train(), overrider)
    before = Event.objects.filter(topic="predictions").count()
    body = post(api_client, ["AAA", "BBB", "NOPE"]).json()
    [event] = Event.objects.filter(topic="predictions")[before:]
    assert event.type == "predictions.served" and event.subject == f"model:{MODEL}"
    payload = event.payload
    assert payload["model"] == MODEL and payload["version"] == 1
    assert payload["feature_view"] == "core_technical:v1"
    assert (payload["symbols"], payload["predicted"], payload["missing"]) == (3, 2, ["NOPE"])
    signals = [p["signal"] for p in body["predictions"] if p["signal"]]
    assert payload["signals"] == {s: signals.count(s) for s in ("long", "short", "flat")}
    assert payload["request_id"] == body["request_id"]


def test_latency_and_predictions_are_in_the_metrics(
    train: Callable[..., ModelVersion], overrider: Any, api_client: APIClient
) -> None:
    promote(train(), overrider)
    count = metric("tradingsite_predict_latency_seconds_count", model=MODEL)
    missing = metric("tradingsite_predictions_total", model=MODEL, outcome="no_features")
    signals = {
        s: metric("tradingsite_predictions_total", model=MODEL, outcome=s)
        for s in ("long", "short", "flat")
    }
    post(api_client, ["AAA", "BBB", "NOPE"])
    assert metric("tradingsite_predict_latency_seconds_count", model=MODEL) == count + 1
    assert metric("tradingsite_predictions_total", model=MODEL, outcome="no_features") == (
        missing + 1
    )
    now = {
        s: metric("tradingsite_predictions_total", model=MODEL, outcome=s)
        for s in ("long", "short", "flat")
    }
    assert sum(now.values()) - sum(signals.values()) == 2


def test_the_prediction_log_is_read_only_in_the_admin(
    train: Callable[..., ModelVersion], overrider: Any, api_client: APIClient, admin_client: Any
) -> None:
    promote(train(), overrider)
    post(api_client, ["AAA"])
    row = PredictionLog.objects.get()
    url = "/admin/registry/predictionlog/"
    page = admin_client.get(url)
    assert page.status_code == 200 and "AAA" in page.content.decode()
    assert admin_client.get(f"{url}{row.pk}/change/").status_code == 200
    assert admin_client.get(f"{url}add/").status_code == 403
    assert admin_client.post(f"{url}{row.pk}/delete/").status_code == 403


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "This field is required"),
        ({"symbols": []}, "at least 1"),
        ({"symbols": "AAA"}, "list"),
        ({"symbols": [f"S{i}" for i in range(101)]}, "no more than 100"),
        ({"symbols": ["AAA", "BBB", "AAA"]}, "repeated: ['AAA']"),
        ({"symbols": ["A A"]}, "no spaces"),
        ({"symbols": ["A" * 33]}, "1 to 32 characters"),
        ({"symbols": ["AAA\x00"]}, "no spaces"),
        ({"symbols": [7]}, "a symbol is a string"),
    ],
)
def test_bad_input_is_a_400_naming_the_problem(
    api_client: APIClient, body: dict[str, Any], problem: str
) -> None:
    response = api_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert problem in json.dumps(response.json()["symbols"])
    assert not PredictionLog.objects.exists()


def test_an_unknown_model_is_a_404(api_client: APIClient) -> None:
    response = post(api_client, ["AAA"], url="/api/v1/models/nope/predict")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_a_model_without_a_production_version_is_a_409_naming_it(
    train: Callable[..., ModelVersion], api_client: APIClient
) -> None:
    train()
    response = post(api_client, ["AAA"])
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"{MODEL} has no version in Production: nothing to serve",
        "code": "no_production_version",
    }


def test_predicting_needs_a_login_and_nothing_more(
    train: Callable[..., ModelVersion], overrider: Any, user: Any
) -> None:
    promote(train(), overrider)
    assert post(APIClient(), ["AAA"]).status_code == 401
    assert post(client_for(user), ["AAA"]).status_code == 200  # no registry permission held


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_load_a_new_version_once(
    train: Callable[..., ModelVersion], overrider: Any
) -> None:
    from tests.support import run_concurrently

    promote(train(), overrider)
    answers: list[int] = []
    with mock.patch.object(training, "model_from_bytes", wraps=model_from_bytes) as loads:
        run_concurrently(
            lambda: answers.append(
                serving.predict(model_name=MODEL, symbols=["AAA"]).served.version
            ),
            8,
        )
    assert answers == [1] * 8 and loads.call_count == 1
    assert PredictionLog.objects.count() == 8


def test_bootstrap_demo_makes_a_few_demo_predictions_once() -> None:
    out = StringIO()
    call_command("bootstrap_demo", stdout=out)
    version = ModelVersion.objects.get(model__name="next-bar-direction")
    rows = PredictionLog.objects.filter(model_version=version)
    assert sorted(rows.values_list("symbol", flat=True)) == sorted(version.training_set["symbols"])
    assert {r.request_id for r in rows} == {"bootstrap_demo"}
    assert all(len(r.features) == len(version.feature_view.feature_names) for r in rows)
    assert "Predicted with next-bar-direction v1" in out.getvalue()
    assert "/api/v1/models/next-bar-direction/predict" in out.getvalue()
    call_command("bootstrap_demo", stdout=StringIO())
    assert PredictionLog.objects.count() == len(version.training_set["symbols"])
