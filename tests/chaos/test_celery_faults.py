"""reliability.md T7 (a worker killed mid drift scan) and T8 (two beat schedulers) on real Celery
processes: `celery worker` (prefork) and `celery beat` started as the Dockerfile starts them, on our
own PostgreSQL database (`tradingsite_chaos_t7`) and a redis-server this module starts on a free
port as the broker and lock store (the shared servers are never touched).

T7. The scan is made slow by a test-only hook, installed by the bootstrap this module runs the
worker with (WORKER_BOOT; no production code reads it): each feature result of a report sleeps
SECONDS_PER_FEATURE inside the report's transaction, so the kill lands after the report row was
inserted and before it commits. The broker's visibility_timeout is set for the test the same way
(production keeps 3600 s). Run "child" kills -9 the pool child running the scan (the main process
requeues the task: reject_on_worker_lost); run "main" kills -9 the worker's main process (its pool
children die with it: prefork sets PDEATHSIG) and starts a new worker, as a supervisor would,
which gets the task back once visibility_timeout has passed. Pass: exactly 1 report per (model
version, window); 0 partial rows (the report is invisible while its transaction is open, nothing
is left after the kill, every report has all its feature rows); the version task logs SUCCESS
after the retry (child: <= 30 s after the kill; main: <= visibility_timeout + 30 s); exactly 1
`drift.alert` event for the model (the window's unique constraint is the idempotency key). No
webhook URL is configured: the production checks refuse every address a test could point one at;
the delivery rows are written by the same drift_alert_raise call, in the event's transaction.

T8. Two `celery beat` processes (A and B) send the drift scan every INTERVAL seconds to one worker;
A is killed -9 and restarted (a supervisor's restart), then B is frozen (SIGSTOP) for longer than
the scan lease (DRIFT_SCAN_LOCK_SECONDS) and thawed (SIGCONT) late in an interval. Semantics:
there is no leader and no lock TTL to wait out. Both beats always fire, mid-slot
(tradingsite.celery.slot_schedule), and the DB claim of the interval slot
(int(now / DRIFT_INTERVAL_SECONDS), a partial unique index) lets the first send scan. So
"takeover" means: every interval in the observed range (from the first scheduled scan to the last
interval completed before the beats stop) has exactly 1 scan with exactly 1 item per model
version; at most the one interval in which beat A was killed may be missed (none is expected:
B keeps firing). The thawed beat's overdue send is the zombie's late write: it is refused by the
claim as a no-op (its task logs SUCCESS with result None, no FAILURE), and no worker log has an
exception or a retry.

CI scale (about 2 minutes on 2 cores, most of it process start-up and the redelivery wait):
3 features x 1.5 s per scan, lease 10 s, visibility_timeout 12 s; T8 with a 3-s interval, phases
of 2 intervals, B frozen 11 s. The table's figures run standalone:

    python -m tests.chaos.test_celery_faults [--full] [--only t7|t8] [--workdir DIR]

--full: T7 with a 21-s scan (the kill 10 s in), lease 30 s, visibility_timeout 60 s; T8
with a 10-s interval, phases of 15 intervals (about 65 intervals observed).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from celery import Celery as CeleryApp

from tests.chaos.harness import Criterion, assert_passed, report
from tests.support import (
    PYTHON,
    ROOT,
    free_port,
    manage,
    postgres_database,
    production_env,
    stop_process,
    wait_for_port,
)

REDIS_SERVER = "/usr/bin/redis-server"
DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/tradingsite_chaos_t7"
VERSION_TASK = "drift.tasks.drift_scan_version_task"
SCAN_TASK = "drift.tasks.drift_scan_all_task"
N_FEATURES = 3  # tests.drift.conftest.FEATURES
SENT = re.escape(f"{SCAN_TASK} sent. id->")  # beat's DEBUG line for each send


@dataclass(frozen=True)
class Scale:
    seconds_per_feature: float  # the T7 hook's sleep inside the report's transaction
    kill_after_s: float  # T7: the kill, this long after the first feature's sleep began
    lease_s: int  # DRIFT_SCAN_LOCK_SECONDS
    visibility_timeout_s: int
    interval_s: int  # T8's DRIFT_INTERVAL_SECONDS
    phase_intervals: int  # T8: intervals per phase (both beats / A restarted / B frozen / after)


CI = Scale(seconds_per_feature=1.5, kill_after_s=1.2, lease_s=10, visibility_timeout_s=12,
           interval_s=3, phase_intervals=2)  # fmt: skip
FULL = Scale(seconds_per_feature=7, kill_after_s=10, lease_s=30, visibility_timeout_s=60,
             interval_s=10, phase_intervals=15)  # fmt: skip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.skipif(not Path(REDIS_SERVER).exists(), reason=f"{REDIS_SERVER} is missing"),
]

# `celery -A tradingsite ...` as the entry point runs it, plus two test-only settings taken from
# the environment: the broker's visibility_timeout, and (T7) a sleep per feature result inside the
# report's transaction. Prefork children are forked from this process, so they inherit the patch.
WORKER_BOOT = """
import logging, os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
import django
django.setup()
from tradingsite.celery import app
app.conf.broker_transport_options = {
    **(app.conf.broker_transport_options or {}),
    "visibility_timeout": int(os.environ["CHAOS_VISIBILITY_TIMEOUT"]),
}
delay = float(os.environ.get("CHAOS_SECONDS_PER_FEATURE") or 0)
if delay:
    import drift.services.reports as reports
    row = reports._feature_row
    def slow_row(report, feature):
        logging.getLogger("chaos").warning(
            "chaos-hook pid=%d report=%d feature=%s: in the open transaction, sleeping %.1f s",
            os.getpid(), report.pk, feature["name"], delay)
        time.sleep(delay)
        return row(report, feature)
    reports._feature_row = slow_row
