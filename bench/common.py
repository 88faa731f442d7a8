"""What the benches that serve tradingsite in the production profile share: the environment,
`manage.py` calls and progress lines (on stderr, so that stdout is the report)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def production_bench_env(
    var: Path, *, database_url: str, redis_url: str, password: str
) -> dict[str, str]:
    """The production profile on a database and Redis db of the bench's own, var files and
    artifacts under `var`, quiet logs, rate limits out of the way; BENCH_PASSWORD for
    `create_api_user --password-env`."""
    sys.path.insert(0, str(ROOT))
    from tests.support import production_env

    return production_env(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        TRADINGSITE_VAR_DIR=str(var),
        ARTIFACT_ROOT=str(var / "artifacts"),
        LOG_LEVEL="WARNING",
        RATE_LIMIT_API="1000000/60",
        BENCH_PASSWORD=password,
    )


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stderr[-3000:]}")
    return done.stdout
