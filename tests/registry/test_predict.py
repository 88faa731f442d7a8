"""POST /api/v1/models/{name}/predict: the Production version on the online features of the view
version it was trained on, loaded once per version, hash-checked, never a pickle, every
prediction logged and announced."""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from django.apps import apps
from django.core.cache import cache
from django.core.management import call_command
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework.test import APIClient

from experiments import training
from experiments.models import Run
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
from features import store
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
from registry import prediction_log, serving
from registry import services as registry_services
from registry.apps import SERVER_ENTRY_MODULES
from registry.errors import UnsupportedModelFormat
from registry.models import ModelVersion, PredictionLog, RegisteredModel, Stage
from registry.services import model_version_create_from_run, version_rollback, version_transition
from tests.registry.conftest import client_for
from tradingsite.models import Event
from tradingsite.security import ratelimit
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


def upload_run(view: FeatureView, data: bytes) -> Run:
    """A FINISHED run whose model artifact holds `data` as uploaded."""
    run = run_create(
        experiment=experiment_get_or_create(name="uploads"), name="upload", feature_view=view
    )
    run_artifact_store(run=run, name=MODEL_ARTIFACT, data=data)
    return run_finish(run=run)


def register_raw_artifact(view: FeatureView, data: bytes, model_name: str = MODEL) -> ModelVersion:
    """`data` uploaded as a run's model and registered as `model_name`."""
    run = upload_run(view, data)
    return model_version_create_from_run(model_name=model_name, run=run, user=None)


def register_unchecked(view: FeatureView, data: bytes, model_name: str = MODEL) -> ModelVersion:
    """`data` registered without registration's format check, as a version registered before
    that check existed (or restored from a backup) would be: serving must refuse it itself."""
    with mock.patch.object(registry_services, "_model_document_check"):
        return register_raw_artifact(view, data, model_name)


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
    down = mock.patch.object(store, "online_features", side_effect=RedisConnectionError("down"))
    # Redis down for every caller: the rate limiter shares the cache breaker (a success of its
    # own would reset the count), so it fails too.
    limiter_down = mock.patch.object(
        ratelimit, "_shared_count", side_effect=RedisConnectionError("down")
    )
    with down as lookups, limiter_down:
        for _ in range(7):  # the breaker opens after 5 failures; later calls skip the cache
            response = post(api_client, ["AAA", "BBB", "NOPE"])
            assert response.status_code == 200
            assert response.json()["predictions"] == expected
    breaker = get_breaker("cache")
    assert breaker.state == "open" and lookups.call_count < breaker.failure_threshold
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
        mock.patch.object(
            prediction_log, "log_rows_write", wraps=prediction_log.log_rows_write
        ) as log_write,
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


