"""Exit 0 when the servers named by DATABASE_URL and REDIS_URL answer; else say which does not."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit


def postgres_problem(url: str) -> str | None:
    import psycopg

    parts = urlsplit(url)
    conninfo = parts._replace(scheme="postgresql", path="/postgres").geturl()
    try:
        psycopg.connect(conninfo, connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"PostgreSQL at {parts.hostname}:{parts.port or 5432} unreachable: {exc}"
    return None


def redis_problem(url: str) -> str | None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis at {urlsplit(url).netloc} unreachable: {exc}"
    return None


def main() -> int:
    problems = []
    if url := os.environ.get("DATABASE_URL"):
        problems.append(postgres_problem(url))
    if url := os.environ.get("REDIS_URL"):
        problems.append(redis_problem(url))
    for problem in filter(None, problems):
        print(problem, file=sys.stderr)
    return 1 if any(problems) else 0


if __name__ == "__main__":
    sys.exit(main())
