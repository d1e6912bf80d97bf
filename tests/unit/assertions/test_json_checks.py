"""JSON checks (assertions/json.py)."""

from __future__ import annotations

import json

import pytest
from helpers.expectation_checks import check
from helpers.suite_expectations import run_check, suite_error

from pytest_promptgate.assertions import (
    validate_expectation,
)
from pytest_promptgate.model import Expectation


def test_json_schema_reason_names_path_and_message():
    schema = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"type": "integer"}}},
    }
    result = check("json-schema", schema, '{"items": [1, "two"]}')
    assert not result.passed
    assert result.reason.startswith("$.items[1]: 'two' is not of type 'integer'")
    not_json = check("json-schema", schema, "Sure! here it is")
    assert not not_json.passed and "not JSON" in not_json.reason


def test_json_schema_from_a_file_next_to_the_suite(tmp_path):
    (tmp_path / "schema.json").write_text(json.dumps({"type": "object", "required": ["label"]}))
    validate_expectation(Expectation("json-schema", "schema.json"), tmp_path)
    assert check("json-schema", "schema.json", '{"label": "bug"}', suite_dir=tmp_path).passed
    assert not check("json-schema", "schema.json", "{}", suite_dir=tmp_path).passed
    with pytest.raises(ValueError, match="cannot be read"):
        validate_expectation(Expectation("json-schema", "missing.json"), tmp_path)


# --------------------------------------------------------------------------- formats and NaN

DATED = {
    "type": "object",
    "properties": {
        "due": {"type": "string", "format": "date"},
        "at": {"type": "string", "format": "date-time"},
        "email": {"type": "string", "format": "email"},
        "site": {"type": "string", "format": "uri"},
    },
}


@pytest.mark.parametrize(
    ("field", "bad", "good"),
    [
        ("due", "not a date", "2026-11-29"),
        ("due", "2026-02-30", "2026-02-28"),
        ("at", "yesterday at noon", "2026-11-29T18:00:00Z"),
        ("email", "ann at example", "ann@example.com"),
        ("site", "not a uri", "https://example.com/orders/1"),
    ],
)
def test_json_schema_formats_are_enforced(field, bad, good):
    for type_ in ("json-schema", "is-json", "contains-json"):
        result = check(type_, DATED, json.dumps({field: bad}))
        assert not result.passed, type_
        assert f"$.{field}" in result.reason and "is not a" in result.reason
        assert check(type_, DATED, json.dumps({field: good})).passed
        assert check(type_, DATED, json.dumps({field: bad}), negate=True).passed


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant):
    text = f'{{"score": {constant}}}'
    result = check("is-json", None, text)
    assert not result.passed and f"{constant.lstrip('-')} is not JSON" in result.reason
    assert not check("json-schema", {"type": "object"}, text).passed
    assert not check("contains-json", None, f"result: {text}").passed
    assert check("is-json", None, text, negate=True).passed
    assert not check("equals", {"score": 1}, text).passed


# --------------------------------------------------------------------------- structured output

SCHEMA = {"type": "object", "required": ["label"], "properties": {"label": {"type": "string"}}}


def test_json_checks_read_the_structured_output_when_there_is_one():
    for type_ in ("is-json", "contains-json", "json-schema"):
        result = run_check(type_, SCHEMA, "", structured={"label": "bug"})
        assert result.passed and "structured output" in result.reason, type_
        wrong = run_check(type_, SCHEMA, '{"label": "bug"}', structured={"label": 3})
        assert not wrong.passed and "$.label" in wrong.reason, type_
        assert run_check(type_, SCHEMA, "", negate=True, structured={"label": 3}).passed


def test_without_structured_output_the_text_is_parsed():
    assert run_check("json-schema", SCHEMA, '{"label": "bug"}').passed
    assert not run_check("is-json", None, "no json here").passed


def test_a_malformed_schema_fails_at_load_with_the_line(tmp_path):
    error, line = suite_error(tmp_path, "- json-schema: {type: objekt}")
    assert f"bad.promptgate.yaml:{line}:" in error and "not a valid JSON schema" in error
    error, line = suite_error(tmp_path, "- is-json: [1]")
    assert f":{line}:" in error and "needs a JSON schema" in error
