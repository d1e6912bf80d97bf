"""pytest nodes for suite files: PromptFile → PromptNode → VersionNode → CaseItem.

Node ids read ``<file>::<prompt>::<version>::<case>``, so ``-k``, command-line node ids,
``--lf`` and JUnit XML all work on them. Items hold only what their case needs; the model
calls are made in one batch by the run's session (``plugin/session.py``), which every node
is handed at creation (``CaseRun`` below): the nodes ask it for suites and results, and
never import it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from pytest_promptgate.model import (
    ERROR,
    FAILED,
    Case,
    CaseResult,
    PromptgateError,
    Suite,
    Version,
    case_result_to_dict,
)
from pytest_promptgate.plugin.state import STATUS_PROPERTY, USER_PROPERTY
from pytest_promptgate.report.json_report import MAX_OUTPUT_CHARS

_MARKER_SAFE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class CaseOutcome(Exception):
    """A case that did not pass; its terminal text is ``explain.explain_case`` of the result."""

    def __init__(self, result: CaseResult):
        super().__init__(f"{result.prompt}::{result.version}::{result.case} {result.status}")
        self.result = result


class PromptgateItemError(CaseOutcome):
    """A case could not be evaluated: the provider failed (a pytest *error*, never a pass)."""


class CaseMiss(CaseOutcome):
    """A case's output failed an expectation."""


class CaseRun(Protocol):
    """What the nodes ask of the run (``plugin.session.PromptgateSession`` provides it)."""

    @property
    def worker(self) -> bool:
        """True on an xdist worker: results travel to the controller in the reports."""

    def load_suite(self, path: Path) -> Suite:
        """Load (and register) the suite of a collected file."""

    def version_settings(self, suite: Suite, version: Version) -> tuple[str, dict[str, Any], str]:
        """The model, params and content hash a version runs with."""

    def case_collected(self, item: CaseItem) -> None:
        """Keep an item this run collected."""

    def result_for(self, item: CaseItem) -> CaseResult:
        """The item's result (waits for it, or runs it)."""

    def miss_outcome(self, item: CaseItem, result: CaseResult) -> str:
        """For a failing case: ``fail`` (the run fails), ``tolerated`` or ``miss``."""


class PromptFile(pytest.File):
    def __init__(self, *, run: CaseRun, **kwargs: Any):
        super().__init__(**kwargs)
        self.run = run

    def collect(self) -> Iterator[PromptNode]:
        suite = self.run.load_suite(self.path)
        yield PromptNode.from_parent(self, name=suite.prompt, suite=suite, run=self.run)

    def repr_failure(self, excinfo, style=None):
        # A few lines (where, what, the hint), not pytest's traceback through its collection
        # machinery; an unexpected error still shows its traceback with --tb=long or -vv.
        if isinstance(excinfo.value, PromptgateError) or not _wants_traceback(self.config):
            from pytest_promptgate.explain import explain_load_error

            return explain_load_error(excinfo.value)
        return super().repr_failure(excinfo, style=style)


def _wants_traceback(config: pytest.Config) -> bool:
    return config.option.tbstyle == "long" or config.get_verbosity() >= 2


class PromptNode(pytest.Collector):
    def __init__(self, *, suite: Suite, run: CaseRun, **kwargs: Any):
        super().__init__(**kwargs)
        self.suite = suite
        self.run = run

    def collect(self) -> Iterator[VersionNode]:
        for version in self.suite.versions:
            yield VersionNode.from_parent(
                self, name=version.label, suite=self.suite, version=version, run=self.run
            )

    def reportinfo(self):
        line = self.suite.location.line if self.suite.location else 1
        return self.path, line - 1, f"prompt {self.suite.prompt}"


