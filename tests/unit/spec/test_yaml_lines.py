"""The line-tracking YAML reader (spec/yaml_lines.py): safety, structure, lines."""

from __future__ import annotations

import pytest
from helpers.suite_files import SUITE, error, load, write_files

from pytest_promptgate.model import SuiteError
from pytest_promptgate.spec import load_suite


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
