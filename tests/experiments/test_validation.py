"""Input checks of the tracker (pure: no database): artifact names, keys, numbers."""

from __future__ import annotations

import math

import pytest

from experiments import validation
from experiments.errors import InvalidParameterError

# The MLflow path-traversal bypass corpus (reliability.md, T14), plus the shapes around it.
TRAVERSAL_CORPUS = [
    "../x",
    "..",
    "a/../../x",
    "a/..",
    "..\\x",
    "a\\b",
    "%2e%2e%2fx",
    "%252e%252e%252fx",
    ";/../x",
    "x;/..",
    "#..",
    "/etc/passwd",
    "//etc/passwd",
    "file:///etc/passwd",
    "a//b",
    "a/./b",
    "./a",
    "a/",
    "a\x00b",
    "",
    "a b.txt",
    "x" * 129,
    "/".join(["d"] * 17),
]


@pytest.mark.parametrize("name", TRAVERSAL_CORPUS)
def test_artifact_names_outside_the_safe_alphabet_are_refused(name: str) -> None:
    with pytest.raises(InvalidParameterError):
        validation.artifact_path(name)


@pytest.mark.parametrize(
    "name", ["report.txt", "model/MLmodel", "model/data/weights.bin", ".hidden", "a-b_c.1/x"]
)
def test_ordinary_artifact_names_pass(name: str) -> None:
    assert validation.artifact_path(name) == name


def test_a_folder_to_list_may_be_the_root_or_end_in_a_slash() -> None:
    assert validation.artifact_folder("") == validation.artifact_folder(None) == ""
    assert validation.artifact_folder("model/") == "model"
    with pytest.raises(InvalidParameterError):
        validation.artifact_folder("../")


@pytest.mark.parametrize("key", ["loss", "val/loss", "fold 1:acc", "a.b-c_d"])
def test_mlflow_key_names_pass(key: str) -> None:
    assert validation.entity_key(key, field="key") == key


@pytest.mark.parametrize("key", ["", None, 3, "a/../b", "./a", "/a", "a//b", "a?b", "x" * 251])
def test_bad_key_names_are_refused_naming_the_field(key: object) -> None:
    with pytest.raises(InvalidParameterError, match="^metrics\\[2\\].key"):
        validation.entity_key(key, field="metrics[2].key")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(1, 1.0), (0.25, 0.25), ("0.5", 0.5), ("-1e3", -1000.0), ("Infinity", math.inf)],
)
def test_metric_values_are_doubles(raw: object, expected: float) -> None:
    assert validation.metric_value(raw, field="value") == expected


@pytest.mark.parametrize("raw", ["abc", "", None, True, [1], {"v": 1}, "1_000", "nan"])
def test_non_numeric_metric_values_are_refused(raw: object) -> None:
    with pytest.raises(InvalidParameterError, match="is not a number"):
        validation.metric_value(raw, field="value")


def test_nan_and_infinities_are_stored_as_mlflow_stores_them() -> None:
    assert validation.metric_storage(math.nan) == (0.0, True)
    assert validation.metric_storage(math.inf) == (1.7976931348623157e308, False)
    assert validation.metric_storage(-math.inf) == (-1.7976931348623157e308, False)
    assert validation.metric_storage(0.5) == (0.5, False)


def test_64_bit_integers_accept_json_numbers_and_digit_strings_only() -> None:
    assert validation.int64(5, field="step") == 5
    assert validation.int64("17", field="step") == 17
    assert validation.int64(3.0, field="step") == 3
    for bad in (2**63, "x", 1.5, True, None):
        with pytest.raises(InvalidParameterError):
            validation.int64(bad, field="step")
    with pytest.raises(InvalidParameterError, match="outside"):
        validation.int64(-1, field="timestamp", minimum=0)


def test_text_refuses_nul_and_overlong_values() -> None:
    assert validation.text("ok", field="v", max_length=5) == "ok"
    with pytest.raises(InvalidParameterError, match="NUL"):
        validation.text("a\x00", field="v", max_length=5)
    with pytest.raises(InvalidParameterError, match="longer than 5"):
        validation.text("abcdef", field="v", max_length=5)
    assert validation.string_value(0.01, field="v", max_length=10) == "0.01"
