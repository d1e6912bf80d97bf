"""Test helpers shipped with the plugin: a loopback OpenAI-compatible server with injectable faults.

``from pytest_promptgate.testing import FakeOpenAI`` works; the module is imported on first use
so that ``python -m pytest_promptgate.testing.openai_server`` runs it only once.
"""

from typing import Any

__all__ = ["FAULT_KINDS", "FakeOpenAI"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pytest_promptgate.testing import openai_server

        return getattr(openai_server, name)
    raise AttributeError(name)
