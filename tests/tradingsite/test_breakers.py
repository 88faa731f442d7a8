"""The circuit breaker state machine, driven by a fake clock."""

from __future__ import annotations

import pytest

from tradingsite.security.breakers import CircuitBreaker, CircuitOpenError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _fail() -> None:
    raise ConnectionError("down")


def _breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(name="dep", failure_threshold=3, reset_timeout_seconds=30, clock=clock)


def test_it_opens_after_the_threshold_and_then_fails_fast() -> None:
    breaker = _breaker(Clock())
    for _ in range(3):
        with pytest.raises(ConnectionError):
            breaker.call(_fail)
    assert breaker.snapshot()["state"] == "open"
    calls = []
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: calls.append(1))
    assert calls == []  # the dependency was not touched


def test_a_success_before_the_threshold_resets_the_count() -> None:
    breaker = _breaker(Clock())
    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(_fail)
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.snapshot()["consecutive_failures"] == 0


def test_after_the_reset_timeout_one_trial_closes_it_again() -> None:
    clock = Clock()
    breaker = _breaker(clock)
    for _ in range(3):
        with pytest.raises(ConnectionError):
            breaker.call(_fail)
    clock.now = 31
    assert breaker.snapshot()["state"] == "half_open"
    assert breaker.call(lambda: 42) == 42
    assert breaker.snapshot()["state"] == "closed"


def test_a_failed_trial_opens_it_for_another_timeout() -> None:
    clock = Clock()
    breaker = _breaker(clock)
    for _ in range(3):
        with pytest.raises(ConnectionError):
            breaker.call(_fail)
    clock.now = 31
    with pytest.raises(ConnectionError):
        breaker.call(_fail)
    clock.now = 40
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)
