"""Acceptance of the `promptgate` console script (issue 4's CLI) through real processes:
export-finetune on an example suite, report re-rendering, and init scaffolding a suite that
then runs under pytest against the loopback ``fake_openai`` server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
ROLES = {"system", "user", "assistant"}


def promptgate(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest_promptgate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def copy_triage_example(target: Path, unlabelled: int = 0) -> Path:
    """The support-triage example with its cases file, plus ``unlabelled`` cases without a target."""
    suite = target / "support_triage.promptgate.yaml"
    shutil.copy(EXAMPLES / "support_triage.promptgate.yaml", suite)
    (target / "cases").mkdir(exist_ok=True)
    cases = target / "cases" / "triage.jsonl"
    shutil.copy(EXAMPLES / "cases" / "triage.jsonl", cases)
    with cases.open("a", encoding="utf-8") as out:
        for i in range(unlabelled):
            # icontains defines no exact target output: not a fine-tuning label.
            row = {
                "id": f"unlabelled-{i}",
                "vars": {"ticket": f"Something odd happened ({i})."},
                "expect": [{"icontains": "bug"}],
            }
            out.write(json.dumps(row) + "\n")
    return suite


def example_targets() -> dict[str, str]:
    rows = [
        json.loads(line)
        for line in (EXAMPLES / "cases" / "triage.jsonl").read_text().splitlines()
        if line.strip()
    ]
    return {row["vars"]["ticket"]: row["ideal"] for row in rows}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every line one JSON object in OpenAI chat format; what a JSON-lines validator checks."""
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    examples = []
    for number, line in enumerate(text.splitlines(), start=1):
        example = json.loads(line)
        assert isinstance(example, dict), f"line {number}"
        assert set(example) == {"messages"}, f"line {number}"
        messages = example["messages"]
        assert messages and all(set(m) == {"role", "content"} for m in messages), f"line {number}"
        assert {m["role"] for m in messages} <= ROLES, f"line {number}"
        assert all(isinstance(m["content"], str) and m["content"] for m in messages), (
            f"line {number}"
        )
        assert messages[-1]["role"] == "assistant", f"line {number}"
        assert messages[-2]["role"] == "user", f"line {number}"
        # Round trip: serialising what was read gives back the same line's content.
        assert json.loads(json.dumps(example)) == example
        assert json.loads(json.dumps(example, ensure_ascii=False)) == json.loads(line)
        examples.append(example)
    return examples


def ticket_of(example: dict[str, Any]) -> str:
    """The case's ticket, from the current version's last user turn ("Ticket: {{ ticket }}")."""
    content = example["messages"][-2]["content"]
    assert content.startswith("Ticket: ")
    return content[len("Ticket: ") :]


def test_export_finetune_writes_valid_jsonl_and_skips_unlabelled_cases(tmp_path):
    suite = copy_triage_example(tmp_path, unlabelled=2)
    result = promptgate(tmp_path, "export-finetune", suite.name, "-o", "out.jsonl")
    assert result.returncode == 0, result.stderr
    assert "wrote 48 examples to out.jsonl" in result.stdout
    assert "skipped 2 unlabelled cases" in result.stdout
    assert "below the 100" in result.stdout  # 48 examples cannot fine-tune anything yet

    examples = read_jsonl(tmp_path / "out.jsonl")
    assert len(examples) == 48
    targets = example_targets()
    assert {ticket_of(e): e["messages"][-1]["content"] for e in examples} == targets
    # The current version (v6-decision-rules): its system turn and few-shot turns come first.
    first = examples[0]["messages"]
    assert (
        first[0]["role"] == "system" and "billing, bug, feature or account" in first[0]["content"]
    )
    assert [m["role"] for m in first[1:3]] == ["user", "assistant"]
    assert not (tmp_path / "out.holdout.jsonl").exists()


def test_export_finetune_holdout_split(tmp_path):
    suite = copy_triage_example(tmp_path)
    result = promptgate(
        tmp_path, "export-finetune", suite.name, "-o", "data/train.jsonl", "--holdout", "0.2"
    )
    assert result.returncode == 0, result.stderr
    assert "skipped 0 unlabelled cases" in result.stdout
    train = read_jsonl(tmp_path / "data" / "train.jsonl")
    held = read_jsonl(tmp_path / "data" / "train.holdout.jsonl")
    assert len(train) + len(held) == 48
    assert 8 <= len(held) <= 12  # ≈ 20% of 48
    assert f"and {len(held)} held-out examples" in result.stdout
    train_tickets, held_tickets = {ticket_of(e) for e in train}, {ticket_of(e) for e in held}
    assert not train_tickets & held_tickets
    assert train_tickets | held_tickets == set(example_targets())


