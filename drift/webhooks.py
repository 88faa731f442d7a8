"""Drift alert webhooks: HMAC-signed POSTs to the URLs of DRIFT_WEBHOOK_URLS, SSRF-safe.

Signing: each attempt sends
    X-Drift-Timestamp: <unix seconds>
    X-Drift-Signature: sha256=<hex HMAC-SHA256(DRIFT_WEBHOOK_SECRET, "<timestamp>.<raw body>")>
    X-Drift-Delivery:  <uuid>   the idempotency key, the same on every attempt of one delivery
    X-Drift-Event:     drift.alert | drift.alert.escalated
A receiver recomputes the signature over the raw body (`webhook_signature_verify`), refuses
timestamps more than 5 minutes away (replays) and drops a delivery key it has seen.

SSRF (reliability.md §2, T14): the scheme must be https (http too outside production), the URL
carries no credentials, and every address the host resolves to must be public: loopback,
private, link-local, CGNAT, multicast, reserved and unspecified ranges and the cloud metadata
addresses are refused before any connection (DRIFT_WEBHOOK_ALLOW_PRIVATE lifts this for tests and
closed networks, except for metadata and unspecified addresses). The connection goes to the
address that was checked (no second lookup for DNS rebinding to exploit), redirects are not
followed, and connect/read timeouts are short.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import random
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from drift.metrics import WEBHOOK_DELIVERIES
from drift.models import DriftWebhookDelivery

logger = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Drift-Signature"
TIMESTAMP_HEADER = "X-Drift-Timestamp"
DELIVERY_HEADER = "X-Drift-Delivery"
EVENT_HEADER = "X-Drift-Event"
SIGNATURE_TOLERANCE_SECONDS = 300
RETRY_BASE_SECONDS = 10.0
RETRY_MAX_SECONDS = 3600.0
STALE_AFTER = timedelta(minutes=10)  # past next_attempt_at: its task was lost
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class WebhookRefused(ValueError):
    """The URL may not be called (scheme, credentials, address); refused, never retried."""


# --- signing -----------------------------------------------------------------------------------


def webhook_sign(*, secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def webhook_signature_verify(
    *,
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float | None = None,
    tolerance_seconds: int = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver checks: the signature over the raw body, and a fresh timestamp."""
    try:
        stamp = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - stamp) > tolerance_seconds:
        return False
    expected = webhook_sign(secret=secret, timestamp=stamp, body=body)
    return hmac.compare_digest(expected, signature)


# --- where we may connect ----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    address: str  # the checked address the connection goes to
    path: str  # path + query


