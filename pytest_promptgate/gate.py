"""The verdict of one prompt, and its ``prompts[]`` entry in the JSON report.

The verdict is decided on the current (last) version, in this order:

1. ``INCONCLUSIVE`` — more than 10% of its cases errored, or no case was evaluated: the
   measurement itself cannot be trusted, so nothing else is said.
2. ``PASS`` — the gate passes: ``point`` rate >= threshold; ``lower`` lower bound of the 95%
   interval >= threshold; ``upper`` fails only when the upper bound < threshold.
3. ``RETHINK`` — the rate is below 10% (seed: "if 90% fail, you have a bigger problem than
   fine-tuning can solve alone"). Only for a failing version, so that a suite with a
   threshold under 10% can still pass.
4. ``CONSIDER FINE-TUNING`` — the last K iterations (distinct content hashes, including ones
   known only from the history) all failed the gate, on comparable case sets, and the rates
   plateaued: the best iteration of the window does not beat the first significantly
   (p >= 0.05; exact McNemar on paired case outcomes when both iterations have them,
   otherwise a pooled two-proportion z-test on their effective sample sizes), and the
   failures are systematic rather than noise.
5. ``FAIL`` — otherwise, with advice to iterate and the failing cases.

Comparable case sets: same case-set hash, or an overlap |A∩B| / max(|A|, |B|) >= 80% of the
case ids (history records keep their case ids). Records without case ids (written by other
tools) are compared by their failing cases: at least 80% of them still exist and n is within
20%.

Noise: when the sets of failing cases of the window's iterations barely overlap (mean pairwise
Jaccard < 0.3), different cases fail each time; that is not the systematic failure fine-tuning
fixes, so the verdict stays FAIL, ``noise`` is true and the advice suggests ``repeat:``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import combinations
from typing import Any

from pytest_promptgate import advisor
from pytest_promptgate.history import case_set_hash, make_record
from pytest_promptgate.model import (
    CONSIDER_FINE_TUNING,
    FAIL,
    INCONCLUSIVE,
    PASS,
    RETHINK,
    CaseResult,
    Suite,
)
from pytest_promptgate.stats import (
    VersionStats,
    format_percent,
    mcnemar_exact,
    two_proportion_p,
    version_stats,
    width_note,
)

GATE_MODES = ("point", "lower", "upper")
FINETUNE_MODES = ("fail", "flag")
MAX_ERROR_FRACTION = 0.10
RETHINK_BELOW = 0.10
SIGNIFICANCE = 0.05
COMPARABLE_OVERLAP = 0.80
NOISE_JACCARD = 0.30
MAX_LISTED_CASES = 10
MAX_FAILING_PATTERNS = 50

# Overall verdict = the worst prompt verdict in this order. INCONCLUSIVE is the worst: the
# run could not measure, so even its other verdicts are in doubt. RETHINK outranks FAIL (the
# task, model or cases are wrong, not the wording); CONSIDER FINE-TUNING is the mildest
# failure (prompting has been tried properly).
SEVERITY = (PASS, CONSIDER_FINE_TUNING, FAIL, RETHINK, INCONCLUSIVE)
_EPSILON = 1e-9  # 16/20 must equal a 0.8 threshold despite float arithmetic


@dataclass(frozen=True)
class VersionRun:
    """The results of one version of a prompt against one model in this run."""

    label: str
    model: str
    content_hash: str
    results: Sequence[CaseResult]


@dataclass(frozen=True)
class _Iteration:
    version: str
    content_hash: str
    model: str
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    effective_n: float
    source: str  # "run" | "history"
    timestamp: str | None
    case_ids: frozenset[str] | None  # None: unknown (old history record)
    case_set_hash: str | None
    failing: frozenset[str]
    errored: frozenset[str] = frozenset()  # known for this run's versions only

    def outcomes(self) -> dict[str, bool] | None:
        """Per-case pass/fail of the evaluated cases, when the case ids are known."""
        if self.case_ids is None:
            return None
        return {c: c not in self.failing for c in self.case_ids if c not in self.errored}

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "content_hash": self.content_hash,
            "model": self.model,
            "rate": _round(self.rate),
            "ci_low": _round(self.ci_low),
            "ci_high": _round(self.ci_high),
            "n": self.n,
            "source": self.source,
            "timestamp": self.timestamp,
        }

    def window_entry(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "rate": _round(self.rate),
            "ci_low": _round(self.ci_low),
            "ci_high": _round(self.ci_high),
            "n": self.n,
            "source": self.source,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def gate_passes(
    rate: float | None, ci_low: float | None, ci_high: float | None, threshold: float, gate: str
) -> bool:
    if rate is None:
        return False
    if gate == "point":
        return rate >= threshold - _EPSILON
    if gate == "lower":
        return ci_low is not None and ci_low >= threshold - _EPSILON
    if gate == "upper":
        return ci_high is not None and ci_high >= threshold - _EPSILON
    raise ValueError(f"unknown gate mode {gate!r}; expected one of {', '.join(GATE_MODES)}")


def _error_fraction(stats: VersionStats) -> float:
    total = stats.n + stats.errors
    return stats.errors / total if total else 0.0


def _inconclusive(stats: VersionStats) -> bool:
    return stats.n == 0 or _error_fraction(stats) > MAX_ERROR_FRACTION


def _describe(label: str, stats: VersionStats) -> str:
    if stats.rate is None:
        return f"{label}: no case evaluated"
    if stats.samples > 1:
        return (
            f"{label} scores {format_percent(stats.rate)} over {stats.n} cases "
            f"× {stats.samples} samples"
        )
    return f"{label} passes {stats.passed}/{stats.n} ({format_percent(stats.rate)})"


def _gate_clause(stats: VersionStats, threshold: float, gate: str, passed: bool) -> str:
    limit = f"the {format_percent(threshold)} threshold"
    if gate == "lower" and stats.ci_low is not None:
        bound = format_percent(stats.ci_low)
        if passed:
            return f"and the lower bound of its 95% interval ({bound}) clears {limit}"
        return f"but the lower bound of its 95% interval ({bound}) is below {limit}"
    if gate == "upper" and stats.ci_high is not None:
        bound = format_percent(stats.ci_high)
        if passed:
            return f"and the upper bound of its 95% interval ({bound}) reaches {limit}"
        return f"and even the upper bound of its 95% interval ({bound}) is below {limit}"
    return f"at or above {limit}" if passed else f"below {limit}"


def _version_verdict(stats: VersionStats, threshold: float, gate: str) -> str:
    if _inconclusive(stats):
        return INCONCLUSIVE
    return PASS if gate_passes(stats.rate, stats.ci_low, stats.ci_high, threshold, gate) else FAIL


def _passing_cases(stats: VersionStats) -> set[str]:
    failing = set(stats.failing_cases)
    return {case for case in stats.case_rates if case not in failing}


def _comparison(
    previous: VersionRun, prev_stats: VersionStats, stats: VersionStats
) -> dict[str, Any]:
    paired = set(prev_stats.case_rates) & set(stats.case_rates)
    before, after = _passing_cases(prev_stats), _passing_cases(stats)
    fixed = sorted(case for case in paired if case not in before and case in after)
    broken = sorted(case for case in paired if case in before and case not in after)
    delta = None
    if stats.rate is not None and prev_stats.rate is not None:
        delta = _round(stats.rate - prev_stats.rate)
    return {
        "against": previous.label,
        "delta": delta,
        "fixed": fixed,
        "broken": broken,
        "paired": len(paired),
        "p_value": mcnemar_exact(len(fixed), len(broken)),
    }


def _history_iterations(
    history: Sequence[Mapping[str, Any]], prompt: str, run_hashes: set[str]
) -> list[_Iteration]:
    """Earlier iterations known only from the history, oldest first.

    Inconclusive runs (no case evaluated, or > 10% errors) are not measurements and are
    ignored; the numbers of an iteration are those of its latest conclusive run.
    """
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for record in history:
        if record.get("prompt") != prompt or record.get("content_hash") in run_hashes:
            continue
        n, errors = int(record.get("n") or 0), int(record.get("errors") or 0)
        if record.get("rate") is None or n == 0 or errors / (n + errors) > MAX_ERROR_FRACTION:
            continue
        grouped.setdefault(str(record["content_hash"]), []).append(record)
    ordered = sorted(grouped.values(), key=lambda runs: min(str(r["timestamp"]) for r in runs))
    iterations = []
    for runs in ordered:
        latest = max(runs, key=lambda r: str(r["timestamp"]))
        case_ids = latest.get("case_ids")
        iterations.append(
            _Iteration(
                version=str(latest.get("version", "")),
                content_hash=str(latest["content_hash"]),
                model=str(latest.get("model", "")),
                rate=float(latest["rate"]),
                ci_low=latest.get("ci_low"),
                ci_high=latest.get("ci_high"),
                n=int(latest.get("n") or 0),
                effective_n=float(latest.get("n") or 0),
                source="history",
                timestamp=str(latest["timestamp"]),
                case_ids=frozenset(case_ids) if isinstance(case_ids, list) else None,
                case_set_hash=latest.get("case_set_hash"),
                failing=frozenset(latest.get("failing_cases") or ()),
            )
        )
    return iterations


def _run_iteration(run: VersionRun, stats: VersionStats, timestamp: str) -> _Iteration:
    # All case ids, errored ones included, as history_records stores them.
    case_ids = frozenset(r.case for r in run.results)
    return _Iteration(
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
    )


def _comparable(iteration: _Iteration, reference: _Iteration) -> bool:
    if iteration.case_set_hash is not None and iteration.case_set_hash == reference.case_set_hash:
        return True
    assert reference.case_ids is not None  # the reference is the current run
    if iteration.case_ids is not None:
        larger = max(len(iteration.case_ids), len(reference.case_ids))
        return (
            larger > 0
            and len(iteration.case_ids & reference.case_ids) / larger >= COMPARABLE_OVERLAP
        )
    # Old record without case ids: judge by what it tells (its failing cases and its size).
    sizes_close = reference.n > 0 and abs(iteration.n - reference.n) <= 0.2 * reference.n
    if not iteration.failing:
        return sizes_close
    still_there = len(iteration.failing & reference.case_ids) / len(iteration.failing)
    return sizes_close and still_there >= COMPARABLE_OVERLAP


def _improvement_p_value(first: _Iteration, best: _Iteration) -> tuple[float, str]:
    """p-value of "best differs from first", and the test used."""
    if best is first:
        return 1.0, "none"
    first_outcomes, best_outcomes = first.outcomes(), best.outcomes()
    if first_outcomes is not None and best_outcomes is not None:
        paired = set(first_outcomes) & set(best_outcomes)
        if paired:
            fixed = sum(1 for c in paired if not first_outcomes[c] and best_outcomes[c])
            broken = sum(1 for c in paired if first_outcomes[c] and not best_outcomes[c])
            return mcnemar_exact(fixed, broken), "McNemar"
    assert first.rate is not None and best.rate is not None
    return two_proportion_p(
        first.rate, first.effective_n, best.rate, best.effective_n
    ), "two-proportion test"


def _mean_jaccard(sets: Sequence[frozenset[str]]) -> float | None:
    pairs = [(a, b) for a, b in combinations(sets, 2) if a | b]
    if not pairs:
        return None
    return sum(len(a & b) / len(a | b) for a, b in pairs) / len(pairs)


def _failing_patterns(window: Sequence[_Iteration]) -> list[dict[str, Any]]:
    cases = sorted(set().union(*(it.failing for it in window)))
    patterns = []
    for case in cases:
        known = [it for it in window if it.case_ids is None or case in it.case_ids]
        patterns.append(
            {
                "case": case,
                "failed_in": sum(1 for it in window if case in it.failing),
                "of": len(known),
            }
        )
    patterns.sort(key=lambda p: (-p["failed_in"], p["case"]))
    return patterns[:MAX_FAILING_PATTERNS]


def _list_cases(cases: Sequence[str]) -> str:
    shown = ", ".join(cases[:MAX_LISTED_CASES])
    more = len(cases) - MAX_LISTED_CASES
    return shown + (f" (+{more} more)" if more > 0 else "")


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def evaluate_prompt(
    *,
    suite: Suite,
    file: str,
    versions: Sequence[VersionRun],
    threshold: float,
    gate: str = "point",
    finetune_after: int = 3,
    history: Sequence[Mapping[str, Any]] = (),
    finetune_mode: str = "fail",
) -> dict[str, Any]:
    """The ``prompts[]`` entry of the JSON report for one prompt (docs/ARCHITECTURE.md).

    ``versions`` are in suite order; the last one is the current version. ``history`` is
    the content of the history file (all prompts; this function picks its own).
    ``finetune_mode`` does not change the verdict (only ``overall``'s exit status); it is
    accepted so the advice can say whether the build is blocked.
    """
    if not versions:
        raise ValueError(f"prompt {suite.prompt!r}: no version was run")
    if gate not in GATE_MODES:
        raise ValueError(f"unknown gate mode {gate!r}; expected one of {', '.join(GATE_MODES)}")
    if finetune_mode not in FINETUNE_MODES:
        raise ValueError(f"unknown finetune mode {finetune_mode!r}; expected fail or flag")
    finetune_after = max(1, int(finetune_after))
    timestamp = _utc_now()
    all_stats = [version_stats(run.results) for run in versions]

    version_entries = []
    for index, (run, stats) in enumerate(zip(versions, all_stats)):
        comparison = None
        if index > 0:
            comparison = _comparison(versions[index - 1], all_stats[index - 1], stats)
        version_entries.append(
            {
                "version": run.label,
                "model": run.model,
                "content_hash": run.content_hash,
                "current": index == len(versions) - 1,
                "n": stats.n,
                "passed": stats.passed,
                "failed": stats.failed,
                "errors": stats.errors,
                "rate": _round(stats.rate),
                "ci_low": _round(stats.ci_low),
                "ci_high": _round(stats.ci_high),
                "verdict": _version_verdict(stats, threshold, gate),
                "cost_usd": stats.cost_usd,
                "tokens": dict(stats.tokens),
                "latency_p50_ms": stats.latency_p50_ms,
                "latency_p95_ms": stats.latency_p95_ms,
                "failing_cases": list(stats.failing_cases),
                "flaky_cases": list(stats.flaky_cases),
                "samples": stats.samples,
                "note": width_note(stats.rate, stats.ci_low, stats.ci_high, threshold, stats.n),
                "comparison": comparison,
                "baseline": None,
            }
        )

    # Iterations: history-only versions first (oldest first), then this run's, one per hash.
    run_hashes = {run.content_hash for run in versions}
    run_iterations: dict[str, _Iteration] = {}
    for run, stats in zip(versions, all_stats):
        run_iterations.pop(run.content_hash, None)  # a repeated hash counts where it last appears
        run_iterations[run.content_hash] = _run_iteration(run, stats, timestamp)
    iterations = _history_iterations(history, suite.prompt, run_hashes) + list(
        run_iterations.values()
    )

    current_run, current = versions[-1], all_stats[-1]
    description = _describe(current_run.label, current)
    passes = gate_passes(current.rate, current.ci_low, current.ci_high, threshold, gate)
    advice: dict[str, Any] | None

    if _inconclusive(current):
        verdict = INCONCLUSIVE
        if current.errors:
            reason = (
                f"{current.errors} of {current.n + current.errors} cases of {current_run.label} "
                f"errored ({format_percent(_error_fraction(current))}, more than "
                f"{format_percent(MAX_ERROR_FRACTION)}): the rate cannot be trusted"
            )
        else:
            reason = f"{current_run.label}: no case evaluated"
        advice = advisor.build_advice(
            kind="inconclusive",
            message=reason + "; fix the provider errors (see the errored cases) and run again",
        )
    elif passes:
        verdict = PASS
        reason = f"{description}, {_gate_clause(current, threshold, gate, True)}"
        advice = None
    elif current.rate is not None and current.rate < RETHINK_BELOW:
        verdict = RETHINK
        reason = (
            f"{description}: fewer than {format_percent(RETHINK_BELOW)} of the cases pass, "
            "a bigger problem than prompt wording or fine-tuning can solve"
        )
        advice = advisor.build_advice(
            kind="rethink",
            message=(
                "if 90% fail, the task, the model or the cases are wrong: check the expectations "
                "against a few outputs by hand, try a stronger model, or split the task"
            ),
            failing_patterns=_failing_patterns([iterations[-1]]),
        )
    else:
        verdict, reason, advice = _below_threshold(
            suite=suite,
            file=file,
            iterations=iterations,
            current=current,
            description=description,
            threshold=threshold,
            gate=gate,
            finetune_after=finetune_after,
            finetune_mode=finetune_mode,
        )

    return {
        "prompt": suite.prompt,
        "file": file,
        "line": suite.location.line if suite.location else 1,
        "description": suite.description,
        "threshold": threshold,
        "verdict": verdict,
        "reason": reason,
        "current_version": current_run.label,
        "versions": version_entries,
        "iterations": [it.to_dict() for it in iterations],
        "advice": advice,
    }


def _below_threshold(
    *,
    suite: Suite,
    file: str,
    iterations: Sequence[_Iteration],
    current: VersionStats,
    description: str,
    threshold: float,
    gate: str,
    finetune_after: int,
    finetune_mode: str,
) -> tuple[str, str, dict[str, Any]]:
    """FAIL or CONSIDER FINE-TUNING for a current version that fails the gate."""
    reason = f"{description}, {_gate_clause(current, threshold, gate, False)}"
    window = list(iterations[-finetune_after:])
    reference = iterations[-1]
    jaccard = _mean_jaccard([it.failing for it in window])
    noise = len(window) >= 2 and jaccard is not None and jaccard < NOISE_JACCARD
    patterns = _failing_patterns(window)
    iterate_message = (
        f"iterate on the prompt; failing cases: {_list_cases(list(current.failing_cases))}"
        if current.failing_cases
        else "iterate on the prompt"
    )

    def iterate(why: str, p_value: float | None = None) -> tuple[str, str, dict[str, Any]]:
        message = f"{why}: {iterate_message}" if why else iterate_message
        if noise:
            message += (
                f". Different cases fail in each iteration (mean overlap "
                f"{format_percent(jaccard or 0.0)}): this looks like noise, not a systematic "
                "failure; sample each case several times (`repeat: 3` or more) before deciding"
            )
        return (
            FAIL,
            reason,
            advisor.build_advice(
                kind="iterate",
                message=message,
                window=[it.window_entry() for it in window],
                plateau_p_value=p_value,
                noise=noise,
                failing_patterns=patterns,
            ),
        )

    if len(iterations) < finetune_after:
        return iterate(
            f"iteration {len(iterations)} of the {finetune_after} below the threshold after "
            "which fine-tuning is worth considering"
        )
    still_failing = all(
        not gate_passes(it.rate, it.ci_low, it.ci_high, threshold, gate) for it in window
    )
    if not still_failing:
        passed = [
            it.version
            for it in window
            if gate_passes(it.rate, it.ci_low, it.ci_high, threshold, gate)
        ]
        return iterate(
            f"an iteration in the last {finetune_after} passed ({', '.join(passed)}): "
            "the prompt regressed"
        )
    incomparable = [it.version for it in window if not _comparable(it, reference)]
    if incomparable:
        return iterate(
            f"the case set changed since {', '.join(incomparable)}, so the last "
            f"{finetune_after} iterations cannot be compared"
        )
    first = window[0]
    best = max(window, key=lambda it: it.rate or 0.0)  # ties: the earliest, i.e. no gain
    if (best.rate or 0.0) <= (first.rate or 0.0):
        best = first
    p_value, test = _improvement_p_value(first, best)
    if p_value < SIGNIFICANCE:
        return iterate(
            f"the rate is still improving ({first.version} {format_percent(first.rate or 0)} → "
            f"{best.version} {format_percent(best.rate or 0)}, {test} p={p_value:.3g}): keep going",
            p_value,
        )
    if noise:
        return iterate(f"the last {finetune_after} iterations stayed below the threshold", p_value)
    gain = (
        "no iteration beat the first"
        if best is first
        else f"best {best.version} {format_percent(best.rate or 0)} vs first {first.version} "
        f"{format_percent(first.rate or 0)}, {test} p={p_value:.2f}"
    )
    message = (
        f"{finetune_after} iterations all below {format_percent(threshold)} and the rates "
        f"plateaued ({gain}): consider fine-tuning"
    )
    if finetune_mode == "flag":
        message += " (flagged: the build is not blocked)"
    advice = advisor.build_advice(
        kind="consider-fine-tuning",
        message=message,
        window=[it.window_entry() for it in window],
        plateau_p_value=p_value,
        noise=False,
        failing_patterns=patterns,
        suite=suite,
        file=file,
        cost_per_call_usd=current.cost_per_call_usd,
    )
    return CONSIDER_FINE_TUNING, f"{reason}; {message}", advice


def overall(prompts: Sequence[Mapping[str, Any]], finetune_mode: str) -> tuple[str, int]:
    """Overall verdict and exit status of a run.

    Exit 0 when every prompt passes, or when the only other verdict is CONSIDER FINE-TUNING
    and ``finetune_mode == "flag"`` (the overall verdict is then PASS, the flag stays on the
    prompt). Otherwise exit 1 and the worst verdict by ``SEVERITY``. No prompt at all is
    INCONCLUSIVE: a run that evaluates nothing must not look green.
    """
    if not prompts:
        return INCONCLUSIVE, 1
    verdicts = [str(p["verdict"]) for p in prompts]
    tolerated = {PASS} | ({CONSIDER_FINE_TUNING} if finetune_mode == "flag" else set())
    if all(v in tolerated for v in verdicts):
        return PASS, 0
    worst = max(verdicts, key=lambda v: SEVERITY.index(v) if v in SEVERITY else len(SEVERITY))
    return worst, 1


def history_records(
    prompt_entry: Mapping[str, Any],
    case_ids_by_version: Mapping[str, Sequence[str]],
    git_commit: str | None,
) -> list[dict[str, Any]]:
    """One history record per version of an evaluated prompt entry.

    ``case_ids_by_version`` maps a version label to the ids of the cases it ran (errored
    ones included); it is how later runs decide whether case sets are comparable.
    """
    timestamp = _utc_now()
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
        )
        for entry in prompt_entry["versions"]
    ]
