"""The front door (pytest_promptgate.api): the README's script example runs as written."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_promptgate
from pytest_promptgate import api
from pytest_promptgate.model import SuiteError
from pytest_promptgate.options import Options
from pytest_promptgate.testing.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
QUICKSTART = (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")
ANSWERS = {
    "I was charged twice this month": "billing",
    "The app crashes every time I press save": "bug",
}


def doc_block(language: str, containing: str, text: str = README, name: str = "README.md") -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)
    matching = [block for block in blocks if containing in block]
    assert len(matching) == 1, f"expected one ```{language} block with {containing!r} in {name}"
    return matching[0]


def write_quick_start_suite(directory: Path, server: FakeOpenAI) -> Path:
    """The quick start's suite (the one the README's script runs), pointed at the loopback
    server instead of OpenAI."""
    text = doc_block("yaml", "prompt: support-triage", QUICKSTART, "docs/quickstart.md")
    params = "params: {temperature: 0, max_tokens: 5}"
    assert params in text
    text = text.replace(
        params,
        f'params: {{temperature: 0, max_tokens: 5, api_base: "{server.base_url}", api_key: sk-test}}',
    )
    path = directory / "prompts" / "triage.promptgate.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_readme_script_example_runs_as_written(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.answers = dict(ANSWERS)
    write_quick_start_suite(tmp_path, fake_openai)
    code = doc_block("python", "from pytest_promptgate import")
    assert len(code.strip().splitlines()) <= 10
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "PASS"
    assert lines[1].startswith("support-triage PASS ")
    assert lines[2:] == ["v1 double-charge passed billing", "v1 crash-on-save passed bug"]
    assert fake_openai.calls == 2


def test_run_inside_a_running_event_loop_works_as_in_a_notebook(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.answers = {**ANSWERS, "The app crashes every time I press save": "billing"}
    suite = api.load_suite(write_quick_start_suite(tmp_path, fake_openai), tmp_path)

    async def cell() -> api.RunResult:  # a Jupyter cell's code runs inside a running loop
        return api.run([suite], rootdir=tmp_path, threshold=0.9)

    result = asyncio.run(cell())
    assert [case.status for case in result.cases] == ["passed", "failed"]
    assert result.verdict == "FAIL" and result.exit_status == 1
    assert result.report["settings"]["threshold"] == 0.9


def test_build_jobs_names_cases_as_pytest_does(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    suite = api.load_suite(write_quick_start_suite(tmp_path, fake_openai), tmp_path)
    jobs = api.build_jobs([suite], rootdir=tmp_path, rpm=30)
    assert [job.node_id for job in jobs] == [
        "prompts/triage.promptgate.yaml::support-triage::v1::double-charge",
        "prompts/triage.promptgate.yaml::support-triage::v1::crash-on-save",
    ]
    assert {job.model for job in jobs} == {"openai/gpt-4o-mini"} and jobs[0].rpm == 30
    assert jobs[0].messages[-1]["content"] == "I was charged twice this month"
    overridden = api.build_jobs([suite], Options(model="openai/other"), rootdir=tmp_path)
    assert {job.model for job in overridden} == {"openai/other"}


def test_a_suite_without_model_and_no_default_is_one_readable_error(tmp_path: Path) -> None:
    path = tmp_path / "x.promptgate.yaml"
    path.write_text("prompt: x\nuser: hi\ncases:\n  - id: a\n    expect: [{equals: a}]\n")
    suite = api.load_suite(path, tmp_path)
    with pytest.raises(SuiteError, match="no model for prompt `x`"):
        api.build_jobs([suite])
    assert api.build_jobs([suite], model_default="openai/m")[0].model == "openai/m"


def test_unknown_overrides_are_refused_by_name() -> None:
    with pytest.raises(TypeError, match="unknown option.*concurency"):
        api.build_jobs([], concurency=4)


def test_evaluate_gates_results_already_in_hand(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.answers = dict(ANSWERS)
    suite = api.load_suite(write_quick_start_suite(tmp_path, fake_openai), tmp_path)
    first = api.run(
        suite, rootdir=tmp_path, report=str(tmp_path / "r.json"), markdown=tmp_path / "r.md"
    )
    assert api.read_report(tmp_path / "r.json")["verdict"] == "PASS"
    assert "support-triage" in (tmp_path / "r.md").read_text(encoding="utf-8")
    evaluation = api.evaluate(first.cases, [suite], rootdir=tmp_path, threshold=1.0)
    assert evaluation.exit_status == 0
    assert evaluation.report["prompts"][0]["file"] == "prompts/triage.promptgate.yaml"
    assert evaluation.report["settings"]["threshold"] == 1.0


def test_the_package_exports_the_front_door_lazily() -> None:
    code = (
        "import sys, pytest_promptgate as p\n"
        "assert 'pytest_promptgate.api' not in sys.modules\n"
        "assert p.run.__module__ == 'pytest_promptgate.api'\n"
        "print(sorted(set(p.__all__) - {'__version__'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(
        sorted(
            [
                "RunResult",
                "build_jobs",
                "evaluate",
                "load_suite",
                "read_report",
                "register_expectation",
                "run",
            ]
        )
    )
    assert pytest_promptgate.load_suite is api.load_suite
