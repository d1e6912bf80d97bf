"""promptfoo's assertion semantics (issue 14): suites written the promptfoo way load and check
as promptfoo defines them. The first block is the issue's list, each point through the suite
loader and the checks; then the rules each feature follows."""

from __future__ import annotations

import asyncio

import pytest
from helpers.expectation_checks import check, make_ctx
from helpers.suite_files import error, load

from pytest_promptgate.assertions import check_all
from pytest_promptgate.assertions.compat import apply_transform, split_comma_values
from pytest_promptgate.assertions.lenient_json import lenient_json_values
from pytest_promptgate.assertions.scoring import metric_rates
from pytest_promptgate.model import (
    CallResult,
    CaseResult,
    ExpectationResult,
    SampleResult,
    checks_pass,
    weighted_score,
)


def run_case(case, output: str, call: CallResult | None = None) -> SampleResult:
    """One sample of ``case`` on ``output``, decided the way the runner decides it."""
    call = call or CallResult(output=output, cost_usd=0.001, latency_ms=120.0)
    checks = asyncio.run(check_all(case.expect, make_ctx(output, call=call, vars=case.vars)))
    return SampleResult(0, call, tuple(checks), threshold=case.threshold)


def one_case(tmp_path, expect: str, case_extra: str = "", vars_: str = "{}"):
    suite = load(
        tmp_path,
        f"""
        prompt: p
        user: hi
        cases:
          - id: c
            vars: {vars_}
            {case_extra}
            expect:
        """.rstrip(" ")
        + "".join(f"              - {line}\n" for line in expect.strip().splitlines()),
    )
    return suite.cases[0]


# --------------------------------------------------------------------------- the list


def test_latency_and_cost_read_promptfoos_threshold(tmp_path):
    case = one_case(tmp_path, "{type: latency, threshold: 500}\n{type: cost, threshold: 0.002}")
    fast_cheap = run_case(case, "x", CallResult(output="x", cost_usd=0.001, latency_ms=120.0))
    assert fast_cheap.status == "passed"
    slow_dear = run_case(case, "x", CallResult(output="x", cost_usd=0.01, latency_ms=900.0))
    reasons = [c.reason for c in slow_dear.checks]
    assert reasons == ["latency 900 ms exceeds 500 ms", "cost 0.01 USD exceeds 0.002 USD"]


def test_weight_metric_and_transform_are_accepted_on_any_expectation(tmp_path):
    case = one_case(
        tmp_path,
        "{type: contains, value: refund, weight: 3, metric: policy, transform: 'output | lower'}",
    )
    (result,) = run_case(case, "A REFUND is due").checks
    assert result.passed and result.weight == 3.0 and result.metric == "policy"


def test_contains_any_splits_a_comma_separated_string(tmp_path):
    case = one_case(tmp_path, '{type: contains-any, value: "refund, return, exchange"}')
    assert case.expect[0].value == ["refund", "return", "exchange"]
    assert run_case(case, "we can exchange it").status == "passed"
    assert run_case(case, "no").status == "failed"


def test_values_are_rendered_with_the_case_vars_in_a_shared_default(tmp_path):
    suite = load(
        tmp_path,
        """
        prompt: p
        user: "{{ ticket }}"
        defaults:
          expect: [{type: equals, value: "{{ expected }}"}]
        cases:
          - {id: a, vars: {ticket: t1, expected: billing}}
          - {id: b, vars: {ticket: t2, expected: shipping}}
        """,
    )
    assert [c.expect[0].value for c in suite.cases] == ["billing", "shipping"]
    assert run_case(suite.cases[0], "billing").status == "passed"
    assert run_case(suite.cases[1], "billing").status == "failed"


