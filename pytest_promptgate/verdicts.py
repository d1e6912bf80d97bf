"""The verdict rules: from a prompt's iterations to a ``Decision`` (``decide``), and ``overall``.

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
from itertools import combinations
from typing import Any

from pytest_promptgate.history import case_set_hash
from pytest_promptgate.model import CONSIDER_FINE_TUNING, FAIL, INCONCLUSIVE, PASS, RETHINK
from pytest_promptgate.options import DEFAULT_PLATEAU_MARGIN, GATE_MODES
from pytest_promptgate.stats import (
    Z95_ONE_SIDED,
    cases_to_bound,
    independent_difference_interval,
    mcnemar_exact,
    paired_difference_interval,
    two_proportion_p,
    wilson,
)

MAX_ERROR_FRACTION = 0.10
RETHINK_BELOW = 0.10
SIGNIFICANCE = 0.05
COMPARABLE_OVERLAP = 0.80
NOISE_JACCARD = 0.30

# Overall verdict = the worst prompt verdict in this order. INCONCLUSIVE is the worst: the
# run could not measure, so even its other verdicts are in doubt. RETHINK outranks FAIL (the
# task, model or cases are wrong, not the wording); CONSIDER FINE-TUNING is the mildest
# failure (prompting has been tried properly).
SEVERITY = (PASS, CONSIDER_FINE_TUNING, FAIL, RETHINK, INCONCLUSIVE)
_EPSILON = 1e-9  # 16/20 must equal a 0.8 threshold despite float arithmetic


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
            "rate": rounded(self.rate),
            "ci_low": rounded(self.ci_low),
            "ci_high": rounded(self.ci_high),
            "n": self.n,
            "source": self.source,
            "timestamp": self.timestamp,
        }

    def window_entry(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "rate": rounded(self.rate),
            "ci_low": rounded(self.ci_low),
            "ci_high": rounded(self.ci_high),
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


def rounded(value: float | None) -> float | None:
    """A rate as the reports write it (6 decimals), None kept."""
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


def is_inconclusive(n: int, errors: int) -> bool:
    """No case evaluated, or more than ``MAX_ERROR_FRACTION`` of them errored."""
    return n == 0 or errors / (n + errors) > MAX_ERROR_FRACTION


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


def paired_cells(earlier: Iteration, later: Iteration) -> tuple[int, int, int, int] | None:
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
    cells = paired_cells(earlier, later)
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
    cells = paired_cells(first, later)
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

    The rules are in this module's docstring; ``gate_report.reason_and_advice`` builds the
    texts and the advice from the returned ``Decision`` (``gate.evaluate_prompt`` calls both;
    benchmarks/bench_verdicts.py drives this function).
    """
    current = iterations[-1]
    if is_inconclusive(current.n, current.errors):
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
