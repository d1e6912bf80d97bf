"""One pytest session of prompt suites: batch the model calls, decide items, gate, report.

Imported only once a suite file is collected (plugin.py stays import-light). The model calls
of all selected cases run in one asyncio batch before the items report (serial run), or per
worker over the items it was sent (xdist). The gate is decided on the controller in
``finish`` from the case payloads that items attach to their reports.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from pytest_promptgate import render
from pytest_promptgate.model import (
    FAILED,
    PASS,
    CaseResult,
    PromptgateError,
    Suite,
    SuiteError,
    case_result_from_dict,
)
from pytest_promptgate.plugin.state import STATE, State
from pytest_promptgate.report.terminal import printable

_EXPECTATIONS_REGISTERED = pytest.StashKey[bool]()


# -- collection ---------------------------------------------------------------------------------
def load_suite_for_pytest(config: pytest.Config, path: Path) -> Suite:
    from pytest_promptgate import spec

    state = config.stash[STATE]
    if not config.stash.get(_EXPECTATIONS_REGISTERED, False):
        from pytest_promptgate import assertions

        config.hook.pytest_promptgate_add_expectations(register=assertions.register)
        config.stash[_EXPECTATIONS_REGISTERED] = True
    suite = spec.load_suite(path, config.rootpath)
    suite_file = _relative(path, config.rootpath)
    other = state.prompt_files.get(suite.prompt)
    if other is not None and other != suite_file:
        raise SuiteError(
            f"prompt id `{suite.prompt}` is already used by {other}",
            suite.location,
            hint="prompt ids must be unique in a run; rename one of them",
        )
    state.prompt_files[suite.prompt] = suite_file
    state.suites[suite_file] = suite
    _warn_unknown_params(state, suite, suite_file)
    return suite


def _warn_unknown_params(state: State, suite: Suite, suite_file: str) -> None:
    """litellm forwards unknown keyword arguments into the request body: say so early."""
    from pytest_promptgate.client import unknown_params

    unknown = unknown_params(dict(suite.params))
    if unknown:
        state.warnings.append(
            f"promptgate: {suite_file}: params {', '.join(sorted(unknown))} are not known litellm/OpenAI "
            "parameters; they are sent to the provider as they are (check the spelling)"
        )


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def resolve_version(suite: Suite, version, options) -> tuple[str, dict[str, Any], str]:
    """The model, params and iteration hash a version runs with (CLI > suite > ini)."""
    model = options.model or suite.model or options.model_default
    if not model:
        raise SuiteError(
            f"no model for prompt `{suite.prompt}`",
            suite.location,
            hint="add `model: openai/gpt-4o-mini` (any litellm model) to the suite, "
            "or pass --promptgate-model / set the ini option promptgate_model",
        )
    params = dict(suite.params)
    return model, params, render.content_hash(version, model, params)


def collection_summary(state: State, items: Iterable[pytest.Item]) -> list[str]:
    from pytest_promptgate.plugin.collect import CaseItem

    cases = [item for item in items if isinstance(item, CaseItem)]
    models = sorted({item.model for item in cases})
    samples = sum(item.case.repeat for item in cases)
    if not cases:
        return [f"promptgate: {state.suites_collected} suite(s), no case selected"]
    return [
        f"promptgate: {len(state.suites)} suite(s), {len(cases)} case(s), {samples} model call(s) at most; "
        f"models: {', '.join(models)}"
    ]


def apply_shard(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep shard I of N; every version of a case lands in the same shard (paired comparisons)."""
    import hashlib

    from pytest_promptgate.plugin.collect import CaseItem

    shard = config.stash[STATE].options.shard
    if shard is None:
        return
    index, total = shard
    keep, drop = [], []
    for item in items:
        if isinstance(item, CaseItem):
            key = f"{item.suite_file}::{item.case.id}".encode()
            bucket = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % total
            (keep if bucket == index - 1 else drop).append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# -- running ------------------------------------------------------------------------------------
