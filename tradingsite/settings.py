"""One settings module, two profiles.

Embedded (no environment variables): SQLite, in-process cache and channel layer, a Celery broker
on the filesystem. Production (ENVIRONMENT=production + DATABASE_URL + REDIS_URL): PostgreSQL with
a connection pool, Redis for cache, channel layer and broker. The startup validator
(tradingsite/security/validator.py) refuses a misconfigured production before the port is bound.
"""

from __future__ import annotations

import ipaddress
import secrets
from datetime import timedelta
from pathlib import Path

import environ

from tradingsite.config import ConfigError, database_config, dev_secret_key, parse_csv

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("TRADINGSITE_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")  # local convenience; real environment variables win

ENVIRONMENT = env.str("ENVIRONMENT", default="development").strip().lower()
IS_PRODUCTION = ENVIRONMENT == "production"

DEBUG = env.bool("DEBUG", default=not IS_PRODUCTION)
# Production takes the secrets from the environment only; the validator refuses weak or missing
# ones. Development keeps a stable random key in var/ so sessions survive restarts.
SECRET_KEY = env.str("SECRET_KEY", default="") or ("" if IS_PRODUCTION else dev_secret_key(VAR_DIR))
# JWT tokens are signed with their own secret, never SECRET_KEY (simplejwt's silent default).
JWT_SECRET = env.str("JWT_SECRET", default="") or ("" if IS_PRODUCTION else secrets.token_hex(32))

PORT = env.int("PORT", default=8000)
WORKERS = env.int("WORKERS", default=1)
ALLOWED_ORIGINS = parse_csv(env.str("ALLOWED_ORIGINS", default="http://localhost:8000"))
TRUSTED_HOSTS = parse_csv(env.str("TRUSTED_HOSTS", default="localhost,127.0.0.1"))
ALLOWED_HOSTS = TRUSTED_HOSTS
REDIS_URL = env.str("REDIS_URL", default="")
DATABASE_URL = env.str("DATABASE_URL", default="")

