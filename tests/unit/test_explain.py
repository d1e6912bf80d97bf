"""The terminal text of an errored or failed case, and of a suite that does not load."""

from __future__ import annotations

import yaml

from pytest_promptgate.explain import explain_case, explain_load_error
from pytest_promptgate.model import (
    CallResult,
    CaseResult,
    ExpectationResult,
    Location,
    SampleResult,
    SuiteError,
)

WHERE = Location("prompts/triage.promptgate.yaml", 12)
MESSAGES = (
    {"role": "system", "content": "Classify."},
    {"role": "user", "content": "charged twice"},
)


def case(*samples: SampleResult) -> CaseResult:
    return CaseResult(
        prompt="ticket-triage",
        version="v1",
        case="double-charge",
        model="openai/gpt-4o-mini",
        messages=MESSAGES,
        samples=samples,
        location=WHERE,
    )


def errored(kind: str, message: str, attempts: int = 1) -> CaseResult:
    call = CallResult(output=None, error=message, error_kind=kind, attempts=attempts)
    return case(SampleResult(0, call))


def failed(output: str, *checks: ExpectationResult) -> SampleResult:
    return SampleResult(0, CallResult(output=output), checks)


def assert_short_and_clean(text: str) -> None:
    lines = text.splitlines()
    assert len(lines) <= 8, text
    assert "_pytest" not in text and "pluggy" not in text and "Traceback" not in text


def test_missing_credentials_error_names_the_case_place_cause_and_the_way_on() -> None:
    text = explain_case(
        errored(
            "credentials",
            "not attempted: missing credentials for openai/gpt-4o-mini (the model's first "
            "failed call has the provider's message)",
            attempts=0,
        )
    )
    assert_short_and_clean(text)
    lines = text.splitlines()
    assert lines[0] == (
        "ERROR ticket-triage::v1::double-charge (openai/gpt-4o-mini) at "
        "prompts/triage.promptgate.yaml:12"
    )
    assert lines[1].startswith("  missing credentials: not attempted: missing credentials")
    assert lines[2] == (
        "  hint: set OPENAI_API_KEY, or run without a key: --promptgate-model local/smollm2"
    )


def test_error_message_is_clipped_to_one_line_and_attempts_are_shown() -> None:
    text = explain_case(errored("server", "line one\nline two " + "x" * 5000, attempts=4))
    assert_short_and_clean(text)
    second = text.splitlines()[1]
    assert second.startswith("  provider server error after 4 attempts: line one ⏎ line two")
    assert second.endswith("more characters)") and len(second) < 300
    assert "x" * 4000 in explain_case(errored("server", "x" * 5000), verbose=2)


def test_failed_case_shows_the_failed_expectations_and_the_output() -> None:
    result = case(
        failed(
            "Billing.",
            ExpectationResult(
                "equals",
                False,
                'expected "billing", got "Billing."',
                location=Location(WHERE.file, 13),
            ),
            ExpectationResult("one-of", True, "ok"),
        )
    )
    text = explain_case(result)
    assert_short_and_clean(text)
    assert text.splitlines() == [
        "FAILED ticket-triage::v1::double-charge (openai/gpt-4o-mini) at "
        "prompts/triage.promptgate.yaml:12",
        '  ✗ equals (prompts/triage.promptgate.yaml:13): expected "billing", got "Billing."',
        '  output: "Billing."',
    ]


def test_many_failed_checks_and_a_long_output_stay_short() -> None:
    checks = [ExpectationResult(f"contains-{i}", False, "missing " * 100) for i in range(6)]
    text = explain_case(case(failed("word " * 1000, *checks)))
    assert_short_and_clean(text)
    assert "… and 3 more failed expectation(s) (-vv shows all)" in text
    verbose = explain_case(case(failed("word " * 1000, *checks)), verbose=2)
    assert "contains-5" in verbose and "rendered prompt:" in verbose and "[user]" in verbose


def test_repeated_case_says_how_many_samples_failed() -> None:
    bad = ExpectationResult("equals", False, 'expected "a", got "b"')
    result = case(
        SampleResult(0, CallResult(output="a"), (ExpectationResult("equals", True),)),
        SampleResult(1, CallResult(output="b"), (bad,)),
        SampleResult(2, CallResult(output="b"), (bad,)),
    )
    assert "  2 of 3 samples failed; sample 1 shown" in explain_case(result).splitlines()


def test_hostile_output_cannot_drive_the_terminal() -> None:
    text = explain_case(
        case(failed("\x1b[2J\x1b[31mgotcha", ExpectationResult("x", False, "\x1b]0;t\x07")))
    )
    assert "\x1b" not in text and "\x07" not in text


def test_passed_case_has_nothing_to_explain() -> None:
    assert explain_case(case(SampleResult(0, CallResult(output="billing"), ()))) == ""


def test_suite_error_is_where_what_and_hint() -> None:
    err = SuiteError(
        "unknown key `expcet`",
        Location("prompts/x.promptgate.yaml", 7),
        hint="did you mean `expect`?",
    )
    assert explain_load_error(err).splitlines() == [
        "ERROR loading prompts/x.promptgate.yaml:7",
        "  unknown key `expcet`",
        "  hint: did you mean `expect`?",
    ]


def test_unexpected_load_error_is_one_line_not_a_traceback() -> None:
    try:
        yaml.safe_load("a: [1,\n")
    except yaml.YAMLError as exc:
        text = explain_load_error(exc)
    assert_short_and_clean(text)
    assert text.splitlines()[:2] == [
        "ERROR loading <unicode string>:2",
        "  ParserError: while parsing a flow node",
    ]


def test_a_tool_call_only_reply_shows_the_calls_not_an_empty_output() -> None:
    from pytest_promptgate.model import ToolCall

    calls = (
        ToolCall(id="1", name="refund", arguments={"amount": 20}, raw_arguments='{"amount":20}'),
        ToolCall(id="2", name="escalate", arguments=None, raw_arguments="{not json"),
    )
    call = CallResult(output="", tool_calls=calls, finish_reason="tool_calls")
    text = explain_case(case(SampleResult(0, call, (ExpectationResult("equals", False, "no"),))))
    assert '  tool calls: refund({"amount": 20}); escalate({not json)' in text.splitlines()
    assert "output:" not in text
