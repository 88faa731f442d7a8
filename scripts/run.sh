#!/usr/bin/env bash
# `make run`: the whole embedded system in one terminal. A Celery worker with beat runs beside the
# ASGI server (filesystem broker, no server needed); Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PORT="${PORT:-8000}"
mkdir -p var
$PY manage.py migrate --noinput
$PY manage.py bootstrap_demo
$PY -m celery -A tradingsite worker -B --pool=solo --loglevel=INFO \
    --schedule var/celerybeat-schedule >var/worker.log 2>&1 &
WORKER_PID=$!
trap 'kill $WORKER_PID 2>/dev/null || true' EXIT INT TERM
echo "Celery worker + beat running (pid $WORKER_PID), log: var/worker.log"
echo "Serving on http://localhost:$PORT/ (dashboards), http://localhost:$PORT/api/v1/docs/ (API), http://localhost:$PORT/admin/"
# Our own middleware logs every request (with its request id), so daphne's access log is off.
$PY -m daphne -b 127.0.0.1 -p "$PORT" --access-log /dev/null tradingsite.asgi:application