DRIFT_INTERVAL_SECONDS = env.int("DRIFT_INTERVAL_SECONDS", default=3600)
# Bars of recent features per scan window, compared with the reference (per symbol, in time).
DRIFT_WINDOW_BARS = env.int("DRIFT_WINDOW_BARS", default=60)
# Logged predictions (distinct symbol × bar) a scan needs before it uses them as its window.
DRIFT_MIN_PREDICTION_ROWS = env.int("DRIFT_MIN_PREDICTION_ROWS", default=100)
# HIGH reports in a row (one model version) after which its drift alert escalates.
DRIFT_ESCALATE_AFTER = env.int("DRIFT_ESCALATE_AFTER", default=3)
# Lease of the Redis lock on (version, window) that keeps a second worker from computing a
# window already being computed; the database unique constraint stays the fence. A killed
# worker's redelivered task breaks its dead attempt's lease (drift.tasks); other tasks wait it out.
DRIFT_SCAN_LOCK_SECONDS = env.int("DRIFT_SCAN_LOCK_SECONDS", default=60)
# Longest a version's scan may run (the task's time limit); a scan still running after it is
# marked failed when the next one starts.
DRIFT_SCAN_TIMEOUT_SECONDS = env.int("DRIFT_SCAN_TIMEOUT_SECONDS", default=1800)
# On-demand scans (POST /api/v1/drift/scan) per user, as scans/window-seconds.
DRIFT_SCAN_QUOTA = env.str("DRIFT_SCAN_QUOTA", default="10/3600")
# Drift alert webhooks: comma-separated URLs, each POSTed a HIGH report's alert, signed with
# HMAC-SHA256 over "<timestamp>.<body>" with DRIFT_WEBHOOK_SECRET (required when URLs are set).
DRIFT_WEBHOOK_URLS = parse_csv(env.str("DRIFT_WEBHOOK_URLS", default=""))
DRIFT_WEBHOOK_SECRET = env.str("DRIFT_WEBHOOK_SECRET", default="")
DRIFT_WEBHOOK_TIMEOUT_SECONDS = env.float("DRIFT_WEBHOOK_TIMEOUT_SECONDS", default=5.0)
DRIFT_WEBHOOK_MAX_ATTEMPTS = env.int("DRIFT_WEBHOOK_MAX_ATTEMPTS", default=5)
# Webhook hosts must resolve to public addresses only (no loopback, private, link-local or
# metadata ranges); True lifts that for tests and closed networks, never in production.
DRIFT_WEBHOOK_ALLOW_PRIVATE = env.bool("DRIFT_WEBHOOK_ALLOW_PRIVATE", default=False)
DEFAULT_FEATURE_VIEW = env.str("DEFAULT_FEATURE_VIEW", default="core_technical")
SCHEDULER_HEARTBEAT_SECONDS = env.int("SCHEDULER_HEARTBEAT_SECONDS", default=60)
EVENT_RETENTION_DAYS = env.int("EVENT_RETENTION_DAYS", default=30)
FEATURE_QUALITY_MIN = env.float("FEATURE_QUALITY_MIN", default=80.0)
# The promotion policy file (YAML or JSON); empty: the documented registry/policy_default.yaml.
PROMOTION_POLICY_FILE = env.str("PROMOTION_POLICY_FILE", default="")
# Experiment tracking: content-addressed artifact blobs (empty: <TRADINGSITE_VAR_DIR>/artifacts)
# and the largest artifact one upload may store.
ARTIFACT_ROOT = Path(env.str("ARTIFACT_ROOT", default="") or VAR_DIR / "artifacts")
ARTIFACT_MAX_UPLOAD_MB = env.int("ARTIFACT_MAX_UPLOAD_MB", default=512)
# Serving (registry.prediction_log): `background` writes the prediction log in batches from a
# thread per process, off the request path (a hard crash loses up to ~0.2 s of log rows, which
# drift windows then miss); `sync` writes each request's rows before it answers.
PREDICTION_LOG_MODE = (
    env.str("PREDICTION_LOG_MODE", default="background" if IS_PRODUCTION else "sync")
    .strip()
    .lower()
)
if PREDICTION_LOG_MODE not in ("background", "sync"):
    raise ConfigError(
        f"PREDICTION_LOG_MODE: {PREDICTION_LOG_MODE!r} is neither 'background' nor 'sync'"
    )
# Load the Production models in the background as a server process starts (registry.apps), so
# the first predict does not pay the model load and the scikit-learn imports (~5 s).
PREDICTION_WARMUP = env.bool("PREDICTION_WARMUP", default=IS_PRODUCTION)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_prometheus",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "tradingsite.apps.TradingsiteConfig",
    "features",
    "registry",
    "drift",
    "experiments",
    # after the apps whose view permissions its roles grant (created on post_migrate)
    "tradingsite.dashboard.apps.DashboardConfig",
]

# Order (seed §3 step 3): metrics -> rate limiting -> auth. Prometheus' Before middleware is first
# and its After middleware last, so every response, 429s included, is counted.
MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "tradingsite.observability.slo.SloMetricsMiddleware",  # SLO latency + outcome per route class
    "tradingsite.observability.request_id.RequestIdMiddleware",
    "tradingsite.audit.AuditContextMiddleware",  # client IP for audit records
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "tradingsite.security.ratelimit.RateLimitMiddleware",
    "tradingsite.security.lockout.LockoutResponseMiddleware",  # a locked account's login -> 429
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "tradingsite.urls"
WSGI_APPLICATION = "tradingsite.wsgi.application"
ASGI_APPLICATION = "tradingsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": database_config(DATABASE_URL, base_dir=BASE_DIR, persistent=IS_PRODUCTION)}
# Threads per server process that run requests (tradingsite.handlers); each keeps one database
# connection in production.
REQUEST_THREADS = env.int("REQUEST_THREADS", default=8)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # plotly.min.js straight from the plotly package (the version the figures are built for)
    "tradingsite.dashboard.finders.PlotlyFinder",
]
# Outside production, serve straight from the source folders so `make run` needs no collectstatic.
WHITENOISE_USE_FINDERS = not IS_PRODUCTION
WHITENOISE_AUTOREFRESH = not IS_PRODUCTION
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if IS_PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "/admin/login/"

