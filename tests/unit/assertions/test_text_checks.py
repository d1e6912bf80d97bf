"""Text checks (assertions/text.py)."""

from __future__ import annotations

import pytest
from helpers.expectation_checks import check
from helpers.suite_expectations import loads, run_check, suite_error

from pytest_promptgate.model import ToolCall


def test_equals_reason_quotes_both_sides():
    result = check("equals", "billing", "bug")
    assert result.reason == "expected 'billing', got 'bug'"


# --------------------------------------------------------------------------- ends-with


def test_ends_with_ignores_trailing_whitespace_and_negates():
    assert check("ends-with", "Best regards, Ann", "Thanks!\nBest regards, Ann\n\n").passed
    result = check("ends-with", "Best regards", "Thanks, bye")
    assert not result.passed and "does not end with 'Best regards'" in result.reason
    assert check("ends-with", "?", "Is it done.", negate=True).passed
    assert not check("ends-with", "done.", "Is it done.", negate=True).passed


def test_ends_with_malformed_value_fails_at_load(tmp_path):
    error, line = suite_error(tmp_path, "- ends-with: ''")
    assert f"bad.promptgate.yaml:{line}:" in error and "empty string" in error
    error, line = suite_error(tmp_path, "- ends-with: [a]")
    assert f":{line}:" in error and "needs a string" in error


# --------------------------------------------------------------------------- is-refusal


@pytest.mark.parametrize(
    "output",
    [
        "I'm sorry, but I can't help with that request.",
        "I’m unable to share personal data about other customers.",  # curly apostrophe
        "Sorry, I can't do that.",
        "As an AI language model, I cannot provide medical advice.",
        "I cannot   assist with\nbypassing the payment check.",
        "",
        "   ",
    ],
)
def test_is_refusal_recognises_refusals(output):
    assert run_check("is-refusal", None, output).passed
    assert not run_check("is-refusal", None, output, negate=True).passed


@pytest.mark.parametrize(
    "output",
    [
        "Your refund for order A123 was issued today.",
        "I will not charge you twice: the duplicate was cancelled.",
        "Sure! Here is the summary you asked for.",
        # a refusal phrase far into a long answer is not a refusal
        "Here is what I found about your order. " * 10 + "I can't provide legal advice.",
    ],
)
def test_is_refusal_leaves_answers_alone(output):
    assert not run_check("is-refusal", None, output).passed
    assert run_check("is-refusal", None, output, negate=True).passed


def test_a_reply_made_of_tool_calls_is_not_a_refusal():
    call = ToolCall(id="1", name="refund", arguments={}, raw_arguments="{}")
    result = run_check("is-refusal", None, "", tool_calls=(call,))
    assert not result.passed and "tool calls" in result.reason


def test_is_refusal_takes_no_value(tmp_path):
    error, line = suite_error(tmp_path, "- is-refusal: sorry")
    assert f":{line}:" in error and "takes no value" in error
    (expectation,) = loads(tmp_path, "- not-is-refusal")
    assert expectation.negate and expectation.type == "is-refusal"
