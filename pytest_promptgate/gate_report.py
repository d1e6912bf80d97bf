"""The gate's part of the JSON report: a prompt's ``versions[]`` entries, its reason and advice.

``version_entries`` describes each version run (rates, interval, comparison with the previous
version); ``reason_and_advice`` turns a ``verdicts.Decision`` into the sentence a reader sees
and the advice (``advisor.build_advice``) that explains the verdict and what to do next.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_promptgate import advisor
from pytest_promptgate.assertions.scoring import metric_rates
from pytest_promptgate.iterations import VersionRun
from pytest_promptgate.model import FAIL, INCONCLUSIVE, PASS, RETHINK, Suite
from pytest_promptgate.stats import VersionStats, format_percent, mcnemar_exact, width_note
from pytest_promptgate.verdicts import (
    MAX_ERROR_FRACTION,
    RETHINK_BELOW,
    Decision,
    Iteration,
    gate_passes,
    is_inconclusive,
    rounded,
)

MAX_LISTED_CASES = 10
MAX_FAILING_PATTERNS = 50

PLATEAU_TEST = (
    "A plateau is declared only when the data shows that no version of the window beat the "
    "first by {margin} points or more, not merely when an improvement could not be proven. "
    "For each version, the most it can plausibly have gained over the first on the same cases "
    "(the upper end of a 95% confidence range) must stay below {margin} points."
)


def _error_fraction(stats: VersionStats) -> float:
    total = stats.n + stats.errors
    return stats.errors / total if total else 0.0


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
    if is_inconclusive(stats.n, stats.errors):
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
        delta = rounded(stats.rate - prev_stats.rate)
    return {
        "against": previous.label,
        "delta": delta,
        "fixed": fixed,
        "broken": broken,
        "paired": len(paired),
        "p_value": mcnemar_exact(len(fixed), len(broken)),
    }


def _failing_patterns(window: Sequence[Iteration]) -> list[dict[str, Any]]:
    cases = sorted(set().union(*(it.failing for it in window)))
    patterns: list[dict[str, Any]] = []
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


def _points(x: float) -> str:
    value = round(x * 100, 1)
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def version_entries(
    versions: Sequence[VersionRun], all_stats: Sequence[VersionStats], threshold: float, gate: str
) -> list[dict[str, Any]]:
    """The ``versions[]`` entries of a prompt, in suite order (the last one is current)."""
    entries = []
    for index, (run, stats) in enumerate(zip(versions, all_stats)):
        comparison = None
        if index > 0:
            comparison = _comparison(versions[index - 1], all_stats[index - 1], stats)
        entries.append(
            {
                "version": run.label,
                "model": run.model,
                "content_hash": run.content_hash,
                "current": index == len(versions) - 1,
                "n": stats.n,
                "passed": stats.passed,
                "failed": stats.failed,
                "errors": stats.errors,
                "rate": rounded(stats.rate),
                "ci_low": rounded(stats.ci_low),
                "ci_high": rounded(stats.ci_high),
                "verdict": _version_verdict(stats, threshold, gate),
                "cost_usd": stats.cost_usd,
                "tokens": dict(stats.tokens),
                "latency_p50_ms": stats.latency_p50_ms,
                "latency_p95_ms": stats.latency_p95_ms,
                "failing_cases": list(stats.failing_cases),
                "flaky_cases": list(stats.flaky_cases),
                "error_cases": list(stats.error_cases),
                "samples": stats.samples,
                "effective_n": round(stats.effective_n, 6),
                "note": width_note(
                    stats.rate,
                    stats.ci_low,
                    stats.ci_high,
                    threshold,
                    stats.n,
                    effective_n=stats.effective_n,
                ),
                "comparison": comparison,
                "baseline": None,
                # promptfoo's `metric`: pass rate per named metric (only when a suite names one)
                **({"metrics": metrics} if (metrics := metric_rates(run.results)) else {}),
            }
        )
    return entries


def reason_and_advice(
    decision: Decision,
    *,
    iterations: Sequence[Iteration],
    suite: Suite,
    file: str,
    current_run: VersionRun,
    current: VersionStats,
    threshold: float,
    gate: str,
    finetune_after: int,
    finetune_mode: str,
    plateau_margin: float,
) -> tuple[str, dict[str, Any] | None]:
    """The reason (one sentence) and the advice (None for PASS) of a prompt's verdict."""
    description = _describe(current_run.label, current)
    advice: dict[str, Any] | None
    if decision.verdict == INCONCLUSIVE:
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
    elif decision.verdict == PASS:
        reason = f"{description}, {_gate_clause(current, threshold, gate, True)}"
        advice = None
    elif decision.verdict == RETHINK:
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
        reason, advice = _below_threshold(
            decision,
            suite=suite,
            file=file,
            current=current,
            current_model=current_run.model,
            description=description,
            threshold=threshold,
            gate=gate,
            finetune_after=finetune_after,
            finetune_mode=finetune_mode,
            plateau_margin=plateau_margin,
        )
    return reason, advice


