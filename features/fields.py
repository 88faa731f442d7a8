"""A list of floats stored natively: `double precision[]` on PostgreSQL, JSON text elsewhere.

The offline store's row values. On PostgreSQL an array of float8 is written by binary COPY and
read back without JSON parsing (both in C inside psycopg); NaN is a float8 value there. SQLite
(the embedded profile) keeps JSON text with null for NaN. Python always sees a list of floats,
NaN where a value is missing; non-finite values are stored as NaN.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from django.db import models


def finite_or_nan(values: Iterable[Any]) -> list[float]:
    out = []
    for v in values:
        f = math.nan if v is None else float(v)
        out.append(f if math.isfinite(f) else math.nan)
    return out


class FloatListField(models.Field):
    description = "A list of floats (double precision[] on PostgreSQL, JSON text elsewhere)"

    def db_type(self, connection: Any) -> str:
        return "double precision[]" if connection.vendor == "postgresql" else "text"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> list[float] | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = json.loads(value)
        return finite_or_nan(value)

    def to_python(self, value: Any) -> list[float] | None:
        if value is None or isinstance(value, list):
            return None if value is None else finite_or_nan(value)
        return finite_or_nan(json.loads(value) if isinstance(value, str) else value)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is None:
            return None
        floats = finite_or_nan(value)
        if connection.vendor == "postgresql":
            return floats
        return json.dumps([None if math.isnan(v) else v for v in floats])

    def value_to_string(self, obj: models.Model) -> str:
        value = self.value_from_object(obj)
        return json.dumps([None if math.isnan(v) else v for v in value or []])
