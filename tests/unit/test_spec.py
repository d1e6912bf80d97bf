"""Suite files → Suite, and every way a suite can be wrong → one SuiteError with file:line."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from pytest_promptgate import assertions, render
from pytest_promptgate.model import Location, Suite, SuiteError
from pytest_promptgate.spec import load_suite

SUITE = "triage.promptgate.yaml"


@pytest.fixture(autouse=True)
def restore_sys_path(monkeypatch):
    """Python prompt builders put their directories on sys.path; keep that to one test."""
    monkeypatch.setattr(sys, "path", list(sys.path))


def write_files(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def load(tmp_path: Path, suite: str, **files: str) -> Suite:
    write_files(tmp_path, {SUITE: suite, **files})
    return load_suite(tmp_path / SUITE, rootdir=tmp_path)


def error(tmp_path: Path, suite: str, **files: str) -> SuiteError:
    with pytest.raises(SuiteError) as caught:
        load(tmp_path, suite, **files)
    return caught.value


# --- the acceptance list: one readable message naming file and line --------------------------


def test_broken_yaml_syntax_names_the_line_of_the_problem(tmp_path):
    err = error(
        tmp_path,
        """
        prompt: triage
        user: "{{ ticket }}"
        cases:
          - vars: {ticket: "unclosed
          - id: b
        """,
    )
    assert err.location.file == SUITE
    assert err.location.line in (4, 5)
    assert err.message.startswith("invalid YAML")
    assert err.hint and "quot" in err.hint


def test_bad_indentation_is_a_yaml_error_at_its_line(tmp_path):
    err = error(
        tmp_path,
        """
        prompt: triage
        user: hi
         cases: []
        """,
    )
    assert str(err).startswith(f"{SUITE}:3: invalid YAML")


def test_unknown_key_suggests_the_closest_known_key(tmp_path):
    err = error(
        tmp_path,
        """
        prompt: triage
        user: "{{ ticket }}"
        cases:
          - id: a
            vars: {ticket: x}
            expcet: [{equals: billing}]
        """,
    )
    assert (err.location.file, err.location.line) == (SUITE, 6)
    assert "unknown key `expcet`" in err.message
    assert "did you mean `expect`?" in err.message
    assert "expect" in err.hint


def test_unknown_top_level_key(tmp_path):
    err = error(tmp_path, "prompt: p\nuser: hi\nthreshhold: 0.8\n")
    assert err.location.line == 3
    assert "did you mean `threshold`?" in err.message


def test_wrong_type_names_expected_and_found(tmp_path):
    err = error(tmp_path, "prompt: p\nuser: hi\nthreshold: high\n")
    assert err.location.line == 3
    assert err.message == "expected a number for `threshold`, found str 'high'"


def test_threshold_given_as_percentage_gets_a_fraction_hint(tmp_path):
    err = error(tmp_path, "prompt: p\nuser: hi\nthreshold: 80\n")
    assert err.location.line == 3
    assert "use 0.8" in err.hint


def test_missing_prompt_is_reported_at_line_one(tmp_path):
    err = error(tmp_path, "description: no id\nuser: hi\n")
    assert (err.location.file, err.location.line) == (SUITE, 1)
    assert "`prompt`" in err.message


def test_unknown_expectation_suggests_a_known_type(tmp_path):
    err = error(
        tmp_path,
        """
        prompt: p
        user: hi
        cases:
          - expect:
              - contians: foo
        """,
    )
    assert err.location.line == 5
    assert err.message == "unknown expectation `contians`; did you mean `contains`?"


def test_unknown_negated_expectation_suggests_the_negated_type(tmp_path):
    err = error(
        tmp_path, "prompt: p\nuser: hi\ncases:\n  - expect: [{type: not-contans, value: x}]\n"
    )
    assert err.location.line == 4
    assert "did you mean `not-contains`?" in err.message


def test_template_variable_a_case_lacks_names_case_variable_and_version(tmp_path):
    err = error(
        tmp_path,
        """
        prompt: p
        versions:
          v1:
            user: "{{ ticket }}"
          v2:
            user: "{{ ticket }} from {{ customer }}"
        cases:
          - id: ok-in-v1
            vars: {ticket: hello}
        """,
    )
    assert (err.location.file, err.location.line) == (SUITE, 8)
    assert "`customer`" in err.message
    assert "version `v2`" in err.message
    assert "case `ok-in-v1`" in err.message


def test_missing_cases_file_points_at_the_cases_file_line(tmp_path):
    err = error(tmp_path, "prompt: p\nuser: hi\ncases_file: cases/missing.jsonl\n")
    assert err.location.line == 3
    assert "cases/missing.jsonl" in err.message and "not found" in err.message
    assert "relative to the suite" in err.hint


def test_duplicate_case_id_names_both_lines(tmp_path):
    err = error(
        tmp_path,
        """
        prompt: p
        user: hi
        cases:
          - id: same
          - id: other
          - id: same
        """,
    )
    assert err.location.line == 6
    assert f"{SUITE}:4" in err.message
    assert "duplicate case id `same`" in err.message


def test_duplicate_case_id_across_inline_and_cases_file(tmp_path):
    err = error(
        tmp_path,
        "prompt: p\nuser: hi\ncases: [{id: a}]\ncases_file: more.jsonl\n",
        **{"more.jsonl": '{"id": "b"}\n{"id": "a"}\n'},
    )
    assert (err.location.file, err.location.line) == ("more.jsonl", 2)
    assert f"{SUITE}:3" in err.message


def test_explicit_id_colliding_with_a_default_id(tmp_path):
    err = error(tmp_path, "prompt: p\nuser: hi\ncases:\n  - vars: {}\n  - id: case-1\n")
    assert err.location.line == 5


# --- YAML safety and structure ---------------------------------------------------------------


def test_python_object_tags_are_refused(tmp_path):
    err = error(
        tmp_path,
        """
        prompt: p
        user: hi
        params: !!python/object/apply:os.system ["echo pwned"]
        """,
    )
    assert err.location.line == 3
    assert "`!!python/object/apply:os.system` is not allowed" in err.message


def test_local_tags_are_refused(tmp_path):
    err = error(tmp_path, "prompt: p\nuser: !include other.txt\n")
    assert err.location.line == 2
    assert "`!include`" in err.message


def test_duplicate_yaml_keys_are_an_error(tmp_path):
    err = error(tmp_path, "prompt: p\nuser: a\nuser: b\n")
    assert err.location.line == 3
    assert "first at line 2" in err.message


def test_alias_bomb_is_refused(tmp_path):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 8):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        levels.append(f"a{level}: &a{level} [{refs}]")
    suite = "prompt: p\nuser: hi\nparams:\n" + "".join(f"  {line}\n" for line in levels)
    err = error(tmp_path, suite)
    assert "aliases expand to more than" in err.message
    assert err.location.line >= 3


def test_recursive_alias_is_refused(tmp_path):
    err = error(tmp_path, "prompt: p\nuser: hi\nparams: &loop {again: *loop}\n")
    assert err.location.line == 3
    assert "alias" in err.message


def test_merge_keys_are_supported(tmp_path):
    suite = load(
        tmp_path,
        """
        prompt: p
        user: "{{ a }} {{ b }}"
        cases:
          - vars: &base {a: 1, b: 2}
          - vars:
              <<: *base
              b: 3
        """,
    )
    assert suite.cases[1].vars == {"a": 1, "b": 3}


def test_timestamps_stay_text(tmp_path):
    suite = load(tmp_path, "prompt: p\nuser: '{{ day }}'\ncases: [{vars: {day: 2024-01-31}}]\n")
    assert suite.cases[0].vars["day"] == "2024-01-31"


def test_empty_and_non_mapping_files(tmp_path):
    assert error(tmp_path, "").location.line == 1
    err = error(tmp_path, "- a\n- b\n")
    assert "a suite is a mapping" in err.message


def test_non_string_key_is_refused_with_a_quote_hint(tmp_path):
    err = error(tmp_path, "prompt: p\nversions:\n  1: {user: hi}\n")
    assert err.location.line == 3
    assert "'1'" in err.hint


def test_invalid_utf8_is_reported_at_its_line(tmp_path):
    (tmp_path / SUITE).write_bytes(b"prompt: p\nuser: caf\xe9\n")
    with pytest.raises(SuiteError) as caught:
        load_suite(tmp_path / SUITE, rootdir=tmp_path)
    assert caught.value.location.line == 2


def test_location_is_relative_to_rootdir_or_as_given(tmp_path):
    write_files(tmp_path, {"sub/s.promptgate.yaml": "user: hi\n"})
    with pytest.raises(SuiteError) as caught:
        load_suite(tmp_path / "sub" / "s.promptgate.yaml", rootdir=tmp_path)
    assert caught.value.location.file == "sub/s.promptgate.yaml"
    with pytest.raises(SuiteError) as caught:
        load_suite(tmp_path / "sub" / "s.promptgate.yaml")
    assert caught.value.location.file == (tmp_path / "sub" / "s.promptgate.yaml").as_posix()


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
        ("{expect: [{type: equals, value: a, weight: 2}]}", "unknown key `weight`"),
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


# --- cases files -------------------------------------------------------------------------------


def test_jsonl_cases_structured_and_flat(tmp_path):
    suite = load(
        tmp_path,
        "prompt: p\nuser: '{{ ticket }}'\ncases_file: cases/t.jsonl\n",
        **{
            "cases/t.jsonl": """
            {"id": "s", "vars": {"ticket": "a"}, "expect": [{"equals": "billing"}], "tags": ["x"], "repeat": 2}

            {"ticket": "b", "ideal": "bug", "expect": [{"type": "contains", "value": "bu"}], "__expected": "icontains:BUG"}
            """,
        },
    )
    structured, flat = suite.cases
    assert structured.id == "s" and structured.vars == {"ticket": "a"} and structured.repeat == 2
    assert structured.location.file == "cases/t.jsonl" and structured.location.line == 1
    assert flat.id == "case-2" and flat.vars == {"ticket": "b"} and flat.ideal == "bug"
    assert [e.type for e in flat.expect] == ["contains", "icontains"]
    assert flat.location.line == 3 and flat.expect[0].location == flat.location


def test_jsonl_errors_name_the_row(tmp_path):
    err = error(
        tmp_path, "prompt: p\nuser: hi\ncases_file: c.jsonl\n", **{"c.jsonl": '{"a": 1}\n{oops\n'}
    )
    assert (err.location.file, err.location.line) == ("c.jsonl", 2)
    err = error(tmp_path, "prompt: p\nuser: hi\ncases_file: c.jsonl\n", **{"c.jsonl": "[1]\n"})
    assert "JSON object" in err.message
    err = error(
        tmp_path,
        "prompt: p\nuser: hi\ncases_file: c.jsonl\n",
        **{"c.jsonl": '{"vars": {}, "expcet": []}\n'},
    )
    assert (err.location.file, err.location.line) == ("c.jsonl", 1)
    assert "did you mean `expect`?" in err.message


def test_csv_cases(tmp_path):
    suite = load(
        tmp_path,
        "prompt: p\nuser: '{{ ticket }} {{ lang }}'\ncases_file: t.csv\n",
        **{
            "t.csv": """
            id,ticket,lang,tags,ideal,expect,__expected
            c1,charged twice,en,payments; urgent,billing,equals:billing,
            ,"multi
            line",fr,,,"[{""contains"": ""x""}, ""is-json""]",grade:is polite
            c3,crash,de,,,,not-contains: sorry
            c4,plain,en,,,,billing
            """,
        },
    )
    c1, c2, c3, c4 = suite.cases
    assert c1.id == "c1" and c1.vars == {"ticket": "charged twice", "lang": "en"}
    assert c1.tags == ("payments", "urgent") and c1.ideal == "billing"
    assert [(e.type, e.value) for e in c1.expect] == [("equals", "billing")]
    assert c1.location.line == 2 and c1.location.file == "t.csv"
    assert c2.id == "case-2" and c2.vars["ticket"] == "multi\nline" and c2.location.line == 3
    assert [e.type for e in c2.expect] == ["contains", "is-json", "llm-rubric"]
    assert c2.expect[2].value == "is polite"
    assert c3.location.line == 5
    assert [(e.type, e.negate, e.value) for e in c3.expect] == [("contains", True, "sorry")]
    assert [(e.type, e.value) for e in c4.expect] == [("equals", "billing")]


def test_csv_errors_name_the_row(tmp_path):
    err = error(
        tmp_path, "prompt: p\nuser: hi\ncases_file: t.csv\n", **{"t.csv": "a,b\n1,2\n1,2,3\n"}
    )
    assert (err.location.file, err.location.line) == ("t.csv", 3)
    err = error(
        tmp_path,
        "prompt: p\nuser: hi\ncases_file: t.csv\n",
        **{"t.csv": "a,expect\n1,contians:x\n"},
    )
    assert (err.location.line, err.message) == (
        2,
        "unknown expectation `contians`; did you mean `contains`?",
    )
    err = error(tmp_path, "prompt: p\nuser: hi\ncases_file: t.csv\n", **{"t.csv": "a,a\n1,2\n"})
    assert err.location.line == 1 and "twice" in err.message


def test_yaml_cases_file(tmp_path):
    suite = load(
        tmp_path,
        "prompt: p\nuser: '{{ t }}'\ncases_file: [c.yaml, d.yml]\n",
        **{
            "c.yaml": """
            - id: y1
              vars: {t: a}
              expect: [{equals: a}]
            - t: flat
              tags: [z]
            """,
            "d.yml": "- {id: y3, vars: {t: c}}\n",
        },
    )
    assert [c.id for c in suite.cases] == ["y1", "case-2", "y3"]
    assert suite.cases[1].vars == {"t": "flat"} and suite.cases[1].tags == ("z",)
    assert [(c.location.file, c.location.line) for c in suite.cases] == [
        ("c.yaml", 1),
        ("c.yaml", 4),
        ("d.yml", 1),
    ]
    assert suite.cases[0].expect[0].location == Location("c.yaml", 3)


def test_yaml_cases_file_errors(tmp_path):
    err = error(
        tmp_path, "prompt: p\nuser: hi\ncases_file: c.yaml\n", **{"c.yaml": "- id: a\n- id: [\n"}
    )
    assert err.location.file == "c.yaml" and err.message.startswith("invalid YAML")
    err = error(tmp_path, "prompt: p\nuser: hi\ncases_file: c.yaml\n", **{"c.yaml": "a: 1\n"})
    assert "list of cases" in err.message


def test_template_variable_missing_in_a_cases_file_row(tmp_path):
    err = error(
        tmp_path,
        "prompt: p\nversions:\n  v1: {user: '{{ ticket }}'}\ncases_file: c.jsonl\n",
        **{"c.jsonl": '{"ticket": "ok"}\n{"tickte": "typo"}\n'},
    )
    assert (err.location.file, err.location.line) == ("c.jsonl", 2)
    assert "`ticket`" in err.message and "version `v1`" in err.message


def test_unsupported_cases_file_extension(tmp_path):
    err = error(tmp_path, "prompt: p\nuser: hi\ncases_file: c.txt\n", **{"c.txt": ""})
    assert err.location.line == 3 and ".jsonl" in err.hint


def test_a_large_plain_suite_is_not_mistaken_for_an_alias_bomb(tmp_path):
    # 10,000 realistic inline cases make ~300,000 YAML values but repeat none: only alias
    # repeats count against the limit (which the old guard got wrong).
    case = (
        "  - {{id: c{i}, vars: {{q: 'x {i}', lang: en, channel: email}}, ideal: x,"
        " tags: [bulk], expect: [{{contains: x}}, {{regex: '[0-9]'}}, {{word-count: {{max: 9}}}}]}}\n"
    )
    path = tmp_path / "big.promptgate.yaml"
    path.write_text(
        "prompt: big\nmodel: openai/m\nuser: '{{ q }}'\ncases:\n"
        + "".join(case.format(i=i) for i in range(10_000))
    )
    assert len(load_suite(path).cases) == 10_000
