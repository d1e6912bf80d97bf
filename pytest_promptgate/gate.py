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
   known only from the history) are comparable, none of them passed the gate by more than
   chance (a drop from a passing iteration to the current one that is significant is a
   regression, and the verdict stays FAIL), the failures are systematic rather than noise,
   and the window *shows* a plateau (the plateau test below).
5. ``FAIL`` — otherwise, with advice to iterate and the failing cases; when the window could
   be a plateau but the cases are too few to tell, the advice says how many would.

The plateau test asks for positive evidence. For each later iteration of the window, the
gain over the first is bounded from above: the one-sided 95% upper confidence bound of
``rate(later) - rate(first)`` (Newcombe's hybrid score interval for paired proportions,
on the cases both evaluated; Newcombe's interval for independent proportions on the
effective sample sizes when a history record has no case ids). The window is a plateau only
when every bound is below the margin δ (``plateau_margin``, default 15 points): the data
then shows that no iteration gained δ or more. Requiring every comparison at level 5% keeps
the overall error at 5% (an intersection-union test), so no multiplicity correction is
needed. A gain below δ that is nevertheless significant is still a plateau: δ is what the
suite calls a meaningful gain. When a bound reaches δ and the best iteration is
significantly better than the first (exact McNemar, or a pooled two-proportion test when
unpaired, p < 0.05), the prompt is "still improving"; otherwise the cases are too few to
tell, and the advice gives the number of cases at which the same observed discordance would
bound the gain below δ. docs/advisor.md explains the test and benchmarks/bench_verdicts.py
measures it.

Comparable case sets: same case-set hash, or an overlap |A∩B| / max(|A|, |B|) >= 80% of the
case ids (history records keep their case ids). Records without case ids (written by other
tools) are compared by their failing cases: at least 80% of them still exist and n is within
20%. Paired comparisons leave out the cases that errored in either iteration (history
records keep the ids of errored cases).

Noise: when the sets of failing cases of the window's iterations barely overlap (mean pairwise
Jaccard < 0.3), different cases fail each time; that is not the systematic failure fine-tuning
fixes, so the verdict stays FAIL, ``noise`` is true and the advice suggests ``repeat:``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import combinations
from typing import Any

from pytest_promptgate import advisor
from pytest_promptgate.assertions.scoring import metric_rates
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
from pytest_promptgate.options import DEFAULT_PLATEAU_MARGIN, FINETUNE_MODES, GATE_MODES
from pytest_promptgate.stats import (
    Z95_ONE_SIDED,
    VersionStats,
    cases_to_bound,
    format_percent,
    independent_difference_interval,
    mcnemar_exact,
    paired_difference_interval,
    two_proportion_p,
    version_stats,
    width_note,
    wilson,
)

__all__ = [
    "DEFAULT_PLATEAU_MARGIN",
    "FINETUNE_MODES",
    "GATE_MODES",
    "Decision",
    "Iteration",
    "VersionRun",
    "decide",
    "evaluate_prompt",
    "gate_passes",
    "history_records",
    "overall",
]

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

PLATEAU_TEST = (
    "A plateau is declared only when the data shows that no version of the window beat the "
    "first by {margin} points or more, not merely when an improvement could not be proven. "
    "For each version, the most it can plausibly have gained over the first on the same cases "
    "(the upper end of a 95% confidence range) must stay below {margin} points."
)


@dataclass(frozen=True)
class VersionRun:
    """The results of one version of a prompt against one model in this run."""

    label: str
    model: str
    content_hash: str
    results: Sequence[CaseResult]