def _tokens_per_call(stats: VersionStats) -> tuple[float, float] | None:
    """The average (prompt, completion) tokens of a version's successful calls; None if none."""
    if not stats.calls:
        return None
    return (
        stats.tokens.get("prompt", 0) / stats.calls,
        stats.tokens.get("completion", 0) / stats.calls,
    )


def _window_gain(decision: Decision) -> str:
    """The gains of the window, e.g. "v2 +2.5 points (at most +9.7), v3 +5 (at most +12.4)"."""
    parts = [
        f"{g.later} {'+' if g.delta >= 0 else '−'}{_points(abs(g.delta))} "
        f"(at most {'+' if g.upper >= 0 else '−'}{_points(abs(g.upper))})"
        for g in decision.gains
    ]
    first = decision.window[0].version if decision.window else "the first"
    return f"gain over {first} in points: " + ", ".join(parts) if parts else "no later iteration"


def _below_threshold(
    decision: Decision,
    *,
    suite: Suite,
    file: str,
    current: VersionStats,
    current_model: str,
    description: str,
    threshold: float,
    gate: str,
    finetune_after: int,
    finetune_mode: str,
    plateau_margin: float,
) -> tuple[str, dict[str, Any]]:
    """The reason and advice of a FAIL or CONSIDER FINE-TUNING verdict."""
    reason = f"{description}, {_gate_clause(current, threshold, gate, False)}"
    window = list(decision.window)
    patterns = _failing_patterns(window)
    margin = _points(plateau_margin)
    plateau_test = PLATEAU_TEST.format(margin=margin)
    first, best = (window[0] if window else None), decision.best
    iterate_message = (
        f"iterate on the prompt; failing cases: {_list_cases(list(current.failing_cases))}"
        if current.failing_cases
        else "iterate on the prompt"
    )
    evidence: dict[str, Any] = {
        "window": [it.window_entry() for it in window],
        "plateau_p_value": decision.p_value,
        "plateau_margin": plateau_margin,
        "plateau_upper_bound": rounded(decision.upper),
        "cases_needed": decision.cases_needed,
        "failing_patterns": patterns,
    }

    if decision.finding == "plateau":
        head = (
            f"{finetune_after} iterations all below {format_percent(threshold)} and the rates "
            f"plateaued ({_window_gain(decision)}, all below {margin}): consider fine-tuning"
        )
        if finetune_mode == "flag":
            head += " (flagged: the build is not blocked)"
        message = f"{head}. {plateau_test}"
        advice = advisor.build_advice(
            kind="consider-fine-tuning",
            message=message,
            noise=False,
            suite=suite,
            file=file,
            cost_per_call_usd=current.cost_per_call_usd,
            current_model=current_model,
            window_models=[it.model for it in window],
            tokens_per_call=_tokens_per_call(current),
            **evidence,
        )
        return f"{reason}; {head}", advice

    if decision.finding == "too-few-iterations":
        why = (
            f"iteration {len(window)} of the {finetune_after} below the threshold after "
            "which fine-tuning is worth considering"
        )
    elif decision.finding == "regressed":
        drops = ", ".join(f"{v}, p={p:.2g}" for v, p in decision.regressed_from)
        why = (
            f"an iteration in the last {finetune_after} passed ({', '.join(decision.passed)}) "
            f"and the drop since is significant ({drops}): the prompt regressed"
        )
    elif decision.finding == "incomparable":
        why = (
            f"the case set changed since {', '.join(decision.incomparable)}, so the last "
            f"{finetune_after} iterations cannot be compared"
        )
    elif decision.finding == "improving":
        assert first is not None and best is not None
        why = (
            f"the rate is still improving ({first.version} {format_percent(first.rate or 0)} → "
            f"{best.version} {format_percent(best.rate or 0)}, {decision.test} "
            f"p={decision.p_value:.3g}): keep going"
        )
    elif decision.finding == "too-few-cases" and decision.cases_needed is not None:
        why = (
            f"too few cases to tell a plateau from a {margin}-point gain: about "
            f"{decision.cases_needed} cases would ({_window_gain(decision)}; a plateau needs "
            f"every upper bound below {margin}). {plateau_test} Until then"
        )
    elif decision.finding == "too-few-cases":
        why = (
            f"no plateau: an observed gain is {margin} points or close to it, though not "
            f"significant yet ({_window_gain(decision)}; {decision.test} "
            f"p={decision.p_value:.2g}), so more cases would not show a plateau; keep going"
        )
    else:  # noise: a plateau on paper, but different cases fail each time
        why = f"the last {finetune_after} iterations stayed below the threshold"
    message = f"{why}: {iterate_message}"
    if decision.noise:
        message += (
            f". Different cases fail in each iteration (mean overlap "
            f"{format_percent(decision.jaccard or 0.0)}): this looks like noise, not a systematic "
            "failure; sample each case several times (`repeat: 3` or more) before deciding"
        )
    advice = advisor.build_advice(kind="iterate", message=message, noise=decision.noise, **evidence)
    return reason, advice
