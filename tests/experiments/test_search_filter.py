"""MLflow's search grammar, parsed without a database, and checked against MLflow's own parser."""

from __future__ import annotations

import pytest

from experiments.search_filter import (
    EXPERIMENT_GRAMMAR,
    Clause,
    OrderTerm,
    SearchSyntaxError,
    parse_filter,
    parse_order_by,
)

AGREED_WITH_MLFLOW = [
    "metrics.acc > 0.9",
    "metrics.acc >= -1e-3 and params.lr = '0.1'",
    "metric.loss < 1 AND tags.desk != 'fx'",
    "params.model LIKE 'gb%' and tags.`data set` ILIKE '%Core%'",
    "tags.\"data set\" = 'x'",
    "attributes.status = 'FINISHED'",
    "attribute.run_name = 'walk-forward'",
    "run_id IN ('a1', 'b2')",
    "attributes.run_id NOT IN ('a1')",
    "start_time >= 1700000000000 and attributes.end_time < 1800000000000",
    "created > 5",
    "tags.mlflow.source.type = 'LOCAL'",
    "tags.note IS NULL",
    "params.seed IS NOT NULL",
    'parameters.depth = "3"',
]


def _normalized_mlflow(clause: dict) -> tuple:
    from mlflow.utils.search_utils import SearchUtils

    entity = {"parameter": "param"}.get(clause["type"], clause["type"])
    key = SearchUtils.translate_key_alias(clause["key"]) if entity == "attribute" else clause["key"]
    value = clause["value"]
    if entity == "metric":
        value = float(value)
    return entity, key, clause["comparator"], value


@pytest.mark.parametrize("source", AGREED_WITH_MLFLOW)
def test_filters_parse_as_mlflow_parses_them(source: str) -> None:
    from mlflow.utils.search_utils import SearchUtils

    ours = [(c.entity, c.key, c.comparator, c.value) for c in parse_filter(source)]
    theirs = [_normalized_mlflow(c) for c in SearchUtils.parse_search_filter(source)]
    assert ours == theirs


def test_a_filter_becomes_typed_clauses() -> None:
    assert parse_filter("metrics.sharpe > 1.5 and params.model = 'gbm' and status = 'FAILED'") == [
        Clause("metric", "sharpe", ">", 1.5),
        Clause("param", "model", "=", "gbm"),
        Clause("attribute", "status", "=", "FAILED"),
    ]
    assert parse_filter("") == parse_filter(None) == parse_filter("   ") == []


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("metrics.acc > 'high'", "expected a number"),
        ("params.lr > '1'", "Invalid comparator '>'"),
        ("params.lr = 1", "expected a quoted string"),
        ("status > 1", "Invalid comparator '>'"),
        ("start_time = 'yesterday'", "expected a number"),
        ("bogus = 'x'", "Invalid attribute key 'bogus'"),
        ("foo.bar = 'x'", "Invalid entity type 'foo'"),
        ("metrics.a = 1 or metrics.b = 2", "OR is not supported"),
        ("metrics.a = 1 metrics.b = 2", "expected AND"),
        ("metrics.a", "expected a comparison operator"),
        ("params.a = 'open", "unterminated"),
        ("run_id IN ('a', 2)", "expected a quoted string in the list"),
        ("run_id IN 'a'", "parenthesized list"),
        ("metrics. = 1", "missing key"),
        ("= 1", "expected an identifier"),
    ],
)
def test_bad_filters_are_refused_with_a_reason(source: str, message: str) -> None:
    with pytest.raises(SearchSyntaxError, match=message):
        parse_filter(source)


def test_experiments_have_their_own_attributes_and_no_metrics() -> None:
    assert parse_filter("name LIKE 'mom%' and tags.desk = 'fx'", EXPERIMENT_GRAMMAR) == [
        Clause("attribute", "name", "LIKE", "mom%"),
        Clause("tag", "desk", "=", "fx"),
    ]
    with pytest.raises(SearchSyntaxError, match="Invalid entity type 'metrics'"):
        parse_filter("metrics.acc > 1", EXPERIMENT_GRAMMAR)
    with pytest.raises(SearchSyntaxError, match="Invalid attribute key 'status'"):
        parse_filter("status = 'x'", EXPERIMENT_GRAMMAR)


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("metrics.acc DESC", OrderTerm("metric", "acc", False)),
        ("params.lr", OrderTerm("param", "lr", True)),
        ("attributes.start_time asc", OrderTerm("attribute", "start_time", True)),
        ("tags.`data set` desc", OrderTerm("tag", "data set", False)),
        ("created DESC", OrderTerm("attribute", "start_time", False)),
        ("run_name", OrderTerm("attribute", "run_name", True)),
    ],
)
def test_order_by_terms_parse_as_mlflow_parses_them(term: str, expected: OrderTerm) -> None:
    from mlflow.utils.search_utils import SearchUtils

    assert parse_order_by(term) == expected
    entity, key, ascending = SearchUtils.parse_order_by_for_search_runs(term)
    key = SearchUtils.translate_key_alias(key)
    assert ({"parameter": "param"}.get(entity, entity), key, ascending) == (
        expected.entity,
        expected.key,
        expected.ascending,
    )


@pytest.mark.parametrize("term", ["", "metrics.acc sideways", "metrics.acc DESC extra", "nope"])
def test_bad_order_by_terms_are_refused(term: str) -> None:
    with pytest.raises(SearchSyntaxError):
        parse_order_by(term)