def _jobs_for(items: list) -> list:
    from pytest_promptgate.runner import Job

    jobs = []
    for item in items:
        messages = item.suite.rendered[(item.version.label, item.case.id)]
        jobs.append(
            Job(
                prompt=item.suite.prompt,
                version=item.version.label,
                case=item.case,
                model=item.model,
                messages=tuple(messages),
                params=item.params,
                repeat=item.case.repeat,
                suite_dir=item.path.parent,
                rootdir=item.config.rootpath,
                location=item.case.location,
                node_id=item.nodeid,
                rpm=item.suite.rpm or item.config.stash[STATE].options.rpm,
            )
        )
    return jobs


def _run_settings(options):
    from pytest_promptgate.runner import RunSettings

    return RunSettings(
        concurrency=options.concurrency,
        retries=options.retries,
        timeout_s=options.timeout_s,
        cache_dir=None if options.cache == "off" else options.cache_dir,
        cache_mode=options.cache,
        replay=options.replay,
        max_cost_usd=options.max_cost_usd,
        judge_model=options.judge_model,
        workers=options.workers,
    )


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


def _prepare(config: pytest.Config, items: list):
    """(jobs, settings, on_result, delivered) for the items without a result yet, or None."""
    state = config.stash[STATE]
    items = [item for item in items if item.nodeid not in state.results]
    if not items:
        return None
    jobs = _jobs_for(items)
    settings = _run_settings(state.options)
    if hasattr(config, "workerinput") and settings.workers is None:
        settings = dataclasses.replace(settings, workers=0)  # xdist already spreads the calls
    local_models = sorted({job.model for job in jobs if job.model.startswith("local/")})
    if local_models:
        from pytest_promptgate import local

        for model in local_models:
            local.check_local_model(model)  # a missing extra is one line up front, not one per case
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
        state.results[node_ids[(result.prompt, result.version, result.case, result.model)]] = result
        if state.stream is not None:
            state.stream.run.wake()

    return jobs, settings, on_result, delivered


def _count_outcome(state: State, outcome) -> None:
    for key in ("calls", "cache_hits", "cache_misses", "saved_usd", "spent_usd", "model_phase_s"):
        state.run_stats[key] += getattr(outcome, key, 0) or 0
    state.run_stats["call_workers"] = max(
        state.run_stats.get("call_workers", 0), outcome.call_workers
    )
    state.warnings.extend(getattr(outcome, "warnings", []) or [])


def _count_delivered(state: State, delivered: list[CaseResult]) -> None:
    """A stopped batch's counters die with it: count what the finished cases did."""
    samples = [s for result in delivered for s in result.samples]
    state.run_stats["calls"] += sum(1 for s in samples if not s.call.cached)
    state.run_stats["cache_hits"] += sum(1 for s in samples if s.call.cached)
    state.run_stats["cache_misses"] += sum(1 for s in samples if not s.call.cached)


def _announce(config: pytest.Config, jobs: list, settings) -> None:
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None and not hasattr(config, "workerinput"):
        tr.write_line(
            f"promptgate: evaluating {len(jobs)} case(s), concurrency {settings.concurrency}"
        )


def _run_batch(config: pytest.Config, items: list) -> None:
    """Run the items' calls now and wait for all of them (an xdist worker's batch)."""
    from pytest_promptgate.runner import run_jobs

    state = config.stash[STATE]
    prepared = _prepare(config, items)
    if prepared is None:
        return
    jobs, settings, on_result, delivered = prepared
    progress = _Progress(config, len(jobs)) if not hasattr(config, "workerinput") else None
    _announce(config, jobs, settings)
    try:
        outcome = run_jobs(jobs, settings, on_result=on_result, progress=progress)
    except KeyboardInterrupt:
        state.interrupted = True
        _count_delivered(state, delivered)
        raise
    finally:
        if progress:
            progress.close()
    _count_outcome(state, outcome)


