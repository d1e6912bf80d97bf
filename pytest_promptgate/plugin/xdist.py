"""pytest-xdist support, registered only when xdist is installed.

Case payloads already travel on ``item.user_properties`` inside the reports; what else the
controller needs (batch counters, warnings, how many cases the workers collected) travels
through ``workeroutput`` and the collection-finished hook. Files are written by the
controller only.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import pytest

from pytest_promptgate.model import SUITE_SUFFIXES
from pytest_promptgate.plugin.state import RunCounters

_WORKER_KEY = "promptgate"


class _Run(Protocol):
    """The parts of ``plugin.session.PromptgateSession`` these hooks read and update."""

    @property
    def worker(self) -> bool: ...

    @property
    def counters(self) -> RunCounters: ...

    warnings: list[str]
    suites_collected: int
    items_collected: int


class XdistHooks:
    def __init__(self, config: pytest.Config, run: _Run):
        self.config = config
        self.run = run

    # -- worker side ----------------------------------------------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.run.worker:
            return
        workeroutput: dict[str, Any] = self.config.workeroutput  # type: ignore[attr-defined]
        workeroutput[_WORKER_KEY] = json.dumps(
            {
                "run_stats": self.run.counters.as_dict(),
                "warnings": self.run.warnings,
                "suites": self.run.suites_collected,
            }
        )

    # -- controller side --------------------------------------------------------------------
    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        data = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
        if not data:
            return
        payload = json.loads(data)
        self.run.counters.merge(payload["run_stats"])
        for warning in payload["warnings"]:
            if warning not in self.run.warnings:
                self.run.warnings.append(warning)
        self.run.suites_collected = max(self.run.suites_collected, payload["suites"])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        count = sum(1 for node_id in ids if node_id.split("::", 1)[0].endswith(SUITE_SUFFIXES))
        self.run.items_collected = max(self.run.items_collected, count)
