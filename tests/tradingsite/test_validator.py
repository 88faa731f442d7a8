"""The production startup validator: one test per refusal rule, then the real processes."""

from __future__ import annotations

import ipaddress
import subprocess
import time
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support import (
    ROOT,
    clean_env,
    free_port,
    manage,
    port_open,
    production_env,
    start_daphne,
)
from tradingsite.security.validator import production_settings_errors

GOOD_SECRET_KEY = "s" + "Kq93-xZp" * 8
GOOD_JWT = "j" + "Wm41_yTq" * 5


def _networks(*entries: str) -> tuple[Any, ...]:
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def _settings(**changes: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "SECRET_KEY": GOOD_SECRET_KEY,
        "JWT_SECRET": GOOD_JWT,
        "DEBUG": False,
        "ALLOWED_ORIGINS": ["https://trading.example.com"],
        "TRUSTED_HOSTS": ["trading.example.com"],
        "DATABASE_URL": "postgresql://u@db/trading",
        "DATABASES": {"default": {"ENGINE": "django.db.backends.postgresql"}},
        "REDIS_URL": "redis://redis:6379/0",
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "METRICS_ALLOWED_NETWORKS": _networks("127.0.0.1", "::1", "10.0.0.0/8", "2001:db8::/32"),
    }
    values.update(changes)
    return SimpleNamespace(**values)


def test_good_production_settings_pass() -> None:
    assert production_settings_errors(_settings()) == []


METRICS = "METRICS_ALLOWED_IPS admits too wide a network"
REFUSALS = [
    ("jwt secret missing", {"JWT_SECRET": ""}, "JWT_SECRET is missing"),
    ("jwt secret CHANGE_ME", {"JWT_SECRET": "CHANGE_ME"}, "JWT_SECRET is a placeholder"),
    ("jwt secret short", {"JWT_SECRET": "x7" * 15}, "JWT_SECRET is shorter than 32 bytes"),
    ("jwt equals secret key", {"JWT_SECRET": GOOD_SECRET_KEY}, "JWT_SECRET must differ"),
    ("secret key missing", {"SECRET_KEY": ""}, "SECRET_KEY is missing"),
    ("secret key short", {"SECRET_KEY": "Abc123!" * 5}, "SECRET_KEY is weak"),
    ("secret key repetitive", {"SECRET_KEY": "ab" * 40}, "SECRET_KEY is weak"),
    (
        "secret key insecure",
        {"SECRET_KEY": "django-insecure-" + "x1Y2z3" * 9},
        "SECRET_KEY is weak",
    ),
    ("debug on", {"DEBUG": True}, "DEBUG is on"),
    ("origins empty", {"ALLOWED_ORIGINS": []}, "ALLOWED_ORIGINS is empty"),
    ("origins wildcard", {"ALLOWED_ORIGINS": ["*"]}, "ALLOWED_ORIGINS contains a wildcard"),
    ("hosts empty", {"TRUSTED_HOSTS": []}, "TRUSTED_HOSTS is empty"),
    ("hosts wildcard", {"TRUSTED_HOSTS": ["a.example", "*"]}, "TRUSTED_HOSTS contains a wildcard"),
    ("database missing", {"DATABASE_URL": ""}, "DATABASE_URL is missing"),
    (
        "database sqlite",
        {"DATABASES": {"default": {"ENGINE": "django.db.backends.sqlite3"}}},
        "DATABASE_URL must point at PostgreSQL",
    ),
    ("redis missing", {"REDIS_URL": ""}, "REDIS_URL is missing"),
    ("no https redirect", {"SECURE_SSL_REDIRECT": False}, "SECURE_SSL_REDIRECT is off"),
    ("short hsts", {"SECURE_HSTS_SECONDS": 3600}, "SECURE_HSTS_SECONDS is below"),
    ("metrics everyone v4", {"METRICS_ALLOWED_NETWORKS": _networks("0.0.0.0/0")}, METRICS),
    ("metrics everyone v6", {"METRICS_ALLOWED_NETWORKS": _networks("::/0")}, METRICS),
    ("metrics wider than /8", {"METRICS_ALLOWED_NETWORKS": _networks("64.0.0.0/7")}, METRICS),
    ("metrics wider than /32", {"METRICS_ALLOWED_NETWORKS": _networks("2000::/3")}, METRICS),
]


@pytest.mark.parametrize(("case", "changes", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_each_misconfiguration_is_refused_by_name(
    case: str, changes: dict[str, Any], message: str
) -> None:
    errors = production_settings_errors(_settings(**changes))
    assert any(message in e for e in errors), errors


def test_token_only_metrics_with_no_allowed_network_passes() -> None:
    settings = _settings(METRICS_ALLOWED_NETWORKS=(), METRICS_TOKEN="t" * 40)
    assert production_settings_errors(settings) == []


@pytest.mark.parametrize("field", ["JWT_SECRET", "SECRET_KEY"])
def test_messages_never_echo_a_secret(field: str) -> None:
    secret = "tiny-secret-9"
    errors = production_settings_errors(_settings(**{field: secret}))
    assert errors
    assert all(secret not in e for e in errors)


# --- the real entry points ------------------------------------------------------------------------


def _server_refuses(env: dict[str, str]) -> tuple[int, str]:
    """Start daphne; return its exit code and stderr, asserting the port was never bound."""
    port = free_port()
    proc = start_daphne(port, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 15
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            assert not port_open(port), "the server bound its port despite a bad configuration"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
    _, stderr = proc.communicate(timeout=5)
    return proc.returncode, stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"JWT_SECRET": "CHANGE_ME"}, "JWT_SECRET"),
        ({"JWT_SECRET": "short-but-secret-42"}, "JWT_SECRET"),
        ({"DEBUG": "1"}, "DEBUG"),
        ({"TRUSTED_HOSTS": "*"}, "TRUSTED_HOSTS"),
    ],
)
def test_daphne_exits_non_zero_before_listening(changes: dict[str, str], setting: str) -> None:
    returncode, stderr = _server_refuses(production_env(**changes))
    assert returncode != 0
    assert setting in stderr
    assert "short-but-secret-42" not in stderr


@pytest.mark.slow
def test_a_missing_redis_url_stops_manage_py_too() -> None:
    env = production_env()
    del env["REDIS_URL"]
    result = manage("migrate", "--check", env=env)
    assert result.returncode == 2
    assert "REDIS_URL is missing" in result.stderr


@pytest.mark.slow
def test_good_production_settings_pass_django_deploy_checks() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues (0 silenced)" in result.stdout


@pytest.mark.slow
def test_development_starts_without_any_configuration() -> None:
    result = manage("check", env=clean_env(TRADINGSITE_VAR_DIR=str(ROOT / "var")))
    assert result.returncode == 0, result.stderr
