"""The run's session: one object that holds a pytest run's state and is its hooks.

``PromptgateSession`` is created in ``pytest_configure``, kept under ``SESSION`` in the
config's stash and registered with the plugin manager, so its methods are the hooks
(pytest's ``LogXML``, syrupy's ``SnapshotSession`` and pytest-benchmark's ``BenchmarkSession``
work this way). It loads the suites the collector finds, keeps the case items it collected,
runs their model calls (one stepped batch in a serial run, one batch per xdist worker),
answers the items (their result; whether a miss fails the run), and on the controller gates
and writes the reports.

Imported by ``pytest_configure`` in every run, so the engine (runner, spec, litellm, jinja2)
is imported inside the methods that need it, once a suite is collected.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_promptgate.model import (
    CONSIDER_FINE_TUNING,
    PASS,
    SUITE_SUFFIXES,
    CaseResult,
    PromptgateError,
    Suite,
    SuiteError,
    Version,
    case_result_from_dict,
)
from pytest_promptgate.options import Options
from pytest_promptgate.plugin.state import (
    STATUS_PROPERTY,
    USER_PROPERTY,
    Role,
    RunCounters,
)

if TYPE_CHECKING:  # the nodes and the calls are imported once suites exist
    from pytest_promptgate.plugin.calls import CaseCalls
    from pytest_promptgate.plugin.collect import CaseItem


class PromptgateSession:
    """A pytest run of prompt suites: its options, suites, items, results and report."""

    def __init__(self, config: pytest.Config, options: Options):
        self.config = config
        self.options = options
        self.rootdir = config.rootpath
        # Decided once: WORKER now (xdist sets workerinput before configure); CONTROLLER in
        # pytest_sessionstart, once xdist has registered its scheduler.
        self.role = Role.WORKER if hasattr(config, "workerinput") else Role.SERIAL
        self.suites: dict[str, Suite] = {}  # suite path (rootdir-relative) -> Suite
        self.prompt_files: dict[str, str] = {}  # prompt id -> suite path
        self.suites_collected = 0
        self.items_collected = 0
        self.collected: dict[str, CaseItem] = {}  # node id -> the case items this run collected
        self.selected: list[CaseItem] = []  # the collected items pytest will run, in order
        # Payloads seen in reports, by node id (the controller's view, serial or xdist).
        self.reported: dict[str, dict[str, Any]] = {}
        self.warnings: list[str] = []
        self.report: dict[str, Any] | None = None
        self.report_write_failed = False  # a renderer raised: the run must not pass silently
        self._history: list[dict[str, Any]] | None = None  # loaded on first use
        self._expectations_registered = False
        # Per-prompt facts the items ask for repeatedly.
        self._prompt_items: dict[str, list[CaseItem]] | None = None
        self._prompt_settled: set[str] = set()  # every selected case of the prompt has a result
        self._prompt_verdicts: dict[str, dict[str, Any]] = {}  # this process's view of the gate

    @property
    def worker(self) -> bool:
        return self.role is Role.WORKER

    @functools.cached_property
    def calls(self) -> CaseCalls:
        """The model calls (made on first use: a run without suites never imports them)."""
        from pytest_promptgate.plugin.calls import CaseCalls

        return CaseCalls(self.config, self.options, worker=self.worker, warnings=self.warnings)

    @property
    def counters(self) -> RunCounters:
        return self.calls.counters

    # -- collection -----------------------------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.role is Role.SERIAL and self.config.pluginmanager.has_plugin("dsession"):
            self.role = Role.CONTROLLER

    def pytest_collect_file(self, parent: pytest.Collector, file_path: Path) -> Any:
        if file_path.name.endswith(SUITE_SUFFIXES):
            from pytest_promptgate.plugin.collect import PromptFile

            return PromptFile.from_parent(parent, path=file_path, run=self)
        return None

    def load_suite(self, path: Path) -> Suite:
        from pytest_promptgate import api

        self.suites_collected += 1
        if not self._expectations_registered:
            self.config.hook.pytest_promptgate_add_expectations(register=api.register_expectation)
            self._expectations_registered = True
        suite = api.load_suite(path, self.rootdir)
        suite_file = api.suite_file(suite, self.rootdir)
        other = self.prompt_files.get(suite.prompt)
        if other is not None and other != suite_file:
            raise SuiteError(
                f"prompt id `{suite.prompt}` is already used by {other}",
                suite.location,
                hint="prompt ids must be unique in a run; rename one of them",
            )
        self.prompt_files[suite.prompt] = suite_file
        self.suites[suite_file] = suite
        self._warn_unknown_params(suite, suite_file)
        return suite

    def _warn_unknown_params(self, suite: Suite, suite_file: str) -> None:
        """litellm forwards unknown keyword arguments into the request body: say so early."""
        from pytest_promptgate.client import unknown_params

        unknown = unknown_params(dict(suite.params))
        if unknown:
            self.warnings.append(
                f"promptgate: {suite_file}: params {', '.join(sorted(unknown))} are not known litellm/OpenAI "
                "parameters; they are sent to the provider as they are (check the spelling)"
            )

    def version_settings(self, suite: Suite, version: Version) -> tuple[str, dict[str, Any], str]:
        """The model, params and iteration hash a version runs with (CLI > suite > ini)."""
        from pytest_promptgate import api, render

        model = api.resolve_model(suite, self.options, version)
        params = suite.params_for(version)
        return model, params, render.content_hash(version, model, params)

    def case_collected(self, item: CaseItem) -> None:
        self.items_collected += 1
        self.collected[item.nodeid] = item

    def _is_case(self, item: pytest.Item) -> bool:
        return self.collected.get(item.nodeid) is item

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Keep shard I of N; every version of a case lands in the same shard (paired comparisons)."""
        if not self.suites or self.options.shard is None:
            return
        import hashlib

        index, total = self.options.shard
        keep: list[pytest.Item] = []
        drop: list[pytest.Item] = []
        for item in items:
            if self._is_case(item):
                case = self.collected[item.nodeid]
                key = f"{case.suite_file}::{case.case.id}".encode()
                bucket = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % total
                (keep if bucket == index - 1 else drop).append(item)
            else:
                keep.append(item)
        if drop:
            self.config.hook.pytest_deselected(items=drop)
            items[:] = keep

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.selected = [self.collected[i.nodeid] for i in session.items if self._is_case(i)]

    def pytest_report_header(self) -> list[str]:
        options = self.options
        model = options.model or options.model_default or "per suite"
        threshold = (
            f"{options.threshold:g}"
            if options.threshold is not None
            else f"per suite (default {options.threshold_default:g})"
        )
        cache = "replay" if options.replay else options.cache
        return [
            f"promptgate: model {model}, threshold {threshold}, gate {options.gate}, concurrency {options.concurrency}, "
            f"retries {options.retries}, cache {cache}"
        ]

    def pytest_report_collectionfinish(self, items: list[pytest.Item]) -> list[str]:
        if not self.suites:
            return []
        cases = [self.collected[i.nodeid] for i in items if self._is_case(i)]
        if not cases:
            return [f"promptgate: {self.suites_collected} suite(s), no case selected"]
        models = sorted({item.model for item in cases})
        samples = sum(item.case.repeat for item in cases)
        return [
            f"promptgate: {len(self.suites)} suite(s), {len(cases)} case(s), {samples} model call(s) at most; "
            f"models: {', '.join(models)}"
        ]

    # -- running --------------------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        config = self.config
        # pytest runs nothing after collection errors (unless --continue-on-collection-errors).
        refused = session.testsfailed and not config.option.continue_on_collection_errors
        if not self.suites:
            return (yield)
        if not refused and not config.option.collectonly and self.role is Role.SERIAL:
            # Starts the calls; the items report as their results arrive.
            self.calls.start(self.selected)
        if self.calls.stream is None:
            return (yield)
        try:
            result = yield
        except BaseException as exc:
            self.calls.end(self.selected, interrupted=isinstance(exc, KeyboardInterrupt))
            raise
        self.calls.end(self.selected, interrupted=False)
        return result

    def _pending_worker_items(self, item: CaseItem) -> list[CaseItem]:
        """On an xdist worker: this item plus those already queued for this worker."""
        batch = [item]
        interactor = next(
            (
                p
                for p in self.config.pluginmanager.get_plugins()
                if type(p).__name__ == "WorkerInteractor"
            ),
            None,
        )
        queue = getattr(interactor, "torun", None)
        if queue is None:
            return batch
        try:
            with queue.lock() as pending:
                indices = [i for i in pending if isinstance(i, int)]
        except Exception:  # xdist internals changed: fall back to one item at a time
            return batch
        items = item.session.items
        batch.extend(self.collected[items[i].nodeid] for i in indices if self._is_case(items[i]))
        return batch

    # -- what the items ask ---------------------------------------------------------------------
    def result_for(self, item: CaseItem) -> CaseResult:
        return self.calls.result_for(
            item, lambda: self._pending_worker_items(item) if self.worker else [item]
        )

    def miss_outcome(self, item: CaseItem, result: CaseResult) -> str:
        """A failing case: ``fail`` under --promptgate-strict, or when it belongs to the current
        version of a prompt whose verdict fails the build; otherwise ``tolerated`` (its version
        clears the threshold, or it is an earlier version), or ``miss`` when this process cannot
        know the prompt's verdict (an xdist worker)."""
        if self._miss_fails(item):
            return "fail"
        self._settle_prompt(item)  # TOLERATED needs the prompt's verdict too
        return "tolerated" if self._prompt_known(item) else "miss"

    def _miss_fails(self, item: CaseItem) -> bool:
        if self.options.strict:
            return True  # no need to wait for the rest of the prompt: -x stops the calls at once
        if not item.current:
            return False
        self._settle_prompt(item)  # a miss is judged against its whole prompt's verdict
        if not self._prompt_known(item):
            return False
        verdict = self._local_verdict(item)["verdict"]
        if verdict == PASS:
            return False
        return not (verdict == CONSIDER_FINE_TUNING and self.options.finetune == "flag")

    def _settle_prompt(self, item: CaseItem) -> None:
        """Wait until every selected case of the item's prompt has its result (a serial run
        decides a miss FAILED or TOLERATED from the whole prompt's verdict)."""
        if self.calls.stream is not None and not self._prompt_known(item):
            items = self._items_of(item)
            self.calls.wait(lambda: all(i.nodeid in self.calls.results for i in items))

    def _items_of(self, item: CaseItem) -> list[CaseItem]:
        """The selected items of the item's prompt (grouped once, not once per item)."""
        if self._prompt_items is None:
            self._prompt_items = {}
            for case in self.selected:
                self._prompt_items.setdefault(case.suite.prompt, []).append(case)
        return self._prompt_items.get(item.suite.prompt, [])

    def _prompt_known(self, item: CaseItem) -> bool:
        """True when this process has the results of every selected case of the item's prompt."""
        prompt = item.suite.prompt
        if prompt not in self._prompt_settled:  # once every result is in, it stays in
            if all(i.nodeid in self.calls.results for i in self._items_of(item)):
                self._prompt_settled.add(prompt)
        return prompt in self._prompt_settled

    def _local_verdict(self, item: CaseItem) -> dict[str, Any]:
        """The prompt's entry as the gate sees it from this process (computed once per prompt)."""
        from pytest_promptgate import api
        from pytest_promptgate.evaluate import EvaluatedCase, evaluate_suite

        prompt = item.suite.prompt
        if prompt not in self._prompt_verdicts:
            cases = [
                EvaluatedCase(i.suite_file, i.content_hash, self.calls.results[i.nodeid])
                for i in self._items_of(item)
            ]
            entry, _ = evaluate_suite(
                item.suite, item.suite_file, cases, api.gate_settings(self.options), self.history()
            )
            self._prompt_verdicts[prompt] = entry
        return self._prompt_verdicts[prompt]

    # -- reports: collect payloads, show statuses -----------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect the case payloads that items attach to their reports (xdist workers)."""
        for name, value in report.user_properties:
            if name == USER_PROPERTY:
                self._record_payload(report, value)
                return

    def _record_payload(self, report: pytest.TestReport, value: object) -> None:
        if report.nodeid in self.reported:  # setup, call and teardown reports carry the same one
            return
        try:
            self.reported[report.nodeid] = json.loads(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.warnings.append(f"promptgate: unreadable result payload for {report.nodeid}")

    def pytest_report_teststatus(
        self, report: pytest.TestReport
    ) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
        if report.when != "call" or not report.passed:
            return None
        for name, value in report.user_properties:
            if name == STATUS_PROPERTY:
                if value == "tolerated":
                    return "tolerated", "t", ("TOLERATED", {"yellow": True})
                return "miss", "m", ("MISS", {"yellow": True})
        return None

    # -- the end: gate, history, report files (controller only) ---------------------------------
    def history(self) -> list[dict[str, Any]]:
        if self._history is None:
            self._history = []
            if self.options.history is not None:
                from pytest_promptgate.history import load_records

                self._history, warnings = load_records(self.options.history)
                self.warnings.extend(warnings)
        return self._history

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.worker or (not self.suites and not self.reported):
            return
        self._finish(session)

    def _gather_cases(self) -> list[Any]:
        from pytest_promptgate.evaluate import EvaluatedCase

        cases: dict[str, EvaluatedCase] = {}
        for node_id, payload in self.reported.items():
            cases[node_id] = EvaluatedCase(
                payload["suite_file"],
                payload["content_hash"],
                case_result_from_dict(payload["result"]),
            )
        # A serial run's own results (its items carry no payload), including those that
        # finished but never reached a report (-x, an interrupted run).
        for item in self.selected:
            if item.nodeid not in cases and item.nodeid in self.calls.results:
                cases[item.nodeid] = EvaluatedCase(
                    item.suite_file, item.content_hash, self.calls.results[item.nodeid]
                )
        return list(cases.values())

    def _suites_for(self, cases: list[Any]) -> dict[str, Suite]:
        from pytest_promptgate import api

        suites = dict(self.suites)
        for case in cases:
            if case.suite_file not in suites:  # xdist controller: workers collected, not us
                suites[case.suite_file] = api.load_suite(
                    self.rootdir / case.suite_file, self.rootdir
                )
        return suites

    def _no_case_evaluated(self, session: pytest.Session) -> None:
        """Suites were collected but nothing was measured: never let that look like a pass."""
        if not self.suites_collected and not self.items_collected:
            return
        if session.exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR):
            return  # the run already stopped with its own message
        if self.items_collected and not self.selected and not self.reported:
            # Every case was deselected on purpose (-k, -m, --lf, a shard): say so, do not fail.
            self.warnings.append(
                "promptgate: every suite case was deselected; no prompt was gated in this run"
            )
            return
        what = "they define no case" if not self.items_collected else "no case was evaluated"
        self.warnings.append(
            f"promptgate: {self.suites_collected} suite(s) collected but {what}: "
            "the gate cannot pass on nothing, so the run fails"
        )
        if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _finish(self, session: pytest.Session) -> None:
        from pytest_promptgate import api
        from pytest_promptgate.evaluate import counter_sections, evaluate
        from pytest_promptgate.history import git_commit

        config = self.config
        interrupted = self.calls.interrupted or session.exitstatus == pytest.ExitCode.INTERRUPTED
        cases = self._gather_cases()
        if not cases:
            self._no_case_evaluated(session)
            return
        for case in cases:
            config.hook.pytest_promptgate_case_result(result=case.result)
        cache, run = counter_sections(self.calls.counters, interrupted=interrupted)
        try:
            suites = self._suites_for(cases)
            evaluation = evaluate(
                cases,
                suites,
                api.gate_settings(self.options),
                history=self.history(),
                report_settings=api.report_settings(self.options, {c.result.model for c in cases}),
                cache=cache,
                run=run,
                git_commit=git_commit(self.rootdir) if self.options.history else None,
            )
        except PromptgateError as exc:
            self.warnings.append(f"promptgate: {exc.format()}")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
        report = evaluation.report
        self.report = report
        if interrupted:
            # Nothing is written from a partial run: history and reports stay as they were.
            self.warnings.append(
                f"promptgate: interrupted after {len(cases)} finished case(s); history and report files left untouched"
            )
            return
        if self.options.baseline is not None:
            from pytest_promptgate.report.baseline import apply_baseline

            try:
                apply_baseline(report, api.read_report(self.options.baseline))
            except PromptgateError as exc:
                self.warnings.append(f"promptgate: baseline ignored: {exc.format()}")
        if self.options.history is not None and evaluation.history_records:
            from pytest_promptgate.history import append_records

            try:
                append_records(self.options.history, evaluation.history_records)
            except OSError as exc:
                self.warnings.append(
                    f"promptgate: could not append to history {self.options.history}: {exc}"
                )
        if session.exitstatus == pytest.ExitCode.OK and evaluation.exit_status != 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        report["exit_status"] = int(session.exitstatus)
        self._write_reports(report)
        if self.report_write_failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR  # a requested report is missing

    def _write_reports(self, report: dict[str, Any]) -> None:
        from pytest_promptgate import api

        for path, exc in api.write_reports(report, self.options):
            self.warnings.append(f"promptgate: could not write {path}: {type(exc).__name__}: {exc}")
            if not isinstance(exc, OSError):
                self.report_write_failed = True

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.worker or (self.report is None and not self.warnings):
            return
        tr = terminalreporter
        tr.write_sep("=", "promptgate")
        if self.report is not None:
            from pytest_promptgate.report.terminal import render_terminal

            tr.write_line(render_terminal(self.report))
        from pytest_promptgate.textsafe import printable

        for warning in self.warnings:
            tr.write_line(printable(warning), yellow=True)
        if self.report is not None:
            written = [
                str(p) for p in (self.options.report, self.options.markdown, self.options.html) if p
            ]
            if written and not self.report.get("run", {}).get("interrupted"):
                tr.write_line("promptgate: wrote " + ", ".join(written))


SESSION = pytest.StashKey[PromptgateSession]()
