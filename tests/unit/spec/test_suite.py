"""Suite files -> Suite (spec/suite.py): settings, versions, cases and defaults."""

from __future__ import annotations

import sys
import uuid

import pytest
from helpers.suite_files import SUITE, error, load

from pytest_promptgate import render


@pytest.fixture(autouse=True)
def restore_sys_path(monkeypatch):
    """Python prompt builders put their directories on sys.path; keep that to one test."""
    monkeypatch.setattr(sys, "path", list(sys.path))


# --- top-level settings ----------------------------------------------------------------------


def test_full_suite_settings(tmp_path):
    suite = load(
        tmp_path,
        """
        prompt: support-triage
        description: Route tickets
        model: openai/gpt-4o-mini
        params: {temperature: 0, max_tokens: 5}
        threshold: 0.9
        finetune_after: 4
        rpm: 30
        usage: {calls_per_month: 100000, months: 12}
        finetune:
          training_cost_usd: [500, 5000]
          inference_multiplier: 2
        versions:
          v1: {user: "{{ t }}"}
        cases: []
        """,
    )
    assert suite.prompt == "support-triage"
    assert suite.file == (tmp_path / SUITE).resolve()
    assert (suite.model, suite.threshold, suite.finetune_after, suite.rpm) == (
        "openai/gpt-4o-mini",
        0.9,
        4,
        30,
    )
    assert suite.params == {"temperature": 0, "max_tokens": 5}
    assert suite.usage == {"calls_per_month": 100000, "months": 12}
    assert suite.finetune == {"training_cost_usd": [500, 5000], "inference_multiplier": [2, 2]}
    assert suite.cases == ()
    assert suite.location.line == 1


@pytest.mark.parametrize(
    "line, message",
    [
        ("finetune_after: 1", "`finetune_after` must be at least 2"),
        ("repeat: 0", "`repeat` must be at least 1"),
        ("repeat: 1.5", "expected an integer for `repeat`, found float 1.5"),
        ("rpm: 0", "`rpm` must be greater than 0"),
        ("threshold: .nan", "expected a finite number"),
        ("threshold: true", "found bool true"),
        ("usage: {months: 0}", "`usage.months` must be greater than 0"),
        ("usage: {calls: 3}", "did you mean `calls_per_month`?"),
        ("finetune: {training_cost_usd: [5, 1]}", "low > high"),
        ("finetune: {inference_multiplier: [1, 2, 3]}", "found a list of 3"),
        ("params: [temperature]", "expected a mapping for `params`, found a list"),
        ("model: ''", "`model` is empty"),
    ],
)
def test_setting_errors(tmp_path, line, message):
    err = error(tmp_path, f"prompt: p\nuser: hi\n{line}\n")
    assert err.location.line == 3
    assert message in err.message


@pytest.mark.parametrize("prompt_id", ["a::b", "' padded'", "''", "[x]"])
def test_bad_prompt_ids(tmp_path, prompt_id):
    err = error(tmp_path, f"prompt: {prompt_id}\nuser: hi\n")
    assert err.location.line == 1


# --- versions ---------------------------------------------------------------------------------


def test_all_version_forms(tmp_path):
    module = f"builders_{uuid.uuid4().hex}"
    suite = load(
        tmp_path,
        f"""
        prompt: p
        versions:
          shorthand:
            system: Be brief.
            user: "Ticket: {{{{ ticket }}}}"
          listed:
            messages:
              - {{role: system, content: S}}
              - {{role: user, content: "{{{{ ticket }}}}"}}
              - {{role: assistant, content: ok}}
          from-file:
            system: Sys
            template: prompts/t.txt
          built:
            python: {module}:build
        cases:
          - vars: {{ticket: refund please}}
        """,
        **{
            "prompts/t.txt": "File says {{ ticket }}\n",
            f"{module}.py": """
            def build(ticket):
                return [{"role": "system", "content": "B"}, {"role": "user", "content": ticket.upper()}]
            """,
        },
    )
    assert [v.label for v in suite.versions] == ["shorthand", "listed", "from-file", "built"]
    assert suite.current.label == "built"
    assert [v.kind for v in suite.versions] == ["messages", "messages", "template", "python"]
    case_vars = suite.cases[0].vars
    rendered = [render.render_messages(suite, v, case_vars) for v in suite.versions]
    assert rendered[0] == (
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Ticket: refund please"},
    )
    assert [m["role"] for m in rendered[1]] == ["system", "user", "assistant"]
    assert rendered[2] == (
        {"role": "system", "content": "Sys"},
        {"role": "user", "content": "File says refund please"},
    )
    assert rendered[3][1] == {"role": "user", "content": "REFUND PLEASE"}
    assert suite.versions[2].template_path == "prompts/t.txt"
    assert suite.versions[3].python == f"{module}:build"
    assert suite.versions[0].location.line == 3
    assert len({v.source_hash for v in suite.versions}) == 4