def test_an_uploaded_pickle_is_refused_at_registration(view: FeatureView, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    run = upload_run(view, pickle.dumps(_Canary(str(canary))))
    with pytest.raises(UnsupportedModelFormat) as refused:
        model_version_create_from_run(model_name=MODEL, run=run, user=None)
    assert "is not a tradingsite model document (model artifact is not JSON" in str(refused.value)
    assert "pickles and other formats are never registered" in str(refused.value)
    assert not canary.exists() and not ModelVersion.objects.exists()
    assert not RegisteredModel.objects.exists()  # nothing half-written either


def test_a_pickle_that_bypassed_registration_is_never_loaded(
    view: FeatureView, overrider: Any, api_client: APIClient, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"
    version = register_unchecked(view, pickle.dumps(_Canary(str(canary))))
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


def test_in_sync_mode_each_request_writes_its_rows_and_one_event_before_it_answers(
    train: Callable[..., ModelVersion], overrider: Any, api_client: APIClient, settings: Any
) -> None:
    settings.PREDICTION_LOG_MODE = "sync"
    promote(train(), overrider)
    before = Event.objects.filter(topic="predictions").count()
    with mock.patch.object(prediction_log.writer, "submit") as submit:
        body = post(api_client, ["AAA", "BBB", "NOPE"]).json()
    assert not submit.called
    assert PredictionLog.objects.count() == 2
    [event] = Event.objects.filter(topic="predictions").order_by("id")[before:]
    assert event.type == "predictions.served" and event.subject == f"model:{MODEL}"
    payload = event.payload
    assert payload["model"] == MODEL and payload["version"] == 1
    assert payload["feature_view"] == "core_technical:v1"
    assert (payload["requests"], payload["symbols"], payload["predicted"]) == (1, 3, 2)
    assert payload["missing"] == ["NOPE"]
    signals = [p["signal"] for p in body["predictions"] if p["signal"]]
    assert payload["signals"] == {s: signals.count(s) for s in ("long", "short", "flat")}
    assert payload["request_ids"] == [body["request_id"]]
    assert 0 < payload["latency_ms_max"] == payload["latency_ms_mean"] <= body["latency_ms"]


def test_in_background_mode_the_request_only_queues_its_rows(
    train: Callable[..., ModelVersion], overrider: Any, api_client: APIClient, settings: Any
) -> None:
    settings.PREDICTION_LOG_MODE = "background"
    promote(train(), overrider)
    before = Event.objects.filter(topic="predictions").count()
    with mock.patch.object(prediction_log.writer, "submit") as submit:
        body = post(api_client, ["AAA", "NOPE"]).json()
    [[served]] = [call.args for call in submit.call_args_list]
    assert (served.model_name, served.version, served.symbols) == (MODEL, 1, 2)
    assert [row[1] for row in served.rows] == ["AAA"] and served.missing == ["NOPE"]
    assert served.request_id == body["request_id"]
    assert not PredictionLog.objects.exists()
    assert Event.objects.filter(topic="predictions").count() == before


@pytest.fixture
def background_writer(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[prediction_log.PredictionLogWriter]:
    """Background mode with a writer of this test's own that writes only when flushed."""
    settings.PREDICTION_LOG_MODE = "background"
    writer = prediction_log.PredictionLogWriter(flush_interval_seconds=60.0)
    monkeypatch.setattr(prediction_log, "writer", writer)
    yield writer
    writer.close(timeout=10)


@pytest.mark.django_db(transaction=True)
def test_in_background_mode_requests_are_logged_by_the_writer_and_announced_together(
    train: Callable[..., ModelVersion],
    overrider: Any,
    api_client: APIClient,
    background_writer: prediction_log.PredictionLogWriter,
    settings: Any,
    view: FeatureView,
) -> None:
    version = train()
    promote(version, overrider)
    entry = cache.get(_online_key(view, "AAA"))  # a bar earlier, so the drift window spans two
    earlier = datetime.fromisoformat(entry["ts"]) - timedelta(days=1)
    cache.set(_online_key(view, "AAA"), {**entry, "ts": earlier.isoformat()}, None)
    before = Event.objects.filter(type="predictions.served").count()
    bodies = [post(api_client, symbols).json() for symbols in (["AAA", "BBB"], ["CCC", "NOPE"])]
    assert not PredictionLog.objects.exists()  # queued: the request did not wait for them
    assert prediction_log.prediction_log_flush(timeout=10)
    logged = {(row.request_id, row.symbol): row for row in PredictionLog.objects.all()}
    expected = {
        (body["request_id"], entry["symbol"]): entry
        for body in bodies
        for entry in body["predictions"]
        if entry["error"] is None
    }
    assert set(logged) == set(expected)
    for key, entry in expected.items():
        assert logged[key].probability == entry["probability"]
        assert logged[key].signal == entry["signal"]
    [event] = Event.objects.filter(type="predictions.served").order_by("id")[before:]
    payload = event.payload
    assert (payload["requests"], payload["symbols"], payload["predicted"]) == (2, 4, 3)
    assert payload["missing"] == ["NOPE"]
    assert payload["request_ids"] == [body["request_id"] for body in bodies]
    # Drift monitoring reads what the writer wrote as the version's current window.
    from drift.services import current_window

    settings.DRIFT_MIN_PREDICTION_ROWS = 3
    window = current_window(version)
    assert window.source == "predictions" and window.n_rows == 3


def test_in_background_mode_a_full_log_queue_never_fails_the_request(
    train: Callable[..., ModelVersion],
    overrider: Any,
    api_client: APIClient,
    background_writer: prediction_log.PredictionLogWriter,
) -> None:
    promote(train(), overrider)
    background_writer.max_queued_rows = 2
    before = metric("tradingsite_prediction_log_dropped_total", reason="queue_full")
    for _ in range(2):
        assert post(api_client, ["AAA", "BBB"]).status_code == 200
    assert background_writer.queued_rows == 2
    assert metric("tradingsite_prediction_log_dropped_total", reason="queue_full") == before + 2
    background_writer.max_queued_rows = 0  # nothing left to write into the test's transaction


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
        ({"symbols": ["AAA\x00"]}, "NUL characters"),  # the API's JSON parser, before the view
        ({"symbols": [7]}, "a symbol is a string"),
    ],
)
def test_bad_input_is_a_400_naming_the_problem(
    api_client: APIClient, body: dict[str, Any], problem: str
) -> None:
    response = api_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert problem in json.dumps(response.json())
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


# --- warm-up ----------------------------------------------------------------------------------


def test_the_warmup_loads_the_production_models_so_the_first_request_loads_none(
    train: Callable[..., ModelVersion],
    overrider: Any,
    api_client: APIClient,
    view: FeatureView,
    caplog: pytest.LogCaptureFixture,
) -> None:
    promote(train(), overrider)
    promote(register_unchecked(view, b"not a model", model_name="broken"), overrider)
    register_unchecked(view, b"staging only", model_name="unpromoted")
    with (
        caplog.at_level(logging.ERROR, logger="registry.serving"),
        mock.patch.object(training, "model_from_bytes", wraps=model_from_bytes) as loads,
    ):
        assert serving.serving_warmup() == [MODEL]  # the broken one is skipped, logged
        assert loads.call_count == 2
        assert post(api_client, ["AAA"]).status_code == 200
        assert loads.call_count == 2
    assert "refusing to serve broken v1" in caplog.text
    assert set(serving.serving_cache_snapshot()) == {MODEL}


@pytest.mark.django_db(transaction=True)
def test_the_warmup_thread_loads_with_a_connection_of_its_own(
    train: Callable[..., ModelVersion], overrider: Any
) -> None:
    promote(train(), overrider)
    thread = serving.serving_warmup_start()
    thread.join(30)
    assert not thread.is_alive()
    assert serving.serving_cache_snapshot() == {
        MODEL: (1, ModelVersion.objects.get().artifact_sha256)
    }


def test_a_failed_warmup_is_logged_and_leaves_loading_to_the_requests(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="registry.serving"),
        mock.patch.object(serving, "serving_warmup", side_effect=OperationalError("down")),
    ):
        thread = serving.serving_warmup_start()
        thread.join(10)
    assert not thread.is_alive() and "prediction warm-up skipped: down" in caplog.text


