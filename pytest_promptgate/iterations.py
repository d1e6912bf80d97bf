"""A prompt's iterations: measured in this run, read back from the history, written to it.

An iteration is one content hash of a prompt. ``prompt_iterations`` pairs this run's versions
with the earlier iterations known only from the history file (oldest first, one per hash, the
current version last), which is what ``verdicts.decide`` judges; ``history_records`` writes
this run's versions back so a later run can do the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pytest_promptgate.history import case_set_hash, make_record
from pytest_promptgate.model import CaseResult
from pytest_promptgate.stats import VersionStats
from pytest_promptgate.verdicts import Iteration, is_inconclusive


@dataclass(frozen=True)
class VersionRun:
    """The results of one version of a prompt against one model in this run."""

    label: str
    model: str
    content_hash: str
    results: Sequence[CaseResult]


def history_iterations(
    history: Sequence[Mapping[str, Any]], prompt: str, run_hashes: set[str]
) -> list[Iteration]:
    """Earlier iterations known only from the history, oldest first.

    Inconclusive runs (no case evaluated, or > 10% errors) are not measurements and are
    ignored; the numbers of an iteration are those of its latest conclusive run.
    """
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for record in history:
        if record.get("prompt") != prompt or record.get("content_hash") in run_hashes:
            continue
        n, errors = int(record.get("n") or 0), int(record.get("errors") or 0)
        if record.get("rate") is None or is_inconclusive(n, errors):
            continue
        grouped.setdefault(str(record["content_hash"]), []).append(record)
    ordered = sorted(grouped.values(), key=lambda runs: min(str(r["timestamp"]) for r in runs))
    iterations = []
    for runs in ordered:
        latest = max(runs, key=lambda r: str(r["timestamp"]))
        case_ids = latest.get("case_ids")
        error_cases = latest.get("error_cases")
        n = int(latest.get("n") or 0)
        effective_n = latest.get("effective_n")
        iterations.append(
            Iteration(
                version=str(latest.get("version", "")),
                content_hash=str(latest["content_hash"]),
                model=str(latest.get("model", "")),
                rate=float(latest["rate"]),
                ci_low=latest.get("ci_low"),
                ci_high=latest.get("ci_high"),
                n=n,
                # Records from before the effective n was kept: the case count (conservative).
                effective_n=float(effective_n)
                if effective_n is not None and _is_number(effective_n)
                else float(n),
                source="history",
                timestamp=str(latest["timestamp"]),
                case_ids=frozenset(case_ids) if isinstance(case_ids, list) else None,
                case_set_hash=latest.get("case_set_hash"),
                failing=frozenset(latest.get("failing_cases") or ()),
                errored=frozenset(error_cases) if isinstance(error_cases, list) else frozenset(),
                errors=int(latest.get("errors") or 0),
            )
        )
    return iterations


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def run_iteration(run: VersionRun, stats: VersionStats, timestamp: str) -> Iteration:
    # All case ids, errored ones included, as history_records stores them.
    case_ids = frozenset(r.case for r in run.results)
    return Iteration(
        version=run.label,
        content_hash=run.content_hash,
        model=run.model,
        rate=stats.rate,
        ci_low=stats.ci_low,
        ci_high=stats.ci_high,
        n=stats.n,
        effective_n=stats.effective_n,
        source="run",
        timestamp=timestamp,
        case_ids=case_ids,
        case_set_hash=case_set_hash(case_ids),
        failing=frozenset(stats.failing_cases),
        errored=frozenset(stats.error_cases),
        errors=stats.errors,
    )


def utc_now() -> str:
    """Now, in UTC, as the reports and the history write it."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def prompt_iterations(
    versions: Sequence[VersionRun],
    all_stats: Sequence[VersionStats],
    history: Sequence[Mapping[str, Any]],
    prompt: str,
    timestamp: str,
) -> list[Iteration]:
    """History-only iterations first (oldest first), then this run's, one per content hash."""
    run_hashes = {run.content_hash for run in versions}
    run_iterations: dict[str, Iteration] = {}
    for run, stats in zip(versions, all_stats):
        run_iterations.pop(run.content_hash, None)  # a repeated hash counts where it last appears
        run_iterations[run.content_hash] = run_iteration(run, stats, timestamp)
    return history_iterations(history, prompt, run_hashes) + list(run_iterations.values())


def history_records(
    prompt_entry: Mapping[str, Any],
    case_ids_by_version: Mapping[str, Sequence[str]],
    git_commit: str | None,
) -> list[dict[str, Any]]:
    """One history record per version of an evaluated prompt entry.

    ``case_ids_by_version`` maps a version label to the ids of the cases it ran (errored
    ones included); it is how later runs decide whether case sets are comparable. The ids of
    the errored cases and the effective sample size come from the entry's versions, so a
    later run pairs only the cases this one evaluated and weighs repeated samples right.
    """
    timestamp = utc_now()
    return [
        make_record(
            prompt=str(prompt_entry["prompt"]),
            version=str(entry["version"]),
            content_hash=str(entry["content_hash"]),
            model=str(entry["model"]),
            case_ids=list(case_ids_by_version.get(entry["version"], ())),
            n=int(entry["n"]),
            passed=int(entry["passed"]),
            failed=int(entry["failed"]),
            errors=int(entry["errors"]),
            rate=entry["rate"],
            ci_low=entry["ci_low"],
            ci_high=entry["ci_high"],
            failing_cases=list(entry["failing_cases"]),
            cost_usd=entry["cost_usd"],
            git_commit=git_commit,
            timestamp=timestamp,
            error_cases=list(entry.get("error_cases") or ()),
            effective_n=entry.get("effective_n"),
        )
        for entry in prompt_entry["versions"]
    ]
