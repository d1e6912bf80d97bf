"""Sandboxed rendering, content hashes and secret-free params."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from pytest_promptgate import render
from pytest_promptgate.model import Case, Location, MessageTemplate, Suite, SuiteError, Version
from pytest_promptgate.spec import load_suite


@pytest.fixture(autouse=True)
def restore_sys_path(monkeypatch):
    """Python prompt builders put their directories on sys.path; keep that to one test."""
    monkeypatch.setattr(sys, "path", list(sys.path))


def make_suite(*templates: str, label: str = "v1") -> Suite:
    version = Version(
        label=label,
        kind="messages",
        messages=tuple(MessageTemplate("user", t) for t in templates),
        location=Location("s.promptgate.yaml", 3),
    )
    return Suite(
        prompt="p",
        file=Path("/repo/s.promptgate.yaml").resolve(),
        versions=(version,),
        cases=(),
        location=Location("s.promptgate.yaml", 1),
    )


def render_one(template: str, **variables):
    suite = make_suite(template)
    return render.render_messages(suite, suite.current, variables)


def test_renders_variables_without_html_escaping():
    assert render_one("Ticket: {{ t }} & {{ n + 1 }}", t="<b>refund</b>", n=1) == (
        {"role": "user", "content": "Ticket: <b>refund</b> & 2"},
    )


def test_undefined_variable_names_the_variable_and_the_version():
    with pytest.raises(SuiteError) as caught:
        render_one("{{ ticket }}")
    assert "template variable `ticket` is not defined" in caught.value.message
    assert "version `v1`" in caught.value.message
    assert caught.value.location == Location("s.promptgate.yaml", 3)


def test_errors_point_at_the_case_when_given():
    suite = make_suite("{{ ticket }}")
    case = Case(id="c9", vars={}, expect=(), location=Location("cases.jsonl", 9))
    with pytest.raises(SuiteError) as caught:
        render.render_messages(suite, suite.current, case.vars, case=case)
    assert caught.value.location == Location("cases.jsonl", 9)
    assert caught.value.message.startswith("case `c9`, version `v1`:")


def test_missing_attribute_is_reported():
    with pytest.raises(SuiteError) as caught:
        render_one("{{ user.name }}", user={})
    assert "`name`" in caught.value.message


@pytest.mark.parametrize(
    "template, reached",
    [
        ("{{ ''.__class__ }}", "__class__"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "__class__"),
        ("{{ lipsum.__globals__ }}", "__globals__"),
        ("{{ cycler.__init__.__globals__.os }}", "__init__"),
        ("{{ self._TemplateReference__context.environment }}", "_TemplateReference__context"),
        ("{{ items.append(4) }}", "append"),
        ("{{ data.update(x=1) }}", "update"),
    ],
)
def test_sandbox_refuses_escapes(template, reached):
    items, data = [1, 2, 3], {"a": 1}
    with pytest.raises(SuiteError) as caught:
        render_one(template, items=items, data=data)
    assert caught.value.message.endswith(
        f"template tried to reach `{reached}`, which the sandbox forbids"
    )
    assert items == [1, 2, 3] and data == {"a": 1}


@pytest.mark.parametrize("template", ["{{ 'a' * 10**10 }}", "{{ 10 ** 1000000 }}", "{{ [0] * n }}"])
def test_runaway_values_are_refused(template):
    with pytest.raises(SuiteError) as caught:
        render_one(template, n=10**9)
    assert "sandbox forbids" in caught.value.message


def test_other_template_failures_are_suite_errors():
    with pytest.raises(SuiteError) as caught:
        render_one("{{ 1 / 0 }}")
    assert "ZeroDivisionError" in caught.value.message
    with pytest.raises(SuiteError) as caught:
        render_one("{% include 'other.txt' %}")
    assert "template failed" in caught.value.message


def test_sandbox_escape_in_a_suite_file_is_reported_at_the_case(tmp_path):
    (tmp_path / "s.promptgate.yaml").write_text(
        'prompt: p\nuser: "{{ ticket.__class__ }}"\ncases:\n  - vars: {ticket: x}\n'
    )
    with pytest.raises(SuiteError) as caught:
        load_suite(tmp_path / "s.promptgate.yaml", rootdir=tmp_path)
    assert str(caught.value).startswith("s.promptgate.yaml:4: case `case-1`")
    assert "`__class__`, which the sandbox forbids" in caught.value.message


def test_template_syntax_error_reports_the_template_line():
    assert render.template_syntax_error("ok {{ x }}") is None
    line, message = render.template_syntax_error("one\ntwo {{ x \n")
    assert line == 2 and message


def test_compiled_templates_are_cached():
    assert render.compile_template("{{ cached }}") is render.compile_template("{{ cached }}")


# --- hashes and secrets ------------------------------------------------------------------------


def version(text: str, kind: str = "messages", python: str | None = None) -> Version:
    return Version(label="x", kind=kind, messages=(MessageTemplate("user", text),), python=python)


def test_short_hash_is_eight_hex_digits_of_sha256():
    assert re.fullmatch(r"[0-9a-f]{8}", render.short_hash("hello"))
    assert render.short_hash("hello") == "2cf24dba"


def test_content_hash_changes_with_prompt_model_and_params():
    base = render.content_hash(version("a"), "openai/m", {"temperature": 0})
    assert re.fullmatch(r"[0-9a-f]{64}", base)
    assert render.content_hash(version("a"), "openai/m", {"temperature": 0}) == base
    assert render.content_hash(version("b"), "openai/m", {"temperature": 0}) != base
    assert render.content_hash(version("a"), "openai/other", {"temperature": 0}) != base
    assert render.content_hash(version("a"), "openai/m", {"temperature": 1}) != base
    assert (
        render.content_hash(version("a"), "openai/m", {"temperature": 0, "max_tokens": 5}) != base
    )
    assert (
        render.content_hash(version("a", "python", "m:f"), "openai/m", {"temperature": 0}) != base
    )


def test_content_hash_ignores_labels_and_secrets():
    base = render.content_hash(version("a"), "openai/m", {"temperature": 0})
    relabelled = Version(label="renamed", kind="messages", messages=(MessageTemplate("user", "a"),))
    assert render.content_hash(relabelled, "openai/m", {"temperature": 0}) == base
    with_secrets = {
        "temperature": 0,
        "api_key": "sk-canary",
        "github_token": "ghp_x",
        "extra_headers": {"X": "y"},
        "Authorization": "Bearer z",
    }
    assert render.content_hash(version("a"), "openai/m", with_secrets) == base


def test_public_params_removes_secrets_at_every_depth():
    params = {
        "temperature": 0,
        "max_tokens": 10,
        "max_completion_tokens": 3,
        "api_base": "http://127.0.0.1:1",
        "input_cost_per_token": 1e-6,
        "api_key": "a",
        "OPENAI_API_KEY": "b",
        "access_token": "c",
        "client_secret": "d",
        "password": "e",
        "authorization": "f",
        "headers": {"h": 1},
        "extra_headers": {"h": 2},
        "extra_body": {"nested_api_key": "g", "keep": [{"token": "h", "ok": 1}]},
    }
    assert render.public_params(params) == {
        "temperature": 0,
        "max_tokens": 10,
        "max_completion_tokens": 3,
        "api_base": "http://127.0.0.1:1",
        "input_cost_per_token": 1e-6,
        "extra_body": {"keep": [{"ok": 1}]},
    }
    assert params["api_key"] == "a"  # the input is not modified
    assert render.public_params(None) == {}


def test_template_file_text_enters_the_source_hash(tmp_path):
    (tmp_path / "t.txt").write_text("first {{ x }}")
    (tmp_path / "s.promptgate.yaml").write_text("prompt: p\ntemplate: t.txt\n")
    first = load_suite(tmp_path / "s.promptgate.yaml")
    (tmp_path / "t.txt").write_text("second {{ x }}")
    second = load_suite(tmp_path / "s.promptgate.yaml")
    assert first.current.label != second.current.label
    assert render.content_hash(first.current, None, {}) != render.content_hash(
        second.current, None, {}
    )


def test_python_builder_code_enters_the_source_hash(tmp_path):
    import uuid

    module = f"hashed_builder_{uuid.uuid4().hex}"
    (tmp_path / f"{module}.py").write_text("def build(**v):\n    return 'one'\n")
    (tmp_path / "s.promptgate.yaml").write_text(f"prompt: p\npython: {module}:build\n")
    suite = load_suite(tmp_path / "s.promptgate.yaml")
    without_code = Version(label="x", kind="python", python=f"{module}:build")
    assert suite.current.source_hash != ""
    assert render.content_hash(suite.current, None, {}) != render.content_hash(
        without_code, None, {}
    )


def test_rendering_survives_jinja2_being_imported_again():
    # pytester's in-process runs drop modules imported during a run; an environment built on
    # the old jinja2 then rendered undefined variables as "missing" instead of failing.
    render_one("{{ x }}", x=1)
    before = {
        name: module for name, module in sys.modules.items() if name.split(".")[0] == "jinja2"
    }
    try:
        for name in before:
            del sys.modules[name]
        with pytest.raises(SuiteError) as caught:
            render_one("{{ ticket }}")
        assert "`ticket`" in caught.value.message
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == "jinja2"]:
            del sys.modules[name]
        sys.modules.update(before)
