"""Helpers for tests that start real server processes on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PROFILE_VARS = ("ENVIRONMENT", "DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "JWT_SECRET")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode} before listening")
        time.sleep(0.1)
    raise AssertionError(f"nothing listened on port {port} within {timeout} s")


def clean_env(**overrides: str) -> dict[str, str]:
    """The current environment without profile variables, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARS}
    env.update(overrides)
    return env


def production_env(**overrides: str) -> dict[str, str]:
    """A production configuration that passes the startup validator."""
    good = {
        "ENVIRONMENT": "production",
        "SECRET_KEY": "k3Y-" + "aZ9x" * 15,
        "JWT_SECRET": "jwt-" + "Qm7p" * 12,
        "DATABASE_URL": os.environ.get(
            "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/tradingsite"
        ),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "ALLOWED_ORIGINS": "https://trading.example.com",
        "TRUSTED_HOSTS": "trading.example.com,127.0.0.1,localhost",
    }
    good.update(overrides)
    return clean_env(**good)


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """TERM, then KILL if it has not exited within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


def start_daphne(port: int, env: dict[str, str], **popen: object) -> subprocess.Popen:
    """The ASGI server as `make run` starts it, on 127.0.0.1:`port`."""
    args = ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "tradingsite.asgi:application"]
    return subprocess.Popen([PYTHON, *args], cwd=ROOT, env=env, **popen)  # type: ignore[call-overload]


def run_concurrently(fn: Callable[[], None], count: int) -> None:
    """Run `fn` in `count` threads released at the same instant; wait for all of them."""
    barrier = threading.Barrier(count)

    def worker() -> None:
        barrier.wait()
        try:
            fn()
        finally:
            connection.close()  # each thread opened its own database connection

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def manage(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def postgres_database(url: str, *, fresh: bool = False) -> None:
    """Create the database `url` names if it is missing (with `fresh`: drop it first, even while
    other sessions use it), connecting as the same user to the `postgres` database."""
    import psycopg

    parts = urlsplit(url)
    admin = parts._replace(scheme="postgresql", path="/postgres").geturl()
    name = parts.path.lstrip("/")
    with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
