"""The front door: run prompt suites from Python, with or without pytest.

    from pytest_promptgate import load_suite, run

    result = run([load_suite("prompts/triage.promptgate.yaml")], concurrency=4)
    print(result.verdict)

``load_suite`` reads a suite; ``build_jobs`` turns suites into runner jobs (the one place a
``Job`` is made: the pytest session, the tests and the benchmarks all come here); ``run``
makes the calls, checks the outputs and gates, returning the results and the JSON report;
``evaluate`` gates results you already have; ``write_reports`` writes the JSON, Markdown and
HTML files; ``register_expectation`` adds a check type;
``read_report`` reads a report written by ``--promptgate-report``. Overrides are the fields
of ``options.Options`` (``model=``, ``threshold=``, ``concurrency=``, ``cache_dir=``...).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_promptgate.evaluate import EvaluatedCase, Evaluation, GateSettings, counter_sections
from pytest_promptgate.model import Case, CaseResult, Suite, SuiteError, Version
from pytest_promptgate.options import Options
from pytest_promptgate.runner import Job, RunOutcome, RunSettings, run_jobs

__all__ = [
    "RunResult",
    "build_jobs",
    "case_job",
    "evaluate",
    "gate_settings",
    "load_suite",
    "read_report",
    "register_expectation",
    "resolve_model",
    "run",
    "run_settings",
    "write_reports",
]


@dataclass(frozen=True)
class RunResult:
    """What ``run`` returns: every case's result and the report document."""

    cases: tuple[CaseResult, ...]
    report: dict[str, Any]  # the JSON report (docs/reports.md), as --promptgate-report writes it
    outcome: RunOutcome  # calls, cache hits, spend, model-call phase

    @property
    def verdict(self) -> str:
        """PASS, or the worst verdict of a prompt (FAIL, CONSIDER FINE-TUNING, ...)."""
        return str(self.report["verdict"])

    @property
    def exit_status(self) -> int:
        """What pytest would exit with: 0 when the gate passes, 1 when it fails."""
        return int(self.report["exit_status"])

    @property
    def warnings(self) -> list[str]:
        return list(self.outcome.warnings)


def load_suite(path: str | Path, rootdir: str | Path | None = None) -> Suite:
    """Read and validate one suite file; every problem is a ``SuiteError`` with file:line.
    ``rootdir`` (default: the current directory) is what reported suite paths are relative to."""
    from pytest_promptgate import spec

    return spec.load_suite(Path(path), Path(rootdir) if rootdir is not None else Path.cwd())


def register_expectation(name: str, check: Any, validate: Any = None) -> None:
    """Add an expectation type: ``check(output, value, ctx)`` returns a bool, a score, a
    ``(passed, reason)`` pair or an awaitable of one (docs/expectations.md)."""
    from pytest_promptgate import assertions

    assertions.register(name, check, validate)


def read_report(path: str | Path) -> dict[str, Any]:
    """A JSON report written by ``--promptgate-report`` (refuses a newer schema clearly)."""
    from pytest_promptgate.report.json_report import read_report as read

    return read(Path(path))


