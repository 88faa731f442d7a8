from __future__ import annotations

import sys

from django.apps import AppConfig
from django.conf import settings

# django.setup() runs inside the import of one of these only in a server process (gunicorn,
# uvicorn, daphne name them); manage.py commands, Celery and pytest import neither first.
SERVER_ENTRY_MODULES = ("tradingsite.asgi", "tradingsite.wsgi")


def is_server_process() -> bool:
    """Whether this django.setup() is a server's, which will answer predict requests."""
    return any(name in sys.modules for name in SERVER_ENTRY_MODULES)


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Model registry"

    def ready(self) -> None:
        from registry import checks  # noqa: F401 - registers the policy file check

        if settings.PREDICTION_WARMUP and is_server_process():
            from registry.serving import serving_warmup_start

            # In the background: the server binds its port meanwhile, and migrations and
            # other commands, which import no server module, never touch the database here.
            serving_warmup_start()
