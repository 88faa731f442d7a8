"""The deployment files (Dockerfile, docker/, docker-compose.yml, .env.example) keep their promises.

Pure file checks: no database, no Docker daemon. They pin what the architecture's §2 and the
seed's deployment guide require of a production deployment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradingsite.config import database_config
from tradingsite.security.validator import jwt_secret_errors, secret_key_errors

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
PROMETHEUS_CONFIG = ROOT / "docker" / "prometheus.yml"
ENV_EXAMPLE = ROOT / ".env.example"

APP_SERVICES = ("api", "worker", "beat")
ARCHITECTURE_VARIABLES = (
    "ENVIRONMENT",
    "PORT",
    "WORKERS",
    "DATABASE_URL",
    "REDIS_URL",
    "DRIFT_INTERVAL_SECONDS",
    "DEFAULT_FEATURE_VIEW",
    "JWT_SECRET",
    "ALLOWED_ORIGINS",
    "TRUSTED_HOSTS",
)
_SETTINGS_ENV_CALL = re.compile(
    r"\benv\.(?:str|int|bool|float|list|json)\(\s*[\"']([A-Z][A-Z0-9_]*)"
)
_OS_ENVIRON_GET = re.compile(r"os\.environ\.get\(\s*[\"']([A-Z][A-Z0-9_]*)")


def _settings_variables() -> list[str]:
    settings_source = (ROOT / "tradingsite" / "settings.py").read_text()
    config_source = (ROOT / "tradingsite" / "config.py").read_text()
    names = set(_SETTINGS_ENV_CALL.findall(settings_source))
    names |= set(_OS_ENVIRON_GET.findall(config_source))
    return sorted(names)


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment:` as a dict, whether it is written as a mapping or a list."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) for item in raw)
    return {key: str(value) for key, value in raw.items()}


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    pairs = []
    for statement in logical:
        instruction, _, arguments = statement.partition(" ")
        pairs.append((instruction.upper(), arguments.strip()))
    return pairs


def _entrypoint_branch(role: str) -> str:
    source = ENTRYPOINT.read_text()
    match = re.search(rf"^\s*{role}\)\s*$(.*?)^\s*;;", source, re.MULTILINE | re.DOTALL)
    assert match, f"entrypoint.sh has no `{role})` branch"
    return match.group(1)


def _env_example_assignments() -> dict[str, tuple[str, str]]:
    """NAME -> (value, the line above it) for every active assignment in .env.example."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    found = {}
    for index, line in enumerate(lines):
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            above = lines[index - 1] if index else ""
            found[match.group(1)] = (match.group(2), above)
    return found


# --- docker-compose.yml --------------------------------------------------------------------------


def test_compose_defines_the_six_services() -> None:
    services = _compose()["services"]
    assert {"api", "worker", "beat", "postgres", "redis", "prometheus"} <= set(services)


def test_api_worker_and_beat_share_one_production_environment() -> None:
    services = _compose()["services"]
    api_env = _environment(services["api"])
    for name in APP_SERVICES:
        assert _environment(services[name]) == api_env, f"{name} has a different environment"
    assert api_env["ENVIRONMENT"] == "production"
    for name in ARCHITECTURE_VARIABLES + ("SECRET_KEY",):
        assert name in api_env, f"{name} missing from the app environment"


def test_app_environment_points_at_the_postgres_and_redis_services() -> None:
    api_env = _environment(_compose()["services"]["api"])
    database = database_config(api_env["DATABASE_URL"], base_dir=ROOT, persistent=True)
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert database["HOST"] == "postgres"
    assert api_env["REDIS_URL"].startswith("redis://redis:")


def test_compose_requires_the_secrets_instead_of_defaulting_them() -> None:
    api_env = _environment(_compose()["services"]["api"])
    for name in ("JWT_SECRET", "SECRET_KEY"):
        assert re.fullmatch(rf"\$\{{{name}:\?[^}}]*\}}", api_env[name]), name


def test_api_waits_for_healthy_postgres_and_redis() -> None:
    services = _compose()["services"]
    for name in APP_SERVICES:
        depends_on = services[name]["depends_on"]
        for dependency in ("postgres", "redis"):
            assert depends_on[dependency]["condition"] == "service_healthy", (name, dependency)
    assert "healthcheck" in services["postgres"]
    assert "healthcheck" in services["redis"]


def test_api_publishes_port_8080() -> None:
    api = _compose()["services"]["api"]
    assert "8080:8080" in [str(port) for port in api["ports"]]
    assert api["command"] in ("api", ["api"])


def test_redis_evicts_with_volatile_lru() -> None:
    command = _compose()["services"]["redis"]["command"]
    words = command if isinstance(command, list) else command.split()
    assert words[words.index("--maxmemory-policy") + 1] == "volatile-lru"


def test_beat_runs_as_a_single_replica() -> None:
    beat = _compose()["services"]["beat"]
    assert beat.get("deploy", {}).get("replicas", 1) <= 1
    assert beat.get("scale", 1) <= 1
    assert beat["command"] in ("beat", ["beat"])


def test_prometheus_scrapes_the_api_metrics_endpoint() -> None:
    prometheus = _compose()["services"]["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus")
    mounts = [str(volume) for volume in prometheus["volumes"]]
    assert any(
        m.startswith("./docker/prometheus.yml:/etc/prometheus/prometheus.yml") for m in mounts
    )
    assert PROMETHEUS_CONFIG.is_file()
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["global"]["scrape_interval"] == "15s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    job = jobs["tradingsite"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert "api:8080" in targets