# --- cache, channel layer, broker: Redis in production, in-process otherwise -------------------
# Messages a websocket client may have queued before group sends to it are dropped (Channels'
# default is 100); a dropped event is still found by the client's gap fill from the outbox.
CHANNEL_CAPACITY = env.int("CHANNEL_CAPACITY", default=1000)
# An open /ws/stream socket re-checks its credential this often and is closed (4401) once the
# token is revoked or expired, the session ended or the user deactivated (reliability.md T13).
STREAM_REVALIDATE_SECONDS = env.float("STREAM_REVALIDATE_SECONDS", default=30.0)
REDIS_SOCKET_TIMEOUT_SECONDS = env.float("REDIS_SOCKET_TIMEOUT_SECONDS", default=0.25)
# Circuit breakers (tradingsite.security.breakers): open after this many consecutive failures,
# one half-open trial call after the reset timeout. Production keeps 30 s (reliability.md T5);
# the chaos suite (tests/chaos) shortens it to fit its CI time budget.
CIRCUIT_BREAKER_FAILURE_THRESHOLD = env.int("CIRCUIT_BREAKER_FAILURE_THRESHOLD", default=5)
CIRCUIT_BREAKER_RESET_TIMEOUT_SECONDS = env.float(
    "CIRCUIT_BREAKER_RESET_TIMEOUT_SECONDS", default=30.0
)
# A timeout (a frozen dependency) opens the breaker at once instead of counting as one failure.
CIRCUIT_BREAKER_TIMEOUT_OPENS = env.bool("CIRCUIT_BREAKER_TIMEOUT_OPENS", default=True)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "ts",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT_SECONDS,
                "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT_SECONDS,
                # Errors are raised, never turned into silent misses: a miss on a security read
                # would fail open (reliability.md §1.7). Callers handle the error explicitly.
                "IGNORE_EXCEPTIONS": False,
            },
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": "ts:asgi", "capacity": CHANNEL_CAPACITY},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    # A killed worker's unacked tasks return after visibility_timeout, found by a sweep every
    # unacked_restore_interval (10 s) x unacked_restore_throttle (kombu's default 10: 100 s).
    # Throttle 1: redelivered within visibility_timeout + 10 s (reliability.md T7).
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {
        "visibility_timeout": 3600,
        "unacked_restore_throttle": 1,
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": CHANNEL_CAPACITY},
        }
    }
    # kombu's filesystem transport: beat-scheduled tasks with no broker server at all.
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # kombu's default is ./control
        "store_processed": False,
    }
    # kombu does not create these folders, and a worker started before them dies at once.
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]  # never pickle
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis is the broker: when its connection drops, tasks already running would be redelivered and
# run twice, in parallel (reliability.md §1.5). Cancel them instead; their redelivery reruns them
# (every task is idempotent: a scan's report commits in one transaction, fenced by its unique key).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TIMEZONE = "UTC"

# --- API ------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Personal API tokens (`ts_…`) first: the JWT class would refuse them as malformed JWTs.
        "tradingsite.security.api_tokens.ApiTokenAuthentication",
        "tradingsite.security.jwt.RevocationCheckingJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Deny by default: every API route needs a user unless it says otherwise.
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON with depth, field-count, 64-bit and NUL limits (a hostile body is a 400, not a 500).
    "DEFAULT_PARSER_CLASSES": [
        "tradingsite.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + ([] if IS_PRODUCTION else ["rest_framework.renderers.BrowsableAPIRenderer"]),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "tradingsite.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "tradingsite.api.exceptions.exception_handler",
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}
NUM_PROXIES = REST_FRAMEWORK["NUM_PROXIES"]

# Django's 2.5 MB default would refuse a full bar ingest: 50,000 bars (features.constants) are
# up to ~10 MB of JSON. Bodies are read only after authentication, so strangers cannot use it.
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024
# Largest `?limit=` a paginated list accepts (DRF's LimitOffsetPagination has no cap by default).
API_MAX_PAGE_SIZE = env.int("API_MAX_PAGE_SIZE", default=1000)