from celery.__main__ import main
sys.argv = ["celery", "-A", "tradingsite", *sys.argv[1:]]
main()
"""

# Every model version the scenarios scan, each in Production with its own feature view; a scan
# row for each T7 version and one over all of them (T8's warm-up), whose tasks the test sends.
SETUP = """
import hashlib
import numpy as np, pandas as pd
from drift.reference import reference_statistics
from drift.services.scans import drift_scan_create
from features.models import FeatureView
from registry.models import ModelVersion, RegisteredModel
from tests.drift.conftest import FEATURES, FIRST_DAY, SYMBOLS, rows_add
versions = {{}}
for name, shift in {models!r}:
    view = FeatureView.objects.create(name=name, version=1, feature_names=list(FEATURES))
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(0.0, 1.0, (400, len(FEATURES))), columns=FEATURES)
    versions[name] = version = ModelVersion.objects.create(
        model=RegisteredModel.objects.create(name=name), version=1, stage="Production",
        feature_view=view, training_set={{"symbols": SYMBOLS}}, artifact_path=name + ".json",
        artifact_sha256=hashlib.sha256(name.encode()).hexdigest(),
        reference_statistics=reference_statistics(frame, FEATURES, sample_size=400))
    rows_add(view, start=FIRST_DAY, days=60, shift=shift, seed=version.pk)
for name, version in versions.items():
    scan = drift_scan_create(trigger="manual", versions=[version])
    print(f"ID={{name}}:{{version.pk}}:{{scan.pk}}")
