"""ASGI entry point: HTTP and websockets on one port (daphne, or gunicorn + uvicorn workers)."""

import gc
import logging
import os

from tradingsite.handlers import sync_chain_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
# django.setup() runs here, and with it the production startup validator: a misconfigured
# production exits before the server binds its port.
django_asgi_app = sync_chain_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from registry.prediction_log import prediction_log_lifespan  # noqa: E402
from tradingsite.observability.banner import log_startup_banner  # noqa: E402
from tradingsite.routing import websocket_urlpatterns  # noqa: E402
from tradingsite.security.websocket import stream_edge  # noqa: E402

logger = logging.getLogger("tradingsite.startup")
# lifespan: uvicorn (gunicorn's workers too) ends a process by re-raising SIGTERM, so atexit
# never runs there; its lifespan shutdown writes the queued prediction-log rows first.
protocols = {"http": django_asgi_app, "lifespan": prediction_log_lifespan}
try:
    protocols["websocket"] = stream_edge(URLRouter(websocket_urlpatterns))
except Exception:
    # Seed §3 step 4: in production a streaming failure is logged and the API still serves.
    if not settings.IS_PRODUCTION:
        raise
    logger.exception("websocket streaming could not start; serving HTTP only")
application = ProtocolTypeRouter(protocols)

log_startup_banner()

# Everything imported so far lives as long as the process: move it out of the garbage
# collector's generations, so collections during requests scan only request garbage (shorter
# pauses in the latency tail) and forked workers do not touch (copy) the preloaded pages.
gc.freeze()
