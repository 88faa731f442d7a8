"""Drift alert webhooks: HMAC signatures a receiver can verify, retries with backoff, no
redirects, and no connection at all to loopback, private, link-local or metadata addresses."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.checks import run_checks

from drift.models import DriftReport, DriftWebhookDelivery
from drift.services import drift_scan_version
from drift.tasks import drift_webhook_deliver_task
from drift.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookRefused,
    address_refusal,
    drift_webhook_deliver,
    webhook_sign,
    webhook_signature_verify,
    webhook_target,
)
from registry.models import ModelVersion

SECRET = "s3cret-" + "x" * 40
MakeVersion = Callable[..., ModelVersion]


# --- signing -------------------------------------------------------------------------------------


def test_a_receiver_verifies_the_signature_over_timestamp_and_body() -> None:
    body, now = b'{"type":"drift.alert"}', 1_700_000_000
    signature = webhook_sign(secret=SECRET, timestamp=now, body=body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64

    def verify(**changes: Any) -> bool:
        args = {"secret": SECRET, "timestamp": str(now), "body": body, "signature": signature}
        return webhook_signature_verify(**{**args, **changes}, now=now + 10)

    assert verify()
    assert not verify(body=b'{"type":"drift.alert "}')
    assert not verify(secret="another-secret")
    assert not verify(timestamp=str(now + 1))
    assert not verify(timestamp="soon")
    assert not webhook_signature_verify(
        secret=SECRET, timestamp=str(now), body=body, signature=signature, now=now + 301
    )  # a replay older than 5 minutes


# --- SSRF ----------------------------------------------------------------------------------------

REFUSED = [
    "127.0.0.1", "127.8.9.10", "::1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
    "169.254.10.10", "100.64.0.1", "0.0.0.0", "::", "fe80::1", "fc00::1", "224.0.0.1",
    "::ffff:127.0.0.1", "::ffff:10.1.2.3", "2002:7f00:1::1", "64:ff9b::a00:1", "fd00:ec2::254",
    "192.0.2.1", "198.18.0.1", "240.0.0.1", "255.255.255.255",
]  # fmt: skip


@pytest.mark.parametrize("address", REFUSED)
def test_internal_addresses_are_refused(address: str) -> None:
    assert address_refusal(address) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(address) is None


def test_allowing_private_addresses_still_refuses_metadata_and_unspecified() -> None:
    assert address_refusal("127.0.0.1", allow_private=True) is None
    assert address_refusal("10.0.0.1", allow_private=True) is None
    assert address_refusal("169.254.169.254", allow_private=True) == "a cloud metadata address"
    assert address_refusal("0.0.0.0", allow_private=True) is not None
    assert address_refusal("::ffff:169.254.169.254", allow_private=True) is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://2130706433/hook",  # 127.0.0.1 as one decimal number
        "http://0x7f000001/hook",
        "http://0177.0.0.1/hook",  # octal
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:8000/hook",
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "https://user:pw@example.com/hook",
        "https:///nohost",
        "http://example.com:99999/hook",
    ],
)
def test_ssrf_urls_are_refused_before_any_connection(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_connection(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", no_connection)
    with pytest.raises(WebhookRefused):
        webhook_target(url, allow_private=False)


def test_a_name_resolving_to_an_internal_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS pointing a public-looking name inside the network (or rebinding to it)."""

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(WebhookRefused, match="resolves to 10.0.0.5"):
        webhook_target("https://hooks.example.com/x", allow_private=False)


def test_the_connection_goes_to_the_checked_address(monkeypatch: pytest.MonkeyPatch) -> None:
    public = ("93.184.216.34", 443)
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", public)]
    )
    target = webhook_target("https://hooks.example.com/a/b?x=1", allow_private=False)
    assert (target.address, target.host, target.port) == ("93.184.216.34", "hooks.example.com", 443)
    assert target.path == "/a/b?x=1"


def test_production_refuses_plain_http(settings: Any) -> None:
    settings.IS_PRODUCTION = True
    with pytest.raises(WebhookRefused, match="scheme 'http' not allowed"):
        webhook_target("http://93.184.216.34/hook")


def test_the_system_check_refuses_unsafe_webhook_settings(settings: Any) -> None:
    def ids() -> set[str]:
        return {m.id for m in run_checks() if m.id and m.id.startswith("drift.")}

    assert ids() == set()
    settings.DRIFT_WEBHOOK_URLS = ["https://hooks.example.com/x"]
    settings.DRIFT_WEBHOOK_SECRET = ""
    assert ids() == {"drift.E002"}
    settings.DRIFT_WEBHOOK_URLS = ["gopher://x"]
    settings.DRIFT_WEBHOOK_SECRET = SECRET
    assert ids() == {"drift.E001"}
    settings.DRIFT_WEBHOOK_URLS = []
    settings.IS_PRODUCTION, settings.DRIFT_WEBHOOK_ALLOW_PRIVATE = True, True
    assert ids() == {"drift.E003"}


# --- deliveries against a local receiver ---------------------------------------------------------