warm = drift_scan_create(trigger="manual", versions=list(versions.values()))
print(f"ID=warm:0:{{warm.pk}}")
"""
MODELS = [("chaos_t7_child", 3.0), ("chaos_t7_main", 3.0), ("chaos_t8_a", 0.0), ("chaos_t8_b", 0.0)]
T8_MODELS = ("chaos_t8_a", "chaos_t8_b")  # no drift: no alert traffic


# --- the stack: our redis-server, our database, celery processes --------------------------------


@dataclass
class Stack:
    tmp: Path
    redis_url: str
    scale: Scale
    versions: dict[str, int] = field(default_factory=dict)  # model name -> version id
    scans: dict[str, int] = field(default_factory=dict)  # T7 model / "warm" -> its scan

    def env(self, **overrides: str) -> dict[str, str]:
        return production_env(
            DATABASE_URL=DATABASE_URL,
            REDIS_URL=self.redis_url,
            TRADINGSITE_VAR_DIR=str(self.tmp),
            PROMETHEUS_MULTIPROC_DIR=str(self.tmp / "prometheus"),
            DRIFT_SCAN_LOCK_SECONDS=str(self.scale.lease_s),
            CHAOS_VISIBILITY_TIMEOUT=str(self.scale.visibility_timeout_s),
            PYTHONUNBUFFERED="1",  # a process killed -9 leaves its whole log
            **overrides,
        )

    def send(self, task: str, *args: int) -> str:
        """Send `task` to our broker from this process, as drift_scan_fan_out would; its id."""
        client = CeleryApp("chaos-client", broker=self.redis_url, set_as_current=False)
        try:
            return client.send_task(task, args=list(args)).id
        finally:
            client.close()

    def shell(self, code: str) -> list[str]:
        """Run `code` in `manage.py shell`; the ids it printed (as ID=<id>)."""
        done = manage("shell", "-c", code, env=self.env(), timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        # Django's shell first says how many objects it imported: keep the ids we printed.
        return [line[3:] for line in done.stdout.split() if line.startswith("ID=")]

    def celery(self, name: str, *args: str, env: dict[str, str]) -> Proc:
        log = self.tmp / f"{name}.log"
        proc = subprocess.Popen(
            [PYTHON, "-c", WORKER_BOOT, *args], cwd=ROOT, env=env,
            stdout=log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        return Proc(name, proc, log)

    def worker(self, name: str, env: dict[str, str]) -> Proc:
        worker = self.celery(name, "worker", "--pool=prefork", "--concurrency=2", "-n",
                             f"{name}@%h", "--without-mingle", "--without-gossip",
                             "--loglevel=INFO", env=env)  # fmt: skip
        wait_until(lambda: " ready." in worker.text(), 60, f"{name} ready", worker)
        return worker

    def beat(self, name: str, env: dict[str, str]) -> Proc:
        # Each beat keeps its own schedule file, as each would on its own host.
        return self.celery(name, "beat", "--loglevel=DEBUG", "-s", str(self.tmp / f"{name}.db"),
                           env=env)  # fmt: skip


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> list[int]:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    found.append(int(stat.parent.name))
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)  # a frozen process cannot exit
            stop_process(self.proc, timeout=10)


def alive(pid: int) -> bool:
    """Running, not a zombie (an orphan is reaped by init)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(ready: Callable[[], object], timeout: float, what: str, *procs: Proc) -> float:
    """Poll `ready` every 0.1 s; the monotonic time it first held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return time.monotonic()
        time.sleep(0.1)
    tails = "\n".join(f"--- {p.name}\n{p.text()[-3000:]}" for p in procs)
    raise AssertionError(f"{what}: not within {timeout} s\n{tails}")


@contextlib.contextmanager
def chaos_stack(tmp: Path, scale: Scale) -> Iterator[Stack]:
    postgres_database(DATABASE_URL, fresh=True)
    port = free_port()
    args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--daemonize", "no"]  # fmt: skip
    redis = subprocess.Popen(args, stdout=(tmp / "redis.log").open("w"), stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, redis, timeout=10)
        (tmp / "prometheus").mkdir(exist_ok=True)
        stack = Stack(tmp, f"redis://127.0.0.1:{port}/0", scale)
        migrated = manage("migrate", "--noinput", env=stack.env(), timeout=180)
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        for line in stack.shell(SETUP.format(models=MODELS)):
            name, version, scan = line.split(":")
            stack.scans[name] = int(scan)
            if name != "warm":
                stack.versions[name] = int(version)
        yield stack
    finally:
        redis.kill()
        redis.wait(timeout=10)


def query(sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def scan_status(scan_id: int | str) -> str:
    return query("SELECT status FROM drift_driftscan WHERE id = %s", int(scan_id))[0][0]


def task_id(line: str) -> str:
    return line.split("[", 2)[2].split("]", 1)[0]


def task_lines(text: str, task: str, task_id: str = "") -> list[str]:
    pattern = re.escape(f"Task {task}[") + (re.escape(task_id) if task_id else r"[0-9a-f-]+")
    return [line for line in text.splitlines() if re.search(pattern + r"\]", line)]


# --- T7: a worker killed mid-scan ---------------------------------------------------------------


def run_t7(stack: Stack, mode: str) -> tuple[list[Criterion], dict[str, float]]:
    """One scan of a fresh version, its worker's pool child ("child") or main process ("main")
    killed -9 half-way through the report's transaction."""
    scale = stack.scale
    model = f"chaos_t7_{mode}"
    version_id, scan_id = stack.versions[model], stack.scans[model]
    env = stack.env(CHAOS_SECONDS_PER_FEATURE=str(scale.seconds_per_feature))
    workers = [stack.worker(f"t7-{mode}-1", env)]
    try:
        task_id = stack.send(VERSION_TASK, scan_id, version_id)
        first = workers[0]
        hook = re.compile(r"chaos-hook pid=(\d+) report=(\d+) feature=")
        wait_until(lambda: hook.search(first.text()), 60, "the scan's transaction", first)
        time.sleep(scale.kill_after_s)  # mid-scan: the report row inserted, not committed
        pid, report_id = map(int, hook.search(first.text()).groups())  # type: ignore[union-attr]
        visible_before = query("SELECT count(*) FROM drift_driftreport WHERE id = %s", report_id)
        victim = pid if mode == "child" else first.proc.pid
        assert victim in first.children() or victim == first.proc.pid
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        time.sleep(0.5)
        left_after_kill = query(
            "SELECT count(*) FROM drift_driftreport WHERE model_version_id = %s", version_id
        )[0][0]
        if mode == "main":
            first.proc.wait(timeout=10)
            workers.append(stack.worker(f"t7-{mode}-2", env))
        budget = 30 if mode == "child" else scale.visibility_timeout_s + 30
        success = f"Task {VERSION_TASK}[{task_id}] succeeded"
        done_at = wait_until(
            lambda: any(success in w.text() for w in workers), budget + 30, "the retry", *workers
        )
        wait_until(lambda: scan_status(scan_id) != "running", 10, "the scan", *workers)
        child_alive = mode == "main" and alive(pid)
    finally:
        for worker in workers:
            worker.stop()
    logs = "\n".join(w.text() for w in workers)
    outcome = [line for line in task_lines(logs, VERSION_TASK, task_id) if "succeeded" in line]
    lost = "WorkerLostError" in first.text() if mode == "child" else first.proc.returncode == -9
    reports = query(
        "SELECT r.id, r.window_start, r.n_features_tested, r.severity, count(f.id) "
        "FROM drift_driftreport r LEFT JOIN drift_driftfeatureresult f ON f.report_id = r.id "
        "WHERE r.model_version_id = %s GROUP BY r.id",
        version_id,
    )
    per_window: dict[object, int] = {}
    for _, window_start, *_ in reports:
        per_window[window_start] = per_window.get(window_start, 0) + 1
    partial = [r for r in reports if r[4] != r[2] or r[4] != N_FEATURES]
    ids = [r[0] for r in reports] or [0]
    alerts = query(
        "SELECT count(*) FROM tradingsite_event WHERE type = 'drift.alert' AND subject = %s",
        f"model:{model}",
    )[0][0]
    alerts_for_report = query(
        "SELECT count(*) FROM tradingsite_event WHERE type = 'drift.alert' "
        "AND (payload->>'report_id')::int = ANY(%s)",
        ids,
    )[0][0]
    created_events = query(
        "SELECT count(*) FROM tradingsite_event WHERE type = 'drift.report.created' "
        "AND subject = %s",
        f"model:{model}",
    )[0][0]
    items = query(
        "SELECT i.outcome, s.status FROM drift_driftscanitem i JOIN drift_driftscan s "
        "ON s.id = i.scan_id WHERE i.scan_id = %s AND i.model_version_id = %s",
        scan_id, version_id,
    )  # fmt: skip
    took = done_at - killed_at
    criteria = [
        Criterion(f"the kill landed mid-transaction ({mode} pid {victim})",
                  visible_before == [(0,)] and lost and not child_alive,
                  f"uncommitted report {report_id} invisible: {visible_before == [(0,)]}, "
                  f"worker lost: {lost}, orphaned child left: {child_alive}"),
        Criterion("0 partial rows: nothing left by the killed transaction",
                  left_after_kill == 0, f"{left_after_kill} report(s) 0.5 s after the kill"),
        Criterion("exactly 1 report per (model version, window)",
                  len(reports) == 1 and set(per_window.values()) == {1},
                  f"{len(reports)} report(s) over {len(per_window)} window(s)"),
        Criterion(f"0 partial rows: every report has its {N_FEATURES} feature results",
                  bool(reports) and not partial, f"{len(partial)} partial of {len(reports)}"),
        Criterion(f"the task ends SUCCESS after the retry within {budget} s of the kill",
                  took <= budget and len(outcome) == 1 and "'created'" in outcome[0],
                  f"{took:.1f} s: {outcome[-1].split('] ', 1)[-1] if outcome else 'none'}"),
        Criterion("the scan recorded the version once and completed",
                  items == [("created", "complete")], f"{items}"),
        Criterion("0 duplicate alerts: 1 drift.alert event (of its report), 1 report event",
                  (alerts, alerts_for_report, created_events) == (1, 1, 1),
                  f"{alerts} alert event(s) for the model, {alerts_for_report} for the report, "
                  f"{created_events} report event(s); severity "
                  f"{reports[0][3] if reports else '-'}"),
    ]  # fmt: skip
    return criteria, {"kill_to_success_s": took, "reports": len(reports)}


