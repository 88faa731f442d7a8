"""Post-deployment validation (deployment guide §10) against a running instance over HTTP.

Prints one `PASS <check>: <detail>` or `FAIL <check>: <reason>` line per check, then
`N passed, N failed`, and exits non-zero when any check failed. A check that needs what an
earlier one could not provide (a token, the ML status answer) fails as `skipped, needs <dep>`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.core.management.base import BaseCommand, CommandError, CommandParser

TOKEN_PATH = "/api/v1/auth/token/"
API_HEALTH_PATH = "/api/v1/health"
ML_STATUS_PATH = "/api/v1/ml/status"
EXPECTED_SERVICES = ("database", "cache", "broker", "channel_layer", "scheduler")
REQUESTS_BY_METHOD = "django_http_requests_total_by_method_total"
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
METRICS_TOKEN_ENV = "METRICS_TOKEN"


class CheckFailed(Exception):
    """A check's reason to fail, raised anywhere inside the check."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.detail}"


def _object(body: object, key: str) -> dict[str, Any]:
    """`body[key]` when it is a JSON object, else a CheckFailed naming the key."""
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, dict):
        raise CheckFailed(f"the answer has no `{key}` object")
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_time(text: object) -> datetime:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError as exc:
        raise CheckFailed(f"unreadable timestamp {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _sample_names(exposition: str) -> set[str]:
    """Metric names of the sample lines of a Prometheus text exposition."""
    lines = (line.strip() for line in exposition.splitlines())
    return {line.split("{")[0].split(" ")[0] for line in lines if line and not line.startswith("#")}


def _describe_service(name: str, service: object) -> str:
    if not isinstance(service, dict):
        return f"{name} unreadable"
    detail = service.get("detail")
    return f"{name} {service.get('status')}" + (f" ({detail})" if detail else "")


class Validator:
    """The §10 checks, in order, sharing one HTTP session, the token and the ML status answer."""

    def __init__(
        self,
        *,
        base_url: str,
        timeout: float,
        forwarded_https: bool,
        token: str | None = None,
        username: str | None = None,
        password: str = "",
        password_env: str = "VALIDATE_PASSWORD",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        if forwarded_https:
            self.session.headers["X-Forwarded-Proto"] = "https"
        self.token = token
        self.username = username
        self.password = password
        self.password_env = password_env
        self.ml_status: dict[str, Any] | None = None

    # --- HTTP -------------------------------------------------------------------------------------
    def request(
        self, method: str, path: str, *, auth: bool = False, bearer: str = "", **kwargs: Any
    ) -> requests.Response:
        headers = {"Accept": "application/json"}
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if bearer:  # a credential of its own, e.g. the metrics token
            headers["Authorization"] = f"Bearer {bearer}"
        return self.session.request(
            method,
            self.base_url + path,
            headers=headers,
            timeout=self.timeout,
            allow_redirects=False,  # a redirect (HTTP -> HTTPS) is reported, not followed
            **kwargs,
        )

    def expect_status(self, response: requests.Response, *expected: int) -> None:
        if response.status_code in expected:
            return
        where = f"{response.request.method} {urlsplit(response.url).path}"
        if response.is_redirect:
            location = response.headers.get("Location", "?")
            raise CheckFailed(
                f"{where} answered {response.status_code} redirect to {location} "
                "(plain HTTP to a production instance? use https:// or --insecure-http)"
            )
        raise CheckFailed(f"{where} answered {response.status_code}: {response.text[:200]}")

    def json_of(self, response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError as exc:
            raise CheckFailed(f"{urlsplit(response.url).path} did not answer JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise CheckFailed(f"{urlsplit(response.url).path} answered JSON that is not an object")
        return body

    def get_json(self, path: str, *, auth: bool) -> dict[str, Any]:
        response = self.request("GET", path, auth=auth)
        self.expect_status(response, 200)
        return self.json_of(response)

    # --- checks -----------------------------------------------------------------------------------
    def check_health(self) -> str:
        body = self.get_json("/health", auth=False)
        breakers = _object(body, "circuit_breakers")
        states = {
            name: b.get("state") if isinstance(b, dict) else "?" for name, b in breakers.items()
        }
        if body.get("status") == "degraded":
            opened = sorted(name for name, state in states.items() if state == "open")
            raise CheckFailed(f"status degraded, open circuit breakers: {', '.join(opened)}")
        if body.get("status") != "ok":
            raise CheckFailed(f"status {body.get('status')!r}, expected 'ok'")
        summary = ", ".join(f"{name} {state}" for name, state in states.items())
        return f"status ok ({body.get('environment')}, v{body.get('version')}); breakers: {summary}"

    def check_auth(self) -> str:
        if self.token:
            how = "using the --token given"
        else:
            self.token = self.obtain_token()
            how = f"token obtained for {self.username!r}"
        anonymous = self.request("GET", ML_STATUS_PATH, auth=False)
        if anonymous.status_code != 401:
            raise CheckFailed(
                f"{how}, but {ML_STATUS_PATH} without a token answered "
                f"{anonymous.status_code}, expected 401 (deny by default)"
            )
        return f"{how}; {ML_STATUS_PATH} without a token answers 401"

    def obtain_token(self) -> str:
        if not self.username:
            raise CheckFailed("no credentials: pass --token, or --username and --password-env")
        if not self.password:
            raise CheckFailed(f"no password for {self.username!r}: ${self.password_env} is empty")
        credentials = {"username": self.username, "password": self.password}
        response = self.request("POST", TOKEN_PATH, json=credentials)
        self.expect_status(response, 200)
        access = self.json_of(response).get("access")
        if not isinstance(access, str) or not access:
            raise CheckFailed(f"{TOKEN_PATH} answered 200 without an access token")
        return access

    def check_service_matrix(self) -> str:
        response = self.request("GET", API_HEALTH_PATH, auth=True)
        self.expect_status(response, 200, 503)  # 503: database down, the body says why
        body = self.json_of(response)
        services = _object(body, "services")
        problems = [f"{name} missing" for name in EXPECTED_SERVICES if name not in services]
        problems += [
            _describe_service(name, service)
            for name, service in services.items()
            if not (isinstance(service, dict) and service.get("status") == "ok")
        ]
        if problems or response.status_code != 200:
            raise CheckFailed(
                f"HTTP {response.status_code}, {body.get('status')}: " + "; ".join(problems)
            )
        return f"{len(services)} services ok: {', '.join(services)}"

    def check_ml_status(self) -> str:
        self.ml_status = self.get_json(ML_STATUS_PATH, auth=True)
        features = _object(self.ml_status, "features")
        n_features, n_views = features.get("features"), features.get("views")
        counts = f"{n_features} features, {n_views} views"
        if not (_is_int(n_features) and _is_int(n_views) and n_features > 0 and n_views > 0):
            raise CheckFailed(
                f"{counts}; expected both > 0 (is the default feature view registered?)"
            )
        registered = "registered" if features.get("default_view_registered") else "NOT registered"
        return f"{counts}; default view {features.get('default_view')!r} {registered}"

    def check_metrics(self) -> str:
        # /metrics answers allow-listed peers, or anyone with the server's METRICS_TOKEN.
        metrics_token = os.environ.get(METRICS_TOKEN_ENV, "")
        response = self.request("GET", "/metrics", bearer=metrics_token)
        if response.status_code in (403, 404):
            raise CheckFailed(
                f"/metrics answered {response.status_code}: this host is not on the server's "
                f"METRICS_ALLOWED_IPS; set ${METRICS_TOKEN_ENV} to the server's METRICS_TOKEN"
                + (" (it is set: is it the server's?)" if metrics_token else "")
            )
        self.expect_status(response, 200)
        names = _sample_names(response.text)
        own = sorted(name for name in names if name.startswith("tradingsite_"))
        missing = [] if any(name.startswith("process_") for name in names) else ["process_*"]
        missing += [] if REQUESTS_BY_METHOD in names else [REQUESTS_BY_METHOD]
        missing += [] if own else ["tradingsite_*"]
        if missing:
            raise CheckFailed(f"/metrics lacks {', '.join(missing)} ({len(names)} metrics exposed)")
        return (
            f"{len(names)} metrics exposed, incl. process_*, {REQUESTS_BY_METHOD} "
            f"and {len(own)} tradingsite_*"
        )

    def check_drift_monitor(self) -> str:
        monitor = _object(self.ml_status, "drift_monitor")
        interval = monitor.get("interval_seconds")
        if not _is_int(interval) or interval <= 0:
            raise CheckFailed(f"unreadable interval_seconds {interval!r}")
        last = monitor.get("last_scan")
        if not isinstance(last, dict):
            raise CheckFailed(f"no scan yet (interval {interval} s): is the scheduler running?")
        scan = f"last scan #{last.get('id')}"
        if last.get("status") != "complete":
            raise CheckFailed(
                f"{scan} is {last.get('status')!r}, not complete: {last.get('detail')}"
            )
        age = int((datetime.now(UTC) - _parse_time(last.get("started_at"))).total_seconds())
        if age > 2 * interval:
            raise CheckFailed(
                f"{scan} too old: started {age} s ago, expected within {2 * interval} s"
            )
        return f"{scan} complete {age} s ago (interval {interval} s): {last.get('detail')}"

    def check_experiment_tracking(self) -> str:
        counts = _object(self.ml_status, "experiments")
        missing = [key for key in ("experiments", "runs") if key not in counts]
        not_int = [k for k, v in counts.items() if k != "last_run_at" and not _is_int(v)]
        if missing or not_int:
            raise CheckFailed(f"counts missing {missing} or not integers {not_int}: {counts}")
        return "tables reachable: " + ", ".join(f"{key}={value}" for key, value in counts.items())

    # --- running ----------------------------------------------------------------------------------
    def checks(self) -> list[tuple[str, Callable[[], str], str | None]]:
        """(name, check, the earlier check it needs) in the §10 order."""
        return [
            ("health", self.check_health, None),
            ("auth", self.check_auth, None),
            ("service-matrix", self.check_service_matrix, "auth"),
            ("ml-status", self.check_ml_status, "auth"),
            ("metrics", self.check_metrics, None),
            ("drift-monitor", self.check_drift_monitor, "ml-status"),
            ("experiment-tracking", self.check_experiment_tracking, "ml-status"),
        ]

    def available(self, dependency: str) -> bool:
        return {"auth": self.token is not None, "ml-status": self.ml_status is not None}[dependency]

    def run(self, name: str, check: Callable[[], str], needs: str | None) -> CheckResult:
        if needs and not self.available(needs):
            return CheckResult(name, False, f"skipped, needs {needs}")
        try:
            return CheckResult(name, True, check())
        except CheckFailed as exc:
            return CheckResult(name, False, str(exc))
        except requests.RequestException as exc:
            return CheckResult(name, False, f"request failed: {type(exc).__name__}: {exc}")


class Command(BaseCommand):
    help = (
        "Validate a running deployment (deployment guide §10): health, auth, service matrix, "
        "ML status, metrics, drift monitor and experiment tracking. Exits 1 when a check fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", required=True, help="base URL, e.g. https://api.example.com")
        who = parser.add_mutually_exclusive_group()
        who.add_argument("--token", help="an access token (skips the login)")
        who.add_argument("--username", help="log in as this user; password from --password-env")
        parser.add_argument(
            "--password-env",
            metavar="VAR",
            default="VALIDATE_PASSWORD",
            help="environment variable holding the password (default VALIDATE_PASSWORD)",
        )
        parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
        parser.add_argument(
            "--insecure-http",
            action="store_true",
            help="send X-Forwarded-Proto: https, to check a production instance over plain "
            "HTTP on loopback (no TLS proxy in front)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        validator = self._validator(options)
        results = []
        with validator.session:
            for name, check, needs in validator.checks():
                results.append(validator.run(name, check, needs))
                self.stdout.write(results[-1].line())
        failed = sum(not result.passed for result in results)
        self.stdout.write(f"{len(results) - failed} passed, {failed} failed")
        if failed:
            raise CommandError(f"{failed} of {len(results)} deployment checks failed", returncode=1)

    def _validator(self, options: dict[str, Any]) -> Validator:
        url = urlsplit(options["url"])
        if url.scheme not in ("http", "https") or not url.hostname:
            raise CommandError(f"--url must be an http(s) URL, got {options['url']!r}")
        if options["insecure_http"] and url.hostname not in LOOPBACK_HOSTS:
            self.stderr.write(
                f"warning: --insecure-http to {url.hostname}: credentials travel unencrypted"
            )
        return Validator(
            base_url=options["url"],
            timeout=options["timeout"],
            forwarded_https=options["insecure_http"],
            token=options["token"],
            username=options["username"],
            password=os.environ.get(options["password_env"], "") if options["username"] else "",
            password_env=options["password_env"],
        )
