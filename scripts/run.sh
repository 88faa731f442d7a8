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
# No mingle/gossip/heartbeat: one worker needs no peers, and they only add control-file traffic.
$PY -m celery -A tradingsite worker -B --pool=solo --loglevel=INFO \
    --without-mingle --without-gossip --without-heartbeat \
    --schedule var/celerybeat-schedule >var/worker.log 2>&1 &
WORKER_PID=$!
echo "Celery worker + beat running (pid $WORKER_PID), log: var/worker.log"
echo "Serving on http://localhost:$PORT/  (API docs: /api/v1/docs/, admin: /admin/)"
# Our own middleware logs every request (with its request id), so daphne's access log is off.
$PY -m daphne -b 127.0.0.1 -p "$PORT" --access-log /dev/null tradingsite.asgi:application &
SERVER_PID=$!
# Whichever way this script ends (Ctrl-C, TERM, the server dying), both processes go with it.
trap 'kill $SERVER_PID $WORKER_PID 2>/dev/null || true' EXIT INT TERM
wait $SERVER_PID