@dataclass(frozen=True)
class Iteration:
    """One iteration of a prompt (a content hash), measured in this run or read from history."""

    version: str
    content_hash: str
    model: str
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    n: int  # evaluated cases (errored ones excluded)
    effective_n: float  # sample size behind the interval (repeated samples per case)
    source: str  # "run" | "history"
    timestamp: str | None
    case_ids: frozenset[str] | None  # every case run, errored ones included; None: unknown
    case_set_hash: str | None
    failing: frozenset[str]
    errored: frozenset[str] = frozenset()
    errors: int = 0  # errored cases (their ids may be unknown in old history records)

    @classmethod
    def measured(
        cls,
        version: str,
        *,
        passing: Iterable[str],
        failing: Iterable[str],
        errored: Iterable[str] = (),
        source: str = "run",
        content_hash: str | None = None,
    ) -> Iteration:
        """An iteration from one pass/fail outcome per case (one sample each)."""
        passing, failing, errored = frozenset(passing), frozenset(failing), frozenset(errored)
        n = len(passing) + len(failing)
        interval = wilson(len(passing), n)
        case_ids = passing | failing | errored
        return cls(
            version=version,
            content_hash=content_hash or f"hash-{version}",
            model="",
            rate=len(passing) / n if n else None,
            ci_low=interval[0] if interval else None,
            ci_high=interval[1] if interval else None,
            n=n,
            effective_n=float(n),
            source=source,
            timestamp=None,
            case_ids=case_ids,
            case_set_hash=case_set_hash(case_ids),
            failing=failing,
            errored=errored,
            errors=len(errored),
        )

    def outcomes(self) -> dict[str, bool] | None:
        """Per-case pass/fail of the evaluated cases, when the case ids are known."""
        if self.case_ids is None:
            return None
        return {c: c not in self.failing for c in self.case_ids if c not in self.errored}

    def passes(self, threshold: float, gate: str) -> bool:
        return gate_passes(self.rate, self.ci_low, self.ci_high, threshold, gate)

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


@dataclass(frozen=True)
class Gain:
    """How much a later iteration of the window gained over the first."""

    later: str  # its version label
    delta: float  # observed rate difference
    upper: float  # one-sided 95% upper confidence bound of the difference
    p_value: float  # two-sided: exact McNemar when paired, pooled z-test otherwise
    test: str  # "McNemar" | "two-proportion test"
    cases: int  # the cases the comparison rests on
    cases_needed: int | None  # cases at which the same discordance bounds the gain below δ


@dataclass(frozen=True)
class Decision:
    """What the gate decided for a prompt, and why (the texts are built from it)."""

    # finding: inconclusive, pass, rethink (verdicts of the current version); too-few-iterations,
    # regressed, incomparable, improving, too-few-cases, noise (FAIL); plateau (FINE-TUNING).
    verdict: str
    finding: str
    window: tuple[Iteration, ...] = ()
    gains: tuple[Gain, ...] = ()
    best: Iteration | None = None
    p_value: float | None = None  # best vs first
    test: str = "none"
    upper: float | None = None  # the largest upper bound of the window's gains
    cases_needed: int | None = None
    noise: bool = False
    jaccard: float | None = None
    passed: tuple[str, ...] = ()  # window iterations that passed the gate
    regressed_from: tuple[tuple[str, float], ...] = ()  # (version, p) of significant drops
    incomparable: tuple[str, ...] = ()


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


def _inconclusive(n: int, errors: int) -> bool:
    return n == 0 or errors / (n + errors) > MAX_ERROR_FRACTION


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
    if _inconclusive(stats.n, stats.errors):
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
        if record.get("rate") is None or _inconclusive(n, errors):
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


def _run_iteration(run: VersionRun, stats: VersionStats, timestamp: str) -> Iteration:
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


def _comparable(iteration: Iteration, reference: Iteration) -> bool:
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


def _paired_cells(earlier: Iteration, later: Iteration) -> tuple[int, int, int, int] | None:
    """(both pass, broken, fixed, both fail) on the cases both evaluated, when ids are known."""
    earlier_outcomes, later_outcomes = earlier.outcomes(), later.outcomes()
    if earlier_outcomes is None or later_outcomes is None:
        return None
    paired = set(earlier_outcomes) & set(later_outcomes)
    if not paired:
        return None
    both = broken = fixed = neither = 0
    for case in paired:
        before, after = earlier_outcomes[case], later_outcomes[case]
        if before and after:
            both += 1
        elif before:
            broken += 1
        elif after:
            fixed += 1
        else:
            neither += 1
    return both, broken, fixed, neither