@pytest.mark.parametrize(
    ("enabled", "entry_module", "started"),
    [
        (True, "tradingsite.asgi", True),
        (True, "tradingsite.wsgi", True),
        (True, None, False),  # manage.py migrate, celery, pytest: no server module imported
        (False, "tradingsite.asgi", False),
    ],
)
def test_the_warmup_starts_in_server_processes_only_and_only_when_enabled(
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    enabled: bool,
    entry_module: str | None,
    started: bool,
) -> None:
    settings.PREDICTION_WARMUP = enabled
    for name in SERVER_ENTRY_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    if entry_module is not None:
        monkeypatch.setitem(sys.modules, entry_module, types.ModuleType(entry_module))
    with mock.patch.object(serving, "serving_warmup_start") as start:
        apps.get_app_config("registry").ready()
    assert start.called is started


def test_a_fork_waits_for_the_warmup_and_the_child_starts_with_fresh_locks_and_log_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What gunicorn --preload does: the master warms up, then forks its workers."""
    writer = prediction_log.PredictionLogWriter(flush_interval_seconds=60.0)
    monkeypatch.setattr(prediction_log, "writer", writer)
    writer._pending.append(mock.sentinel.queued)  # the parent's to write, not the child's
    writer._pending_rows = 1
    warming = threading.Thread(target=time.sleep, args=(0.3,))
    monkeypatch.setitem(serving._warmup, "thread", warming)
    held = serving._load_lock(MODEL)
    held.acquire()  # as if the warm-up held it at the fork
    warming.start()
    read, write = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:  # the child: report and leave at once (no atexit, no pytest teardown)
            fresh = serving._load_lock(MODEL)
            state = (
                fresh is not held and fresh.acquire(timeout=1),
                writer.queued_rows == 0 and writer._thread is None,
                serving._warmup["thread"] is None,
            )
            os.write(write, json.dumps(state).encode())
            os._exit(0)
        warmed_before_fork = not warming.is_alive()
        os.waitpid(pid, 0)
        assert json.loads(os.read(read, 100)) == [True, True, True]
        assert warmed_before_fork
        assert writer.queued_rows == 1  # the parent keeps its queue
    finally:
        held.release()
        os.close(read)
        os.close(write)
        writer._pending.clear()
        writer._pending_rows = 0


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
