from __future__ import annotations

import sys

from django.apps import AppConfig


class TradingsiteConfig(AppConfig):
    name = "tradingsite"
    verbose_name = "Platform"

    def ready(self) -> None:
        from django.conf import settings
        from django.contrib.auth.signals import user_login_failed

        import tradingsite.api.schema  # noqa: F401  (registers the OpenAPI auth extension)
        from tradingsite.audit import connect_signals
        from tradingsite.security.lockout import on_login_failed
        from tradingsite.security.validator import production_settings_errors

        connect_signals()  # logins, logouts, failed logins and admin changes -> the audit log
        user_login_failed.connect(on_login_failed, dispatch_uid="tradingsite.lockout.failed")

        if not settings.IS_PRODUCTION:
            return
        # Seed §3 step 1: a misconfigured production refuses to start. This runs inside
        # django.setup(), which every entry point (daphne, gunicorn --preload, manage.py, celery)
        # calls before it binds a port or takes a task.
        errors = production_settings_errors(settings)
        if errors:
            lines = "\n".join(f"  - {e}" for e in errors)
            sys.stderr.write(f"tradingsite: refusing to start in production:\n{lines}\n")
            sys.stderr.flush()
            raise SystemExit(2)