# -- settings ----------------------------------------------------------------------------------
def _options(options: Options | None, overrides: Mapping[str, Any]) -> Options:
    base = options if options is not None else Options()
    known = {f.name for f in dataclasses.fields(Options)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(
            f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    paths = {"report", "markdown", "html", "baseline", "history", "cache_dir"}
    overrides = {
        name: Path(value) if name in paths and isinstance(value, str) else value
        for name, value in overrides.items()
    }
    return dataclasses.replace(base, **overrides) if overrides else base


def run_settings(options: Options) -> RunSettings:
    """How the runner makes the calls, from the options."""
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


def gate_settings(options: Options) -> GateSettings:
    """What decides a verdict, from the options."""
    return GateSettings(
        threshold_override=options.threshold,
        threshold_default=options.threshold_default,
        finetune_after_override=options.finetune_after,
        finetune_after_default=options.finetune_after_default,
        plateau_margin_override=options.plateau_margin,
        plateau_margin_default=options.plateau_margin_default,
        gate=options.gate,
        finetune=options.finetune,
        strict=options.strict,
    )


def report_settings(options: Options, models: Iterable[str]) -> dict[str, Any]:
    """The report's ``settings`` object."""
    o = options
    return {
        "threshold": o.threshold if o.threshold is not None else o.threshold_default,
        "threshold_source": "cli" if o.threshold is not None else "suite/ini",
        "gate": o.gate,
        "concurrency": o.concurrency,
        "retries": o.retries,
        "strict": o.strict,
        "finetune": o.finetune,
        "models": sorted(models),
        "cache": "replay" if o.replay else o.cache,
        "shard": f"{o.shard[0]}/{o.shard[1]}" if o.shard else None,
    }


def write_reports(report: dict[str, Any], options: Options) -> list[tuple[Path, Exception]]:
    """Write the report files the options name (``report`` JSON, ``markdown``, ``html``), each
    on its own: one that fails does not cost the others. Returns the failures."""
    from pytest_promptgate.report.json_report import write_json_atomic, write_text_atomic

    def markdown(path: Path) -> None:
        from pytest_promptgate.report.markdown import render_markdown

        write_text_atomic(path, render_markdown(report))

    def html(path: Path) -> None:
        from pytest_promptgate.report.html import render_html

        write_text_atomic(path, render_html(report))

    def json_report(path: Path) -> None:
        write_json_atomic(path, report)

    writers: list[tuple[Path | None, Callable[[Path], None]]] = [
        (options.report, json_report),
        (options.markdown, markdown),
        (options.html, html),
    ]
    failures: list[tuple[Path, Exception]] = []
    for path, write in writers:
        if path is not None:
            try:
                write(path)
            except Exception as exc:
                failures.append((path, exc))
    return failures


# -- jobs --------------------------------------------------------------------------------------
def resolve_model(suite: Suite, options: Options, version: Version | None = None) -> str:
    """The model a suite (or one of its versions) runs with: the command line, else the
    version's own `model:`, else the suite's, else the ini default."""
    model = options.model or (version.model if version else None) or suite.model
    model = model or options.model_default
    if not model:
        raise SuiteError(
            f"no model for prompt `{suite.prompt}`",
            suite.location,
            hint="add `model: openai/gpt-4o-mini` (any litellm model) to the suite, "
            "or pass --promptgate-model / set the ini option promptgate_model",
        )
    return model


def suite_file(suite: Suite, rootdir: Path | None) -> str:
    """The suite's path as reports and node ids name it: relative to ``rootdir`` if inside."""
    if rootdir is not None:
        try:
            return suite.file.resolve().relative_to(rootdir.resolve()).as_posix()
        except ValueError:
            pass
    return suite.file.as_posix()


def case_job(
    suite: Suite,
    version: Version,
    case: Case,
    options: Options,
    *,
    rootdir: Path | None = None,
    node_id: str | None = None,
) -> Job:
    """The job of one (version, case) of a suite. Every Job is made here."""
    return Job(
        prompt=suite.prompt,
        version=version.label,
        case=case,
        model=resolve_model(suite, options, version),
        messages=tuple(suite.rendered[(version.label, case.id)]),
        params=suite.params_for(version),
        repeat=case.repeat,
        suite_dir=suite.file.parent,
        rootdir=rootdir,
        location=case.location,
        node_id=node_id
        or f"{suite_file(suite, rootdir)}::{suite.prompt}::{version.label}::{case.id}",
        rpm=suite.rpm or options.rpm,
    )


def build_jobs(
    suites: Iterable[Suite],
    options: Options | None = None,
    *,
    rootdir: str | Path | None = None,
    current_only: bool = False,
    **overrides: Any,
) -> list[Job]:
    """One job per (version, case) of every suite (``current_only``: the last version only),
    node ids ``<suite file>::<prompt>::<version>::<case>`` as pytest names them."""
    resolved = _options(options, overrides)
    root = Path(rootdir) if rootdir is not None else None
    return [
        case_job(suite, version, case, resolved, rootdir=root)
        for suite in suites
        for version in (suite.versions[-1:] if current_only else suite.versions)
        for case in suite.cases
    ]


# -- running and gating ------------------------------------------------------------------------
def run(
    suites: Iterable[Suite | str | Path] | Suite | str | Path,
    options: Options | None = None,
    *,
    rootdir: str | Path | None = None,
    **overrides: Any,
) -> RunResult:
    """Run every case of the suites (paths or loaded suites), check the outputs and gate.

    No cache, no history and no report files unless ``cache_dir=``, ``history=``, ``report=``,
    ``markdown=`` or ``html=`` are given. Blocks until done;
    inside a running event loop (a Jupyter cell) the batch runs in a helper thread, so
    ``result = run(...)`` works there as written.
    """
    resolved = _options(options, overrides)
    root = Path(rootdir) if rootdir is not None else Path.cwd()
    if isinstance(suites, (Suite, str, Path)):
        suites = [suites]
    loaded = [s if isinstance(s, Suite) else load_suite(s, root) for s in suites]
    jobs = build_jobs(loaded, resolved, rootdir=root)
    outcome = _run_blocking(jobs, run_settings(resolved))
    history: list[dict[str, Any]] = []
    if resolved.history is not None:
        from pytest_promptgate.history import load_records

        history, _ = load_records(resolved.history)
    evaluation = evaluate(
        outcome.results,
        loaded,
        resolved,
        rootdir=root,
        history=history,
        outcome=outcome,
    )
    if resolved.history is not None and evaluation.history_records:
        from pytest_promptgate.history import append_records

        append_records(resolved.history, evaluation.history_records)
    failures = write_reports(evaluation.report, resolved)
    if failures:
        raise failures[0][1]
    return RunResult(cases=tuple(outcome.results), report=evaluation.report, outcome=outcome)


def _run_blocking(jobs: list[Job], settings: RunSettings) -> RunOutcome:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # the usual case: no loop in this thread
        return run_jobs(jobs, settings)
    # A loop is running here (Jupyter, an async app): asyncio.run cannot nest, so the batch
    # gets its own loop in a helper thread while this one waits.
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="promptgate") as pool:
        return pool.submit(run_jobs, jobs, settings).result()


def evaluate(
    results: Iterable[CaseResult],
    suites: Iterable[Suite],
    options: Options | None = None,
    *,
    rootdir: str | Path | None = None,
    history: Iterable[Mapping[str, Any]] = (),
    outcome: RunOutcome | None = None,
    **overrides: Any,
) -> Evaluation:
    """Gate finished case results against their suites: the report, the exit status and the
    history records (``evaluate.Evaluation``)."""
    from pytest_promptgate import render
    from pytest_promptgate.evaluate import evaluate as evaluate_cases

    resolved = _options(options, overrides)
    root = Path(rootdir) if rootdir is not None else Path.cwd()
    by_prompt = {suite.prompt: suite for suite in suites}
    cases = []
    for result in results:
        suite = by_prompt[result.prompt]
        version = next(v for v in suite.versions if v.label == result.version)
        cases.append(
            EvaluatedCase(
                suite_file(suite, root),
                render.content_hash(version, result.model, suite.params_for(version)),
                result,
            )
        )
    counters = outcome or RunOutcome([], 0, 0, 0, 0.0, 0.0, 0.0, [])
    cache, run = counter_sections(counters, interrupted=False)
    return evaluate_cases(
        cases,
        {suite_file(s, root): s for s in by_prompt.values()},
        gate_settings(resolved),
        history=list(history),
        report_settings=report_settings(resolved, {c.result.model for c in cases}),
        cache=cache,
        run=run,
    )