def test_python_builder_returning_a_string_is_the_user_message(tmp_path):
    module = f"builders_{uuid.uuid4().hex}"
    suite = load(
        tmp_path,
        f"prompt: p\npython: {module}:build\ncases: [{{vars: {{x: 1}}}}]\n",
        **{f"{module}.py": "def build(**vars):\n    return f\"x={vars['x']}\"\n"},
    )
    assert render.render_messages(suite, suite.current, {"x": 2}) == (
        {"role": "user", "content": "x=2"},
    )


def test_python_builder_errors_are_suite_errors(tmp_path):
    module = f"builders_{uuid.uuid4().hex}"
    err = error(
        tmp_path,
        f"prompt: p\npython: {module}:build\ncases: [{{id: c, vars: {{x: 1}}}}]\n",
        **{f"{module}.py": "def build(**vars):\n    return 42\n"},
    )
    assert err.location.line == 3
    assert "returned int" in err.message and "case `c`" in err.message

    err = error(tmp_path, "prompt: p\npython: no_such_module_here:build\n")
    assert err.location.line == 2
    assert "cannot import" in err.message

    err = error(tmp_path, "prompt: p\npython: not a reference\n")
    assert "module:function" in err.message


def test_missing_template_file_names_the_template_line(tmp_path):
    err = error(tmp_path, "prompt: p\nversions:\n  v1:\n    system: s\n    template: nope.txt\n")
    assert err.location.line == 5
    assert "`nope.txt` not found" in err.message


def test_template_syntax_error_in_file_points_into_the_file(tmp_path):
    err = error(
        tmp_path,
        "prompt: p\ntemplate: prompts/t.txt\n",
        **{"prompts/t.txt": "line one\n{{ broken \n"},
    )
    assert err.location.file == "prompts/t.txt"
    assert err.location.line == 2
    assert "syntax error" in err.message


def test_template_syntax_error_inline_points_into_the_block(tmp_path):
    err = error(
        tmp_path,
        """
        prompt: p
        user: |
          first line
          {% if x %}
        """,
    )
    assert err.location.file == SUITE
    assert err.location.line in (3, 4, 5)
    assert "syntax error" in err.message


@pytest.mark.parametrize(
    "version, line, message",
    [
        ("{}", 3, "has no prompt"),
        ("{user: hi, messages: []}", 3, "mixes `user` and `messages`"),
        ("{python: 'a:b', system: s}", 3, "mixes `system` and `python`"),
        ("{messages: []}", 3, "`messages` is empty"),
        ("{messages: [{role: usr, content: x}]}", 3, "did you mean `user`?"),
        ("{messages: [{role: user}]}", 3, "needs `content`"),
        ("{user: 5}", 3, "expected a string for `user`, found int 5"),
        ("{usr: hi}", 3, "did you mean `user`?"),
        ("hello", 3, "expected a mapping for version `v1`"),
    ],
)
def test_version_errors(tmp_path, version, line, message):
    err = error(tmp_path, f"prompt: p\nversions:\n  v1: {version}\n")
    assert err.location.line == line
    assert message in err.message


def test_zero_versions_is_an_error(tmp_path):
    assert "at least one version" in error(tmp_path, "prompt: p\nversions: {}\n").message
    assert "no prompt text" in error(tmp_path, "prompt: p\ncases: []\n").message


