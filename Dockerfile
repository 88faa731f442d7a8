# syntax=docker/dockerfile:1
# One image, three roles: `api` (gunicorn + uvicorn workers), `worker` (Celery), `beat` (Celery
# beat). The role is the first argument of docker/entrypoint.sh; see docker-compose.yml.
FROM python:3.11-slim

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock file or pyproject.toml changes.
COPY requirements.lock pyproject.toml ./
RUN pip install --no-cache-dir --disable-pip-version-check -r requirements.lock

COPY . .

# Static files are collected at build time with the production storage (whitenoise's compressed
# manifest), so the runtime container never writes to /app/staticfiles. Settings must import for
# this, and production settings run the startup validator: the values below exist only for this
# one RUN line (random secrets, unreachable URLs; nothing connects). They are not in the image's
# environment, so a container started without real configuration still refuses to start.
RUN env -u PROMETHEUS_MULTIPROC_DIR \
        ENVIRONMENT=production \
        SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
        JWT_SECRET="$(python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
        DATABASE_URL=postgresql://build@127.0.0.1:1/build \
        REDIS_URL=redis://127.0.0.1:1/0 \
        TRADINGSITE_VAR_DIR=/tmp/build-var \
        python manage.py collectstatic --noinput \
    && rm -rf /tmp/build-var

# A non-root user owns the code, a writable var/ (Celery beat schedule) and the Prometheus
# multiprocess directory (one file per gunicorn worker, merged by /metrics).
RUN useradd --uid 10001 --user-group --home-dir /app --no-create-home --shell /usr/sbin/nologin app \
    && mkdir -p /app/var/artifacts /tmp/prometheus \
    && chmod +x docker/entrypoint.sh \
    && chown -R app:app /app /tmp/prometheus

ENV ENVIRONMENT=production \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8080 \
    WORKERS=4 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus

USER app

EXPOSE 8080

# Liveness for the api role (the worker and beat services override it in docker-compose.yml).
# Django answers only to ALLOWED_HOSTS, so the probe sends the first TRUSTED_HOSTS entry as Host;
# /health is exempt from the HTTPS redirect.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request as u; host = (os.environ.get('TRUSTED_HOSTS') or 'localhost').split(',')[0].strip(); u.urlopen(u.Request('http://127.0.0.1:${PORT}/health', headers={'Host': host}), timeout=4)"

ENTRYPOINT ["docker/entrypoint.sh"]
CMD ["api"]
