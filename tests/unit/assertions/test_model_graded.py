"""Model-graded checks (assertions/model_graded.py), with a fake judge."""

from __future__ import annotations

import pytest
from helpers.expectation_checks import check, fake_judge

from pytest_promptgate.assertions import (
    parse_judge_reply,
)
from pytest_promptgate.model import CallRequest, ProviderFailure

# --------------------------------------------------------------------------- llm-rubric


@pytest.mark.parametrize(
    "reply,passed,reason_part",
    [
        ('{"pass": true, "reason": "polite and complete"}', True, "polite and complete"),
        ('```json\n{"pass": false, "reason": "rude"}\n```', False, "rude"),
        ('Here is my verdict: {"pass": "yes", "reason": "fine"} hope that helps', True, "fine"),
        ('{"verdict": "FAIL", "explanation": "misses policy"}', False, "misses policy"),
        ('{"score": 0.8}', True, "judge"),
        ("PASS - the answer is polite", True, "the answer is polite"),
        ("The output does not meet it. FAIL", False, "does not meet it"),
        ("No, it ignores the refund policy.", False, "ignores the refund policy"),
        ("I am not sure what you mean", False, "judge reply not understood: 'I am not sure"),
        ("", False, "judge reply not understood"),
    ],
)
def test_llm_rubric_parses_judge_replies(reply, passed, reason_part):
    seen: list[CallRequest] = []
    result = check(
        "llm-rubric",
        "Is polite",
        "Hello dear customer",
        judge=fake_judge(reply, seen=seen),
        judge_model="judge/m",
    )
    assert result.passed is passed, result.reason
    assert reason_part in result.reason
    (request,) = seen
    assert request.model == "judge/m" and request.params == {"temperature": 0}
    assert (
        "Is polite" in request.messages[-1]["content"]
        and "Hello dear customer" in request.messages[-1]["content"]
    )


def test_llm_rubric_negated_and_not_understood():
    judge = fake_judge('{"pass": true, "reason": "ok"}')
    assert not check("llm-rubric", "r", "x", negate=True, judge=judge, judge_model="j").passed
    confused = fake_judge("hmm")
    assert not check("llm-rubric", "r", "x", negate=True, judge=confused, judge_model="j").passed


def test_llm_rubric_failed_judge_call_raises_provider_failure():
    judge = fake_judge(None, error="HTTP 500 from judge")
    with pytest.raises(ProviderFailure) as info:
        check("llm-rubric", "r", "x", judge=judge, judge_model="j")
    assert info.value.call.error == "HTTP 500 from judge"


def test_llm_rubric_without_judge_is_a_config_error():
    with pytest.raises(ProviderFailure) as info:
        check("llm-rubric", "r", "x")
    assert (
        info.value.call.error_kind == "config"
        and "--promptgate-judge-model" in info.value.call.error
    )


def test_parse_judge_reply_escapes_control_characters():
    outcome = parse_judge_reply('{"pass": false, "reason": "bad \\u001b[2J clear"}')
    assert not outcome.passed and "\x1b" not in outcome.reason and "\\x1b[2J" in outcome.reason


def test_llm_rubric_judge_defaults_to_the_case_model():
    seen: list[CallRequest] = []
    judge = fake_judge('{"pass": true, "reason": "ok"}', seen=seen)
    assert check("llm-rubric", "r", "x", judge=judge, model="openai/under-test").passed
    assert seen[0].model == "openai/under-test"
