"""pytest-promptgate: gate pull requests on the quality of LLM prompts.

The pytest plugin (``pytest_promptgate.plugin``) is loaded through the ``pytest11`` entry
point; the engine modules are plain Python shared with the ``promptgate`` CLI and the GitHub
Action. The front door for scripts and notebooks is ``pytest_promptgate.api``, whose
functions are exported here lazily: pytest imports this package at every start, and a
repository without suites must not pay for the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = (
    "RunResult",
    "build_jobs",
    "evaluate",
    "load_suite",
    "read_report",
    "register_expectation",
    "run",
)
__all__ = [
    "RunResult",
    "__version__",
    "build_jobs",
    "evaluate",
    "load_suite",
    "read_report",
    "register_expectation",
    "run",
]

if TYPE_CHECKING:
    from pytest_promptgate.api import (
        RunResult,
        build_jobs,
        evaluate,
        load_suite,
        read_report,
        register_expectation,
        run,
    )


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module("pytest_promptgate.api"), name)
    raise AttributeError(f"module 'pytest_promptgate' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