def _difference_p_value(earlier: Iteration, later: Iteration) -> tuple[float, str]:
    """Two-sided p-value of "the two iterations' rates differ", and the test used."""
    cells = _paired_cells(earlier, later)
    if cells is not None:
        return mcnemar_exact(cells[2], cells[1]), "McNemar"
    assert earlier.rate is not None and later.rate is not None
    return two_proportion_p(
        earlier.rate, earlier.effective_n, later.rate, later.effective_n
    ), "two-proportion test"


def _gain(first: Iteration, later: Iteration, margin: float) -> Gain:
    """The gain of ``later`` over ``first``: observed, bounded above, tested, sized."""
    assert first.rate is not None and later.rate is not None
    p_value, test = _difference_p_value(first, later)
    cells = _paired_cells(first, later)
    if cells is not None:
        both, broken, fixed, neither = cells
        cases = sum(cells)

        def upper_at(scale: float) -> float | None:
            interval = paired_difference_interval(
                both * scale, broken * scale, fixed * scale, neither * scale, Z95_ONE_SIDED
            )
            return None if interval is None else interval[1]

        delta = (fixed - broken) / cases
    else:
        later_n, first_n = later.effective_n, first.effective_n
        cases = min(later.n, first.n)
        later_rate, first_rate = later.rate, first.rate

        def upper_at(scale: float) -> float | None:
            interval = independent_difference_interval(
                later_rate * later_n * scale,
                later_n * scale,
                first_rate * first_n * scale,
                first_n * scale,
                Z95_ONE_SIDED,
            )
            return None if interval is None else interval[1]

        delta = later.rate - first.rate
    upper = upper_at(1.0)
    assert upper is not None
    needed = cases_to_bound(upper_at, cases, margin) if upper >= margin else None
    return Gain(later.version, delta, upper, p_value, test, cases, needed)


def _mean_jaccard(sets: Sequence[frozenset[str]]) -> float | None:
    pairs = [(a, b) for a, b in combinations(sets, 2) if a | b]
    if not pairs:
        return None
    return sum(len(a & b) / len(a | b) for a, b in pairs) / len(pairs)


