"""Helpers the tracker's services share: time, key/value input, run state checks."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from experiments import validation
from experiments.constants import TAG_PARENT_RUN_ID
from experiments.errors import InvalidParameterError
from experiments.models import Lifecycle, Run

Pairs = Mapping[str, Any] | Iterable[Mapping[str, Any]] | None


def now_ms() -> int:
    return int(time.time() * 1000)


def key_value_pairs(
    items: Pairs, *, field: str, max_value_length: int, unique: bool
) -> list[tuple[str, str]]:
    """`{"k": v}` or `[{"key": k, "value": v}, ...]` -> validated [(key, value)]."""
    if items is None:
        return []
    if isinstance(items, Mapping):
        entries = [(f"{field}.{key}", key, value) for key, value in items.items()]
    elif isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise InvalidParameterError(f"{field}: a list of {{key, value}} objects is required")
    else:
        entries = []
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise InvalidParameterError(
                    f"{field}[{index}]: a {{key, value}} object is required"
                )
            entries.append((f"{field}[{index}]", item.get("key"), item.get("value")))
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for path, key, value in entries:
        key = validation.entity_key(key, field=f"{path}.key" if "[" in path else path)
        value = validation.string_value(value, field=path, max_length=max_value_length)
        if unique and key in seen:
            raise InvalidParameterError(
                f"{field}: duplicate key {key!r}; a batch may log each {field[:-1]} once"
            )
        seen.add(key)
        pairs.append((key, value))
    return pairs


def require_active(run: Run) -> None:
    if run.lifecycle != Lifecycle.ACTIVE:
        raise InvalidParameterError(
            f"The run {run.run_uuid} must be in the 'active' state. Current state is "
            f"{run.lifecycle}."
        )


def parent_run(run_id: str) -> Run:
    parent = Run.objects.filter(run_uuid=run_id).first() if isinstance(run_id, str) else None
    if parent is None:
        raise InvalidParameterError(f"{TAG_PARENT_RUN_ID}: no run with id {run_id!r}")
    return parent
