"""What the platform's middleware costs per request.

Baseline and candidate run in the same process, interleaved: the same /health request (no I/O)
through Django's stock middleware only (the baseline) and through the full stack (metrics,
request id + access log, rate limiting, CORS, whitenoise). Prints the per-request times and the
ratio; the rate limiter's atomic counter is part of the candidate path.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
os.environ["LOG_LEVEL"] = "ERROR"  # a 401 per request would flood the terminal

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings, setup_test_environment  # noqa: E402

ROUNDS, REQUESTS = 7, 300
STOCK = [m for m in settings.MIDDLEWARE if m.startswith("django.")]


def per_request_us(client: Client, path: str) -> float:
    started = time.perf_counter()
    for _ in range(REQUESTS):
        client.get(path)
    return (time.perf_counter() - started) / REQUESTS * 1e6


def main() -> None:
    setup_test_environment()
    # A test client builds its middleware chain on its first request and keeps it.
    with override_settings(MIDDLEWARE=STOCK):
        stock_client = Client()
        stock_client.get("/health")
    full_client = Client()
    baseline, candidate = [], []
    # /health is exempt from rate limiting; /api/v1/health unauthenticated (401) is not.
    for path in ("/health", "/api/v1/health"):
        baseline.clear()
        candidate.clear()
        with override_settings(RATE_LIMITS={"auth": "10/60", "api": "100000000/60"}):
            for round_no in range(ROUNDS + 1):  # round 0 warms both paths up and is dropped
                stock = per_request_us(stock_client, path)
                full = per_request_us(full_client, path)
                if round_no:
                    baseline.append(stock)
                    candidate.append(full)
        base, cand = statistics.median(baseline), statistics.median(candidate)
        print(
            f"{path:<16} stock middleware {base:8.1f} us/req   full stack {cand:8.1f} us/req   "
            f"ratio {cand / base:5.2f}x"
        )


if __name__ == "__main__":
    main()
