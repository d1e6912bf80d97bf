"""The acceptance list: every way a suite can be wrong -> one SuiteError naming file:line."""

from __future__ import annotations

from helpers.suite_files import SUITE, error


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
