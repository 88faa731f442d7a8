"""GET /metrics, for the Prometheus scraper only (reliability.md T15).

A peer gets the exposition when its address is in METRICS_ALLOWED_IPS (networks; loopback by
default) or when it sends `Authorization: Bearer <METRICS_TOKEN>`. Anyone else gets a bare 404,
so the endpoint does not even confirm it exists. The address is the one the rate limiter uses
(`client_ip`: X-Forwarded-For is trusted for NUM_PROXIES hops only), so a proxy in front does
not make every client look like the proxy, and a client cannot claim an allowed address unless
it reaches the app without passing the proxy.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.views.decorators.http import require_safe
from django_prometheus.exports import ExportToDjangoView

from tradingsite.security.ratelimit import client_ip

logger = logging.getLogger(__name__)


def metrics_peer_allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer":
        return hmac.compare_digest(presented.strip().encode(), token.encode())
    try:
        address = ipaddress.ip_address(client_ip(request))
    except ValueError:  # "unknown" or garbage: not an address, not allowed
        return False
    if address.version == 6 and address.ipv4_mapped:  # ::ffff:127.0.0.1 from dual-stack sockets
        address = address.ipv4_mapped
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_peer_allowed(request):
        logger.info("refused /metrics to %s", client_ip(request))
        return HttpResponseNotFound(b"", content_type="text/plain")
    return ExportToDjangoView(request)
