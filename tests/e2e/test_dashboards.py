"""The dashboards in a real browser: Debian's chromium driven by Playwright (headless, launched
by executable_path; no browser download) against daphne serving seeded demo content. Each page
loads for an analyst without console errors and draws its charts; admin-only controls are hidden
from analysts; a promotion through the page lands in the history; a drift report published by
another process appears live on the open overview (and report list). Screenshots of every page go to
test-output/dashboards/ (not committed) for a reviewer."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    ROOT,
    clean_env,
    free_port,
    manage,
    postgres_database,
    start_daphne,
    stop_process,
    wait_for_port,
)

CHROMIUM = "/usr/bin/chromium"
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(
        f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install -y chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need the playwright package (requirements.lock)"
)

# The module's first test also pays for the server's set-up (migrate + seed, ~30 s; more on a
# busy machine): a timeout inside Playwright's event loop would leave the browser hanging.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = ROOT / "test-output" / "dashboards"
PASSWORD = "dash-Board-pass-7"  # tests.dashboard.seed.PASSWORD
DASH_DATABASE = "postgresql://postgres@127.0.0.1:5432/tradingsite_e2e_dash"
DASH_REDIS = "redis://127.0.0.1:6379/12"
PAGE_TIMEOUT_MS = 15_000


def _env(profile: str, var: Path) -> dict[str, str]:
    env = clean_env(
        TRADINGSITE_VAR_DIR=str(var),
        DATABASE_URL=f"sqlite:///{var / 'db.sqlite3'}",
        RATE_LIMIT_AUTH="100/60",  # every test logs in afresh
        LOG_LEVEL="WARNING",
    )
    if profile == "redis":
        env.update(DATABASE_URL=DASH_DATABASE, REDIS_URL=DASH_REDIS)
    return env


def _shell(code: str, env: dict[str, str]) -> str:
    done = manage("shell", "-c", code, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(
    scope="module",
    params=["embedded", pytest.param("redis", marks=[pytest.mark.postgres, pytest.mark.redis])],
)
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    var = tmp_path_factory.mktemp(f"dash-{request.param}")
    env = _env(request.param, var)
    if request.param == "redis":
        postgres_database(DASH_DATABASE, fresh=True)
        import redis

        redis.Redis.from_url(DASH_REDIS).flushdb()
    # one process for both (each Django start costs seconds): the schema, then the demo content
    out = _shell(
        "from django.core.management import call_command; call_command('migrate', verbosity=0); "
        "from tests.dashboard.seed import seed_for_browser; seed_for_browser()",
        env,
    )
    ids = json.loads(out.strip().splitlines()[-1])
    port = free_port()
    log = (var / "server.log").open("w")
    server = start_daphne(port, env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, server)
        yield {"url": f"http://127.0.0.1:{port}", "env": env, "profile": request.param,
               "log": var / "server.log", "ids": ids}  # fmt: skip
    finally:
        stop_process(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


class Visitor:
    """A logged-in browser tab that records console errors and failed requests."""

    def __init__(self, browser: Any, site: dict, username: str) -> None:
        self.site = site
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.page = self.context.new_page()
        self.page.set_default_timeout(PAGE_TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(f"{site['url']}/dashboard/")
        assert "/dashboard/login/" in self.page.url  # anonymous: the login page
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(re.compile(r".*/dashboard/$"))

    def open(self, path: str) -> Any:
        response = self.page.goto(self.site["url"] + path)
        assert response is not None and response.status == 200, (path, response and response.status)
        return response

    def charts_drawn(self) -> int:
        """Waits until every embedded figure is drawn by plotly (an SVG or canvas inside)."""
        expected = self.page.locator("[data-figure]").count()
        if expected:
            self.page.wait_for_function(
                """() => [...document.querySelectorAll('[data-figure]')].every(
                    el => el.querySelector('svg.main-svg, canvas'))"""
            )
        return expected

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(
            path=str(SCREENSHOTS / f"{self.site['profile']}-{name}.png"), full_page=True
        )

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def analyst_tab(browser: Any, site: dict) -> Iterator[Visitor]:
    visitor = Visitor(browser, site, "ana")
    yield visitor
    visitor.close()


@pytest.fixture(scope="module")
def admin_tab(browser: Any, site: dict) -> Iterator[Visitor]:
    visitor = Visitor(browser, site, "boss")
    yield visitor
    visitor.close()


@pytest.fixture
def analyst(analyst_tab: Visitor) -> Visitor:
    """The analyst's tab (logged in once per module), with this test's console errors only."""
    analyst_tab.errors.clear()
    return analyst_tab


@pytest.fixture
def admin(admin_tab: Visitor) -> Visitor:
    admin_tab.errors.clear()
    return admin_tab


def test_each_page_loads_for_an_analyst_without_console_errors_and_draws_its_charts(
    analyst: Visitor, site: dict
) -> None:
    ids = site["ids"]
    pages = {
        "overview": "/dashboard/",
        "drift-reports": "/dashboard/drift/",
        "drift-report": f"/dashboard/drift/reports/{ids['report']}/",
        "models": "/dashboard/models/",
        "model": "/dashboard/models/next-bar-direction/",
        "model-version": "/dashboard/models/next-bar-direction/versions/1/",
        "experiments": "/dashboard/experiments/",
        "experiment-runs": f"/dashboard/experiments/{ids['experiment']}/?sort=metrics.roc_auc",
        "run-compare": "/dashboard/experiments/compare/?"
        + "&".join(f"run={r}" for r in ids["runs"]),
        "run": f"/dashboard/experiments/runs/{ids['runs'][0]}/",
        "features": "/dashboard/features/",
        "feature-view": "/dashboard/features/views/core_technical/",
        "feature-job": f"/dashboard/features/jobs/{ids['job']}/",
    }
    charts = {}
    for name, path in pages.items():
        analyst.open(path)
        charts[name] = analyst.charts_drawn()
        analyst.screenshot(name)
        assert not analyst.errors, (name, analyst.errors)
    # every page with figures drew them; the chart-heavy pages have several
    assert charts["overview"] >= 1 and charts["drift-report"] >= 3 and charts["run-compare"] >= 2
    assert charts["feature-view"] >= 3 and charts["model"] >= 2


def test_admin_only_controls_are_hidden_from_analysts(
    analyst: Visitor, admin: Visitor, site: dict
) -> None:
    analyst.open("/dashboard/models/next-bar-direction/")
    assert analyst.page.locator(".promote-link").count() == 0
    assert analyst.page.locator("#rollback-button").count() == 0
    assert analyst.page.locator(".role").inner_text().startswith("analyst")
    refused = analyst.page.goto(
        site["url"] + "/dashboard/models/next-bar-direction/versions/2/promote/?stage=Production"
    )
    assert refused is not None and refused.status == 403
    admin.open("/dashboard/models/next-bar-direction/")
    assert admin.page.locator(".promote-link").count() >= 1
    assert admin.page.locator(".role").inner_text() == "model admin"


def test_a_promotion_through_the_page_succeeds_and_shows_in_history(admin: Visitor) -> None:
    admin.open("/dashboard/models/next-bar-direction/versions/2/")
    admin.page.click("text=Promote to Production…")
    admin.page.wait_for_selector("#policy-results")
    rules = admin.page.locator("#policy-results tbody tr")
    assert rules.count() == 7  # every rule of the default Production policy, before confirming
    assert admin.page.locator("#policy-verdict").inner_text() == "all rules pass"
    admin.screenshot("promotion-confirm")
    admin.page.fill("#id_reason", "better ROC AUC in the walk forward")
    admin.page.click("#confirm-transition")
    admin.page.wait_for_url(re.compile(r".*/dashboard/models/next-bar-direction/#history$"))
    assert "v2 → Production (applied)" in admin.page.locator(".messages").inner_text()
    first_row = admin.page.locator("#history-table tbody tr").first.inner_text()
    assert "v2" in first_row and "Staging → Production" not in first_row
    assert "None → Production" in first_row and "applied" in first_row and "boss" in first_row
    admin.charts_drawn()
    admin.screenshot("model-after-promotion")
    assert not admin.errors, admin.errors


def test_a_drift_report_published_during_the_test_appears_live_on_the_open_overview(
    analyst: Visitor, site: dict
) -> None:
    analyst.open("/dashboard/")
    analyst.page.wait_for_selector("#live-status[data-state=open]")
    reports_tab = analyst.context.new_page()  # the report list, open beside it
    reports_tab.goto(site["url"] + "/dashboard/drift/")
    reports_tab.wait_for_selector("#live-status[data-state=open]")
    out = _shell(
        "from tests.dashboard.seed import publish_report; print(publish_report())", site["env"]
    )
    report_id = int(out.strip().splitlines()[-1])
    link = analyst.page.locator(f'#event-list a[href="/dashboard/drift/reports/{report_id}/"]')
    link.wait_for(timeout=20_000)  # no reload: the socket brought it
    assert "drift.report.created" in analyst.page.locator("#live-ticker").inner_text()
    assert "mean-reversion v1" in link.inner_text()
    analyst.page.locator("#production").get_by_text("mean-reversion").wait_for()
    reports_tab.locator(f'#report-table tr[data-report-id="{report_id}"]').wait_for()
    reports_tab.close()
    analyst.charts_drawn()
    analyst.screenshot("overview-live-report")
    assert not analyst.errors, analyst.errors
