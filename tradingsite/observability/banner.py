"""The startup banner (seed §3 step 5): one log line with what the ML layer holds."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError, connections

logger = logging.getLogger("tradingsite.startup")


def log_startup_banner() -> None:
    from tradingsite.selectors import ml_status

    try:
        status = ml_status()
    except DatabaseError as exc:
        logger.warning("startup banner skipped: database unavailable (%s)", type(exc).__name__)
        return
    finally:
        # The banner may run in a pre-fork master (gunicorn --preload): hand no connection down.
        for conn in connections.all(initialized_only=True):
            conn.close()
            if hasattr(conn, "close_pool"):
                conn.close_pool()
    features, registry = status["features"], status["registry"]
    drift, experiments = status["drift_monitor"], status["experiments"]
    logger.info(
        "tradingsite started: environment=%s features=%s views=%s default_view=%s "
        "models=%s production_versions=%s drift_monitor=every %ss watching %d model(s) "
        "experiments=%s runs=%s",
        settings.ENVIRONMENT,
        features["features"],
        features["views"],
        features["default_view"] + ("" if features["default_view_registered"] else " (absent)"),
        registry["models"],
        registry["production_versions"],
        drift["interval_seconds"],
        len(drift["models_watched"]),  # type: ignore[arg-type]
        experiments["experiments"],
        experiments["runs"],
        extra={"features": features, "registry": registry, "experiments": experiments},
    )