def test_the_scraper_host_is_a_trusted_host() -> None:
    # Django answers 400 to a Host outside ALLOWED_HOSTS, and Prometheus sends Host: api:8080.
    trusted = _environment(_compose()["services"]["api"])["TRUSTED_HOSTS"]
    assert "api" in [host.strip() for host in trusted.split(",")]


# --- Dockerfile and entrypoint -------------------------------------------------------------------


def test_dockerfile_builds_from_python_3_11_slim() -> None:
    instructions = _dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")


def test_dockerfile_installs_the_lock_file_before_copying_the_code() -> None:
    instructions = _dockerfile_instructions()
    install = next(i for i, (k, a) in enumerate(instructions) if k == "RUN" and "pip" in a)
    copy_all = instructions.index(("COPY", ". ."))
    assert "requirements.lock" in instructions[install][1]
    assert "--no-cache-dir" in instructions[install][1]
    assert install < copy_all


def test_dockerfile_runs_as_a_user_that_is_not_root() -> None:
    users = [
        arguments for instruction, arguments in _dockerfile_instructions() if instruction == "USER"
    ]
    assert users, "no USER line: the container would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_dockerfile_honours_port_and_workers() -> None:
    env_lines = " ".join(a for k, a in _dockerfile_instructions() if k == "ENV")
    assert "ENVIRONMENT=production" in env_lines
    assert "PORT=8080" in env_lines
    assert "WORKERS=4" in env_lines
    assert "PROMETHEUS_MULTIPROC_DIR=" in env_lines
    api = _entrypoint_branch("api")
    assert '"0.0.0.0:${PORT:-8080}"' in api
    assert '-w "${WORKERS:-4}"' in api
    instructions = dict(_dockerfile_instructions())
    assert "${PORT}/health" in instructions["HEALTHCHECK"]
    assert instructions["ENTRYPOINT"] == '["docker/entrypoint.sh"]'
    assert instructions["CMD"] == '["api"]'


def test_dockerfile_collects_static_files_without_baking_secrets_into_the_environment() -> None:
    instructions = _dockerfile_instructions()
    assert any(k == "RUN" and "collectstatic --noinput" in a for k, a in instructions)
    env_lines = " ".join(a for k, a in instructions if k in ("ENV", "ARG"))
    for name in ("SECRET_KEY", "JWT_SECRET", "DATABASE_URL", "REDIS_URL"):
        assert name not in env_lines


def test_entrypoint_migrates_before_starting_the_server() -> None:
    api = _entrypoint_branch("api")
    migrate = api.index("manage.py migrate --noinput")
    server = api.index("exec gunicorn tradingsite.asgi:application")
    assert migrate < server
    assert "uvicorn_worker.UvicornWorker" in api
    assert "--preload" in api


def test_entrypoint_starts_celery_worker_and_beat() -> None:
    assert "exec celery -A tradingsite worker" in _entrypoint_branch("worker")
    assert "exec celery -A tradingsite beat" in _entrypoint_branch("beat")


def test_entrypoint_is_an_executable_strict_bash_script() -> None:
    source = ENTRYPOINT.read_text()
    assert source.startswith("#!/usr/bin/env bash\n") or source.startswith("#!/bin/bash\n")
    assert "set -euo pipefail" in source
    assert os.access(ENTRYPOINT, os.X_OK)


# --- .env.example --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", sorted(set(_settings_variables()) | set(ARCHITECTURE_VARIABLES) | {"SECRET_KEY"})
)
def test_env_example_documents_each_variable_with_a_comment_above_it(name: str) -> None:
    assignments = _env_example_assignments()
    assert name in assignments, f"{name} is not set in .env.example"
    _, above = assignments[name]
    assert above.startswith("#"), f"{name} has no comment line above it"


def test_settings_read_the_variables_the_env_example_is_checked_against() -> None:
    # Guards the regex above: if it stopped matching, the parametrized test would check nothing.
    names = _settings_variables()
    assert {
        "ENVIRONMENT",
        "JWT_SECRET",
        "DATABASE_URL",
        "LOG_LEVEL",
        "DB_CONN_MAX_AGE_SECONDS",
    } <= set(names)


def test_env_example_leaves_the_secrets_as_invalid_placeholders() -> None:
    assignments = _env_example_assignments()
    secret_key = assignments["SECRET_KEY"][0]
    assert secret_key_errors(secret_key)
    assert jwt_secret_errors(assignments["JWT_SECRET"][0], secret_key)
    assert "secrets.token_urlsafe(64)" in ENV_EXAMPLE.read_text()


def test_env_example_uses_the_production_sample_of_the_seed() -> None:
    values = {name: value for name, (value, _) in _env_example_assignments().items()}
    assert values["ENVIRONMENT"] == "production"
    assert values["PORT"] == "8080"
    assert values["WORKERS"] == "4"
    assert values["DRIFT_INTERVAL_SECONDS"] == "3600"
    assert values["DEFAULT_FEATURE_VIEW"] == "core_technical"
    assert "*" not in values["ALLOWED_ORIGINS"] and "*" not in values["TRUSTED_HOSTS"]


def test_env_example_database_url_shows_the_accepted_asyncpg_form() -> None:
    value = _env_example_assignments()["DATABASE_URL"][0]
    assert value.startswith("postgresql+asyncpg://")
    database = database_config(value, base_dir=ROOT, persistent=True)
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert database["NAME"] == "trading"