def test_export_finetune_bad_suite_is_one_message(tmp_path):
    (tmp_path / "bad.promptgate.yaml").write_text("prompt: x\nversions: [\n")
    result = promptgate(tmp_path, "export-finetune", "bad.promptgate.yaml", "-o", "out.jsonl")
    assert result.returncode == 2
    assert "bad.promptgate.yaml" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.jsonl").exists()


def small_suite(base_url: str) -> str:
    cases = "\n".join(
        f"  - id: case-{i}\n    vars: {{ticket: 'reply: {reply}'}}\n    expect: [{{equals: billing}}]"
        for i, reply in enumerate(["billing", "billing", "bug"])
    )
    return (
        textwrap.dedent(
            f"""\
        prompt: triage-<b>
        model: openai/fake-model
        params: {{api_base: "{base_url}", api_key: sk-test-key}}
        versions:
          v1:
            user: "{{{{ ticket }}}}"
        cases:
        """
        )
        + cases
        + "\n"
    )


@pytest.fixture
def recorded_report(pytester, fake_openai) -> Path:
    pytester.makefile(".promptgate.yaml", triage=small_suite(fake_openai.base_url))
    result = pytester.runpytest(
        *QUIET,
        "--promptgate-no-history",
        "--promptgate-cache",
        "off",
        "--promptgate-report",
        "report.json",
    )
    assert result.ret == 1  # 2/3 is below the threshold
    return pytester.path / "report.json"


def test_report_rerenders_a_json_report_in_every_format(recorded_report):
    cwd = recorded_report.parent

    terminal = promptgate(cwd, "report", "report.json", "--format", "terminal")
    assert terminal.returncode == 0, terminal.stderr
    row = next(line for line in terminal.stdout.splitlines() if line.startswith("triage-<b>"))
    assert "2/3" in row and "FAIL" in row

    markdown = promptgate(cwd, "report", "report.json", "--format", "markdown")
    assert markdown.returncode == 0, markdown.stderr
    assert "FAIL" in markdown.stdout
    assert "|" in markdown.stdout  # a table
    assert "triage-<b>" not in markdown.stdout  # user text is escaped, never raw HTML

    assert (
        promptgate(cwd, "report", "report.json", "--format", "html", "-o", "report.html").returncode
        == 0
    )
    html = (cwd / "report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "triage-&lt;b&gt;" in html and "triage-<b>" not in html
    assert "FAIL" in html and "case-2" in html

    # The same report renders the same way twice (deterministic re-rendering).
    again = promptgate(cwd, "report", "report.json", "--format", "markdown")
    assert again.stdout == markdown.stdout


def test_report_on_a_missing_file_is_one_message(tmp_path):
    result = promptgate(tmp_path, "report", "nowhere.json")
    assert result.returncode == 2
    assert "nowhere.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_init_scaffolds_a_suite_that_runs_under_pytest(pytester, fake_openai):
    result = promptgate(pytester.path, "init", "--model", "openai/gpt-4o-mini")
    assert result.returncode == 0, result.stderr
    suite_path = pytester.path / "prompts" / "example.promptgate.yaml"
    workflow = pytester.path / ".github" / "workflows" / "promptgate.yml"
    assert suite_path.is_file() and workflow.is_file()
    assert "--promptgate-report" in workflow.read_text()

    # Point the starter at the loopback server and let it answer each ticket with its label.
    text = suite_path.read_text()
    document = yaml.safe_load(text)
    for case in document["cases"]:
        label = next(e["equals"] for e in case["expect"] if "equals" in e)
        fake_openai.answers[case["vars"]["ticket"]] = label
    assert text.count("model: openai/gpt-4o-mini") == 1
    text = text.replace("model: openai/gpt-4o-mini", "model: openai/fake-model")
    text = text.replace(
        "params: {temperature: 0, max_tokens: 5}",
        f'params: {{temperature: 0, max_tokens: 5, api_base: "{fake_openai.base_url}", api_key: sk-test}}',
    )
    assert fake_openai.base_url in text
    suite_path.write_text(text)

    run = pytester.runpytest(
        *QUIET, "prompts/", "--promptgate-no-history", "--promptgate-report", "report.json"
    )
    assert run.ret == 0, run.stdout.str()
    run.assert_outcomes(passed=len(document["cases"]))
    assert fake_openai.calls == len(document["cases"])
    report = json.loads((pytester.path / "report.json").read_text())
    assert report["verdict"] == "PASS"
    assert report["prompts"][0]["prompt"] == document["prompt"]

    # A second init refuses to overwrite the edited suite.
    again = promptgate(pytester.path, "init")
    assert "already exists" in again.stdout
    assert suite_path.read_text() == text
