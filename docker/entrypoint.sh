#!/usr/bin/env bash
# Container entry point. First argument, the role:
#   api     migrate, then gunicorn with uvicorn workers (HTTP + websockets) on $PORT
#   worker  Celery worker (tasks from the Redis broker)
#   beat    Celery beat (the schedule in tradingsite/celery.py); run exactly one
#   other   exec'd as-is, e.g. `docker compose run --rm api python manage.py create_api_user ...`
# api, worker and beat import Django first, so a misconfigured production exits here, non-zero,
# with the startup validator's message, before any port is bound.
set -euo pipefail

role="${1:-api}"
if [ "$#" -gt 0 ]; then
    shift
fi

# prometheus_client's multiprocess mode writes one file per process into this directory and
# fails if it is missing; every Django process (migrate and celery included) needs it.
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    mkdir -p "${PROMETHEUS_MULTIPROC_DIR}"
fi

clean_metrics_dir() {
    # Files left by a previous run (or by `migrate` just now) would be merged into /metrics:
    # the server starts from an empty directory.
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
        clean_metrics_dir
        # --preload imports the app (and so the startup validator) in the master before it binds
        # the port; the startup banner closes its database connections before the fork.
        exec gunicorn tradingsite.asgi:application \
            -k tradingsite.uvicorn_worker.UvicornWorker \
            --preload \
            -w "${WORKERS:-4}" \
            -b "0.0.0.0:${PORT:-8080}" \
            --worker-tmp-dir /dev/shm \
            "$@"
        ;;
    worker)
        exec celery -A tradingsite worker --loglevel=INFO \
            --concurrency "${CELERY_CONCURRENCY:-2}" "$@"
        ;;
    beat)
        mkdir -p /app/var
        exec celery -A tradingsite beat --loglevel=INFO \
            --schedule /app/var/celerybeat-schedule "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
