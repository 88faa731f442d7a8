#!/usr/bin/env bash
# Container entry point. First argument, the role:
#   api     migrate, then gunicorn with uvicorn workers (HTTP + websockets) on $PORT
#   worker  Celery worker (tasks from the Redis broker)
#   beat    Celery beat (the schedule in tradingsite/celery.py); run exactly one
#   other   exec'd as-is, e.g. `docker compose run --rm api python manage.py create_api_user ...`
# Every role imports Django first, so a misconfigured production exits here, non-zero, with the
# startup validator's message.
set -euo pipefail

role="${1:-api}"
if [ "$#" -gt 0 ]; then
    shift
fi

prepare_metrics_dir() {
    # prometheus_client's multiprocess mode keeps one file per process; files left by a previous
    # run would be merged into /metrics, so start from an empty directory.
    if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
        rm -rf "${PROMETHEUS_MULTIPROC_DIR}"
        mkdir -p "${PROMETHEUS_MULTIPROC_DIR}"
    fi
}

case "$role" in
    api)
        # Migrations before start (seed §9). With several api replicas, run them once instead:
        # `docker compose run --rm api python manage.py migrate`, then start the replicas.
        python manage.py migrate --noinput
        prepare_metrics_dir
        # --preload imports the app (and so the startup validator) in the master before it binds
        # the port; the startup banner closes its database connections before the fork.
        exec gunicorn tradingsite.asgi:application \
            -k uvicorn_worker.UvicornWorker \
            --preload \
            -w "${WORKERS:-4}" \
            -b "0.0.0.0:${PORT:-8080}" \
            --worker-tmp-dir /dev/shm \
            --access-logfile - \
            "$@"
        ;;
    worker)
        mkdir -p "${PROMETHEUS_MULTIPROC_DIR:-/tmp/prometheus}"
        exec celery -A tradingsite worker --loglevel=INFO \
            --concurrency "${CELERY_CONCURRENCY:-2}" "$@"
        ;;
    beat)
        mkdir -p "${PROMETHEUS_MULTIPROC_DIR:-/tmp/prometheus}" /app/var
        exec celery -A tradingsite beat --loglevel=INFO \
            --schedule /app/var/celerybeat-schedule "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
