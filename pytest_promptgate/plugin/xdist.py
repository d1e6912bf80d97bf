"""pytest-xdist support, registered only when xdist is installed.

Case payloads already travel on ``item.user_properties`` inside the reports; what else the
controller needs (batch counters, warnings, how many cases the workers collected) travels
through ``workeroutput`` and the collection-finished hook. Files are written by the
controller only.
"""

from __future__ import annotations

import json

import pytest

from pytest_promptgate.model import SUITE_SUFFIXES
from pytest_promptgate.plugin.state import STATE

_WORKER_KEY = "promptgate"


class XdistHooks:
    def __init__(self, config: pytest.Config):
        self.config = config

    # -- worker side ----------------------------------------------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is None:
            return
        state = self.config.stash[STATE]
        workeroutput[_WORKER_KEY] = json.dumps(
            {
                "run_stats": state.run_stats,
                "warnings": state.warnings,
                "suites": state.suites_collected,
            }
        )

    # -- controller side --------------------------------------------------------------------
    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        data = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
        if not data:
            return
        state = self.config.stash[STATE]
        payload = json.loads(data)
        for key, value in payload["run_stats"].items():
            state.run_stats[key] = state.run_stats.get(key, 0) + value
        for warning in payload["warnings"]:
            if warning not in state.warnings:
                state.warnings.append(warning)
        state.suites_collected = max(state.suites_collected, payload["suites"])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        state = self.config.stash[STATE]
        count = sum(1 for node_id in ids if node_id.split("::", 1)[0].endswith(SUITE_SUFFIXES))
        state.items_collected = max(state.items_collected, count)