class _Stream:
    """A serial run's batch, advanced by the items as pytest reports them in order: each item
    lets the calls progress until its own result is in (runner.SteppedRun)."""

    def __init__(self, run, delivered: list[CaseResult]):
        self.run = run
        self.delivered = delivered


def run_all(session: pytest.Session) -> None:
    """Serial run: start every selected case's calls; the items report as results arrive."""
    from pytest_promptgate.plugin.collect import CaseItem
    from pytest_promptgate.runner import SteppedRun

    config = session.config
    state = config.stash[STATE]
    items = [item for item in session.items if isinstance(item, CaseItem)]
    try:
        prepared = _prepare(config, items)
        if prepared is None:
            return
        jobs, settings, on_result, delivered = prepared
        _announce(config, jobs, settings)
        run = SteppedRun(jobs, settings, on_result=on_result)
    except PromptgateError as exc:
        raise pytest.UsageError(exc.format()) from None
    state.stream = _Stream(run, delivered)


def end_stream(session: pytest.Session, interrupted: bool) -> None:
    """After the items: stop calls nobody will read (-x, --maxfail, Ctrl-C) and count."""
    state = session.config.stash[STATE]
    stream, state.stream = state.stream, None
    if stream is None:
        return
    from pytest_promptgate.plugin.collect import CaseItem

    stopped = not all(i.nodeid in state.results for i in session.items if isinstance(i, CaseItem))
    stream.run.finish(
        cancel=stopped or interrupted
    )  # else every result is in: it closes its clients
    if stopped:
        state.interrupted = True
        if not interrupted:
            state.warnings.append(
                "promptgate: the run stopped before every case was evaluated (-x, --maxfail or a "
                "failed collection); the model calls still running were cancelled"
            )
    if stream.run.outcome is not None:
        _count_outcome(state, stream.run.outcome)
    else:
        _count_delivered(state, stream.delivered)
        error = stream.run.error
        if (
            error is not None
            and not isinstance(error, (KeyboardInterrupt, asyncio.CancelledError))
            and not stopped
        ):
            state.warnings.append(
                f"promptgate: the model calls stopped: {type(error).__name__}: {printable(str(error))}"
            )


def _wait(item, ready) -> None:
    """Let the calls progress until ``ready()`` or the run has ended (the caller looks again)."""
    stream = item.config.stash[STATE].stream
    if stream is not None:
        stream.run.run_until(ready)