def test_cost_zero_and_a_word_count_written_as_text_are_accepted(tmp_path):
    case = one_case(tmp_path, '{cost: 0}\n{type: word-count, value: "3"}')
    free = CallResult(output="one two three", cost_usd=0.0, latency_ms=1.0)
    assert run_case(case, "one two three", free).status == "passed"
    paid = CallResult(output="one two", cost_usd=0.0001, latency_ms=1.0)
    cost, words = run_case(case, "one two", paid).checks
    assert not cost.passed and not words.passed and "got 2" in words.reason


@pytest.mark.parametrize(
    "output,expected",
    [
        ('Result: {"label": "billing", "urgent": true,}', {"label": "billing", "urgent": True}),
        ('{\n  "label": "billing" // the queue\n}', {"label": "billing"}),
        ('{label: "billing", "score": 2}', {"label": "billing", "score": 2}),
        ('Here you go: {"label": "billing", "tags": ["a"]', {"label": "billing", "tags": ["a"]}),
    ],
    ids=["trailing-comma", "line-comment", "unquoted-key", "missing-closers-at-end"],
)
def test_contains_json_accepts_what_models_emit_like_promptfoo(tmp_path, output, expected):
    case = one_case(tmp_path, "{type: contains-json, value: {type: object, required: [label]}}")
    assert run_case(case, output).status == "passed"
    assert list(lenient_json_values(output)) == [expected]


def test_is_json_rejects_nan(tmp_path):
    case = one_case(tmp_path, "is-json")
    assert run_case(case, '{"score": NaN}').status == "failed"
    assert run_case(case, '{"score": 1}').status == "passed"


# --------------------------------------------------------------------------- weighted score


def result(passed: bool, weight: float = 1.0, score: float | None = None) -> ExpectationResult:
    return ExpectationResult("contains", passed, score=score, weight=weight)


def test_weighted_score_follows_promptfoo():
    checks = (result(True, 3), result(False, 1))
    assert weighted_score(checks) == 0.75
    assert not checks_pass(checks, None)  # no threshold: every check must pass
    assert checks_pass(checks, 0.75) and not checks_pass(checks, 0.8)
    # A check's own score in [0, 1] counts (a judge's 0.4), as promptfoo's score does.
    assert weighted_score((result(True, 1, score=0.4), result(True, 1))) == 0.7
    assert weighted_score((result(True, 0),)) == 0.0  # weights summing to 0: score 0
    assert not checks_pass((result(False, 0), result(True)), None)  # weight 0 still must pass
    assert checks_pass((result(False),), 0)  # threshold 0: never fails on a check


def test_a_case_threshold_passes_on_the_weighted_share(tmp_path):
    case = one_case(
        tmp_path,
        "{type: contains, value: refund, weight: 3}\n{type: contains, value: sorry}",
        case_extra="threshold: 0.75",
    )
    assert case.threshold == 0.75
    assert run_case(case, "refund issued").status == "passed"  # 3 / 4
    assert run_case(case, "sorry").status == "failed"  # 1 / 4


def test_a_case_threshold_is_a_score_from_0_to_1(tmp_path):
    bad = error(
        tmp_path,
        "prompt: p\nuser: hi\ncases:\n  - {threshold: 75, expect: [{contains: a}]}\n",
    )
    assert bad.location.line == 4 and "from 0 to 1, found 75" in bad.message


def test_the_sample_threshold_survives_the_json_round_trip():
    from pytest_promptgate.model import case_result_from_dict, case_result_to_dict

    sample = SampleResult(
        0, CallResult(output="x"), (result(True, 3), result(False)), threshold=0.7
    )
    case = CaseResult("p", "v1", "c", "m", (), (sample,))
    again = case_result_from_dict(case_result_to_dict(case))
    assert again.samples[0].threshold == 0.7 and again.samples[0].checks[0].weight == 3.0
    assert again.status == "passed"


# --------------------------------------------------------------------------- comma lists


