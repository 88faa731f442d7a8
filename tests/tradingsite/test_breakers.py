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


def _metric(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_each_state_change_updates_the_gauge_and_counts_the_transition() -> None:
    """/metrics shows the breaker's state at once, not only after the next health check."""
    clock = Clock()
    breaker = CircuitBreaker(name="metrics_dep", failure_threshold=1, reset_timeout_seconds=30,
                             clock=clock)  # fmt: skip
    gauge, counter = (
        "tradingsite_circuit_breaker_state",
        "tradingsite_circuit_breaker_transitions_total",
    )
    before = {
        to: _metric(counter, breaker="metrics_dep", to=to) for to in ("open", "half_open", "closed")
    }
    with pytest.raises(ConnectionError):
        breaker.call(_fail)
    assert _metric(gauge, dependency="metrics_dep") == 2
    clock.now = 31
    breaker.call(lambda: None)  # the trial: half-open, then closed
    assert _metric(gauge, dependency="metrics_dep") == 0
    breaker.call(lambda: None)  # closed -> closed is no transition
    after = {to: _metric(counter, breaker="metrics_dep", to=to) - before[to] for to in before}
    assert after == {"open": 1, "half_open": 1, "closed": 1}


def test_a_timeout_opens_it_at_once() -> None:
    """A frozen dependency: each timeout costs the full socket timeout (reliability.md T5)."""
    breaker = _breaker(Clock())

    def _time_out() -> None:
        raise TimeoutError("read timed out")

    with pytest.raises(TimeoutError):
        breaker.call(_time_out)
    assert breaker.snapshot()["state"] == "open"


def test_a_timeout_counts_once_when_timeout_opens_is_off() -> None:
    breaker = CircuitBreaker(
        name="dep", failure_threshold=3, reset_timeout_seconds=30, timeout_opens=False
    )

    def _time_out() -> None:
        raise TimeoutError("read timed out")

    with pytest.raises(TimeoutError):
        breaker.call(_time_out)
    assert breaker.snapshot()["state"] == "closed"
