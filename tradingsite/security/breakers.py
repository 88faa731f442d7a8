"""Circuit breakers around Redis, the database and the broker.

closed -> open after `failure_threshold` consecutive failures -> (after `reset_timeout_seconds`)
half-open: one trial call -> closed on success, open again on failure. Open calls fail fast.

A timeout counts as `failure_threshold` failures when `timeout_opens` is set (the default): it
already cost its caller the whole socket timeout, and under ASGI Django runs a worker's sync code
in one thread, so every request queued behind it paid that too. Five timeouts in a row against
a frozen Redis would stall each worker for 5 x 250 ms; one keeps the added latency within one
socket timeout (reliability.md T5). A refused connection costs nothing and keeps the count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from redis.exceptions import TimeoutError as RedisTimeoutError

from tradingsite.observability.metrics import CIRCUIT_STATE, CIRCUIT_TRANSITIONS

T = TypeVar("T")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATE_CODES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


class CircuitOpenError(RuntimeError):
    """The breaker is open: the dependency failed recently and is not called."""


@dataclass
class CircuitBreaker:
    name: str
    failure_threshold: int = 5
    reset_timeout_seconds: float = 30.0
    timeout_opens: bool = True
    clock: Callable[[], float] = time.monotonic
    state: str = CLOSED
    failures: int = 0
    opened_at: float | None = None
    last_error: str = ""
    _trial_in_flight: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def call(self, fn: Callable[[], T]) -> T:
        self._before_call()
        try:
            result = fn()
        except Exception as exc:
            self.record_failure(exc)
            raise
        self.record_success()
        return result

    def _before_call(self) -> None:
        with self._lock:
            if self.state == CLOSED:
                return
            elapsed = self.clock() - (self.opened_at or 0.0)
            if self.state == OPEN and elapsed >= self.reset_timeout_seconds:
                self._enter(HALF_OPEN)
            if self.state == HALF_OPEN and not self._trial_in_flight:
                self._trial_in_flight = True  # exactly one trial call goes through
                return
            raise CircuitOpenError(f"{self.name} circuit is open")

    def record_success(self) -> None:
        with self._lock:
            self._enter(CLOSED)
            self.failures, self.opened_at = 0, None
            self._trial_in_flight = False

    def record_failure(self, exc: BaseException) -> None:
        with self._lock:
            self.failures += 1
            self.last_error = type(exc).__name__
            self._trial_in_flight = False
            if self.timeout_opens and _is_timeout(exc):
                self.failures = max(self.failures, self.failure_threshold)
            if self.state == HALF_OPEN or self.failures >= self.failure_threshold:
                self._enter(OPEN)
                self.opened_at = self.clock()

    def _enter(self, state: str) -> None:
        """Every state change goes through here (under the lock), so /metrics shows it at once
        instead of at the next health check."""
        if state == self.state:
            return
        self.state = state
        CIRCUIT_STATE.labels(dependency=self.name).set(STATE_CODES[state])
        CIRCUIT_TRANSITIONS.labels(breaker=self.name, to=state).inc()

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            state = self.state
            if (
                state == OPEN
                and self.clock() - (self.opened_at or 0.0) >= self.reset_timeout_seconds
            ):
                state = HALF_OPEN  # the next call will be the trial
            return {
                "state": state,
                "consecutive_failures": self.failures,
                "failure_threshold": self.failure_threshold,
                "reset_timeout_seconds": self.reset_timeout_seconds,
                "last_error": self.last_error or None,
            }


def _is_timeout(exc: BaseException) -> bool:
    """socket/asyncio timeouts (builtin TimeoutError) and redis-py's own TimeoutError."""
    return isinstance(exc, TimeoutError | RedisTimeoutError)


_breakers: dict[str, CircuitBreaker] = {}
_registry_lock = threading.Lock()
BREAKER_NAMES = ("database", "cache", "broker")


def get_breaker(name: str) -> CircuitBreaker:
    with _registry_lock:
        if name not in _breakers:
            from django.conf import settings  # read on first use: settings may change in tests

            _breakers[name] = CircuitBreaker(
                name=name,
                failure_threshold=settings.CIRCUIT_BREAKER_FAILURE_THRESHOLD,
                reset_timeout_seconds=settings.CIRCUIT_BREAKER_RESET_TIMEOUT_SECONDS,
                timeout_opens=settings.CIRCUIT_BREAKER_TIMEOUT_OPENS,
            )
        return _breakers[name]


def breakers_snapshot() -> dict[str, dict[str, object]]:
    return {name: get_breaker(name).snapshot() for name in BREAKER_NAMES}


def reset_breakers() -> None:
    """Forget all breaker state (tests, and an operator after a fixed outage)."""
    with _registry_lock:
        for name in _breakers:
            CIRCUIT_STATE.labels(dependency=name).set(STATE_CODES[CLOSED])
        _breakers.clear()
