"""Unit tests of the expectation registry and the built-in checks (no network, fake judge)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from pytest_promptgate import assertions
from pytest_promptgate.assertions import (
    CheckContext,
    CheckOutcome,
    check_all,
    count_sentences,
    count_words,
    known_types,
    parse_judge_reply,
    register,
    unregister,
    validate_expectation,
)
from pytest_promptgate.model import CallRequest, CallResult, Expectation, Location, ProviderFailure

HERE = Path(__file__).parent


def make_ctx(
    output: str, call: CallResult | None = None, suite_dir: Path = HERE, **extra
) -> CheckContext:
    call = call or CallResult(
        output=output, cost_usd=0.001, latency_ms=120.0, prompt_tokens=10, completion_tokens=3
    )
    return CheckContext(
        output=output,
        vars=extra.pop("vars", {"ticket": "x"}),
        call=call,
        suite_dir=suite_dir,
        **extra,
    )


def check(type_: str, value, output: str, negate: bool = False, **ctx_kw):
    expectation = Expectation(type_, value, negate=negate, location=Location("suite.yaml", 7))
    (result,) = asyncio.run(check_all([expectation], make_ctx(output, **ctx_kw)))
    return result


# (type, value, an output that passes, an output that fails)
BUILTIN_CASES = [
    ("equals", "billing", "  billing\n", "Billing"),
    ("equals", 42, "42", "42.0"),
    ("equals", {"label": "bug"}, '```json\n{"label": "bug"}\n```', '{"label": "billing"}'),
    ("contains", "refund", "we will refund you", "we will not pay"),
    ("icontains", "REFUND", "a Refund is due", "no money back"),
    ("contains-any", ["refund", "credit"], "store credit", "nothing"),
    ("contains-all", ["refund", "days"], "refund within 5 days", "refund soon"),
    ("icontains-any", ["REFUND", "credit"], "a refund", "nothing"),
    ("icontains-all", ["REFUND", "DAYS"], "Refund in 3 days", "refund today"),
    ("starts-with", "Dear", "\n Dear customer", "Hello, Dear"),
    ("regex", r"^(yes|no)$", "yes", "maybe"),
    ("one-of", ["billing", "bug"], " bug ", "bugs"),
    ("is-json", None, '{"a": 1}', '```json\n{"a": 1}\n```'),
    ("is-json", {"type": "object", "required": ["a"]}, '{"a": 1}', '{"b": 1}'),
    ("contains-json", None, 'Here:\n```\n{"a": 1}\n```\nDone', "no json here {oops"),
    ("contains-json", {"type": "object", "required": ["a"]}, 'x {"b": 2} y {"a": 1}', 'x {"b": 2}'),
    (
        "json-schema",
        {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
        '```json\n{"n": 3}\n```',
        '{"n": "3"}',
    ),
    ("word-count", 3, "one two three", "one two"),
    ("word-count", {"min": 2, "max": 4}, "a b c", "a b c d e"),
    ("sentence-count", 2, "Dr. Smith paid 3.5 dollars. He left... quietly!", "One. Two. Three."),
    ("sentence-count", {"max": 1}, "Just one, e.g. this", "One! Two?"),
    ("cost", 0.01, "anything", None),
    ("latency", 500, "anything", None),
]


@pytest.mark.parametrize(
    "type_,value,good,bad", BUILTIN_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(BUILTIN_CASES)]
)
def test_builtin_passes_fails_and_negates(type_, value, good, bad):
    validate_expectation(Expectation(type_, value), HERE)
    passing = check(type_, value, good)
    assert passing.passed, passing.reason
    assert passing.expectation == type_ and passing.location == Location("suite.yaml", 7)
    negated = check(type_, value, good, negate=True)
    assert not negated.passed and negated.expectation == f"not-{type_}"
    assert f"not-{type_} rules out" in negated.reason
    if bad is not None:
        failing = check(type_, value, bad)
        assert not failing.passed and failing.reason
        assert check(type_, value, bad, negate=True).passed


def test_cost_and_latency_fail_above_the_limit():
    expensive = CallResult(output="x", cost_usd=0.5, latency_ms=900.0)
    cost = check("cost", 0.01, "x", call=expensive)
    latency = check("latency", 500, "x", call=expensive)
    assert not cost.passed and "exceeds" in cost.reason
    assert not latency.passed and "900 ms exceeds 500 ms" in latency.reason


def test_unknown_cost_fails_even_when_negated():
    unknown = CallResult(output="x", cost_usd=None)
    result = check("cost", 1.0, "x", call=unknown, model="openai/mystery")
    assert not result.passed
    assert result.reason.startswith("cost unknown for model openai/mystery")
    assert not check("cost", 1.0, "x", negate=True, call=unknown).passed


def test_equals_reason_quotes_both_sides():
    result = check("equals", "billing", "bug")
    assert result.reason == "expected 'billing', got 'bug'"


def test_check_all_evaluates_every_expectation_in_order():
    exps = [
        Expectation("contains", "a"),
        Expectation("contains", "zzz"),
        Expectation("equals", "nope"),
    ]
    results = asyncio.run(check_all(exps, make_ctx("abc")))
    assert [r.passed for r in results] == [True, False, False]
    assert [r.expectation for r in results] == ["contains", "contains", "equals"]


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


# --------------------------------------------------------------------------- counting rules


@pytest.mark.parametrize(
    "text,expected",
    [
        ("", 0),
        ("No full stop at the end", 1),
        ("One. Two.", 2),
        ("Really?! Yes.", 2),
        ("Pi is 3.14 roughly. Fine.", 2),
        ("Dr. Smith met Mr. Jones. They talked.", 2),
        ("Use a fruit, e.g. an apple, or i.e. a pear. Done.", 2),
        ("Wait... what happened… nothing.", 1),
        ("Visit example.com today. Thanks.", 2),
        ("J. R. R. Tolkien wrote books.", 1),
        ("Steps.\n1. Open it.\n2. Close it.", 3),
        ("Steps:\n1. Open it.\n2. Close it.", 2),
        ("We sell apples, pears, etc. and more.", 1),
        ("We sell apples, pears, etc. That is all.", 2),
        ('He said "stop." Then left.', 2),
    ],
)
def test_sentence_count_rule(text, expected):
    assert count_sentences(text) == expected


def test_word_count_ignores_lone_punctuation():
    assert count_words("state-of-the-art — don't stop - now") == 4


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "type_,value,message",
    [
        ("regex", "(unclosed", "does not compile"),
        ("regex", 5, "pattern string"),
        ("word-count", {}, "at least one of min, max or exact"),
        ("word-count", {"min": 5, "max": 2}, "greater than max"),
        ("word-count", {"minimum": 2}, "unknown key"),
        ("sentence-count", {"exact": 2, "max": 3}, "mixes exact"),
        ("sentence-count", -1, ">= 0"),
        ("sentence-count", "two", "whole number"),
        ("json-schema", {"type": "objekt"}, "not a valid JSON schema"),
        ("json-schema", ["type"], "JSON schema"),
        ("is-json", {"type": 5}, "not a valid JSON schema"),
        ("python", "not a ref", "module:function"),
        ("python", "checks.py", "module:function"),
        ("python", "nowhere/checks.py:fn", "not found"),
        ("python", {"threshold": 0.5}, "needs 'function'"),
        ("python", {"function": "m:f", "threshold": "high"}, "threshold must be a number"),
        ("cost", 0, "positive number"),
        ("cost", "cheap", "positive number"),
        ("cost", True, "positive number"),
        ("latency", -5, "positive number"),
        ("one-of", [], "non-empty list"),
        ("one-of", "billing", "non-empty list"),
        ("contains-any", "refund", "list of strings"),
        ("contains-all", ["a", {"b": 1}], "list of non-empty strings"),
        ("contains", "", "empty string"),
        ("contains", ["a"], "needs a string"),
        ("equals", None, "needs a string"),
        ("llm-rubric", "", "rubric text"),
        ("definitely-not-a-type", 1, "unknown expectation type"),
    ],
)
def test_validation_rejects_bad_values(type_, value, message):
    with pytest.raises(ValueError, match=message) as info:
        validate_expectation(Expectation(type_, value), HERE)
    assert ";" in str(info.value)  # "<what is wrong>; <how to fix>"


def test_known_types_are_sorted_canonical_names():
    types = known_types()
    assert types == sorted(types)
    assert {
        "equals",
        "json-schema",
        "llm-rubric",
        "python",
        "cost",
        "latency",
        "sentence-count",
    } <= set(types)
    assert not any(t.startswith("not-") for t in types)


# --------------------------------------------------------------------------- python checks

CHECKS_SOURCE = """
import asyncio

