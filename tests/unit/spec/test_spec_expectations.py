"""`expect:` entries -> Expectation objects (spec/expectations.py)."""

from __future__ import annotations

from helpers.suite_files import error, load

from pytest_promptgate import assertions


def test_invalid_expectation_value_uses_the_registry_validator(tmp_path, monkeypatch):
    def validate(exp, suite_dir):
        assert suite_dir == tmp_path.resolve()
        if exp.value == "(":
            raise ValueError("bad regex: missing )")

    monkeypatch.setattr(assertions, "validate_expectation", validate)
    err = error(tmp_path, "prompt: p\nuser: hi\ncases:\n  - expect:\n      - regex: '('\n")
    assert err.location.line == 5
    assert err.message == "invalid `regex` expectation: bad regex: missing )"


def test_both_expectation_forms_build_the_same_expectation(tmp_path):
    suite = load(
        tmp_path,
        """
        prompt: p
        user: hi
        cases:
          - expect:
              - not-contains: sorry
              - {type: not-contains, value: sorry}
              - is-json
              - {type: is-json}
        """,
    )
    first, second, bare, typed = suite.cases[0].expect
    assert (first.type, first.value, first.negate) == ("contains", "sorry", True)
    assert (second.type, second.value, second.negate) == ("contains", "sorry", True)
    assert first.name == "not-contains"
    assert (bare.type, bare.value) == (typed.type, typed.value) == ("is-json", None)
    assert [e.location.line for e in suite.cases[0].expect] == [5, 6, 7, 8]


def test_the_type_value_form_takes_the_options_its_type_declares(tmp_path):
    def validate_tolerance(value, suite_dir):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("tolerance is a whole number; write e.g. tolerance: 2")

    assertions.register(
        "length-near", lambda output, value, ctx: True, options={"tolerance": validate_tolerance}
    )
    try:
        suite = load(
            tmp_path,
            """
            prompt: p
            user: hi
            cases:
              - expect:
                  - {type: length-near, value: 5, tolerance: 2}
                  - {type: not-length-near, value: 9}
                  - length-near: 3
            """,
        )
        near, negated, shorthand = suite.cases[0].expect
        assert (near.type, near.value, near.options) == ("length-near", 5, {"tolerance": 2})
        assert negated.negate and negated.options == {} and shorthand.options == {}
        bad = error(
            tmp_path,
            "prompt: p\nuser: hi\ncases:\n  - expect:\n      - {type: length-near, value: 5, tolerance: x}\n",
        )
        assert bad.location.line == 5
        assert bad.message == (
            "invalid `length-near` expectation: tolerance is a whole number; write e.g. tolerance: 2"
        )
    finally:
        assertions.unregister("length-near")
    unknown = error(
        tmp_path,
        "prompt: p\nuser: hi\ncases:\n  - expect:\n      - {type: contains, value: a, tolerance: 2}\n",
    )
    assert unknown.location.line == 5
    assert unknown.message.startswith("unknown key `tolerance` in an expectation of the `type:`")
    assert unknown.hint == "allowed keys: type, value, weight, metric, transform"
