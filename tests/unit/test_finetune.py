"""`promptgate export-finetune` (OpenAI chat JSONL) and `promptgate init`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from pytest_promptgate import finetune, scaffold
from pytest_promptgate.finetune import export_finetune, holdout_path
from pytest_promptgate.model import (
    Case,
    Expectation,
    Location,
    MessageTemplate,
    PromptgateError,
    Suite,
    Version,
)

REPO = Path(__file__).resolve().parents[2]


def fake_render(suite, case):
    """Stands in for render.render_messages: system + user turn from the case's vars."""
    return (
        {"role": "system", "content": "Classify the ticket."},
        {"role": "user", "content": f"Ticket: {case.vars['ticket']}"},
    )


@pytest.fixture
def fake_renderer(monkeypatch):
    monkeypatch.setattr(finetune, "_render_messages", fake_render)


def make_suite(n_labelled: int = 10, n_unlabelled: int = 3) -> Suite:
    cases = [
        Case(
            id=f"l{i:02d}",
            vars={"ticket": f"ticket {i}"},
            expect=(Expectation("equals", ["billing", "bug"][i % 2]),),
            location=Location("s.promptgate.yaml", 10 + i),
        )
        for i in range(n_labelled)
    ]
    cases += [
        Case(id=f"u{i}", vars={"ticket": f"open {i}"}, expect=(Expectation("contains", "x"),))
        for i in range(n_unlabelled)
    ]
    version = Version(
        label="v1", kind="messages", messages=(MessageTemplate("user", "{{ ticket }}"),)
    )
    return Suite(
        prompt="triage",
        file=Path("/repo/s.promptgate.yaml"),
        versions=(version,),
        cases=tuple(cases),
    )


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_writes_chat_jsonl_that_round_trips(tmp_path, fake_renderer):
    out = tmp_path / "data.jsonl"
    summary = export_finetune(make_suite(), out)
    assert (summary.written, summary.skipped_unlabelled, summary.holdout_written) == (10, 3, 0)
    assert summary.paths == (out,)
    lines = read_jsonl(out)
    assert len(lines) == 10
    assert lines[0] == {
        "messages": [
            {"role": "system", "content": "Classify the ticket."},
            {"role": "user", "content": "Ticket: ticket 0"},
            {"role": "assistant", "content": "billing"},
        ]
    }
    for line in lines:  # what a JSON-lines validator for the OpenAI chat format checks
        assert set(line) == {"messages"}
        assert all(set(m) == {"role", "content"} and m["content"] for m in line["messages"])
        assert line["messages"][-1]["role"] == "assistant"


def test_holdout_split_is_deterministic_and_disjoint(tmp_path, fake_renderer):
    out = tmp_path / "data.jsonl"
    summary = export_finetune(make_suite(n_labelled=20), out, holdout=0.25, seed=3)
    assert (summary.written, summary.holdout_written) == (15, 5)
    assert summary.paths == (out, tmp_path / "data.holdout.jsonl")
    train = {json.dumps(x) for x in read_jsonl(out)}
    held = {json.dumps(x) for x in read_jsonl(holdout_path(out))}
    assert len(train) == 15 and len(held) == 5 and not train & held

    again = tmp_path / "again.jsonl"
    export_finetune(make_suite(n_labelled=20), again, holdout=0.25, seed=3)
    assert {json.dumps(x) for x in read_jsonl(holdout_path(again))} == held
    other = tmp_path / "other.jsonl"
    export_finetune(make_suite(n_labelled=20), other, holdout=0.25, seed=4)
    assert {json.dumps(x) for x in read_jsonl(holdout_path(other))} != held


def test_an_invalid_example_fails_before_anything_is_written(tmp_path, monkeypatch):
    out = tmp_path / "data.jsonl"
    out.write_text("previous export\n")
    monkeypatch.setattr(
        finetune, "_render_messages", lambda suite, case: ({"role": "user", "content": "   "},)
    )
    with pytest.raises(PromptgateError) as error:
        export_finetune(make_suite(), out)
    assert "the user turn is empty" in error.value.message
    assert error.value.location == Location("s.promptgate.yaml", 10)
    assert out.read_text() == "previous export\n"
    assert not list(tmp_path.glob(".data.jsonl.*"))


def test_holdout_must_be_a_fraction(tmp_path, fake_renderer):
    with pytest.raises(PromptgateError, match="holdout"):
        export_finetune(make_suite(), tmp_path / "d.jsonl", holdout=1.5)