def _pending_worker_items(item) -> list:
    """On an xdist worker: this item plus those already queued for this worker."""
    from pytest_promptgate.plugin.collect import CaseItem

    batch = [item]
    interactor = next(
        (
            p
            for p in item.config.pluginmanager.get_plugins()
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
    batch.extend(items[i] for i in indices if isinstance(items[i], CaseItem))
    return batch


def result_for(item) -> CaseResult:
    state = item.config.stash[STATE]
    if item.nodeid not in state.results and state.stream is not None:
        _wait(item, lambda: item.nodeid in state.results)
        if item.nodeid not in state.results:  # the calls stopped without this case
            error = state.stream.run.error
            raise PromptgateError(
                "the model calls stopped before this case was evaluated"
                + (f": {type(error).__name__}: {error}" if error is not None else "")
            )
    if item.nodeid not in state.results:
        batch = _pending_worker_items(item) if hasattr(item.config, "workerinput") else [item]
        _run_batch(item.config, batch)
    return state.results[item.nodeid]


def settle_prompt(item) -> None:
    """Wait until every selected case of the item's prompt has its result (a serial run decides
    a miss FAILED or TOLERATED from the whole prompt's verdict)."""
    state = item.config.stash[STATE]
    if state.stream is not None and not gate_known(item):
        _wait(item, lambda: all(i.nodeid in state.results for i in _prompt_items(item)))


# -- deciding an item ----------------------------------------------------------------------------
def _prompt_items(item) -> list:
    """The selected items of the item's prompt (computed once per prompt, not once per item)."""
    from pytest_promptgate.plugin.collect import CaseItem

    state = item.config.stash[STATE]
    key = ("items", item.suite.prompt)
    if key not in state.gate_cache:
        by_prompt: dict[str, list] = {}
        for other in item.session.items:
            if isinstance(other, CaseItem):
                by_prompt.setdefault(other.suite.prompt, []).append(other)
        for prompt, items in by_prompt.items():
            state.gate_cache[("items", prompt)] = items
    return state.gate_cache.get(key, [])


def gate_known(item) -> bool:
    """True when this process has the results of every selected case of the item's prompt."""
    state = item.config.stash[STATE]
    key = ("known", item.suite.prompt)
    if not state.gate_cache.get(key):  # once every result is in, it stays in: remember it
        state.gate_cache[key] = all(i.nodeid in state.results for i in _prompt_items(item))
    return state.gate_cache[key]


def _local_verdict(item) -> dict[str, Any]:
    """The prompt's entry as the gate sees it from this process (computed once per prompt)."""
    from pytest_promptgate.evaluate import EvaluatedCase, evaluate_suite

    state = item.config.stash[STATE]
    key = ("verdict", item.suite.prompt)
    if key not in state.gate_cache:
        cases = [
            EvaluatedCase(i.suite_file, i.content_hash, state.results[i.nodeid])
            for i in _prompt_items(item)
        ]
        entry, _ = evaluate_suite(
            item.suite, item.suite_file, cases, _gate_settings(state.options), _history(state)
        )
        state.gate_cache[key] = entry
    return state.gate_cache[key]


def miss_fails(item, result: CaseResult) -> bool:
    """Does this failing case fail the run? Yes under --promptgate-strict, or when it belongs
    to the current version of a prompt whose verdict fails the build; otherwise it is
    tolerated (its version clears the threshold, or it is an earlier version)."""
    state = item.config.stash[STATE]
    if state.options.strict:
        return True  # no need to wait for the rest of the prompt: -x stops the calls at once
    if not item.current:
        return False
    settle_prompt(item)  # a miss is judged against its whole prompt's verdict
    if not gate_known(item):
        return False
    entry = _local_verdict(item)
    verdict = entry["verdict"]
    if verdict == PASS:
        return False
    from pytest_promptgate.model import CONSIDER_FINE_TUNING

    return not (verdict == CONSIDER_FINE_TUNING and state.options.finetune == "flag")


def _clip(text: str | None, limit: int = 600) -> str:
    if text is None:
        return "<no output>"
    text = printable(text)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"


def describe_miss(result: CaseResult) -> str:
    lines = [f"case `{result.case}` of {result.prompt} {result.version} ({result.model}) failed"]
    lines.append("rendered prompt:")
    for message in result.messages:
        lines.append(f"  [{message.get('role')}] {_clip(message.get('content'), 400)}")
    for sample in result.samples:
        if sample.status != FAILED:
            continue
        prefix = f"sample {sample.sample}: " if len(result.samples) > 1 else ""
        lines.append(f"{prefix}output: {_clip(sample.call.output)}")
        for check in sample.checks:
            if not check.passed:
                where = f" ({check.location})" if check.location else ""
                lines.append(f"  ✗ {check.expectation}{where}: {printable(check.reason)}")
    return "\n".join(lines)


def describe_error(result: CaseResult) -> str:
    errors = [s.call for s in result.samples if not s.call.ok]
    call = errors[0] if errors else None
    kind = f" [{call.error_kind}]" if call and call.error_kind else ""
    attempts = f" after {call.attempts} attempt(s)" if call and call.attempts > 1 else ""
    message = printable(call.error or "unknown error") if call else "no result"
    return (
        f"provider error{kind} for case `{result.case}` of {result.prompt} {result.version} "
        f"({result.model}){attempts}: {message}\n"
        "This case is an error, not a pass or a prompt failure: it is excluded from the success rate."
    )


# -- controller side: collect payloads, gate, report ------------------------------------------
def record_payload(state: State, report: pytest.TestReport, value: str) -> None:
    if report.nodeid in state.reported:  # setup, call and teardown reports carry the same payload
        return
    try:
        state.reported[report.nodeid] = json.loads(value)
    except (TypeError, ValueError):
        state.warnings.append(f"promptgate: unreadable result payload for {report.nodeid}")


def _gate_settings(options):
    from pytest_promptgate.evaluate import GateSettings

    return GateSettings(
        threshold_override=options.threshold,
        threshold_default=options.threshold_default,
        finetune_after_override=options.finetune_after,
        finetune_after_default=options.finetune_after_default,
        gate=options.gate,
        finetune=options.finetune,
        strict=options.strict,
    )


def _history(state: State) -> list[dict[str, Any]]:
    if state.history_loaded or state.options.history is None:
        return state.history
    from pytest_promptgate.history import load_records

    records, warnings = load_records(state.options.history)
    state.history = records
    state.warnings.extend(warnings)
    state.history_loaded = True
    return records


def _report_settings(state: State, models: list[str]) -> dict[str, Any]:
    o = state.options
    return {
        "threshold": o.threshold if o.threshold is not None else o.threshold_default,
        "threshold_source": "cli" if o.threshold is not None else "suite/ini",
        "gate": o.gate,
        "concurrency": o.concurrency,
        "retries": o.retries,
        "strict": o.strict,
        "finetune": o.finetune,
        "models": models,
        "cache": "replay" if o.replay else o.cache,
        "shard": f"{o.shard[0]}/{o.shard[1]}" if o.shard else None,
    }


def _gather_cases(session: pytest.Session, state: State) -> list:
    from pytest_promptgate.evaluate import EvaluatedCase
    from pytest_promptgate.plugin.collect import CaseItem

    cases: dict[str, EvaluatedCase] = {}
    for node_id, payload in state.reported.items():
        cases[node_id] = EvaluatedCase(
            payload["suite_file"], payload["content_hash"], case_result_from_dict(payload["result"])
        )
    # A serial run's own results (its items carry no payload), including those that finished
    # but never reached a report (-x, an interrupted run).
    for item in session.items:
        if isinstance(item, CaseItem) and item.nodeid not in cases and item.nodeid in state.results:
            cases[item.nodeid] = EvaluatedCase(
                item.suite_file, item.content_hash, state.results[item.nodeid]
            )
    return list(cases.values())


def _suites_for(cases, state: State) -> dict[str, Suite]:
    from pytest_promptgate import spec

    suites = dict(state.suites)
    for case in cases:
        if case.suite_file not in suites:  # xdist controller: workers collected, not us
            suites[case.suite_file] = spec.load_suite(
                state.rootdir / case.suite_file, state.rootdir
            )
    return suites


def _no_case_evaluated(session: pytest.Session, state: State) -> None:
    """Suites were collected but nothing was measured: never let that look like a pass."""
    from pytest_promptgate.plugin.collect import CaseItem

    if not state.suites_collected and not state.items_collected:
        return
    if session.exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR):
        return  # the run already stopped with its own message
    selected = any(isinstance(item, CaseItem) for item in session.items)
    if state.items_collected and not selected and not state.reported:
        # Every case was deselected on purpose (-k, -m, --lf, a shard): say so, do not fail.
        state.warnings.append(
            "promptgate: every suite case was deselected; no prompt was gated in this run"
        )
        return
    what = "they define no case" if not state.items_collected else "no case was evaluated"
    state.warnings.append(
        f"promptgate: {state.suites_collected} suite(s) collected but {what}: "
        "the gate cannot pass on nothing, so the run fails"
    )
    if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def finish(session: pytest.Session) -> None:
    from pytest_promptgate.evaluate import evaluate
    from pytest_promptgate.history import git_commit

    config = session.config
    state = config.stash[STATE]
    interrupted = state.interrupted or session.exitstatus == pytest.ExitCode.INTERRUPTED
    cases = _gather_cases(session, state)
    if not cases:
        _no_case_evaluated(session, state)
        return
    for case in cases:
        config.hook.pytest_promptgate_case_result(result=case.result)
    try:
        suites = _suites_for(cases, state)
        models = sorted({c.result.model for c in cases})
        evaluation = evaluate(
            cases,
            suites,
            _gate_settings(state.options),
            history=_history(state),
            report_settings=_report_settings(state, models),
            cache={
                "hits": int(state.run_stats["cache_hits"]),
                "misses": int(state.run_stats["cache_misses"]),
                "saved_usd": round(state.run_stats["saved_usd"], 8),
            },
            run={
                "calls": int(state.run_stats["calls"]),
                "model_phase_s": round(state.run_stats["model_phase_s"], 3),
                "call_workers": int(state.run_stats.get("call_workers", 0)),
                "interrupted": interrupted,
                "spent_usd": round(state.run_stats["spent_usd"], 8),
            },
            git_commit=git_commit(state.rootdir) if state.options.history else None,
        )
    except PromptgateError as exc:
        state.warnings.append(f"promptgate: {exc.format()}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    report = evaluation.report
    state.report = report
    if interrupted:
        # Nothing is written from a partial run: history and reports stay as they were.
        state.warnings.append(
            f"promptgate: interrupted after {len(cases)} finished case(s); history and report files left untouched"
        )
        return
    if state.options.baseline is not None:
        from pytest_promptgate.report.baseline import apply_baseline
        from pytest_promptgate.report.json_report import read_report

        try:
            apply_baseline(report, read_report(state.options.baseline))
        except PromptgateError as exc:
            state.warnings.append(f"promptgate: baseline ignored: {exc.format()}")
    if state.options.history is not None and evaluation.history_records:
        from pytest_promptgate.history import append_records

        try:
            append_records(state.options.history, evaluation.history_records)
        except OSError as exc:
            state.warnings.append(
                f"promptgate: could not append to history {state.options.history}: {exc}"
            )
    if session.exitstatus == pytest.ExitCode.OK and evaluation.exit_status != 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    report["exit_status"] = int(session.exitstatus)
    _write_reports(state, report)
    if state.report_write_failed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR  # a requested report is missing


def _write_reports(state: State, report: dict[str, Any]) -> None:
    from pytest_promptgate.report.json_report import write_json_atomic, write_text_atomic

    options = state.options
    writers = []
    if options.report is not None:
        writers.append((options.report, lambda: write_json_atomic(options.report, report)))
    if options.markdown is not None:
        from pytest_promptgate.report.markdown import render_markdown

        writers.append(
            (options.markdown, lambda: write_text_atomic(options.markdown, render_markdown(report)))
        )
    if options.html is not None:
        from pytest_promptgate.report.html import render_html

        writers.append((options.html, lambda: write_text_atomic(options.html, render_html(report))))
    for path, write in writers:
        # Each report is written on its own: one that fails must not cost the others.
        try:
            write()
        except Exception as exc:
            state.warnings.append(
                f"promptgate: could not write {path}: {type(exc).__name__}: {exc}"
            )
            if not isinstance(exc, OSError):
                state.report_write_failed = True


def terminal_summary(tr, state: State) -> None:
    tr.write_sep("=", "promptgate")
    if state.report is not None:
        from pytest_promptgate.report.terminal import render_terminal

        tr.write_line(render_terminal(state.report))
    for warning in state.warnings:
        tr.write_line(printable(warning), yellow=True)
    if state.report is not None:
        written = [
            str(p) for p in (state.options.report, state.options.markdown, state.options.html) if p
        ]
        if written and not state.report.get("run", {}).get("interrupted"):
            tr.write_line("promptgate: wrote " + ", ".join(written))
