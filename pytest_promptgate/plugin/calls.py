"""The model calls of a pytest run: one stepped batch (serial) or one batch per xdist worker.

``CaseCalls`` belongs to the session (``session.py``): it turns case items into jobs through
the front door (``api.case_job``), runs them with the runner, keeps each result by node id
and counts what the batches did. A serial run's batch is advanced by pytest's own thread,
item by item (``stepped.SteppedRun``); ``-x``, ``--maxfail`` and Ctrl-C cancel what is left.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from pytest_promptgate.model import CaseResult, PromptgateError
from pytest_promptgate.options import Options
from pytest_promptgate.plugin.state import RunCounters

if TYPE_CHECKING:  # the engine is imported when calls are made, not when pytest starts
    from pytest_promptgate.plugin.collect import CaseItem
    from pytest_promptgate.runner import Job, RunSettings
    from pytest_promptgate.stepped import SteppedRun


@dataclass
class _Stream:
    """A serial run's batch, advanced by the items as pytest reports them in order: each item
    lets the calls progress until its own result is in (stepped.SteppedRun)."""

    run: SteppedRun
    delivered: list[CaseResult]


class _Progress:
    """Progress on the terminal while calls run: a rewritten line on a tty, a few lines otherwise."""

    def __init__(self, config: pytest.Config, total: int):
        self.tr = config.pluginmanager.get_plugin("terminalreporter")
        self.total = total
        self.tty = bool(self.tr and self.tr.isatty())
        self.last_step = -1
        self.start = time.monotonic()

    def __call__(self, done: int, total: int, errors: int) -> None:
        if self.tr is None:
            return
        elapsed = time.monotonic() - self.start
        text = f"promptgate: {done}/{total} cases done, {errors} error(s), {elapsed:.1f}s"
        if self.tty:
            self.tr.write("\r" + text.ljust(70), flush=True)
            return
        step = (done * 4) // max(total, 1)  # every 25%
        if step != self.last_step and done:
            self.last_step = step
            self.tr.write_line(text)

    def close(self) -> None:
        if self.tr is not None and self.tty:
            self.tr.write("\r" + " " * 72 + "\r", flush=True)


class CaseCalls:
    """The calls of this process's case items, their results and counters."""

    def __init__(
        self, config: pytest.Config, options: Options, *, worker: bool, warnings: list[str]
    ):
        self.config = config
        self.options = options
        self.worker = worker
        self.results: dict[str, CaseResult] = {}  # node id -> result computed in this process
        self.counters = RunCounters()
        self.warnings = warnings  # the session's list: shown in the terminal summary
        self.interrupted = False
        self.stream: _Stream | None = None

    def prepare(
        self, items: list[CaseItem]
    ) -> tuple[list[Job], RunSettings, Callable[[CaseResult], None], list[CaseResult]] | None:
        """(jobs, settings, on_result, delivered) for the items without a result yet, or None."""
        from pytest_promptgate import api

        items = [item for item in items if item.nodeid not in self.results]
        if not items:
            return None
        jobs = [
            api.case_job(
                item.suite,
                item.version,
                item.case,
                self.options,
                rootdir=self.config.rootpath,
                node_id=item.nodeid,
            )
            for item in items
        ]
        settings = api.run_settings(self.options)
        if self.worker and settings.workers is None:
            settings = dataclasses.replace(settings, workers=0)  # xdist already spreads the calls
        local_models = sorted({job.model for job in jobs if job.model.startswith("local/")})
        if local_models:
            from pytest_promptgate import local

            for model in local_models:  # a missing extra is one line up front, not one per case
                local.check_local_model(model)
            if len(local_models) == len({job.model for job in jobs}):
                # The in-process model runs local.WORKERS calls at once; more in flight would only
                # queue inside it and count the wait as latency.
                settings = dataclasses.replace(
                    settings, concurrency=min(settings.concurrency, local.WORKERS)
                )
        node_ids = {(job.prompt, job.version, job.case.id, job.model): job.node_id for job in jobs}
        delivered: list[CaseResult] = []

        def on_result(result: CaseResult) -> None:
            delivered.append(result)
            key = (result.prompt, result.version, result.case, result.model)
            self.results[node_ids[key]] = result
            if self.stream is not None:
                self.stream.run.wake()

        return jobs, settings, on_result, delivered

    def _count_outcome(self, outcome: Any) -> None:
        self.counters.add_outcome(outcome)
        self.warnings.extend(outcome.warnings)

    def _count_delivered(self, delivered: list[CaseResult]) -> None:
        """A stopped batch's counters die with it: count what the finished cases did."""
        samples = [s for result in delivered for s in result.samples]
        self.counters.calls += sum(1 for s in samples if not s.call.cached)
        self.counters.cache_hits += sum(1 for s in samples if s.call.cached)
        self.counters.cache_misses += sum(1 for s in samples if not s.call.cached)

    def _announce(self, jobs: list[Job], settings: RunSettings) -> None:
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None and not self.worker:
            tr.write_line(
                f"promptgate: evaluating {len(jobs)} case(s), concurrency {settings.concurrency}"
            )

    def run_batch(self, items: list[CaseItem]) -> None:
        """Run the items' calls now and wait for all of them (an xdist worker's batch)."""
        from pytest_promptgate.runner import run_jobs

        prepared = self.prepare(items)
        if prepared is None:
            return
        jobs, settings, on_result, delivered = prepared
        progress = _Progress(self.config, len(jobs)) if not self.worker else None
        self._announce(jobs, settings)
        try:
            outcome = run_jobs(jobs, settings, on_result=on_result, progress=progress)
        except KeyboardInterrupt:
            self.interrupted = True
            self._count_delivered(delivered)
            raise
        finally:
            if progress:
                progress.close()
        self._count_outcome(outcome)

    def start(self, selected: list[CaseItem]) -> None:
        """Serial run: start every selected case's calls; the items report as results arrive."""
        from pytest_promptgate.stepped import SteppedRun

        try:
            prepared = self.prepare(selected)
            if prepared is None:
                return
            jobs, settings, on_result, delivered = prepared
            # The credentials preflight and the budget check run here: a refusal stops the
            # run before any call, as one usage error (no traceback).
            run = SteppedRun(jobs, settings, on_result=on_result)
            self._announce(jobs, settings)
        except PromptgateError as exc:
            raise pytest.UsageError(exc.format()) from None
        self.stream = _Stream(run, delivered)

    def end(self, selected: list[CaseItem], interrupted: bool) -> None:
        """After the items: stop calls nobody will read (-x, --maxfail, Ctrl-C) and count."""
        from asyncio import CancelledError  # not at import: asyncio costs pytest's start-up ~12 ms

        from pytest_promptgate.textsafe import printable

        stream, self.stream = self.stream, None
        if stream is None:
            return
        stopped = not all(item.nodeid in self.results for item in selected)
        stream.run.finish(cancel=stopped or interrupted)  # else every result is in: it closes
        if stopped:
            self.interrupted = True
            if not interrupted:
                self.warnings.append(
                    "promptgate: the run stopped before every case was evaluated (-x, --maxfail or a "
                    "failed collection); the model calls still running were cancelled"
                )
        if stream.run.outcome is not None:
            self._count_outcome(stream.run.outcome)
        else:
            self._count_delivered(stream.delivered)
            error = stream.run.error
            if (
                error is not None
                and not isinstance(error, (KeyboardInterrupt, CancelledError))
                and not stopped
            ):
                self.warnings.append(
                    f"promptgate: the model calls stopped: {type(error).__name__}: {printable(str(error))}"
                )

    def wait(self, ready: Callable[[], bool]) -> None:
        """Let the calls progress until ``ready()`` or the run has ended (the caller looks again)."""
        if self.stream is not None:
            self.stream.run.run_until(ready)

    def result_for(self, item: CaseItem, batch: Callable[[], list[CaseItem]]) -> CaseResult:
        """The item's result: waited for in a serial run's stream, else run now with ``batch()``
        (on an xdist worker: the item and those queued after it)."""
        if item.nodeid not in self.results and self.stream is not None:
            self.wait(lambda: item.nodeid in self.results)
            if item.nodeid not in self.results:  # the calls stopped without this case
                error = self.stream.run.error if self.stream is not None else None
                raise PromptgateError(
                    "the model calls stopped before this case was evaluated"
                    + (f": {type(error).__name__}: {error}" if error is not None else "")
                )
        if item.nodeid not in self.results:
            self.run_batch(batch())
        return self.results[item.nodeid]