# --- T8: two beat schedulers ---------------------------------------------------------------------


def run_t8(stack: Stack) -> tuple[list[Criterion], dict[str, float]]:
    """Beats A and B; A killed -9 and restarted; B frozen past the lease, then thawed."""
    scale, interval = stack.scale, stack.scale.interval_s
    version_ids = sorted(stack.versions[name] for name in T8_MODELS)
    env = stack.env(DRIFT_INTERVAL_SECONDS=str(interval))
    phase = scale.phase_intervals * interval
    freeze = max(phase, scale.lease_s + 1)  # longer than any lease
    procs = [stack.worker("t8-worker", env)]
    try:
        # An on-demand scan first, so the pool children have imported the scan code before the
        # first interval (a cold first scan takes seconds on a loaded machine).
        warm = stack.scans["warm"]
        for version_id in stack.versions.values():
            stack.send(VERSION_TASK, warm, version_id)
        wait_until(lambda: scan_status(warm) != "running", 60, "the warm-up scan", procs[0])
        beat_a, beat_b = stack.beat("t8-beat-a", env), stack.beat("t8-beat-b", env)
        procs += [beat_a, beat_b]
        for beat in (beat_a, beat_b):
            wait_until(lambda b=beat: "beat: Starting" in b.text(), 60, "beat start", beat)
        started = time.time()
        time.sleep(phase)
        beat_a.proc.send_signal(signal.SIGKILL)
        beat_a.proc.wait(timeout=5)
        killed = time.time()
        procs.append(stack.beat("t8-beat-a2", env))  # its supervisor restarts it
        wait_until(lambda: "beat: Starting" in procs[-1].text(), 60, "beat restart", procs[-1])
        time.sleep(max(0.0, killed + phase - time.time()))
        beat_b.proc.send_signal(signal.SIGSTOP)
        frozen = time.time()
        time.sleep(freeze)
        # Thaw in the last quarter of a slot: after the live beat's mid-slot send, so B's
        # overdue send comes late for its interval.
        time.sleep((0.8 - time.time() / interval % 1) % 1 * interval)
        sent_before_thaw = len(re.findall(SENT, beat_b.text()))
        beat_b.proc.send_signal(signal.SIGCONT)
        thawed = time.time()
        time.sleep(phase)
        ended = time.time()
    finally:
        for proc in reversed(procs):
            proc.stop()
    worker_log = procs[0].text()
    # B's first send after the thaw is the one that was due while it was frozen.
    late_ids = re.findall(SENT + "([0-9a-f-]+)", beat_b.text())[sent_before_thaw:][:1]
    scans = query(
        "SELECT s.slot, s.status, s.trigger, extract(epoch from s.started_at), "
        "array_agg(i.model_version_id ORDER BY i.model_version_id) FILTER "
        "(WHERE i.model_version_id = ANY(%s)) FROM drift_driftscan s "
        "LEFT JOIN drift_driftscanitem i ON i.scan_id = s.id "
        "WHERE s.slot IS NOT NULL AND s.started_at >= to_timestamp(%s) GROUP BY s.id",
        version_ids, started,
    )  # fmt: skip
    by_slot = {int(slot): (status, trigger, items) for slot, status, trigger, _, items in scans}
    first_slot = min(by_slot) if by_slot else 0
    last_slot = int(ended // interval) - 1  # the last interval that ended before the beats did
    observed = range(first_slot, last_slot + 1)
    missed = [s for s in observed if s not in by_slot]
    kill_slot = int(killed // interval)
    bad = {
        s: by_slot[s]
        for s in observed
        if s in by_slot and (by_slot[s][0] != "complete" or by_slot[s][2] != version_ids)
    }
    freeze_slots = range(int(frozen // interval) + 1, int(thawed // interval))
    late = [
        line
        for i in late_ids
        for line in task_lines(worker_log, SCAN_TASK, i)
        if "succeeded" in line
    ]
    late_refused = bool(late) and all(line.endswith(": None") for line in late)
    # A task retried after a transient database error is received twice and succeeds once.
    scan_runs = task_lines(worker_log, SCAN_TASK)
    received = {task_id(line) for line in scan_runs if line.endswith("received")}
    succeeded = {task_id(line) for line in scan_runs if " succeeded in " in line}
    retried = sum("] retry:" in line for line in scan_runs)
    problems = [
        line for line in worker_log.splitlines()
        if re.search(r"Traceback|ERROR/|raised unexpected|IntegrityError", line)
    ]  # fmt: skip
    per_slot = Counter(int(row[0]) for row in scans)  # the unique index allows at most 1
    exact = [s for s in observed if per_slot[s] == 1 and s not in bad]
    criteria = [
        Criterion("scans per (model, interval) = exactly 1 in every interval observed",
                  len(exact) == len(observed) - len(set(missed) & {kill_slot})
                  and len(observed) >= 4 * scale.phase_intervals - 2,
                  f"{len(exact)}/{len(observed)} intervals with 1 scan and 1 item per model; "
                  f"wrong item sets or status: {bad or 'none'}"),
        Criterion("takeover: no interval missed beyond the one of the kill",
                  set(missed) <= {kill_slot}, f"missed {missed or 'none'} (kill in {kill_slot})"),
        Criterion(f"frozen beat B ({freeze:g} s > lease {scale.lease_s} s): no interval missed",
                  all(s in by_slot for s in freeze_slots), f"{len(freeze_slots)} intervals"),
        Criterion("the thawed beat's overdue send is refused by the claim (a no-op SUCCESS)",
                  late_refused, f"{len(late_ids)} overdue send(s): "
                  f"{[line.split('] ', 1)[-1] for line in late] or 'no task ran'}"),
        Criterion("every scan task ends SUCCESS; no exception in the worker log",
                  bool(received) and received == succeeded and not problems,
                  f"{len(succeeded)}/{len(received)} succeeded ({retried} retried after a "
                  f"database error); {problems[:3] or 'no errors'}"),
    ]  # fmt: skip
    figures = {
        "intervals": len(observed),
        "scanned": len(exact),
        "missed": len(missed),
        "scan_tasks": len(received),
    }
    return criteria, figures


# --- pytest ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with chaos_stack(tmp_path_factory.mktemp("celery-chaos"), CI) as running:
        yield running


@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode", ["child", "main"])
def test_t7_a_worker_killed_mid_scan_leaves_one_report_and_the_retry_succeeds(
    stack: Stack, mode: str
) -> None:
    criteria, figures = run_t7(stack, mode)
    print(report(f"T7 worker kill ({mode})", criteria, figures))
    assert_passed(criteria)


@pytest.mark.timeout(180)
def test_t8_two_beats_scan_each_interval_exactly_once(stack: Stack) -> None:
    criteria, figures = run_t8(stack)
    print(report("T8 two beats", criteria, figures))
    assert_passed(criteria)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="the table's real durations")
    parser.add_argument("--only", choices=["t7", "t8"], help="one scenario")
    parser.add_argument("--workdir", type=Path, help="keep the logs here (default: a temp dir)")
    args = parser.parse_args()
    scale = FULL if args.full else CI
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="chaos-t7-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"logs: {workdir}", flush=True)
    failed = 0
    with chaos_stack(workdir, scale) as running:
        runs: list[tuple[str, Callable[[], tuple[list[Criterion], dict[str, float]]]]] = []
        if args.only in (None, "t7"):
            runs += [
                (f"T7 worker kill ({m})", lambda m=m: run_t7(running, m)) for m in ("child", "main")
            ]
        if args.only in (None, "t8"):
            runs.append(("T8 two beats", lambda: run_t8(running)))
        for title, run in runs:
            criteria, figures = run()
            print(report(title, criteria, figures), flush=True)
            failed += sum(not c.ok for c in criteria)
    return 1 if failed else 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
