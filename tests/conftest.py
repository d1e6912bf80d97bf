"""Shared fixtures: a loopback OpenAI-compatible server, and litellm kept offline."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Set before anything imports litellm: no price-map or tokenizer downloads during tests.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["LITELLM_OFFLINE_MODE"] = "true"

# pytester's in-process runs snapshot sys.modules and delete every module first imported
# during a run. Deleting litellm's import chain leaves importlib.metadata unable to find any
# distribution, so the next in-process run loads no pytest11 plugin (ours included). Import
# the engine and litellm once here, before any pytester run, so they are never deleted.
import hypothesis  # noqa: F401  (its pytest plugin re-imports it after every run: ~5 s each)
import litellm  # noqa: F401

import pytest_promptgate.client
import pytest_promptgate.plugin.session
import pytest_promptgate.runner
import pytest_promptgate.spec  # noqa: F401
from pytest_promptgate.testing.openai_server import FakeOpenAI

pytest_plugins = ["pytester"]


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A started FakeOpenAI; set its attributes (latency_ms, faults, answers...) in the test.

    Reach it with model ``openai/fake-model`` and params
    ``{"api_base": fake_openai.base_url, "api_key": "sk-test"}``.
    """
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def make_jobs():
    """``make_jobs(server, n, content="reply: out {i}", repeat=1, expect=(), **params)`` → list[Job]
    of model ``openai/fake-model`` reaching ``server``; ``{i}`` is the case number."""
    from pathlib import Path

    from pytest_promptgate.model import Case
    from pytest_promptgate.runner import Job

    def make(
        server,
        n,
        content="reply: out {i}",
        repeat=1,
        expect=(),
        model="openai/fake-model",
        **params,
    ):
        return [
            Job(
                prompt="p",
                version="v1",
                case=Case(id=f"c{i}", vars={"i": i}, expect=tuple(expect), repeat=repeat),
                model=model,
                messages=({"role": "user", "content": content.format(i=i)},),
                params={"api_base": server.base_url, "api_key": "sk-test", **params},
                repeat=repeat,
                suite_dir=Path("."),
                rootdir=None,
                location=None,
                node_id=f"suite.promptgate.yaml::p::v1::c{i}",
            )
            for i in range(n)
        ]

    return make