def webhook_target(url: str, *, allow_private: bool | None = None) -> Target:
    """Check `url` and resolve its host; WebhookRefused naming the reason otherwise."""
    allow = settings.DRIFT_WEBHOOK_ALLOW_PRIVATE if allow_private is None else allow_private
    parts = urlsplit(url)
    schemes = ("https",) if settings.IS_PRODUCTION else ("https", "http")
    if parts.scheme not in schemes:
        raise WebhookRefused(f"scheme {parts.scheme!r} not allowed (use {' or '.join(schemes)})")
    if parts.username is not None or parts.password is not None:
        raise WebhookRefused("credentials in the URL are not allowed")
    try:
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise WebhookRefused(f"bad port: {exc}") from exc
    if not host:
        raise WebhookRefused("no host")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookRefused(f"host {host!r} does not resolve: {exc}") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for address in addresses:
        if reason := address_refusal(address, allow_private=allow):
            raise WebhookRefused(f"host {host!r} resolves to {address}: {reason}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, addresses[0], path)


def address_refusal(address: str, *, allow_private: bool = False) -> str | None:
    """Why a connection to `address` is refused, or None if it is allowed."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    for embedded in _embedded_ipv4(ip):
        if reason := address_refusal(str(embedded), allow_private=allow_private):
            return f"embeds {embedded}, {reason}"
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_unspecified or ip.is_multicast:
        return "an unspecified or multicast address"
    if allow_private:
        return None
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private or not ip.is_global:
        return "a private or reserved address"
    return None


def _embedded_ipv4(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list:
    if ip.version == 4:
        return []
    assert isinstance(ip, ipaddress.IPv6Address)
    found = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
    if ip in NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [address for address in found if address is not None]


# --- one attempt -------------------------------------------------------------------------------


def webhook_post(*, target: Target, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST `body` to the checked address; returns the status. Redirects are not followed."""
    default_port = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    headers = {**headers, "Host": host if target.port == default_port else f"{host}:{target.port}"}
    limits = urllib3.Timeout(connect=min(timeout, 3.0), read=timeout)
    if target.scheme == "https":
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            timeout=limits,
            retries=False,
            maxsize=1,
            server_hostname=target.host,  # SNI and the certificate check use the name
            assert_hostname=target.host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(
            target.address, target.port, timeout=limits, retries=False, maxsize=1
        )
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers=headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        status = response.status
        response.drain_conn()
        return status
    finally:
        pool.close()


@dataclass(frozen=True)
class Attempt:
    outcome: str  # delivered | retry | failed | refused | skipped
    retry_in: float | None = None  # seconds, when outcome is "retry"
    detail: str = ""
    status: int | None = None  # the receiver's HTTP status, if it answered


def drift_webhook_deliver(*, delivery_id: int) -> Attempt:
    """Claim the delivery (a conditional update: a second worker on the same row does nothing),
    make one attempt and record it. Retryable failures give the delay before the next attempt,
    until DRIFT_WEBHOOK_MAX_ATTEMPTS attempts have been made."""
    delivery = DriftWebhookDelivery.objects.filter(pk=delivery_id).first()
    if delivery is None or delivery.status != DriftWebhookDelivery.Status.PENDING:
        return Attempt("skipped", detail="not pending")
    lease = timezone.now() + timedelta(seconds=settings.DRIFT_WEBHOOK_TIMEOUT_SECONDS * 4)
    claimed = DriftWebhookDelivery.objects.filter(
        pk=delivery.pk, status=DriftWebhookDelivery.Status.PENDING, attempts=delivery.attempts
    ).update(attempts=F("attempts") + 1, next_attempt_at=lease)
    if not claimed:  # 0 rows updated: another worker claimed this attempt
        return Attempt("skipped", detail="claimed by another worker")
    delivery.attempts += 1
    attempt = _attempt(delivery)
    _record(delivery, attempt)
    WEBHOOK_DELIVERIES.labels(outcome=attempt.outcome).inc()
    return attempt


def _attempt(delivery: DriftWebhookDelivery) -> Attempt:
    secret = settings.DRIFT_WEBHOOK_SECRET
    if not secret:
        return Attempt("refused", detail="DRIFT_WEBHOOK_SECRET is not set: alerts are not sent")
    try:
        target = webhook_target(delivery.url)
    except WebhookRefused as exc:
        return Attempt("refused", detail=str(exc))
    body = json.dumps(delivery.body, separators=(",", ":"), sort_keys=True).encode()
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "tradingsite-drift-webhook/1",
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: webhook_sign(secret=secret, timestamp=stamp, body=body),
        DELIVERY_HEADER: str(delivery.key),
        EVENT_HEADER: delivery.event_type,
    }
    try:
        status = webhook_post(
            target=target,
            body=body,
            headers=headers,
            timeout=settings.DRIFT_WEBHOOK_TIMEOUT_SECONDS,
        )
    except urllib3.exceptions.HTTPError as exc:  # connect/read timeout, refused, TLS
        return _retry_or_fail(delivery, f"{type(exc).__name__}: {exc}")
    if 200 <= status < 300:
        return Attempt("delivered", detail=f"HTTP {status}", status=status)
    if status in RETRY_STATUSES:
        return _retry_or_fail(delivery, f"HTTP {status}", status=status)
    word = "redirect not followed" if 300 <= status < 400 else "refused by the receiver"
    return Attempt("failed", detail=f"HTTP {status}: {word}", status=status)


def _retry_or_fail(
    delivery: DriftWebhookDelivery, detail: str, status: int | None = None
) -> Attempt:
    if delivery.attempts >= settings.DRIFT_WEBHOOK_MAX_ATTEMPTS:
        detail = f"{detail} (gave up after {delivery.attempts} attempts)"
        return Attempt("failed", detail=detail, status=status)
    delay = min(RETRY_BASE_SECONDS * 2 ** (delivery.attempts - 1), RETRY_MAX_SECONDS)
    delay *= random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
    return Attempt("retry", retry_in=round(delay, 1), detail=detail, status=status)


def _record(delivery: DriftWebhookDelivery, attempt: Attempt) -> None:
    now = timezone.now()
    fields: dict[str, object] = {"response_status": attempt.status, "last_error": ""}
    if attempt.outcome == "delivered":
        fields.update(status=DriftWebhookDelivery.Status.DELIVERED, delivered_at=now)
    elif attempt.outcome == "retry":
        fields.update(
            last_error=attempt.detail,
            next_attempt_at=now + timedelta(seconds=attempt.retry_in or 0),
        )
    else:
        fields.update(status=DriftWebhookDelivery.Status.FAILED, last_error=attempt.detail)
    DriftWebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    log = logger.info if attempt.outcome == "delivered" else logger.warning
    log(
        "drift webhook %s of report %s to %s: %s after %d attempt(s) %s",
        delivery.event_type,
        delivery.report_id,
        delivery.url,
        attempt.outcome,
        delivery.attempts,
        attempt.detail,
    )


def drift_webhooks_stale() -> list[int]:
    """Pending deliveries whose next attempt is long overdue: their task was lost."""
    cutoff = timezone.now() - STALE_AFTER
    return list(
        DriftWebhookDelivery.objects.filter(
            status=DriftWebhookDelivery.Status.PENDING, next_attempt_at__lt=cutoff
        ).values_list("pk", flat=True)[:1000]
    )
