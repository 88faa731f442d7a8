"""The production profile's settings, computed by tradingsite/settings.py itself.

`production_settings()` runs the settings module with a production environment (the one
tests.support.production_env builds) and returns its upper-case names, so tests can check the
values production really gets, or apply them with pytest-django's `settings` fixture, without
starting a server. Nothing connects anywhere: the module only parses its environment.
"""

from __future__ import annotations

import os
import runpy
from typing import Any
from unittest import mock

from tests.support import ROOT, production_env


def production_settings(**overrides: str) -> dict[str, Any]:
    env = production_env(
        DATABASE_URL="postgresql://u@127.0.0.1:1/never",
        REDIS_URL="redis://127.0.0.1:1/0",
        **overrides,
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with mock.patch.dict(os.environ, env, clear=True):
        namespace = runpy.run_path(str(ROOT / "tradingsite" / "settings.py"))
    return {name: value for name, value in namespace.items() if name.isupper()}


# The settings that shape responses: applied together they make the test client answer as
# production does (the middleware reads them when a new Client builds its handler).
RESPONSE_SETTINGS = (
    "DEBUG",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_SSL_REDIRECT",
    "SECURE_REDIRECT_EXEMPT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
    "X_FRAME_OPTIONS",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_HTTPONLY",
    "CSRF_COOKIE_SAMESITE",
    "METRICS_ALLOWED_IPS",
    "METRICS_ALLOWED_NETWORKS",
    "METRICS_TOKEN",
    "NUM_PROXIES",
)


def apply_production_response_settings(settings: Any, **overrides: str) -> dict[str, Any]:
    """Copy RESPONSE_SETTINGS from the production profile onto pytest-django's `settings`."""
    production = production_settings(**overrides)
    for name in RESPONSE_SETTINGS:
        setattr(settings, name, production.get(name, getattr(settings, name, None)))
    return production
