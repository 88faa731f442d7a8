"""Server render time of the dashboards (issue 8: < 300 ms for a drift report with 50 features).

In-process, embedded profile (a fresh SQLite database in a temporary folder), Django's test
client logged in as an analyst. Timed, interleaved so that drift of the machine touches them
alike: the report page of a 50-feature report (the candidate), the same page of a 5-feature
report (the baseline: what 45 more features cost), and the overview. Each case ROUNDS rounds of
CALLS requests after a warm-up. Prints p50/p95 per case, the ratio candidate/baseline, and
whether the 50-feature p95 meets the 300 ms budget (exit 1 if not).

    .venv/bin/python bench/bench_dashboards.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TMP = tempfile.mkdtemp(prefix="bench-dashboards-")
for variable in ("DATABASE_URL", "REDIS_URL", "ENVIRONMENT"):
    os.environ.pop(variable, None)
os.environ.update(
    DJANGO_SETTINGS_MODULE="tradingsite.settings",
    TRADINGSITE_VAR_DIR=TMP,
    DATABASE_URL=f"sqlite:///{TMP}/db.sqlite3",
    ARTIFACT_ROOT=f"{TMP}/artifacts",
    LOG_LEVEL="ERROR",
    RATE_LIMIT_API="100000000/60",
)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

BUDGET_MS = 300.0
ROUNDS, CALLS, WARMUP = 7, 5, 3


def timed_ms(client: Client, url: str) -> float:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (url, response.status_code)
    return elapsed


def main() -> int:
    setup_test_environment()
    call_command("migrate", verbosity=0)
    from tests.dashboard import seed as demo

    demo.seed()
    cases = {
        "report, 50 features": f"/dashboard/drift/reports/{demo.wide_report(50).pk}/",
        "report, 5 features (baseline)": f"/dashboard/drift/reports/{demo.wide_report(5).pk}/",
        "overview": "/dashboard/",
    }
    client = Client()
    assert client.login(username=demo.ANALYST, password=demo.PASSWORD)
    for url in cases.values():
        for _ in range(WARMUP):
            timed_ms(client, url)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, url in cases.items():
            samples[name] += [timed_ms(client, url) for _ in range(CALLS)]
    print(f"dashboard server render, {ROUNDS * CALLS} requests each (ms):")
    for name, values in samples.items():
        p95 = statistics.quantiles(values, n=20)[-1]
        print(f"  {name:32s} p50 {statistics.median(values):7.1f}   p95 {p95:7.1f}")
    wide, base = (statistics.median(samples[n]) for n in list(cases)[:2])
    print(f"  50 features / 5 features: {wide / base:.2f}x")
    p95 = statistics.quantiles(samples["report, 50 features"], n=20)[-1]
    verdict = "meets" if p95 < BUDGET_MS else "MISSES"
    print(f"  50-feature report p95 {p95:.1f} ms {verdict} the {BUDGET_MS:.0f} ms budget")
    return 0 if p95 < BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