@pytest.mark.parametrize(
    "text,items",
    [
        ("refund, return, exchange", ["refund", "return", "exchange"]),
        ('a, "b, c", d', ["a", "b, c", "d"]),
        (r'"say \"hi\"", x', ['say "hi"', "x"]),
        ('"a ""quoted"" word"', ['a "quoted" word']),
        ("a,, ,b,", ["a", "b"]),
        ("  spaced item  ", ["spaced item"]),
    ],
)
def test_comma_values_split_like_promptfoo(text, items):
    assert split_comma_values(text) == items


def test_an_unterminated_quote_is_a_load_error(tmp_path):
    bad = error(
        tmp_path,
        "prompt: p\nuser: hi\ncases:\n  - expect:\n      - {contains-all: 'a, \"b'}\n",
    )
    assert bad.location.line == 5 and "unterminated quote" in bad.message


def test_a_templated_list_is_split_after_rendering(tmp_path):
    case = one_case(
        tmp_path,
        "{type: icontains-all, value: '{{ words }}'}",
        vars_='{words: "refund, \\"return, exchange\\""}',
    )
    assert case.expect[0].value == ["refund", "return, exchange"]


# --------------------------------------------------------------------------- vars in values


def test_a_literal_double_brace_is_written_with_jinja_escapes(tmp_path):
    case = one_case(
        tmp_path,
        "{contains: \"{{ '{{' }} name }}\"}\n{contains: '{% raw %}{{ x }}{% endraw %}'}",
    )
    assert [e.value for e in case.expect] == ["{{ name }}", "{{ x }}"]


def test_an_undefined_var_in_a_value_names_the_case_and_the_line(tmp_path):
    bad = error(
        tmp_path,
        """
        prompt: p
        user: hi
        defaults:
          expect:
            - {equals: "{{ expected }}"}
        cases:
          - {id: no-expected, vars: {other: 1}}
        """,
    )
    assert bad.location.line == 5
    assert "for case `no-expected`" in bad.message and "expected" in bad.message
    assert "{{ '{{' }}" in (bad.hint or "")


def test_a_rendered_value_is_validated_once_rendered(tmp_path):
    bad = error(
        tmp_path,
        "prompt: p\nuser: hi\ncases:\n  - vars: {n: many}\n    expect: [{word-count: '{{ n }}'}]\n",
    )
    assert bad.location.line == 5 and "whole number" in bad.message


# --------------------------------------------------------------------------- transform


def test_transform_is_a_jinja_expression_over_the_output():
    assert apply_transform("from_json(output).answer", '{"answer": "42"}', {}) == "42"
    assert apply_transform("output | upper", "abc", {}) == "ABC"
    assert apply_transform("from_json(output).tags", '{"tags": [1, 2]}', {}) == "[1, 2]"
    # A key named like a dict method is read with brackets, as in Jinja.
    assert apply_transform('from_json(output)["items"][0]', '{"items": ["a"]}', {}) == "a"
    assert apply_transform(["output | trim", "output ~ vars.x"], " a ", {"x": "!"}) == "a!"


def test_a_failing_transform_fails_the_expectation_both_ways(tmp_path):
    case = one_case(
        tmp_path,
        "{type: equals, value: a, transform: 'from_json(output).x'}\n"
        "{type: not-equals, value: a, transform: 'from_json(output).x'}",
    )
    plain, negated = run_case(case, "not json").checks
    assert not plain.passed and not negated.passed
    assert "transform 'from_json(output).x' failed" in plain.reason


def test_javascript_in_a_transform_is_refused_at_load(tmp_path):
    bad = error(
        tmp_path,
        "prompt: p\nuser: hi\ncases:\n  - expect:\n"
        "      - {type: equals, value: a, transform: 'output.split(\"\\n\").map(x => x)'}\n",
    )
    assert bad.location.line == 5 and "not JavaScript" in bad.message


def test_the_case_transform_runs_before_the_expectations_own(tmp_path):
    case = one_case(
        tmp_path,
        "{type: equals, value: 'YES', transform: 'output | upper'}\n{equals: 'yes'}",
        case_extra="options: {transform: 'from_json(output).answer'}",
    )
    assert run_case(case, '{"answer": "yes"}').status == "passed"


