"""At most one report per (model version, window), whoever races for it: the Redis lock saves
the work, the unique constraint fences (the loser is a no-op), and a worker killed mid-scan
leaves nothing. The races run on PostgreSQL with real threads and processes."""

from __future__ import annotations

import contextlib
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from drift.models import DriftFeatureResult, DriftReport
from drift.services import current_window, drift_scan_version
from drift.services.locks import scan_lock
from registry.models import ModelVersion
from tests.support import PYTHON, ROOT, clean_env, run_concurrently

MakeVersion = Callable[..., ModelVersion]


@pytest.mark.django_db
def test_a_window_being_computed_elsewhere_is_left_alone(make_version: MakeVersion) -> None:
    version = make_version()
    window = current_window(version)
    with scan_lock(version.pk, window.start) as held:
        assert held is True
        busy = drift_scan_version(version)
        assert (busy.outcome, busy.report) == ("locked", None)
        with scan_lock(version.pk, window.start) as second:
            assert second is False
    assert DriftReport.objects.count() == 0
    assert drift_scan_version(version).created  # released: the next scan does the work


@pytest.mark.django_db
def test_a_version_task_waits_for_a_lease_instead_of_recording_it(
    make_version: MakeVersion,
) -> None:
    """The holder may be a killed worker (even this task's first run): a queued task retries
    until the lease lapses; only an inline scan records the window as taken."""
    from drift.models import DriftScan
    from drift.services import WindowLocked
    from drift.tasks import drift_scan_version_task

    version = make_version()
    scan = DriftScan.objects.create(
        started_at=version.created_at, version_ids=[version.pk], models_watched=1
    )
    window = current_window(version)
    retries: list[dict[str, Any]] = []

    class Retrying(Exception):
        pass

    def retry(**kwargs: Any) -> Exception:
        retries.append(kwargs)
        return Retrying()

    with scan_lock(version.pk, window.start), pytest.MonkeyPatch.context() as patch:
        patch.setattr(drift_scan_version_task, "retry", retry)
        drift_scan_version_task.push_request(id="t1", retries=0, is_eager=False, hostname="w")
        try:
            with pytest.raises(Retrying):
                drift_scan_version_task.run(scan.pk, version.pk)
        finally:
            drift_scan_version_task.pop_request()
    assert isinstance(retries[0]["exc"], WindowLocked) and retries[0]["countdown"] == 15
    assert not scan.items.exists()
    assert drift_scan_version_task(scan.pk, version.pk) == "created"


@pytest.mark.django_db
def test_an_unreachable_lock_store_does_not_stop_a_scan(
    make_version: MakeVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("redis is down")

    monkeypatch.setattr("drift.services.locks.cache.add", broken)
    monkeypatch.setattr("drift.services.locks.get_redis_connection", broken)
    assert drift_scan_version(make_version()).created


def _racers(version: ModelVersion, count: int) -> list[str]:
    outcomes: list[str] = []

    def scan() -> None:
        outcomes.append(drift_scan_version(version).outcome)

    run_concurrently(scan, count)
    return sorted(outcomes)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_database_fences_racers_that_all_computed_the_window(
    make_version: MakeVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every racer holds a lease (they lapsed, or Redis was down) and computes: one insert
    wins, the others hit the unique constraint and return the winner's report."""
    import drift.services.reports as reports

    version = make_version()
    computed = threading.Barrier(4)
    real = reports.drift_statistics

    def statistics_then_wait(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        computed.wait(timeout=30)  # all four have passed the "already reported?" check
        return result

    @contextlib.contextmanager
    def lapsed_lease(*args: Any) -> Iterator[bool]:
        yield True

    monkeypatch.setattr(reports, "drift_statistics", statistics_then_wait)
    monkeypatch.setattr(reports, "scan_lock", lapsed_lease)
    assert _racers(version, 4) == ["created", "duplicate", "duplicate", "duplicate"]
    report = DriftReport.objects.get()
    assert report.features.count() == 3 and DriftFeatureResult.objects.count() == 3


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_redis_lock_lets_one_racer_compute(
    make_version: MakeVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    import drift.services.reports as reports

    version = make_version()
    calls: list[int] = []
    real = reports.drift_statistics

    def slow_statistics(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        time.sleep(1.0)
        return real(*args, **kwargs)

    monkeypatch.setattr(reports, "drift_statistics", slow_statistics)
    assert _racers(version, 4) == ["created", "locked", "locked", "locked"]
    assert len(calls) == 1 and DriftReport.objects.count() == 1


def _subprocess_env() -> dict[str, str]:
    """This test database, as a DATABASE_URL for child processes."""
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    url = f"postgresql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return clean_env(DATABASE_URL=url, REDIS_URL=settings.REDIS_URL or "", LOG_LEVEL="WARNING")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_scanning_processes_write_one_report(make_version: MakeVersion) -> None:
    make_version()
    env = _subprocess_env()
    procs = [
        subprocess.Popen(
            [PYTHON, "manage.py", "drift_scan"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=90) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert DriftReport.objects.count() == 1 and DriftFeatureResult.objects.count() == 3
    text = "".join(out for out, _ in outputs)
    assert text.count("drifty v1: created") == 1, text


KILLED_MID_SCAN = """
import os, signal, django
django.setup()
import drift.services.reports as reports
from drift.models import DriftFeatureResult, DriftReport
from registry.models import ModelVersion

def killed(**kwargs):
    # Inside the report's transaction, after the report and its features were written.
    print(DriftReport.objects.count(), DriftFeatureResult.objects.count(), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

reports.drift_alert_raise = killed
version = ModelVersion.objects.select_related("model", "feature_view").get(pk={pk})
reports.drift_scan_version(version)
"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_scan_leaves_no_partial_report(make_version: MakeVersion) -> None:
    version = make_version()
    code = textwrap.dedent(KILLED_MID_SCAN).replace("{pk}", str(version.pk))
    env = {
        **_subprocess_env(),
        "DJANGO_SETTINGS_MODULE": "tradingsite.settings",
        "DRIFT_SCAN_LOCK_SECONDS": "2",
    }
    done = subprocess.run(
        [PYTHON, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == -9, done.stderr
    assert done.stdout.split() == ["1", "3"]  # it had written the report and 3 feature rows
    assert DriftReport.objects.count() == 0 and DriftFeatureResult.objects.count() == 0
    retry = drift_scan_version(version)  # the redelivered task
    if settings.REDIS_URL:  # the dead worker's lease outlives it: the retry waits it out
        assert retry.outcome == "locked"
        time.sleep(2.2)
        retry = drift_scan_version(version)
    assert retry.created
    assert DriftReport.objects.get().features.count() == 3
