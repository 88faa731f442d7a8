"""The drift scan's beat schedule fires once per interval slot, mid-slot (tradingsite.celery.
slot_schedule). Found with real beats (reliability.md T8, tests/chaos/test_celery_faults.py):
celery's plain interval counts from each late send, so its phase creeps across a slot boundary
and that slot gets no scan."""

from __future__ import annotations

from datetime import UTC, datetime

from celery.schedules import schedule

from tradingsite.celery import slot_schedule

PERIOD = 60
LATE_S = 0.7  # how late beat wakes and sends, every time (a loaded host)


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def slots_sent(kind: type[schedule], start: float, sends: int) -> list[int]:
    """The slot of each send of a beat that always sends LATE_S after the schedule's due time."""
    now, last, slots = start, at(start), []
    while len(slots) < sends:
        entry = kind(PERIOD, nowfun=lambda now=now: at(now))
        due, wait = entry.is_due(last)
        if due:
            slots.append(int(now // PERIOD))
            last = at(now)
            continue
        now += wait + LATE_S
    return slots


def test_a_beat_that_always_sends_late_still_sends_once_in_every_slot() -> None:
    start = 1_000 * PERIOD + 30.5  # started half-way through a slot
    slots = slots_sent(slot_schedule, start, 200)
    assert slots == list(range(slots[0], slots[0] + 200))
    # celery's plain interval drifts by LATE_S a send: within 200 intervals it skips one
    plain = slots_sent(schedule, start, 200)
    assert len(set(plain)) == 200 and plain[-1] - plain[0] > 199


def test_it_is_due_at_the_middle_of_the_next_slot() -> None:
    entry = slot_schedule(PERIOD, nowfun=lambda: at(100 * PERIOD + 5))
    assert entry.is_due(at(100 * PERIOD + 1)) == (False, 25)
    assert entry.remaining_estimate(at(100 * PERIOD + 45)).total_seconds() == PERIOD + 25


def test_two_beats_started_apart_fire_at_the_same_moment() -> None:
    now = 100 * PERIOD + 10
    first = slot_schedule(PERIOD, nowfun=lambda: at(now))
    assert first.is_due(at(100 * PERIOD + 1)) == first.is_due(at(100 * PERIOD + 8))


def test_a_beat_thawed_after_a_freeze_sends_once_then_keeps_to_the_middle() -> None:
    now = 205 * PERIOD + 50  # frozen since slot 200
    entry = slot_schedule(PERIOD, nowfun=lambda: at(now))
    due, wait = entry.is_due(at(200 * PERIOD + 30))
    assert due and wait == 40  # the next one at 206 * PERIOD + 30
    assert entry.is_due(at(now)) == (False, 40)
