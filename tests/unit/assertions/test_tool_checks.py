"""Tool-use checks (assertions/tools.py): tool-call, is-valid-openai-tools-call, finish-reason."""

from __future__ import annotations

import json

import pytest
from helpers.suite_expectations import loads, run_check, suite_error

from pytest_promptgate.model import ToolCall


def call(name: str, arguments: object = None, raw: str | None = None, id_: str = "c") -> ToolCall:
    text = raw if raw is not None else json.dumps(arguments if arguments is not None else {})
    parsed = arguments if raw is None else None
    return ToolCall(id=id_, name=name, arguments=parsed, raw_arguments=text)


LOOKUP = call("lookup_order", {"order_id": "A123", "customer": {"email": "ann@example.com"}})
REFUND = call("refund", {"order_id": "A123", "amount": 25.5, "items": ["sku-1"]})

TOOLS = (
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "refund",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}, "amount": {"type": "number"}},
                "required": ["order_id", "amount"],
                "additionalProperties": False,
            },
        },
    },
)


# --------------------------------------------------------------------------- tool-call


def test_tool_call_by_name_passes_fails_and_negates() -> None:
    assert run_check("tool-call", "refund", tool_calls=(LOOKUP, REFUND)).passed
    missing = run_check("tool-call", "escalate", tool_calls=(LOOKUP,))
    assert not missing.passed
    assert "no call to 'escalate'" in missing.reason and "'lookup_order'" in missing.reason
    assert run_check("tool-call", "escalate", negate=True, tool_calls=(LOOKUP,)).passed
    negated = run_check("tool-call", "refund", negate=True, tool_calls=(REFUND,))
    assert not negated.passed and "not-tool-call" in negated.reason


def test_bare_tool_call_means_any_call_and_its_negation_means_none() -> None:
    assert run_check("tool-call", None, tool_calls=(LOOKUP,)).passed
    assert not run_check("tool-call", None, "Sure, here you go", tool_calls=()).passed
    assert run_check("tool-call", None, "plain answer", negate=True).passed


def test_arguments_are_a_nested_subset_with_regex_fields() -> None:
    spec = {
        "name": "lookup_order",
        "arguments": {"order_id": {"regex": r"^A\d+$"}, "customer": {"email": {"regex": "@"}}},
    }
    assert run_check("tool-call", spec, tool_calls=(LOOKUP,)).passed
    wrong = {"name": "lookup_order", "arguments": {"order_id": "B999"}}
    result = run_check("tool-call", wrong, tool_calls=(LOOKUP,))
    assert not result.passed
    assert 'arguments.order_id is "A123"' in result.reason and "B999" in result.reason
    nested_missing = {"name": "lookup_order", "arguments": {"customer": {"phone": "1"}}}
    assert "arguments.customer.phone is missing" in (
        run_check("tool-call", nested_missing, tool_calls=(LOOKUP,)).reason
    )


def test_argument_values_compare_by_json_type() -> None:
    assert run_check(
        "tool-call", {"name": "refund", "arguments": {"amount": 25.5}}, tool_calls=(REFUND,)
    ).passed
    as_text = {"name": "refund", "arguments": {"amount": "25.5"}}
    assert not run_check("tool-call", as_text, tool_calls=(REFUND,)).passed
    lists = {"name": "refund", "arguments": {"items": ["sku-1", "sku-2"]}}
    assert not run_check("tool-call", lists, tool_calls=(REFUND,)).passed


def test_schema_form_validates_the_arguments() -> None:
    schema = {"type": "object", "required": ["order_id", "reason"]}
    result = run_check("tool-call", {"name": "refund", "schema": schema}, tool_calls=(REFUND,))
    assert not result.passed and "'reason' is a required property" in result.reason
    ok = {"name": "refund", "schema": {"type": "object", "required": ["order_id"]}}
    assert run_check("tool-call", ok, tool_calls=(REFUND,)).passed


def test_arguments_that_are_not_json_fail_a_field_match() -> None:
    broken = call("refund", raw='{"order_id": "A1", ')
    result = run_check(
        "tool-call", {"name": "refund", "arguments": {"order_id": "A1"}}, tool_calls=(broken,)
    )
    assert not result.passed and "not JSON" in result.reason
    assert run_check("tool-call", "refund", tool_calls=(broken,)).passed  # a name needs no args


def test_a_list_needs_each_call_in_any_order_and_distinct_calls() -> None:
    assert run_check("tool-call", ["refund", "lookup_order"], tool_calls=(LOOKUP, REFUND)).passed
    result = run_check("tool-call", ["refund", "refund"], tool_calls=(LOOKUP, REFUND))
    assert not result.passed and "fewer times" in result.reason
    twice = (REFUND, call("refund", {"order_id": "A9", "amount": 1}))
    assert run_check("tool-call", ["refund", "refund"], tool_calls=twice).passed
    # not-tool-call with a list passes unless every listed call is made
    assert run_check("tool-call", ["refund", "escalate"], negate=True, tool_calls=(REFUND,)).passed


def test_in_order_needs_the_calls_in_sequence() -> None:
    ordered = {"in-order": ["lookup_order", "refund"]}
    assert run_check("tool-call", ordered, tool_calls=(LOOKUP, call("x"), REFUND)).passed
    result = run_check("tool-call", ordered, tool_calls=(REFUND, LOOKUP))
    assert not result.passed and "after the earlier calls" in result.reason


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("- tool-call: ''", "empty string"),
        ("- tool-call: 3", "a function name or"),
        ("- tool-call: {arguments: {a: 1}}", "needs `name`"),
        ("- tool-call: {name: refund, args: {a: 1}}", "found args"),
        ("- tool-call: {name: refund, arguments: [1]}", "arguments are a mapping"),
        ("- tool-call: {name: refund, arguments: {id: {regex: '('}}}", "does not compile"),
        ("- tool-call: {name: refund, schema: {type: objekt}}", "not a valid JSON schema"),
        ("- tool-call: {in-order: []}", "non-empty list"),
        ("- tool-call: []", "empty list"),
    ],
)
def test_malformed_tool_call_values_fail_at_load_with_the_line(tmp_path, line, message) -> None:
    error, line_no = suite_error(tmp_path, line)
    assert f"bad.promptgate.yaml:{line_no}:" in error
    assert "invalid `tool-call` expectation" in error and message in error