def decide(
    iterations: Sequence[Iteration],
    *,
    threshold: float,
    gate: str = "point",
    finetune_after: int = 3,
    plateau_margin: float = DEFAULT_PLATEAU_MARGIN,
) -> Decision:
    """The verdict of a prompt from its iterations, oldest first; the last one is current.

    The rules are in this module's docstring; ``evaluate_prompt`` builds the texts and the
    advice from the returned ``Decision`` (benchmarks/bench_verdicts.py drives this function).
    """
    current = iterations[-1]
    if _inconclusive(current.n, current.errors):
        return Decision(INCONCLUSIVE, "inconclusive")
    if current.passes(threshold, gate):
        return Decision(PASS, "pass")
    if current.rate is not None and current.rate < RETHINK_BELOW:
        return Decision(RETHINK, "rethink")

    finetune_after = max(1, int(finetune_after))
    window = tuple(iterations[-finetune_after:])
    jaccard = _mean_jaccard([it.failing for it in window])
    noise = len(window) >= 2 and jaccard is not None and jaccard < NOISE_JACCARD

    def fail(finding: str, **found: Any) -> Decision:
        return Decision(FAIL, finding, window=window, noise=noise, jaccard=jaccard, **found)

    if len(iterations) < finetune_after:
        return fail("too-few-iterations")
    passed = tuple(it for it in window[:-1] if it.passes(threshold, gate))
    dropped = []
    for earlier in passed:
        p_value, _ = _difference_p_value(earlier, current)
        if p_value < SIGNIFICANCE:
            dropped.append((earlier.version, p_value))
    if dropped:
        return fail(
            "regressed", passed=tuple(it.version for it in passed), regressed_from=tuple(dropped)
        )
    incomparable = tuple(it.version for it in window if not _comparable(it, current))
    if incomparable:
        return fail("incomparable", incomparable=incomparable)

    first = window[0]
    gains = tuple(_gain(first, later, plateau_margin) for later in window[1:])
    best = max(window, key=lambda it: it.rate or 0.0)  # ties: the earliest, i.e. no gain
    if (best.rate or 0.0) <= (first.rate or 0.0):
        best = first
    p_value, test = (1.0, "none") if best is first else _difference_p_value(first, best)
    upper = max((g.upper for g in gains), default=None)
    found: dict[str, Any] = {
        "gains": gains,
        "best": best,
        "p_value": p_value,
        "test": test,
        "upper": upper,
        "passed": tuple(it.version for it in passed),
    }
    if upper is None or upper < plateau_margin:
        if noise:
            return fail("noise", **found)
        return Decision(
            CONSIDER_FINE_TUNING, "plateau", window=window, noise=False, jaccard=jaccard, **found
        )
    if p_value < SIGNIFICANCE:
        return fail("improving", **found)
    open_gains = [g for g in gains if g.upper >= plateau_margin]
    needed = [g.cases_needed for g in open_gains]
    cases_needed = None if None in needed else max(n for n in needed if n is not None)
    return fail("too-few-cases", cases_needed=cases_needed, **found)


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


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _points(x: float) -> str:
    value = round(x * 100, 1)
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


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
    plateau_margin: float = DEFAULT_PLATEAU_MARGIN,
) -> dict[str, Any]:
    """The ``prompts[]`` entry of the JSON report for one prompt (docs/ARCHITECTURE.md).

    ``versions`` are in suite order; the last one is the current version. ``history`` is
    the content of the history file (all prompts; this function picks its own).
    ``finetune_mode`` does not change the verdict (only ``overall``'s exit status); it is
    accepted so the advice can say whether the build is blocked. ``plateau_margin`` is δ,
    the gain (a rate difference in 0..1) below which the window counts as a plateau.
    """
    if not versions:
        raise ValueError(f"prompt {suite.prompt!r}: no version was run")
    if gate not in GATE_MODES:
        raise ValueError(f"unknown gate mode {gate!r}; expected one of {', '.join(GATE_MODES)}")
    if finetune_mode not in FINETUNE_MODES:
        raise ValueError(f"unknown finetune mode {finetune_mode!r}; expected fail or flag")
    if not 0.0 < plateau_margin <= 1.0:
        raise ValueError(f"plateau margin must be in (0, 1], got {plateau_margin!r}")
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

    # Iterations: history-only versions first (oldest first), then this run's, one per hash.
    run_hashes = {run.content_hash for run in versions}
    run_iterations: dict[str, Iteration] = {}
    for run, stats in zip(versions, all_stats):
        run_iterations.pop(run.content_hash, None)  # a repeated hash counts where it last appears
        run_iterations[run.content_hash] = _run_iteration(run, stats, timestamp)
    iterations = _history_iterations(history, suite.prompt, run_hashes) + list(
        run_iterations.values()
    )
    decision = decide(
        iterations,
        threshold=threshold,
        gate=gate,
        finetune_after=finetune_after,
        plateau_margin=plateau_margin,
    )

    current_run, current = versions[-1], all_stats[-1]
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
            description=description,
            threshold=threshold,
            gate=gate,
            finetune_after=finetune_after,
            finetune_mode=finetune_mode,
            plateau_margin=plateau_margin,
        )

    return {
        "prompt": suite.prompt,
        "file": file,
        "line": suite.location.line if suite.location else 1,
        "description": suite.description,
        "threshold": threshold,
        "verdict": decision.verdict,
        "reason": reason,
        "current_version": current_run.label,
        "versions": version_entries,
        "iterations": [it.to_dict() for it in iterations],
        "advice": advice,
    }


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
        "plateau_upper_bound": _round(decision.upper),
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
    ones included); it is how later runs decide whether case sets are comparable. The ids of
    the errored cases and the effective sample size come from the entry's versions, so a
    later run pairs only the cases this one evaluated and weighs repeated samples right.
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
            error_cases=list(entry.get("error_cases") or ()),
            effective_n=entry.get("effective_n"),
        )
        for entry in prompt_entry["versions"]
    ]
