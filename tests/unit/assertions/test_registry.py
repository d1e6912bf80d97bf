"""The expectation registry: every built-in through check_all, validation, negation,
third-party types, hostile outputs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from helpers.expectation_checks import check, fake_judge, make_ctx

from pytest_promptgate import assertions
from pytest_promptgate.assertions import (
    CheckOutcome,
    check_all,
    known_types,
    option_keys,
    register,
    unregister,
    validate_expectation,
)
from pytest_promptgate.model import Expectation, Location

HERE = Path(__file__).parent

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


def test_check_all_evaluates_every_expectation_in_order():
    exps = [
        Expectation("contains", "a"),
        Expectation("contains", "zzz"),
        Expectation("equals", "nope"),
    ]
    results = asyncio.run(check_all(exps, make_ctx("abc")))
    assert [r.passed for r in results] == [True, False, False]
    assert [r.expectation for r in results] == ["contains", "contains", "equals"]


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
        ("cost", -0.5, "number >= 0"),  # cost: 0 is a free call (promptfoo accepts it)
        ("cost", "cheap", "number >= 0"),
        ("cost", True, "number >= 0"),
        ("latency", -5, "number >= 0"),
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


def test_a_type_declares_its_options_and_its_check_sees_them():
    seen: list[dict] = []

    def near(output, value, ctx):
        seen.append(dict(ctx.options))
        return abs(len(output) - value) <= ctx.options.get("tolerance", 0)

    def validate_tolerance(value, suite_dir):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("tolerance is a whole number >= 0; write e.g. tolerance: 2")

    register("length-near", near, options={"tolerance": validate_tolerance})
    try:
        common = ("weight", "metric", "transform")  # promptfoo's keys, accepted on every type
        assert option_keys("length-near") == ("tolerance", *common)
        assert option_keys("equals") == common and option_keys("no-such-type") == common
        with_option = Expectation("length-near", 5, options={"tolerance": 1})
        validate_expectation(with_option, HERE)
        with pytest.raises(ValueError, match="whole number >= 0"):
            validate_expectation(Expectation("length-near", 5, options={"tolerance": -1}), HERE)
        with pytest.raises(ValueError, match="takes no option 'tolerence'; its options: tolerance"):
            validate_expectation(Expectation("length-near", 5, options={"tolerence": 2}), HERE)
        (close,) = asyncio.run(check_all([with_option], make_ctx("abcdef")))
        assert close.passed and seen[-1] == {"tolerance": 1}
        (exact,) = asyncio.run(check_all([Expectation("length-near", 5)], make_ctx("abcdef")))
        assert not exact.passed and seen[-1] == {}
    finally:
        unregister("length-near")
    with pytest.raises(ValueError, match="options maps key names"):
        register("bad-options", lambda o, v, c: True, options={"value": validate_tolerance})


def test_builtin_types_come_from_the_family_modules_and_stay_built_in():
    from pytest_promptgate.assertions import counts, text

    assert text.check_contains("a refund", "refund", make_ctx("a refund")).passed
    assert counts.count_words("two words") == 2
    unregister("contains")  # a built-in stays
    assert "contains" in known_types()
    with pytest.raises(ValueError, match="built in"):
        register("word-count", lambda o, v, c: True)