class VersionNode(pytest.Collector):
    def __init__(self, *, suite: Suite, version: Version, run: CaseRun, **kwargs: Any):
        super().__init__(**kwargs)
        self.suite = suite
        self.version = version
        self.run = run

    def collect(self) -> Iterator[CaseItem]:
        model, params, content_hash = self.run.version_settings(self.suite, self.version)
        current = self.version is self.suite.current
        for case in self.suite.cases:
            item = CaseItem.from_parent(
                self,
                name=case.id,
                suite=self.suite,
                version=self.version,
                case=case,
                model=model,
                params=params,
                content_hash=content_hash,
                current=current,
                run=self.run,
            )
            item.add_marker("promptgate")
            for tag in case.tags:
                if _MARKER_SAFE.match(tag):
                    self.config.addinivalue_line("markers", f"{tag}: promptgate case tag")
                    item.add_marker(tag)
            self.run.case_collected(item)
            yield item

    def reportinfo(self):
        line = self.version.location.line if self.version.location else 1
        return self.path, line - 1, f"{self.suite.prompt} {self.version.label}"


class CaseItem(pytest.Item):
    def __init__(
        self,
        *,
        suite: Suite,
        version: Version,
        case: Case,
        model: str,
        params: dict[str, Any],
        content_hash: str,
        current: bool,
        run: CaseRun,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.run = run
        self.suite = suite
        self.version = version
        self.case = case
        self.model = model
        self.params = params
        self.content_hash = content_hash
        self.current = current
        self._result: CaseResult | None = None

    # -- the pytest protocol -------------------------------------------------------------
    def setup(self) -> None:
        result = self.run.result_for(self)
        self._result = result
        if self.run.worker:
            # Only an xdist worker needs to carry the case to the controller in its report; a
            # serial run's controller already holds the result (and 3 reports × a JSON copy
            # per case would cost ~10 KB of memory and a dumps/loads round trip per case).
            self.user_properties.append(
                (USER_PROPERTY, json.dumps(self.payload(result), ensure_ascii=False))
            )
        if result.status == ERROR:
            raise PromptgateItemError(result)

    def runtest(self) -> None:
        result = self._result
        assert result is not None
        if result.status != FAILED:
            return
        outcome = self.run.miss_outcome(self, result)
        if outcome == "fail":
            raise CaseMiss(result)
        self.user_properties.append((STATUS_PROPERTY, outcome))

    def repr_failure(self, excinfo, style=None):
        # The case's own few lines (explain.py), never pytest's or pluggy's frames.
        if isinstance(excinfo.value, CaseOutcome):
            from pytest_promptgate.explain import explain_case

            return explain_case(excinfo.value.result, self.config.get_verbosity())
        if isinstance(excinfo.value, PromptgateError):
            return excinfo.value.format()
        return super().repr_failure(excinfo, style=style)

    def _repr_failure_py(self, excinfo, style=None):
        # pytest represents a *setup* error (where an errored case is raised) with this method,
        # not ``repr_failure`` (``TestReport.from_item_and_call``): without this, ~60 lines of
        # pytest and pluggy frames came before the one line that matters.
        if isinstance(excinfo.value, (CaseOutcome, PromptgateError)):
            return self.repr_failure(excinfo, style=style)
        return super()._repr_failure_py(excinfo, style=style)

    def reportinfo(self):
        location = self.case.location
        if location and Path(location.file).name == self.path.name:
            return (
                self.path,
                location.line - 1,
                f"{self.suite.prompt}::{self.version.label}::{self.case.id}",
            )
        return (
            self.path,
            (location.line - 1) if location else 0,
            f"{self.suite.prompt}::{self.version.label}::{self.case.id}",
        )

    # -- helpers --------------------------------------------------------------------------
    @property
    def suite_file(self) -> str:
        try:
            return self.path.relative_to(self.config.rootpath).as_posix()
        except ValueError:
            return self.path.as_posix()

    def payload(self, result: CaseResult) -> dict[str, Any]:
        """What crosses to the controller (xdist serialises reports, not items)."""
        data = case_result_to_dict(result)
        # The payload also lands in JUnit XML as a <property>: keep a 1 MB reply out of it. The
        # expectations already ran on the full text, and the JSON report cuts at the same size.
        for sample in data["samples"]:
            output = sample["call"]["output"]
            if output is not None and len(output) > MAX_OUTPUT_CHARS:
                sample["call"]["output"] = (
                    output[:MAX_OUTPUT_CHARS]
                    + f"\n… ({len(output) - MAX_OUTPUT_CHARS} more characters cut)"
                )
        return {
            "suite_file": self.suite_file,
            "content_hash": self.content_hash,
            "current": self.current,
            "result": data,
        }
