"""MLflow's search grammar (pure Python): filter strings and order_by terms, parsed into clauses
that selectors turn into SQL. Nothing here touches the database.

    metrics.sharpe > 1.5 AND params.model = 'gbm' AND tags."data set" LIKE 'core%'
    AND attributes.status = 'FINISHED' AND run_id IN ('a1…', 'b2…') AND tags.note IS NULL

Entities: metric(s), param(s)/parameter(s), tag(s), attribute(s)/attr/run, or an attribute
name alone. A key with spaces or other characters goes in "double quotes" or `backticks`.
Conditions are joined with AND (MLflow has no OR). Values: numbers for metrics and numeric
attributes, 'single' or "double" quoted strings otherwise, a parenthesized list for IN.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

NUMERIC_COMPARATORS = frozenset({"=", "!=", ">", ">=", "<", "<="})
STRING_COMPARATORS = frozenset({"=", "!=", "LIKE", "ILIKE"})
NULL_COMPARATORS = frozenset({"IS NULL", "IS NOT NULL"})
LIST_COMPARATORS = frozenset({"IN", "NOT IN"})

METRIC, PARAM, TAG, ATTRIBUTE = "metric", "param", "tag", "attribute"
_ENTITY_NAMES = {
    "metric": METRIC,
    "metrics": METRIC,
    "param": PARAM,
    "params": PARAM,
    "parameter": PARAM,
    "parameters": PARAM,
    "tag": TAG,
    "tags": TAG,
    "attribute": ATTRIBUTE,
    "attributes": ATTRIBUTE,
    "attr": ATTRIBUTE,
    "run": ATTRIBUTE,
}

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_KEY = re.compile(r"[^\s=!<>(),'\"`]+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_SYMBOLS = (">=", "<=", "!=", "=", ">", "<")


class SearchSyntaxError(ValueError):
    """The filter or order_by string is not valid; the message says where and why."""


@dataclass(frozen=True)
class Grammar:
    """What one search may name: its entities and attributes (canonical name -> kind)."""

    entities: frozenset[str]
    numeric_attributes: frozenset[str]
    string_attributes: frozenset[str]
    aliases: Mapping[str, str] = field(default_factory=dict)

    def attribute(self, key: str) -> str:
        key = self.aliases.get(key, key)
        if key not in self.numeric_attributes | self.string_attributes:
            valid = sorted(self.numeric_attributes | self.string_attributes)
            raise SearchSyntaxError(f"Invalid attribute key '{key}'. Valid keys are {valid}")
        return key


RUN_GRAMMAR = Grammar(
    entities=frozenset({METRIC, PARAM, TAG, ATTRIBUTE}),
    numeric_attributes=frozenset({"start_time", "end_time"}),
    string_attributes=frozenset({"run_id", "run_name", "status", "user_id", "artifact_uri"}),
    aliases={
        "created": "start_time",
        "Created": "start_time",
        "run name": "run_name",
        "Run name": "run_name",
        "Run Name": "run_name",
    },
)
EXPERIMENT_GRAMMAR = Grammar(
    entities=frozenset({TAG, ATTRIBUTE}),
    numeric_attributes=frozenset({"creation_time", "last_update_time"}),
    string_attributes=frozenset({"name", "experiment_id"}),
)


@dataclass(frozen=True)
class Clause:
    entity: str
    key: str
    comparator: str
    value: float | int | str | tuple[str, ...] | None


@dataclass(frozen=True)
class OrderTerm:
    entity: str
    key: str
    ascending: bool


class _Scanner:
    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0

    def skip_space(self) -> None:
        while self.pos < len(self.source) and self.source[self.pos].isspace():
            self.pos += 1

    def at_end(self) -> bool:
        self.skip_space()
        return self.pos >= len(self.source)

    def peek(self) -> str:
        return self.source[self.pos] if self.pos < len(self.source) else ""

    def where(self) -> str:
        return f"at position {self.pos} of {self.source!r}"

    def match(self, pattern: re.Pattern[str]) -> str | None:
        found = pattern.match(self.source, self.pos)
        if found is None:
            return None
        self.pos = found.end()
        return found.group(0)

    def word(self) -> str | None:
        self.skip_space()
        return self.match(_WORD)

    def quoted(self) -> str:
        quote = self.peek()
        end = self.source.find(quote, self.pos + 1)
        if end < 0:
            raise SearchSyntaxError(f"unterminated {quote} quote {self.where()}")
        value = self.source[self.pos + 1 : end]
        self.pos = end + 1
        return value

    def identifier(self, grammar: Grammar) -> tuple[str, str]:
        """(entity, key) of `metrics.acc`, `tags."my tag"`, `status`, `"run name"`."""
        self.skip_space()
        if self.peek() in ("`", '"'):
            return ATTRIBUTE, grammar.attribute(self.quoted())
        start = self.pos
        word = self.match(_WORD)
        if word is None:
            raise SearchSyntaxError(f"expected an identifier such as metrics.acc {self.where()}")
        if self.peek() != ".":
            return ATTRIBUTE, grammar.attribute(word)
        entity = _ENTITY_NAMES.get(word)
        if entity is None or entity not in grammar.entities:
            valid = sorted(grammar.entities)
            raise SearchSyntaxError(f"Invalid entity type '{word}'. Valid values are {valid}")
        self.pos += 1
        key = self.quoted() if self.peek() in ("`", '"') else (self.match(_BARE_KEY) or "")
        if not key:
            raise SearchSyntaxError(f"missing key after {self.source[start : self.pos]!r}")
        return entity, (grammar.attribute(key) if entity == ATTRIBUTE else key)

    def comparator(self) -> str:
        self.skip_space()
        for symbol in _SYMBOLS:
            if self.source.startswith(symbol, self.pos):
                self.pos += len(symbol)
                return symbol
        word = (self.word() or "").upper()
        if word in ("LIKE", "ILIKE", "IN"):
            return word
        if word == "NOT" and (self.word() or "").upper() == "IN":
            return "NOT IN"
        if word == "IS":
            following = (self.word() or "").upper()
            if following == "NULL":
                return "IS NULL"
            if following == "NOT" and (self.word() or "").upper() == "NULL":
                return "IS NOT NULL"
        raise SearchSyntaxError(f"expected a comparison operator {self.where()}")

    def value(self) -> float | int | str | tuple[str, ...]:
        self.skip_space()
        char = self.peek()
        if char in ("'", '"'):
            return self.quoted()
        if char == "(":
            return self.string_list()
        number = self.match(_NUMBER)
        if number is not None:
            return int(number) if re.fullmatch(r"[+-]?\d+", number) else float(number)
        raise SearchSyntaxError(f"expected a number or a quoted string {self.where()}")

    def string_list(self) -> tuple[str, ...]:
        self.pos += 1  # "("
        items: list[str] = []
        while True:
            self.skip_space()
            if self.peek() not in ("'", '"'):
                raise SearchSyntaxError(f"expected a quoted string in the list {self.where()}")
            items.append(self.quoted())
            self.skip_space()
            if self.peek() == ",":
                self.pos += 1
                continue
            if self.peek() == ")":
                self.pos += 1
                return tuple(items)
            raise SearchSyntaxError(f"expected ',' or ')' {self.where()}")


def _checked(grammar: Grammar, clause: Clause) -> Clause:
    entity, key, comparator, value = clause.entity, clause.key, clause.comparator, clause.value
    name = f"{entity}.{key}"
    if entity == METRIC or (entity == ATTRIBUTE and key in grammar.numeric_attributes):
        allowed, want = NUMERIC_COMPARATORS, "a number"
        ok = isinstance(value, int | float)
    elif entity in (PARAM, TAG):
        allowed, want = STRING_COMPARATORS | NULL_COMPARATORS, "a quoted string"
        ok = isinstance(value, str) or comparator in NULL_COMPARATORS
    else:
        allowed, want = STRING_COMPARATORS | LIST_COMPARATORS, "a quoted string"
        ok = isinstance(value, tuple) if comparator in LIST_COMPARATORS else isinstance(value, str)
        if comparator in LIST_COMPARATORS:
            want = "a parenthesized list of quoted strings"
    if comparator not in allowed:
        raise SearchSyntaxError(
            f"Invalid comparator '{comparator}' for {name}; use one of {sorted(allowed)}"
        )
    if not ok:
        raise SearchSyntaxError(f"{name} {comparator}: expected {want}, got {value!r}")
    return clause


def parse_filter(source: str | None, grammar: Grammar = RUN_GRAMMAR) -> list[Clause]:
    """The AND-joined comparisons of `source` (empty or None: no condition)."""
    if not source or not source.strip():
        return []
    scanner = _Scanner(source)
    clauses: list[Clause] = []
    while True:
        entity, key = scanner.identifier(grammar)
        comparator = scanner.comparator()
        value = None if comparator in NULL_COMPARATORS else scanner.value()
        clauses.append(_checked(grammar, Clause(entity, key, comparator, value)))
        if scanner.at_end():
            return clauses
        joiner = (scanner.word() or "").upper()
        if joiner == "OR":
            raise SearchSyntaxError("OR is not supported: MLflow filters join conditions with AND")
        if joiner != "AND":
            raise SearchSyntaxError(f"expected AND {scanner.where()}")


def parse_order_by(term: str, grammar: Grammar = RUN_GRAMMAR) -> OrderTerm:
    """`metrics.acc DESC`, `params.lr`, `start_time ASC`, `tags."a b" desc`."""
    scanner = _Scanner(term or "")
    if scanner.at_end():
        raise SearchSyntaxError("empty order_by term")
    entity, key = scanner.identifier(grammar)
    ascending = True
    if not scanner.at_end():
        direction = (scanner.word() or "").upper()
        if direction not in ("ASC", "DESC") or not scanner.at_end():
            raise SearchSyntaxError(
                f"Invalid order_by clause {term!r}: expected '<identifier> [ASC|DESC]'"
            )
        ascending = direction == "ASC"
    return OrderTerm(entity, key, ascending)
