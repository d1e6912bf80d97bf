"""pytest nodes for suite files: PromptFile → PromptNode → VersionNode → CaseItem.

Node ids read ``<file>::<prompt>::<version>::<case>``, so ``-k``, command-line node ids,
``--lf`` and JUnit XML all work on them. Items hold only what their case needs; the model
calls are made in one batch by the plugin (see plugin.py) and items read their result.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_promptgate.model import (
    ERROR,
    FAILED,
    CaseResult,
    PromptgateError,
    Suite,
    Version,
    case_result_to_dict,
)
from pytest_promptgate.plugin.state import STATE, STATUS_PROPERTY, USER_PROPERTY
from pytest_promptgate.report.json_report import MAX_OUTPUT_CHARS

_MARKER_SAFE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class PromptgateItemError(Exception):
    """A case could not be evaluated: the provider failed (a pytest *error*, never a pass)."""


class CaseMiss(Exception):
    """A case's output failed an expectation."""


class PromptFile(pytest.File):
    def collect(self):
        from pytest_promptgate.plugin import session as engine

        state = self.config.stash[STATE]
        state.suites_collected += 1
        suite = engine.load_suite_for_pytest(self.config, self.path)
        yield PromptNode.from_parent(self, name=suite.prompt, suite=suite)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, PromptgateError):
            return excinfo.value.format()
        return super().repr_failure(excinfo, style=style)


class PromptNode(pytest.Collector):
    def __init__(self, *, suite: Suite, **kwargs: Any):
        super().__init__(**kwargs)
        self.suite = suite

    def collect(self):
        for version in self.suite.versions:
            yield VersionNode.from_parent(
                self, name=version.label, suite=self.suite, version=version
            )

    def reportinfo(self):
        line = self.suite.location.line if self.suite.location else 1
        return self.path, line - 1, f"prompt {self.suite.prompt}"


class VersionNode(pytest.Collector):
    def __init__(self, *, suite: Suite, version: Version, **kwargs: Any):
        super().__init__(**kwargs)
        self.suite = suite
        self.version = version

    def collect(self):
        from pytest_promptgate.plugin import session as engine

        state = self.config.stash[STATE]
        model, params, content_hash = engine.resolve_version(
            self.suite, self.version, state.options
        )
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
            )
            item.add_marker("promptgate")
            for tag in case.tags:
                if _MARKER_SAFE.match(tag):
                    self.config.addinivalue_line("markers", f"{tag}: promptgate case tag")
                    item.add_marker(tag)
            state.items_collected += 1
            yield item

    def reportinfo(self):
        line = self.version.location.line if self.version.location else 1
        return self.path, line - 1, f"{self.suite.prompt} {self.version.label}"


class CaseItem(pytest.Item):
    def __init__(self, *, suite, version, case, model, params, content_hash, current, **kwargs):
        super().__init__(**kwargs)
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
        from pytest_promptgate.plugin import session as engine

        result = engine.result_for(self)
        self._result = result
        if hasattr(self.config, "workerinput"):
            # Only an xdist worker needs to carry the case to the controller in its report; a
            # serial run's controller already holds the result (and 3 reports × a JSON copy
            # per case would cost ~10 KB of memory and a dumps/loads round trip per case).
            self.user_properties.append(
                (USER_PROPERTY, json.dumps(self.payload(result), ensure_ascii=False))
            )
        if result.status == ERROR:
            raise PromptgateItemError(engine.describe_error(result))

    def runtest(self) -> None:
        from pytest_promptgate.plugin import session as engine

        result = self._result
        assert result is not None
        if result.status != FAILED:
            return
        if engine.miss_fails(self, result):
            raise CaseMiss(engine.describe_miss(result))
        engine.settle_prompt(self)  # TOLERATED needs the prompt's verdict too
        status = "tolerated" if engine.gate_known(self) else "miss"
        self.user_properties.append((STATUS_PROPERTY, status))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, (CaseMiss, PromptgateItemError, PromptgateError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

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