def test_the_sandbox_holds_in_a_transform():
    with pytest.raises(ValueError, match="sandbox"):
        apply_transform("output.__class__.__mro__", "x", {})


# --------------------------------------------------------------------------- assert-set


def test_assert_set_passes_on_its_own_threshold_and_counts_as_one_weighted_check(tmp_path):
    case = one_case(
        tmp_path,
        "{type: assert-set, threshold: 0.5, weight: 2, metric: tone, assert: "
        "[{icontains: sorry}, {icontains: apolog}]}\n{contains: refund}",
        case_extra="threshold: 0.3",
    )
    grouped, refund = run_case(case, "Sorry, no").checks
    assert grouped.passed and grouped.score == 0.5 and grouped.weight == 2.0
    assert grouped.metric == "tone" and "1/2 passed" in grouped.reason
    assert not refund.passed
    assert run_case(case, "Sorry, no").status == "passed"  # (2 * 0.5 + 1 * 0) / 3 >= 0.3
    assert run_case(case, "nothing").status == "failed"


def test_assert_set_without_threshold_needs_every_inner_check(tmp_path):
    case = one_case(tmp_path, "{assert-set: [{contains: a}, {contains: b}]}")
    assert run_case(case, "a b").status == "passed"
    (grouped,) = run_case(case, "a").checks
    assert not grouped.passed and "contains: output does not contain 'b'" in grouped.reason


def test_assert_set_needs_a_list(tmp_path):
    bad = error(
        tmp_path,
        "prompt: p\nuser: hi\ncases:\n  - expect:\n      - {type: assert-set, value: [a]}\n",
    )
    assert "unknown key `value`" in bad.message


# --------------------------------------------------------------------------- metrics


def test_metric_rates_count_named_checks_per_metric():
    def sample(*checks):
        return SampleResult(0, CallResult(output="x"), tuple(checks))

    named = [
        ExpectationResult("contains", True, metric="accuracy"),
        ExpectationResult("contains", False, metric="accuracy"),
        ExpectationResult("equals", True, metric="format"),
        ExpectationResult("equals", True),
    ]
    errored = SampleResult(0, CallResult(output=None, error="boom"), (named[0],))
    case = CaseResult("p", "v", "c", "m", (), (sample(*named), errored))
    assert metric_rates([case]) == {
        "accuracy": {"passed": 1, "n": 2, "rate": 0.5},
        "format": {"passed": 1, "n": 1, "rate": 1.0},
    }
    assert metric_rates([CaseResult("p", "v", "c", "m", (), (sample(named[3]),))]) == {}


# --------------------------------------------------------------------------- thresholds


def test_llm_rubric_threshold_needs_the_judges_score():
    from helpers.expectation_checks import fake_judge

    from pytest_promptgate.model import Expectation, Location

    judge = fake_judge('{"pass": true, "score": 0.6, "reason": "ok"}')
    rubric = Expectation("llm-rubric", "polite", location=Location("s.yaml", 3))
    strict = Expectation(
        "llm-rubric", "polite", location=Location("s.yaml", 4), options={"threshold": 0.8}
    )
    ctx = make_ctx("hello", judge=judge, judge_model="m")
    loose, tight = asyncio.run(check_all([rubric, strict], ctx))
    assert loose.passed and not tight.passed
    assert tight.reason.startswith("score 0.6 < threshold 0.8")


def test_threshold_wins_over_a_value_for_cost_and_latency():
    slow = CallResult(output="x", cost_usd=0.001, latency_ms=300.0)
    from pytest_promptgate.model import Expectation

    both = Expectation("latency", 1000, options={"threshold": 200})
    (result,) = asyncio.run(check_all([both], make_ctx("x", call=slow)))
    assert not result.passed and "exceeds 200 ms" in result.reason
    assert check("latency", 1000, "x", call=slow).passed