def as_bool(output, context):
    return output == context["vars"]["want"]

def as_score(output, context):
    return len(output) / 10

def as_tuple(output, context):
    return ("ok" in output, "wanted ok in " + output)

def as_dict(output, context):
    return {"pass": output.startswith("y"), "score": 0.9, "reason": "starts with y?"}

def as_score_dict(output, context):
    return {"score": 0.2, "reason": "weak"}

async def as_async(output, context):
    await asyncio.sleep(0)
    return context["call"]["latency_ms"] < 1000

def raises(output, context):
    raise KeyError("missing-thing")

def returns_none(output, context):
    return None

def sees_config(output, context):
    return context["config"] == {"level": 2} and context["model"] == "m1"
"""


@pytest.fixture
def checks_dir(tmp_path):
    (tmp_path / "checks.py").write_text(CHECKS_SOURCE)
    return tmp_path


@pytest.mark.parametrize(
    "function,value_extra,output,passed,reason_part",
    [
        ("as_bool", {}, "yes", True, ""),
        ("as_bool", {}, "no", False, "returned False"),
        ("as_score", {}, "123456", True, "score 0.6 >= threshold 0.5"),
        ("as_score", {}, "1234", False, "score 0.4 < threshold 0.5"),
        ("as_score", {"threshold": 0.3}, "1234", True, "threshold 0.3"),
        ("as_tuple", {}, "is ok", True, "wanted ok"),
        ("as_tuple", {}, "bad\x1b[31m", False, "wanted ok in bad\\x1b[31m"),
        ("as_dict", {}, "yes", True, "starts with y?"),
        ("as_dict", {}, "no", False, "starts with y?"),
        ("as_score_dict", {}, "x", False, "score 0.2 < threshold 0.5: weak"),
        ("as_async", {}, "x", True, ""),
        ("raises", {}, "x", False, "raised KeyError: 'missing-thing'"),
        ("returns_none", {}, "x", False, "returned NoneType"),
        ("sees_config", {"config": {"level": 2}}, "x", True, ""),
    ],
)
def test_python_check_return_shapes(checks_dir, function, value_extra, output, passed, reason_part):
    ref = f"checks.py:{function}"
    value = {"function": ref, **value_extra} if value_extra else ref
    validate_expectation(Expectation("python", value), checks_dir)
    result = check("python", value, output, suite_dir=checks_dir, vars={"want": "yes"}, model="m1")
    assert result.passed is passed, result.reason
    assert reason_part in result.reason


def test_python_check_that_raises_fails_even_when_negated(checks_dir):
    result = check("python", "checks.py:raises", "x", negate=True, suite_dir=checks_dir)
    assert not result.passed and "KeyError" in result.reason


def test_python_check_by_module_name_on_the_suite_dir(tmp_path):
    (tmp_path / "promptgate_unit_checks_mod.py").write_text(
        "def short(output, context):\n    return len(output) < 5\n"
    )
    value = "promptgate_unit_checks_mod:short"
    validate_expectation(Expectation("python", value), tmp_path)
    assert check("python", value, "abc", suite_dir=tmp_path).passed
    assert not check("python", value, "abcdefgh", suite_dir=tmp_path).passed
    assert (
        str(tmp_path) not in __import__("sys").path
    )  # the suite dir is added only while importing


def test_python_check_import_problems_are_failures(tmp_path):
    (tmp_path / "broken.py").write_text("def oops(:\n")
    broken = check("python", "broken.py:oops", "x", suite_dir=tmp_path)
    assert not broken.passed and "cannot import broken.py: SyntaxError" in broken.reason
    (tmp_path / "fine.py").write_text("x = 1\n")
    missing = check("python", "fine.py:nope", "x", suite_dir=tmp_path)
    assert not missing.passed and "has no function 'nope'" in missing.reason
    no_module = check("python", "promptgate_no_such_module_zz:f", "x", suite_dir=tmp_path)
    assert not no_module.passed and "ModuleNotFoundError" in no_module.reason


def test_python_check_may_raise_provider_failure(tmp_path):
    (tmp_path / "prov.py").write_text(
        "from pytest_promptgate.model import CallResult, ProviderFailure\n"
        "def judge(output, context):\n    raise ProviderFailure(CallResult(output=None, error='down'))\n"
    )
    with pytest.raises(ProviderFailure, match="down"):
        check("python", "prov.py:judge", "x", suite_dir=tmp_path)


# --------------------------------------------------------------------------- llm-rubric


def fake_judge(reply: str | None, error: str | None = None, seen: list | None = None):
    async def judge(request: CallRequest) -> CallResult:
        if seen is not None:
            seen.append(request)
        return CallResult(output=reply, error=error, error_kind="server" if error else None)

    return judge


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


# --------------------------------------------------------------------------- registry / plugins


def test_registered_third_party_type_sync_async_and_validator():
    def is_uppercase(output, value, ctx):
        return output.isupper(), f"not upper-case: {output!r}"

    async def shouts(output, value, ctx):
        return CheckOutcome(output.endswith("!"), "ends with !?")

    def validate(value, suite_dir):
        if value is not True:
            raise ValueError("is-uppercase takes true; write `is-uppercase: true`")

    register("is-uppercase", is_uppercase, validate)
    register("shouts", shouts)
    try:
        assert "is-uppercase" in known_types()
        validate_expectation(Expectation("is-uppercase", True), HERE)
        with pytest.raises(ValueError, match="takes true"):
            validate_expectation(Expectation("is-uppercase", 3), HERE)
        assert check("is-uppercase", True, "HELLO").passed
        failed = check("is-uppercase", True, "hello")
        assert not failed.passed and failed.reason == "not upper-case: 'hello'"
        assert check("is-uppercase", True, "hello", negate=True).passed
        assert check("shouts", None, "HEY!").passed
        register("is-uppercase", is_uppercase, validate)  # a second configure in one process
    finally:
        unregister("is-uppercase")
        unregister("shouts")
    assert "is-uppercase" not in known_types()


def test_register_rejects_bad_names_and_builtin_override():
    with pytest.raises(ValueError, match="negation is automatic"):
        register("not-thing", lambda o, v, c: True)
    with pytest.raises(ValueError, match="built in"):
        register("equals", lambda o, v, c: True)
    with pytest.raises(ValueError, match="invalid expectation type name"):
        register("Has Space", lambda o, v, c: True)


def test_crashing_plugin_check_becomes_a_failure_naming_the_exception():
    def crashes(output, value, ctx):
        return 1 / 0

    register("crashes", crashes)
    try:
        result = check("crashes", None, "x", negate=True)
    finally:
        unregister("crashes")
    assert not result.passed and "ZeroDivisionError" in result.reason


# --------------------------------------------------------------------------- hostile outputs

HOSTILE_OUTPUTS = [
    "nul\x00byte inside",
    "\x1b[31mred\x1b[0m and \x1b]0;title\x07 and \u202eevil",
    # ~1 MB: prose, unclosed fences and brackets, a long run of dots (inputs that made naive
    # scanners quadratic).
    ("Lorem ipsum dolor sit amet, e.g. 3.5 times... Dr. Who? " * 17_000)
    + "```\n" * 1000
    + "{[" * 5000
    + "." * 50_000
    + "x",
]
HOSTILE_EXPECTATIONS = [
    Expectation("equals", "x"),
    Expectation("contains", "zzz-not-there"),
    Expectation("icontains-all", ["a", "zzz"]),
    Expectation("starts-with", "zzz"),
    Expectation("regex", r"^zzz$"),
    Expectation("one-of", ["zzz"]),
    Expectation("is-json", None),
    Expectation("contains-json", {"type": "object", "required": ["zzz"]}),
    Expectation("json-schema", {"type": "object"}),
    Expectation("word-count", {"max": 1}),
    Expectation("sentence-count", 5),
    Expectation("llm-rubric", "rubric"),
]


@pytest.mark.parametrize("output", HOSTILE_OUTPUTS, ids=["nul", "ansi", "1mb"])
def test_hostile_outputs_fail_cleanly_with_escaped_reasons(output):
    ctx = make_ctx(output, judge=fake_judge("FAIL: " + output[:500]), judge_model="j")
    results = asyncio.run(check_all(HOSTILE_EXPECTATIONS, ctx))
    assert len(results) == len(HOSTILE_EXPECTATIONS)
    assert not any(r.passed for r in results)
    for result in results:
        assert not any(ch in result.reason for ch in "\x00\x1b\x07\u202e"), result
        assert len(result.reason) < 1000


def test_quote_truncates_and_escapes():
    quoted = assertions.quote("a\x00" * 100)
    assert quoted.startswith("'a\\x00a") and quoted.endswith("(200 chars)")
    assert "\x00" not in quoted


def test_hookspec_lets_a_plugin_add_a_type():
    import pluggy

    from pytest_promptgate import hookspecs

    manager = pluggy.PluginManager("pytest")
    manager.add_hookspecs(hookspecs)
    hookimpl = pluggy.HookimplMarker("pytest")

    class UppercasePlugin:
        @hookimpl
        def pytest_promptgate_add_expectations(self, register):
            register("is-uppercase", lambda output, value, ctx: output.isupper())

    manager.register(UppercasePlugin())
    manager.hook.pytest_promptgate_add_expectations(register=register)
    try:
        assert check("is-uppercase", True, "LOUD").passed
        quiet = check("is-uppercase", True, "quiet")
        assert not quiet.passed and quiet.reason == "is-uppercase check returned False"
    finally:
        unregister("is-uppercase")
    assert hasattr(manager.hook, "pytest_promptgate_case_result")


def test_llm_rubric_judge_defaults_to_the_case_model():
    seen: list[CallRequest] = []
    judge = fake_judge('{"pass": true, "reason": "ok"}', seen=seen)
    assert check("llm-rubric", "r", "x", judge=judge, model="openai/under-test").passed
    assert seen[0].model == "openai/under-test"


def test_python_file_check_imports_its_siblings_and_modules_on_rootdir(tmp_path):
    suite_dir = tmp_path / "suites"
    (suite_dir / "lib").mkdir(parents=True)
    (suite_dir / "lib" / "promptgate_unit_helper.py").write_text("LIMIT = 3\n")
    (suite_dir / "lib" / "nested_checks.py").write_text(
        "from promptgate_unit_helper import LIMIT\ndef short(output, context):\n    return len(output) <= LIMIT\n"
    )
    (tmp_path / "promptgate_unit_root_checks.py").write_text(
        "def always(output, context):\n    return (True, 'fine')\n"
    )
    assert check("python", "lib/nested_checks.py:short", "abc", suite_dir=suite_dir).passed
    assert not check("python", "lib/nested_checks.py:short", "abcd", suite_dir=suite_dir).passed
    rooted = check(
        "python", "promptgate_unit_root_checks:always", "x", suite_dir=suite_dir, rootdir=tmp_path
    )
    assert rooted.passed and rooted.reason == "fine"