def test_versions_and_top_level_source_cannot_mix(tmp_path):
    err = error(tmp_path, "prompt: p\nuser: hi\nversions:\n  v1: {user: x}\n")
    assert err.location.line == 2


def test_single_version_is_labelled_by_a_short_hash_of_its_source(tmp_path):
    first = load(tmp_path, "prompt: p\nsystem: s\nuser: '{{ t }}'\n")
    again = load(tmp_path, "prompt: p\nsystem: s\nuser: '{{ t }}'\ncases: []\n")
    edited = load(tmp_path, "prompt: p\nsystem: s!\nuser: '{{ t }}'\n")
    label = first.current.label
    assert len(label) == 8 and int(label, 16) >= 0
    assert label == first.current.source_hash[:8]
    assert again.current.label == label
    assert edited.current.label != label
    assert first.current.location.line == 2


def test_zero_cases_are_allowed(tmp_path):
    assert load(tmp_path, "prompt: p\nuser: '{{ undefined_but_unused }}'\n").cases == ()


# --- cases and defaults --------------------------------------------------------------------------


def test_defaults_merge_into_every_case(tmp_path):
    suite = load(
        tmp_path,
        """
        prompt: p
        user: hi
        repeat: 2
        defaults:
          expect: [{one-of: [a, b]}]
          tags: [triage]
        cases:
          - id: plain
          - id: own
            expect: [{equals: a}]
            tags: [slow, triage]
            repeat: 5
          - id: opted-out
            defaults: false
            expect: [{equals: b}]
        """,
    )
    plain, own, opted_out = suite.cases
    assert [e.type for e in plain.expect] == ["one-of"]
    assert plain.tags == ("triage",) and plain.repeat == 2
    assert [e.type for e in own.expect] == ["one-of", "equals"]
    assert own.tags == ("triage", "slow") and own.repeat == 5
    assert [e.type for e in opted_out.expect] == ["equals"]
    assert opted_out.tags == () and opted_out.repeat == 2
    assert plain.expect[0].location.line == 5
    assert own.expect[1].location.line == 10


def test_defaults_repeat_wins_over_top_level_repeat(tmp_path):
    suite = load(
        tmp_path, "prompt: p\nuser: hi\nrepeat: 2\ndefaults: {repeat: 3}\ncases: [{id: a}]\n"
    )
    assert suite.cases[0].repeat == 3


def test_case_fields(tmp_path):
    suite = load(
        tmp_path,
        """
        prompt: p
        user: "{{ t }}"
        cases:
          - vars: {t: x, n: 3, nested: {deep: [1, 2]}}
            ideal: billing
            id: 7
        """,
    )
    case = suite.cases[0]
    assert case.id == "7"
    assert case.vars == {"t": "x", "n": 3, "nested": {"deep": [1, 2]}}
    assert type(case.vars) is dict and type(case.vars["nested"]["deep"]) is list
    assert case.ideal == "billing"
    assert case.location.line == 4 and case.location.file == SUITE


@pytest.mark.parametrize(
    "case, message",
    [
        ("{tags: [has space]}", "cannot be a pytest marker"),
        ("{tags: [skip]}", "reserved by pytest"),
        ("{tags: [5]}", "expected a string for a tag in `tags`"),
        ("{vars: [1]}", "expected a mapping for `vars`"),
        ("{expect: {equals: a}}", "expected a list for `expect`"),
        ("{expect: [{equals: a, contains: b}]}", "one `type: value` pair"),
        ("{expect: [{type: equals, value: a, wieght: 2}]}", "unknown key `wieght`"),
        ("{expect: [3]}", "expected an expectation"),
        ("{ideal: 3}", "expected a string for `ideal`"),
        ("{defaults: nope}", "expected true or false for `defaults`"),
        ("{id: 'a::b'}", "contains `::`"),
        ("not-a-mapping", "expected a mapping for a case"),
    ],
)
def test_case_errors(tmp_path, case, message):
    err = error(tmp_path, f"prompt: p\nuser: hi\ncases:\n  - {case}\n")
    assert err.location.line == 4
    assert message in err.message