class Receiver:
    """An HTTP server on loopback that answers the queued statuses and records requests."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/x")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/drift"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    server = Receiver()
    settings.DRIFT_WEBHOOK_URLS = [server.url]
    settings.DRIFT_WEBHOOK_SECRET = SECRET
    settings.DRIFT_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on loopback
    settings.DRIFT_WEBHOOK_TIMEOUT_SECONDS = 2
    yield server
    server.close()


@pytest.fixture
def high_report(make_version: MakeVersion, receiver: Receiver) -> DriftReport:
    report = drift_scan_version(make_version()).report
    assert report is not None and report.severity == "HIGH"
    return report


def _delivery() -> DriftWebhookDelivery:
    return DriftWebhookDelivery.objects.get()


@pytest.mark.django_db
def test_an_alert_arrives_signed_with_its_idempotency_key(
    high_report: DriftReport, receiver: Receiver
) -> None:
    delivery = _delivery()
    attempt = drift_webhook_deliver(delivery_id=delivery.pk)
    assert attempt.outcome == "delivered"
    (request,) = receiver.requests
    headers, body = request["headers"], request["body"]
    assert request["path"] == "/hooks/drift"
    assert headers[DELIVERY_HEADER] == str(delivery.key) and headers[EVENT_HEADER] == "drift.alert"
    assert webhook_signature_verify(
        secret=SECRET,
        timestamp=headers[TIMESTAMP_HEADER],
        body=body,
        signature=headers[SIGNATURE_HEADER],
    )
    sent = json.loads(body)
    assert sent["type"] == "drift.alert" and sent["payload"]["report_id"] == high_report.pk
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 1, 200)
    assert drift_webhook_deliver(delivery_id=delivery.pk).outcome == "skipped"  # never twice
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_a_failing_receiver_is_retried_with_backoff_under_one_key(
    high_report: DriftReport, receiver: Receiver
) -> None:
    receiver.statuses = [503, 500]
    delivery = _delivery()
    first = drift_webhook_deliver(delivery_id=delivery.pk)
    second = drift_webhook_deliver(delivery_id=delivery.pk)
    third = drift_webhook_deliver(delivery_id=delivery.pk)
    assert [first.outcome, second.outcome, third.outcome] == ["retry", "retry", "delivered"]
    assert 8 <= first.retry_in <= 12 and 16 <= second.retry_in <= 24  # 10 s, doubling, ±20 %
    keys = {r["headers"][DELIVERY_HEADER] for r in receiver.requests}
    assert keys == {str(delivery.key)} and len(receiver.requests) == 3
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 3


@pytest.mark.django_db
def test_a_delivery_gives_up_after_the_last_attempt(
    high_report: DriftReport, receiver: Receiver, settings: Any
) -> None:
    settings.DRIFT_WEBHOOK_MAX_ATTEMPTS = 2
    receiver.statuses = [503, 503, 503]
    delivery = _delivery()
    outcomes = [drift_webhook_deliver(delivery_id=delivery.pk).outcome for _ in range(3)]
    assert outcomes == ["retry", "failed", "skipped"]
    delivery.refresh_from_db()
    assert delivery.status == "failed" and "gave up after 2 attempts" in delivery.last_error


@pytest.mark.django_db
@pytest.mark.parametrize(("status", "word"), [(302, "redirect not followed"), (400, "refused")])
def test_redirects_and_client_errors_are_not_retried(
    high_report: DriftReport, receiver: Receiver, status: int, word: str
) -> None:
    receiver.statuses = [status]
    attempt = drift_webhook_deliver(delivery_id=_delivery().pk)
    assert attempt.outcome == "failed" and word in attempt.detail
    assert len(receiver.requests) == 1  # the redirect's Location was never requested


@pytest.mark.django_db
def test_a_refused_url_or_a_missing_secret_sends_nothing(
    high_report: DriftReport, receiver: Receiver, settings: Any
) -> None:
    settings.DRIFT_WEBHOOK_ALLOW_PRIVATE = False  # the loopback receiver is now forbidden
    attempt = drift_webhook_deliver(delivery_id=_delivery().pk)
    assert attempt.outcome == "refused" and "loopback" in attempt.detail
    DriftWebhookDelivery.objects.update(status="pending")
    settings.DRIFT_WEBHOOK_ALLOW_PRIVATE, settings.DRIFT_WEBHOOK_SECRET = True, ""
    attempt = drift_webhook_deliver(delivery_id=_delivery().pk)
    assert attempt.outcome == "refused" and "DRIFT_WEBHOOK_SECRET" in attempt.detail
    assert receiver.requests == []


@pytest.mark.django_db
def test_a_receiver_that_does_not_answer_times_out_and_is_retried(
    high_report: DriftReport, settings: Any
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    settings.DRIFT_WEBHOOK_TIMEOUT_SECONDS = 0.5
    DriftWebhookDelivery.objects.update(url=f"http://127.0.0.1:{silent.getsockname()[1]}/")
    started = time.monotonic()
    try:
        attempt = drift_webhook_deliver(delivery_id=_delivery().pk)
    finally:
        silent.close()
    assert attempt.outcome == "retry" and "Timeout" in attempt.detail
    assert time.monotonic() - started < 3


@pytest.mark.django_db
def test_a_high_report_reaches_the_webhook_through_the_task_after_commit(
    make_version: MakeVersion, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        drift_scan_version(make_version())
    assert [json.loads(r["body"])["type"] for r in receiver.requests] == ["drift.alert"]
    assert _delivery().status == "delivered"
    assert drift_webhook_deliver_task(_delivery().pk) == "skipped"