# --- /metrics: only for the scraper (tradingsite.observability.exposition) ----------------------
# Peers (networks) that may read /metrics without a token; loopback by default.
METRICS_ALLOWED_IPS = parse_csv(env.str("METRICS_ALLOWED_IPS", default="127.0.0.1,::1"))
try:
    METRICS_ALLOWED_NETWORKS = tuple(
        ipaddress.ip_network(entry, strict=False) for entry in METRICS_ALLOWED_IPS
    )
except ValueError as exc:
    raise ConfigError(f"METRICS_ALLOWED_IPS: {exc}") from exc
# Any peer sending `Authorization: Bearer <METRICS_TOKEN>` may read /metrics; empty: none.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

SIMPLE_JWT = {
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SECRET,
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=1)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "LEEWAY": 0,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "CHECK_USER_IS_ACTIVE": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "tradingsite API",
    "DESCRIPTION": "Features, model registry, drift monitoring and experiment tracking for an AI "
    "trading system. Authenticate with POST /api/v1/auth/token/ and send "
    "`Authorization: Bearer <access>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "MaterializationStatusEnum": "features.models.MaterializationJob.Status",
        "HealthStatusEnum": ["ok", "degraded", "down"],
        "RunStatusEnum": "experiments.models.Run.Status",
        "MlflowViewTypeEnum": ["ACTIVE_ONLY", "DELETED_ONLY", "ALL"],
        "DriftScanStatusEnum": "drift.models.DriftScan.Status",
    },
}

CORS_ALLOWED_ORIGINS = ALLOWED_ORIGINS
CSRF_TRUSTED_ORIGINS = sorted(
    {o for o in ALLOWED_ORIGINS if o.startswith(("http://", "https://"))}
    | {f"https://{h}" for h in TRUSTED_HOSTS if h and h != "*"}
)

# --- rate limits (requests / window seconds, per client IP and route class) ---------------------
RATE_LIMITS = {
    "auth": env.str("RATE_LIMIT_AUTH", default="10/60"),
    "api": env.str("RATE_LIMIT_API", default="600/60"),
    "tracking": env.str("RATE_LIMIT_TRACKING", default="6000/60"),
}

# --- account lockout (tradingsite.security.lockout): per username, on every password login ------
# LOGIN_LOCKOUT_FAILURES wrong passwords within LOGIN_LOCKOUT_WINDOW_SECONDS lock the username
# for LOGIN_LOCKOUT_SECONDS; the correct password is refused until then (429 + Retry-After).
LOGIN_LOCKOUT_FAILURES = env.int("LOGIN_LOCKOUT_FAILURES", default=5)
LOGIN_LOCKOUT_WINDOW_SECONDS = env.int("LOGIN_LOCKOUT_WINDOW_SECONDS", default=900)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=900)
for _name in ("LOGIN_LOCKOUT_FAILURES", "LOGIN_LOCKOUT_WINDOW_SECONDS", "LOGIN_LOCKOUT_SECONDS"):
    if globals()[_name] < 1:
        raise ConfigError(f"{_name} must be a positive integer, got {globals()[_name]}")
AUTHENTICATION_BACKENDS = ["tradingsite.security.lockout.LockoutModelBackend"]

# --- production hardening (seed §6): HTTPS redirect, HSTS, secure cookies -----------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if IS_PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Load balancer probes and the Prometheus scraper speak plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^health$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# --- logging: JSON lines in production (or LOG_FORMAT=json), readable console otherwise --------
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if IS_PRODUCTION else "console")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "tradingsite.observability.request_id.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "console": {"format": "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT if LOG_FORMAT in ("json", "console") else "console",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
    "loggers": {
        # Django's defaults give "django" its own console handler in DEBUG: one line, not two.
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "django.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "uvicorn.access": {"level": "WARNING"},  # tradingsite.access logs each request already
        # Audit records (tradingsite/audit.py) reach the log stream whatever LOG_LEVEL says.
        "tradingsite.audit": {"level": "INFO"},
    },
}
