"""From finished case results to the report: group, gate, record history.

Shared by the pytest plugin (on the controller, after every item ran) and by
`promptgate merge` (over shard reports), so both reach the same verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_promptgate import gate
from pytest_promptgate.model import CaseResult, Suite
from pytest_promptgate.options import (
    DEFAULT_FINETUNE,
    DEFAULT_FINETUNE_AFTER,
    DEFAULT_GATE,
    DEFAULT_PLATEAU_MARGIN,
    DEFAULT_THRESHOLD,
)
from pytest_promptgate.report.json_report import build_report, case_entry


@dataclass(frozen=True)
class GateSettings:
    """What decides a verdict. ``*_override`` come from the command line and beat the suite."""

    threshold_override: float | None = None
    threshold_default: float = DEFAULT_THRESHOLD
    finetune_after_override: int | None = None
    finetune_after_default: int = DEFAULT_FINETUNE_AFTER
    plateau_margin_override: float | None = None
    plateau_margin_default: float = DEFAULT_PLATEAU_MARGIN
    gate: str = DEFAULT_GATE
    finetune: str = DEFAULT_FINETUNE
    strict: bool = False

    def threshold_for(self, suite: Suite) -> float:
        if self.threshold_override is not None:
            return self.threshold_override
        return suite.threshold if suite.threshold is not None else self.threshold_default

    def plateau_margin_for(self, suite: Suite) -> float:
        if self.plateau_margin_override is not None:
            return self.plateau_margin_override
        if suite.plateau_margin is not None:
            return suite.plateau_margin
        return self.plateau_margin_default

    def finetune_after_for(self, suite: Suite) -> int:
        if self.finetune_after_override is not None:
            return self.finetune_after_override
        return (
            suite.finetune_after
            if suite.finetune_after is not None
            else self.finetune_after_default
        )


@dataclass(frozen=True)
class EvaluatedCase:
    """A finished case and what identifies its suite and version iteration."""

    suite_file: str  # suite path relative to the rootdir
    content_hash: str
    result: CaseResult


@dataclass
class Evaluation:
    report: dict[str, Any]
    exit_status: int
    history_records: list[dict[str, Any]] = field(default_factory=list)


def counter_sections(counters: Any, *, interrupted: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report's ``summary.cache`` and ``run`` sections from a run's counters: a
    ``runner.RunOutcome`` (``api.run``) or the plugin's ``RunCounters``, which share these names."""
    cache = {
        "hits": counters.cache_hits,
        "misses": counters.cache_misses,
        "saved_usd": round(counters.saved_usd, 8),
    }
    run = {
        "calls": counters.calls,
        "model_phase_s": round(counters.model_phase_s, 3),
        "call_workers": counters.call_workers,
        "interrupted": interrupted,
        "spent_usd": round(counters.spent_usd, 8),
    }
    return cache, run


def evaluate_suite(
    suite: Suite,
    suite_file: str,
    cases: Sequence[EvaluatedCase],
    settings: GateSettings,
    history: Sequence[Mapping[str, Any]] = (),
) -> tuple[dict[str, Any], list[gate.VersionRun]]:
    """The report's `prompts[]` entry for one suite, and the version runs it was gated on."""
    version_order = {version.label: index for index, version in enumerate(suite.versions)}
    case_order = {case.id: index for index, case in enumerate(suite.cases)}
    by_version: dict[str, list[EvaluatedCase]] = {}
    for case in cases:
        by_version.setdefault(case.result.version, []).append(case)
    version_runs = []
    for label in sorted(by_version, key=lambda label: version_order.get(label, len(version_order))):
        version_cases = by_version[label]
        results = sorted(
            (c.result for c in version_cases), key=lambda r: case_order.get(r.case, 1 << 30)
        )
        version_runs.append(
            gate.VersionRun(
                label=label,
                model=results[0].model,
                content_hash=version_cases[0].content_hash,
                results=tuple(results),
            )
        )
    entry = gate.evaluate_prompt(
        suite=suite,
        file=suite_file,
        versions=version_runs,
        threshold=settings.threshold_for(suite),
        gate=settings.gate,
        finetune_after=settings.finetune_after_for(suite),
        history=[r for r in history if r.get("prompt") == suite.prompt],
        finetune_mode=settings.finetune,
        plateau_margin=settings.plateau_margin_for(suite),
    )
    return entry, version_runs


def evaluate(
    cases: Sequence[EvaluatedCase],
    suites: Mapping[str, Suite],
    settings: GateSettings,
    *,
    history: Sequence[Mapping[str, Any]] = (),
    report_settings: Mapping[str, Any] | None = None,
    cache: Mapping[str, Any] | None = None,
    run: Mapping[str, Any] | None = None,
    git_commit: str | None = None,
) -> Evaluation:
    """Gate every prompt that has results and assemble the report document.

    ``suites`` maps the suite path (as in EvaluatedCase.suite_file) to the loaded Suite.
    """
    by_suite: dict[str, list[EvaluatedCase]] = {}
    for case in cases:
        by_suite.setdefault(case.suite_file, []).append(case)

    prompts: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    for suite_file in sorted(by_suite):
        entry, version_runs = evaluate_suite(
            suites[suite_file], suite_file, by_suite[suite_file], settings, history
        )
        prompts.append(entry)
        case_ids = {run.label: [r.case for r in run.results] for run in version_runs}
        records.extend(gate.history_records(entry, case_ids, git_commit))

    verdict, exit_status = gate.overall(prompts, settings.finetune)
    case_entries = [
        case_entry(c.result, file=c.suite_file)
        for suite_file in sorted(by_suite)
        for c in by_suite[suite_file]
    ]
    report = build_report(
        prompts=prompts,
        cases=case_entries,
        verdict=verdict,
        exit_status=exit_status,
        settings=report_settings or {},
        cache=cache,
        run=run,
    )
    return Evaluation(report=report, exit_status=exit_status, history_records=records)