def run_cli(module, argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    module.add_cli(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_export_command_prints_counts(tmp_path, fake_renderer, monkeypatch, capsys):
    monkeypatch.setattr(finetune, "_load_suite", lambda path: make_suite())
    out = tmp_path / "data.jsonl"
    assert (
        run_cli(
            finetune, ["export-finetune", "s.promptgate.yaml", "-o", str(out), "--holdout", "0.2"]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert f"wrote 8 examples to {out}" in printed
    assert "2 held-out examples" in printed
    assert "skipped 3 unlabelled cases" in printed
    assert "below the 100" in printed


def test_export_of_the_example_suite_with_the_real_renderer(tmp_path, capsys):
    example = REPO / "examples" / "support_triage.promptgate.yaml"
    if not example.exists():
        pytest.skip("example suite not present")
    out = tmp_path / "triage.jsonl"
    assert run_cli(finetune, ["export-finetune", str(example), "-o", str(out)]) == 0
    lines = read_jsonl(out)
    assert len(lines) >= 20
    assert all(
        line["messages"][-1]["content"] in {"billing", "bug", "feature", "account"}
        for line in lines
    )
    assert all(line["messages"][-2]["role"] == "user" for line in lines)


# --- promptgate init -------------------------------------------------------------------------


def test_init_writes_a_starter_suite_and_workflow(tmp_path, capsys):
    assert run_cli(scaffold, ["init", str(tmp_path)]) == 0
    suite_file = tmp_path / "prompts" / "example.promptgate.yaml"
    workflow = yaml.safe_load((tmp_path / ".github" / "workflows" / "promptgate.yml").read_text())
    assert "prompts" in workflow["jobs"]
    data = yaml.safe_load(suite_file.read_text())
    assert (
        data["prompt"] == "ticket-triage" and data["threshold"] == 0.8 and len(data["cases"]) >= 8
    )


def test_the_starter_suite_loads(tmp_path):
    from pytest_promptgate.spec import load_suite

    scaffold.init_project(tmp_path)
    suite = load_suite(tmp_path / "prompts" / "example.promptgate.yaml")
    assert suite.prompt == "ticket-triage" and len(suite.cases) == 10


def test_init_refuses_to_overwrite_without_force(tmp_path, capsys):
    existing = tmp_path / ".github" / "workflows" / "promptgate.yml"
    existing.parent.mkdir(parents=True)
    existing.write_text("mine\n")
    assert run_cli(scaffold, ["init", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().out
    assert existing.read_text() == "mine\n"
    assert not (tmp_path / "prompts").exists()
    assert run_cli(scaffold, ["init", str(tmp_path), "--force"]) == 0
    assert existing.read_text() != "mine\n"


# -- tool-call targets and multi-turn prompts (issue 13) -------------------------------------

TOOL_SUITE = """\
prompt: router
model: openai/gpt-4o-mini
params:
  tools:
    - type: function
      function:
        name: refund
        parameters: {type: object, properties: {order_id: {type: string}}}
versions:
  v1:
    messages:
      - {role: system, content: Route the request.}
      - {role: user, content: "Order {{ order }}?"}
      - role: assistant
        tool_calls: [{id: call_a, name: lookup_order, arguments: {order_id: "A-0"}}]
      - {role: tool, tool_call_id: call_a, content: '{"status": "lost"}'}
      - {role: user, content: "{{ message }}"}
cases:
  - id: refund-it
    vars: {order: A-1, message: "Refund me, it never came."}
    ideal: {tool_call: {name: refund, arguments: {order_id: A-1, reason: lost}}}
  - id: thanks
    vars: {order: A-2, message: "Thanks!"}
    ideal: "You're welcome."
  - id: unlabelled
    vars: {order: A-3, message: "Hm."}
"""


def test_a_tool_call_target_is_exported_in_the_chat_fine_tuning_format(tmp_path):
    from pytest_promptgate.spec import load_suite

    path = tmp_path / "router.promptgate.yaml"
    path.write_text(TOOL_SUITE, encoding="utf-8")
    summary = export_finetune(load_suite(path), tmp_path / "data.jsonl")
    assert (summary.written, summary.skipped_unlabelled) == (2, 1)
    refund, thanks = read_jsonl(tmp_path / "data.jsonl")
    last = refund["messages"][-1]
    assert last["role"] == "assistant" and "content" not in last
    (call,) = last["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "refund"
    assert json.loads(call["function"]["arguments"]) == {"order_id": "A-1", "reason": "lost"}
    assert refund["tools"][0]["function"]["name"] == "refund"
    roles = [m["role"] for m in refund["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "user", "assistant"]
    assert refund["messages"][2]["tool_calls"][0]["function"]["name"] == "lookup_order"
    assert refund["messages"][3]["tool_call_id"] == "call_a"
    assert thanks["messages"][-1] == {"role": "assistant", "content": "You're welcome."}


@pytest.mark.parametrize(
    "ideal, found",
    [
        ("{tool_call: {arguments: {a: 1}}}", "needs `name`"),
        ("{tool_call: {name: f}, extra: 1}", "extra"),
        ("{tool_calls: []}", "is empty"),
        ("{tool_call: {name: f, args: {}}}", "args"),
    ],
)
def test_a_malformed_tool_call_ideal_is_a_load_error_at_its_line(tmp_path, ideal, found):
    from pytest_promptgate.model import SuiteError
    from pytest_promptgate.spec import load_suite

    path = tmp_path / "bad.promptgate.yaml"
    path.write_text(
        f"prompt: p\nmodel: m\nuser: hi\ncases:\n  - id: a\n    ideal: {ideal}\n",
        encoding="utf-8",
    )
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert ":6" in str(info.value) and found in str(info.value)


def test_validate_example_rejects_broken_tool_turns():
    bad_call = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]},
        ]
    }
    with pytest.raises(PromptgateError, match="JSON-text arguments"):
        finetune.validate_example(bad_call, None)
    orphan_tool = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "tool", "content": "x"},
            {"role": "assistant", "content": "ok"},
        ]
    }
    with pytest.raises(PromptgateError, match="tool_call_id"):
        finetune.validate_example(orphan_tool, None)
