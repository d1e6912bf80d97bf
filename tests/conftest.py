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

import pytest_promptgate.api
import pytest_promptgate.client
import pytest_promptgate.plugin.collect
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


def fake_suite(
    n: int,
    *,
    content: str = "reply: out {i}",
    repeat: int = 1,
    expect=(),
    model: str = "openai/fake-model",
    params=None,
):
    """An in-memory suite ``p`` (file ``suite.promptgate.yaml``, version ``v1``) of ``n`` cases
    ``c{i}`` whose user message is ``content`` with ``{i}`` the case number."""
    from pathlib import Path

    from pytest_promptgate.model import Case, Suite, Version

    cases = tuple(
        Case(id=f"c{i}", vars={"i": i}, expect=tuple(expect), repeat=repeat) for i in range(n)
    )
    return Suite(
        prompt="p",
        file=Path("suite.promptgate.yaml"),
        versions=(Version(label="v1", kind="messages"),),
        cases=cases,
        model=model,
        params=dict(params or {}),
        rendered={
            ("v1", case.id): ({"role": "user", "content": content.format(i=i)},)
            for i, case in enumerate(cases)
        },
    )


@pytest.fixture
def make_jobs():
    """``make_jobs(server, n, content="reply: out {i}", repeat=1, expect=(), **params)`` → list[Job]
    of model ``openai/fake-model`` reaching ``server``; ``{i}`` is the case number."""
    from pytest_promptgate.api import build_jobs

    def make(
        server,
        n,
        content="reply: out {i}",
        repeat=1,
        expect=(),
        model="openai/fake-model",
        **params,
    ):
        suite = fake_suite(
            n,
            content=content,
            repeat=repeat,
            expect=expect,
            model=model,
            params={"api_base": server.base_url, "api_key": "sk-test", **params},
        )
        return build_jobs([suite])

    return make
