"""The API's JSON parser: DRF's, with the limits a hostile body must meet before any view runs.

DRF's parser accepts whatever `json` does: a document nested 10,000 levels deep (a
RecursionError, so a 500, in the decoder or in whatever walks it later), objects with a million
keys, integers beyond 64 bits (that the database cannot store) and NUL characters (that
PostgreSQL's text cannot hold: a 500 at INSERT time). Here each is a 400 naming the limit.
The size limit is Django's (`request.body` raises RequestDataTooBig, a 413 in
tradingsite.api.exceptions).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Mapping
from itertools import chain, compress, repeat
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Our payloads nest a handful of levels (a training set, tags); 64 leaves room and keeps every
# later walk (serializers, json.dumps on save) far from Python's recursion limit.
MAX_JSON_DEPTH = 64
# An escaped NUL (raw control characters are invalid JSON): `\u0000` after an even run of
# backslashes (`\\u0000` is the text "\u0000", not a NUL).
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _int64(text: str) -> int:
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ParseError(f"JSON parse error - integer {text[:30]} is outside the 64-bit range")
    return value


def _too_deep_or_wide(data: Any) -> str | None:
    """What is wrong with the shape of `data`, if anything: breadth-first over its containers,
    with the per-value work in C (a 50,000-bar ingest costs ~50 ms here, json.loads ~90 ms)."""
    dicts = [data] if isinstance(data, dict) else []
    lists = [data] if isinstance(data, list) else []
    max_fields = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    depth = 1
    while dicts or lists:
        if depth > MAX_JSON_DEPTH:
            return f"nested deeper than {MAX_JSON_DEPTH} levels"
        if dicts and max(map(len, dicts)) > max_fields:
            return f"an object has more than {max_fields} fields"
        values = list(chain.from_iterable(chain(map(dict.values, dicts), lists)))
        dicts = list(compress(values, map(isinstance, values, repeat(dict))))
        lists = list(compress(values, map(isinstance, values, repeat(list))))
        depth += 1
    return None


def bounded_json_loads(text: str, *, strict_constants: bool = True) -> Any:
    """`json.loads` that refuses (ParseError) what tradingsite must not store or walk."""
    if "\\u0000" in text and _ESCAPED_NUL.search(text):  # the substring test is ~50x faster
        raise ParseError("JSON parse error - NUL characters (\\u0000) are not allowed")
    try:
        data = json.loads(
            text,
            parse_int=_int64,
            parse_constant=_refuse_constant if strict_constants else None,
        )
    except RecursionError:
        raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        raise ParseError(f"JSON parse error - {exc}") from None
    problem = _too_deep_or_wide(data)
    if problem is not None:
        raise ParseError(f"JSON parse error - {problem}")
    return data


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")  # NaN / Infinity: DRF's STRICT_JSON


class BoundedJSONParser(JSONParser):
    """JSONParser plus depth, field-count, 64-bit integer and NUL limits (module docstring)."""

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = get_encoding(parser_context or {})
        try:
            text = codecs.getreader(encoding)(stream).read()
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        return bounded_json_loads(text, strict_constants=self.strict)