def test_not_tool_call_loads_as_the_negation(tmp_path) -> None:
    (expectation,) = loads(tmp_path, "- not-tool-call: refund")
    assert expectation.type == "tool-call" and expectation.negate


# --------------------------------------------------------------------------- offered tools


def test_valid_tools_call_passes_for_offered_tools_with_valid_arguments() -> None:
    good = call("refund", {"order_id": "A1", "amount": 3})
    result = run_check("is-valid-openai-tools-call", None, tool_calls=(good,), tools=TOOLS)
    assert result.passed, result.reason
    assert not run_check(
        "is-valid-openai-tools-call", None, negate=True, tool_calls=(good,), tools=TOOLS
    ).passed


def test_valid_tools_call_fails_on_an_unoffered_tool_or_bad_arguments() -> None:
    unknown = run_check(
        "is-valid-openai-tools-call", None, tool_calls=(call("delete_account"),), tools=TOOLS
    )
    assert not unknown.passed and "not offered" in unknown.reason
    extra = call("refund", {"order_id": "A1", "amount": 3, "note": "x"})
    bad = run_check("is-valid-openai-tools-call", None, tool_calls=(extra,), tools=TOOLS)
    assert not bad.passed and "Additional properties" in bad.reason
    wrong_type = call("refund", {"order_id": 7, "amount": 3})
    assert (
        "$.order_id"
        in run_check(
            "is-valid-openai-tools-call", None, tool_calls=(wrong_type,), tools=TOOLS
        ).reason
    )
    not_json = call("refund", raw="order A1")
    assert (
        "not JSON"
        in run_check("is-valid-openai-tools-call", None, tool_calls=(not_json,), tools=TOOLS).reason
    )
    assert not run_check("is-valid-openai-tools-call", None, "text", tools=TOOLS).passed


def test_valid_tools_call_without_offered_tools_cannot_decide() -> None:
    for negate in (False, True):
        result = run_check("is-valid-openai-tools-call", None, negate=negate, tool_calls=(LOOKUP,))
        assert not result.passed and "offered no tools" in result.reason


def test_valid_tools_call_takes_no_value(tmp_path) -> None:
    error, line_no = suite_error(tmp_path, "- is-valid-openai-tools-call: refund")
    assert f":{line_no}:" in error and "takes no value" in error


# --------------------------------------------------------------------------- finish reason


def test_finish_reason_pass_fail_negation_and_missing() -> None:
    assert run_check("finish-reason", "stop", finish_reason="stop").passed
    assert run_check("finish-reason", "TOOL_CALLS", finish_reason="tool_calls").passed
    result = run_check("finish-reason", "stop", finish_reason="length")
    assert not result.passed and "'length'" in result.reason
    assert run_check("finish-reason", "length", negate=True, finish_reason="stop").passed
    for negate in (False, True):  # no finish reason: undecided both ways
        assert not run_check("finish-reason", "stop", negate=negate).passed


def test_finish_reason_value_is_checked_at_load(tmp_path) -> None:
    error, line_no = suite_error(tmp_path, "- finish-reason: done")
    assert f"bad.promptgate.yaml:{line_no}:" in error
    assert "stop, length, tool_calls, content_filter" in error


# --------------------------------------------------------------------------- a whole run


RUN_SUITE = """\
prompt: router
model: openai/fake-model
params:
  api_base: "{base}"
  api_key: sk-test
  tools:
    - type: function
      function:
        name: refund
        parameters:
          type: object
          properties: {{order_id: {{type: string}}, amount: {{type: number}}}}
          required: [order_id]
versions:
  v1:
    user: "{{{{ ticket }}}}"
cases:
  - id: refund
    vars: {{ticket: "refund order A1 please"}}
    expect:
      - tool-call: {{name: refund, arguments: {{order_id: {{regex: '^A[0-9]+$'}}}}}}
      - not-tool-call: escalate
      - is-valid-openai-tools-call
      - finish-reason: tool_calls
  - id: answer
    vars: {{ticket: "where is my parcel"}}
    expect:
      - not-tool-call
      - finish-reason: stop
      - {{type: similar, value: "your parcel is on its way", threshold: 0.3}}
"""


def test_tool_checks_in_a_run_against_the_loopback_server(fake_openai, tmp_path) -> None:
    from pytest_promptgate import api

    fake_openai.tool_calls = {"refund order": [{"name": "refund", "arguments": {"order_id": "A1"}}]}
    fake_openai.answers = {"where is my parcel": "Your parcel is on its way to you"}
    path = tmp_path / "router.promptgate.yaml"
    path.write_text(RUN_SUITE.format(base=fake_openai.base_url), encoding="utf-8")
    result = api.run(path, rootdir=tmp_path, cache_dir=tmp_path / "cache")
    by_id = {case.case: case for case in result.cases}
    for case_id in ("refund", "answer"):
        sample = by_id[case_id].samples[0]
        assert sample.call.ok, sample.call.error
        checks = sample.checks
        assert checks and all(c.passed for c in checks), [(c.expectation, c.reason) for c in checks]
    assert list((tmp_path / "cache" / "embeddings").rglob("*.json"))
