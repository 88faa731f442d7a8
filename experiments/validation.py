"""Input checks of the tracker (pure Python, no Django): names, values, numbers, artifact paths.

Each check returns the normalized value or raises InvalidParameterError with a message that
names the field (`metrics[3].value`) and the problem, so a client can fix its request.
"""

from __future__ import annotations

import math
import posixpath
import re
from typing import Any

from experiments.constants import (
    ARTIFACT_MAX_DEPTH,
    ARTIFACT_MAX_PATH_LENGTH,
    ARTIFACT_SEGMENT_PATTERN,
    ENTITY_KEY_PATTERN,
    FLOAT_MAX,
    INT64_MAX,
    INT64_MIN,
    MAX_ENTITY_KEY_LENGTH,
    MAX_EXPERIMENT_NAME_LENGTH,
)
from experiments.errors import InvalidParameterError

_NUMERIC_STRING = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_INTEGER_STRING = re.compile(r"^[+-]?\d{1,19}$")
# Protocol buffers' JSON form of the IEEE specials, as MLflow's client sends them.
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def entity_key(key: Any, *, field: str) -> str:
    """A param, metric or tag name: MLflow's alphabet, at most 250 characters, and not a name
    that a file system would resolve to another one (`a/../b`, `./a`, `/a`)."""
    if not isinstance(key, str) or not key:
        raise InvalidParameterError(f"{field}: a non-empty string is required, got {_show(key)}")
    if len(key) > MAX_ENTITY_KEY_LENGTH:
        raise InvalidParameterError(
            f"{field}: {_show(key)} is longer than {MAX_ENTITY_KEY_LENGTH} characters"
        )
    if not ENTITY_KEY_PATTERN.match(key):
        raise InvalidParameterError(
            f"{field}: {_show(key)} may only contain alphanumerics, underscores (_), dashes (-), "
            "periods (.), spaces ( ), colons (:) and slashes (/)"
        )
    normalized = posixpath.normpath(key)
    if normalized != key or normalized == "." or normalized.startswith(("..", "/")):
        raise InvalidParameterError(
            f"{field}: {_show(key)} would resolve to {normalized!r} when treated as a path"
        )
    return key


def text(value: Any, *, field: str, max_length: int, required: bool = False) -> str:
    """A string without NUL (PostgreSQL text cannot hold one) and within `max_length`."""
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InvalidParameterError(f"{field}: a string is required, got {_show(value)}")
    if required and not value:
        raise InvalidParameterError(f"{field}: must not be empty")
    if "\x00" in value:
        raise InvalidParameterError(f"{field}: NUL characters are not allowed")
    if len(value) > max_length:
        raise InvalidParameterError(f"{field}: longer than {max_length} characters")
    return value


def string_value(value: Any, *, field: str, max_length: int) -> str:
    """A param or tag value: strings as they are; numbers and booleans as Python prints them."""
    if isinstance(value, bool | int | float) and not isinstance(value, str):
        value = str(value)
    if value is None:
        raise InvalidParameterError(f"{field}: a value is required")
    return text(value, field=field, max_length=max_length)


def metric_value(value: Any, *, field: str) -> float:
    """A double: a JSON number, a numeric string, or "NaN" / "Infinity" / "-Infinity"."""
    if isinstance(value, bool):
        raise InvalidParameterError(f"{field}: {_show(value)} is not a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        if value in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[value]
        if _NUMERIC_STRING.match(value):
            return float(value)
    raise InvalidParameterError(
        f"{field}: {_show(value)} is not a number (a double is required; send NaN and infinities "
        'as "NaN", "Infinity", "-Infinity")'
    )


def metric_storage(value: float) -> tuple[float, bool]:
    """(stored value, is_nan): NaN is stored as 0 with is_nan, ±inf as ±1.79e308 (MLflow)."""
    if math.isnan(value):
        return 0.0, True
    if math.isinf(value):
        return (FLOAT_MAX if value > 0 else -FLOAT_MAX), False
    return value, False


def int64(value: Any, *, field: str, minimum: int = INT64_MIN) -> int:
    """A 64-bit integer: a JSON integer, an integral float or a string of digits."""
    if isinstance(value, bool):
        raise InvalidParameterError(f"{field}: {_show(value)} is not an integer")
    integral_float = isinstance(value, float) and value.is_integer()
    if integral_float or (isinstance(value, str) and _INTEGER_STRING.match(value)):
        value = int(value)
    if not isinstance(value, int):
        raise InvalidParameterError(f"{field}: {_show(value)} is not an integer")
    if not max(minimum, INT64_MIN) <= value <= INT64_MAX:
        raise InvalidParameterError(
            f"{field}: {value} is outside [{max(minimum, INT64_MIN)}, {INT64_MAX}]"
        )
    return value


def experiment_name(name: Any, *, field: str = "name") -> str:
    return text(name, field=field, max_length=MAX_EXPERIMENT_NAME_LENGTH, required=True)


def artifact_path(name: Any, *, field: str = "path") -> str:
    """An artifact name under its run: "/"-separated segments of [A-Za-z0-9._-], none of them
    "." or "..". Anything else (absolute paths, backslashes, NUL, percent-encoding, `;`, `#`)
    is refused before a byte is read or written."""
    if not isinstance(name, str) or not name:
        raise InvalidParameterError(f"{field}: an artifact path is required")
    if "\x00" in name or "\\" in name:
        raise InvalidParameterError(f"{field}: NUL and backslash are not allowed in artifact paths")
    if name.startswith("/"):
        raise InvalidParameterError(
            f"{field}: artifact paths are relative to the run, not absolute"
        )
    if len(name) > ARTIFACT_MAX_PATH_LENGTH:
        raise InvalidParameterError(f"{field}: longer than {ARTIFACT_MAX_PATH_LENGTH} characters")
    segments = name.split("/")
    if len(segments) > ARTIFACT_MAX_DEPTH:
        raise InvalidParameterError(f"{field}: deeper than {ARTIFACT_MAX_DEPTH} folders")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise InvalidParameterError(f"{field}: {_show(name)} has an empty, '.' or '..' segment")
        if not ARTIFACT_SEGMENT_PATTERN.match(segment):
            raise InvalidParameterError(
                f"{field}: {_show(segment)} may only use letters, digits, '.', '_' and '-' "
                "(at most 128 per folder or file name)"
            )
    return name


def artifact_folder(name: Any, *, field: str = "path") -> str:
    """A folder to list: "" for the run's root, else an artifact path (a trailing "/" is fine)."""
    if name in (None, "", "/"):
        return ""
    if isinstance(name, str) and name.endswith("/"):
        name = name[:-1]
    return artifact_path(name, field=field)
