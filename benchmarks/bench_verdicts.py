"""How often the gate's verdicts are right, on simulated iteration histories (issue 12).

    python benchmarks/bench_verdicts.py            # 1,000 histories per scenario and band
    python benchmarks/bench_verdicts.py --quick    # 200: a 20-second smoke run

Every history is K = 3 versions of a prompt run on the same n cases, threshold 0.8,
plateau margin δ = 15 points, fed through the real verdict code
(``pytest_promptgate.gate.decide`` on ``gate.Iteration.measured`` iterations).

The model of correlated case difficulty: each case has a latent difficulty z ~ N(0, 1); a
version with true rate p passes the case when ``sqrt(ρ)·z + sqrt(1-ρ)·e < Φ⁻¹(p)``, with fresh
noise e ~ N(0, 1) per version. So every version passes a share p of the case population, hard
cases tend to fail in every version, and ρ is the correlation of the latent scores of one case
across versions (ρ = 1: a case passes exactly when its difficulty is under the version's
ability; ρ = 0: independent coin flips).

Scenarios (what is right in brackets):

* plateau: the three versions share one true rate p ~ U(30%, 70%) [CONSIDER FINE-TUNING];
* improving: last = first + g with g ~ U(15, 30) points, last < 80%, the middle version in
  between [never CONSIDER FINE-TUNING];
* good: the last version's true rate ~ U(85%, 99%) [PASS];
* near-threshold plateau: three versions at one true rate ~ U(75%, 79%) [never "regressed"].

n is drawn uniformly within each band (20-49, 50-99, 100-200), the same number of histories
per band; "overall" weighs the bands as n ~ U(20, 200) would (30 : 50 : 101). The main table
mixes ρ ~ U(0.5, 0.9); the sensitivity table fixes ρ from 0.3 to 1.0. The alternative plateau
tests run on the very same histories; each keeps every other rule of the gate. "today" is the
rule this change replaced: best vs first McNemar p >= 0.05 reads as a plateau, and any passing
iteration in the window as a regression.

"What no test can beat" are not tests: oracles that pick their cut-off per band after seeing the
improving histories (the largest cut-off that keeps every ρ 0.5-0.9 cell of improving prompts
<= 2%), one on the last-vs-first gain, one a likelihood ratio of both gains that knows the
simulation's priors. They bound what any plateau test could reach here (docs/advisor.md).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_promptgate import gate, verdicts  # noqa: E402
from pytest_promptgate.model import CONSIDER_FINE_TUNING, PASS  # noqa: E402
from pytest_promptgate.stats import (  # noqa: E402
    Z95,
    Z95_ONE_SIDED,
    mcnemar_exact,
    paired_difference_interval,
)

THRESHOLD = 0.8
MARGIN = gate.DEFAULT_PLATEAU_MARGIN
K = 3
BANDS = ((20, 49), (50, 99), (100, 200))
BAND_WEIGHTS = tuple(high - low + 1 for low, high in BANDS)  # n ~ U(20, 200)
SENSITIVITY_RHOS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
NORMAL = NormalDist()


@dataclass(frozen=True)
class History:
    scenario: str
    n: int
    rho: float
    rates: tuple[float, ...]  # true rates, oldest first
    iterations: tuple[gate.Iteration, ...]


def true_rates(scenario: str, rng: random.Random) -> tuple[float, ...]:
    if scenario == "plateau":
        return (rng.uniform(0.30, 0.70),) * K
    if scenario == "near-threshold":
        return (rng.uniform(0.75, 0.79),) * K
    if scenario == "improving":
        gain = rng.uniform(0.15, 0.30)
        first = rng.uniform(0.30, 0.80 - gain)
        return first, rng.uniform(first, first + gain), first + gain
    if scenario == "good":
        last = rng.uniform(0.85, 0.99)
        return rng.uniform(0.50, last), rng.uniform(0.50, last), last
    raise ValueError(scenario)


def simulate(scenario: str, n: int, rho: float, rng: random.Random) -> History:
    rates = true_rates(scenario, rng)
    difficulty = [rng.gauss(0.0, 1.0) for _ in range(n)]
    shared, own = math.sqrt(rho), math.sqrt(1.0 - rho)
    ids = [f"c{i:03d}" for i in range(n)]
    iterations = []
    for index, rate in enumerate(rates, start=1):
        ability = NORMAL.inv_cdf(rate)
        failing = [
            case
            for case, z in zip(ids, difficulty)
            if shared * z + own * rng.gauss(0, 1) >= ability
        ]
        failing_set = frozenset(failing)
        passing = [case for case in ids if case not in failing_set]
        iterations.append(gate.Iteration.measured(f"v{index}", passing=passing, failing=failing))
    return History(scenario, n, rho, rates, tuple(iterations))


def real(history: History) -> gate.Decision:
    return gate.decide(
        history.iterations, threshold=THRESHOLD, finetune_after=K, plateau_margin=MARGIN
    )


# --- the alternative plateau tests ------------------------------------------------------------
# Each replaces only the plateau step: the history goes through the real gate, and where the
# gate reached its plateau test (findings plateau / improving / too-few-cases / noise), the
# alternative decides instead, with the same noise rule.

PLATEAU_STAGE = {"plateau", "improving", "too-few-cases", "noise"}


def cells(first: gate.Iteration, later: gate.Iteration) -> tuple[int, int, int, int]:
    """(both pass, broken, fixed, both fail): the gate's own pairing (every case id is known here)."""
    paired = verdicts.paired_cells(first, later)
    assert paired is not None, "simulated iterations always carry their case ids"
    return paired


def best_vs_first_p(window: Sequence[gate.Iteration]) -> float:
    first = window[0]
    best = max(window, key=lambda it: it.rate or 0.0)
    if (best.rate or 0.0) <= (first.rate or 0.0):
        return 1.0
    _, broken, fixed, _ = cells(first, best)
    return mcnemar_exact(fixed, broken)


def newcombe_upper(z: float, corrected: bool = True) -> Callable[[tuple[int, ...]], float]:
    def upper(table: tuple[int, ...]) -> float:
        both, broken, fixed, neither = table
        if corrected:
            interval = paired_difference_interval(both, broken, fixed, neither, z)
            assert interval is not None
            return interval[1]
        # Newcombe's square-and-add with the plain phi (no n/2 correction).
        n = sum(table)
        return _plain_phi_upper(both, broken, fixed, neither, n, z)

    return upper


def _plain_phi_upper(both: int, broken: int, fixed: int, neither: int, n: int, z: float) -> float:
    from pytest_promptgate.stats import wilson

    earlier, later = (both + broken) / n, (both + fixed) / n
    e_low = wilson(both + broken, n, z)
    l_high = wilson(both + fixed, n, z)
    assert e_low is not None and l_high is not None
    margins = (both + broken) * (fixed + neither) * (both + fixed) * (broken + neither)
    phi = (both * neither - broken * fixed) / math.sqrt(margins) if margins else 0.0
    above, below = l_high[1] - later, earlier - e_low[0]
    return later - earlier + math.sqrt(max(above**2 - 2 * phi * above * below + below**2, 0.0))


def wald_upper(z: float) -> Callable[[tuple[int, ...]], float]:
    def upper(table: tuple[int, ...]) -> float:
        _, broken, fixed, _ = table
        n = sum(table)
        delta = (fixed - broken) / n
        variance = max((fixed + broken) / n - delta**2, 0.0) / n
        return delta + z * math.sqrt(variance)

    return upper


def tango_upper(z: float) -> Callable[[tuple[int, ...]], float]:
    """Tango's (1998) score bound for a paired difference: the largest Δ the score test keeps.

    Score statistic ``(fixed - broken - nΔ) / sqrt(n(2·q + Δ(1 - Δ)))`` with q the maximum
    likelihood estimate of the "broken" probability under the constraint fixed - broken = Δ.
    """

    def statistic(table: tuple[int, ...], delta: float) -> float:
        _, broken, fixed, _ = table
        n = sum(table)
        a = 2.0 * n
        b = -fixed - broken + (2.0 * n - fixed + broken) * delta
        c = -broken * delta * (1.0 - delta)
        q = (-b + math.sqrt(max(b * b - 4.0 * a * c, 0.0))) / (2.0 * a)
        variance = n * (2.0 * q + delta * (1.0 - delta))
        if variance <= 0.0:
            return 0.0 if fixed - broken == n * delta else -math.inf
        return (fixed - broken - n * delta) / math.sqrt(variance)

    def upper(table: tuple[int, ...]) -> float:
        n = sum(table)
        low, high = (table[2] - table[1]) / n, 1.0
        if statistic(table, high) >= -z:
            return 1.0
        for _ in range(60):  # the statistic decreases in Δ: bisect for statistic = -z
            middle = (low + high) / 2.0
            if statistic(table, middle) >= -z:
                low = middle
            else:
                high = middle
        return high

    return upper


def mean_gain_upper(window: Sequence[gate.Iteration], z: float) -> float:
    """One-sided bound on the mean over cases of (mean of the later versions) - first (Wald)."""
    first, later = window[0], window[1:]
    gains = [
        sum(case not in it.failing for it in later) / len(later) - (case not in first.failing)
        for case in first.case_ids or ()
    ]
    n = len(gains)
    mean = sum(gains) / n
    variance = sum((g - mean) ** 2 for g in gains) / (n - 1)
    return mean + z * math.sqrt(variance / n)


def bound_rule(
    upper: Callable[[tuple[int, ...]], float],
    comparisons: str = "all",
    significance_first: bool = False,
    mean_of_later: bool = False,
) -> Callable[[History, gate.Decision], bool]:
    """True when the rule says CONSIDER FINE-TUNING."""

    def rule(history: History, decision: gate.Decision) -> bool:
        if decision.finding not in PLATEAU_STAGE:
            return decision.verdict == CONSIDER_FINE_TUNING
        window = decision.window
        if comparisons == "all":
            later = list(window[1:])
        elif comparisons == "last":
            later = [window[-1]]
        elif comparisons == "none":
            later = []
        else:  # the last and the best by observed rate
            best = max(window, key=lambda it: it.rate or 0.0)
            later = [it for it in window[1:] if it is window[-1] or it is best]
        if significance_first and best_vs_first_p(window) < 0.05:
            return False
        bounded = all(upper(cells(window[0], it)) < MARGIN for it in later)
        if mean_of_later:
            bounded = bounded and mean_gain_upper(window, Z95_ONE_SIDED) < MARGIN
        return bounded and not decision.noise

    return rule


def today(history: History, decision: gate.Decision) -> bool:
    """The replaced rule: no significant gain (p >= 0.05) reads as a plateau."""
    window = history.iterations[-K:]
    current = window[-1]
    if current.passes(THRESHOLD, "point") or (current.rate or 0.0) < gate.RETHINK_BELOW:
        return False
    if any(it.passes(THRESHOLD, "point") for it in window):
        return False
    return best_vs_first_p(window) >= 0.05 and not decision.noise


def today_regressed(history: History) -> bool:
    window = history.iterations[-K:]
    return not window[-1].passes(THRESHOLD, "point") and any(
        it.passes(THRESHOLD, "point") for it in window[:-1]
    )


ALTERNATIVES_TODAY = "today: best vs first McNemar p >= 0.05"
ALTERNATIVES: dict[str, Callable[[History, gate.Decision], bool]] = {
    ALTERNATIVES_TODAY: today,
    "Newcombe two-sided 95% bound (z = 1.96), all vs first": bound_rule(newcombe_upper(Z95)),
    "Newcombe one-sided 95%, plain phi (no n/2 correction)": bound_rule(
        newcombe_upper(Z95_ONE_SIDED, corrected=False)
    ),
    "Newcombe one-sided 95%, last vs first only": bound_rule(
        newcombe_upper(Z95_ONE_SIDED), comparisons="last"
    ),
    "Newcombe one-sided 95%, last and best vs first": bound_rule(
        newcombe_upper(Z95_ONE_SIDED), comparisons="last-and-best"
    ),
    "Newcombe one-sided 95%, significant gain first": bound_rule(
        newcombe_upper(Z95_ONE_SIDED), significance_first=True
    ),
    "Wald paired one-sided 95%, all vs first": bound_rule(wald_upper(Z95_ONE_SIDED)),
    "Tango score one-sided 95%, all vs first": bound_rule(tango_upper(Z95_ONE_SIDED)),
    "Tango score one-sided 95%, last vs first only": bound_rule(
        tango_upper(Z95_ONE_SIDED), comparisons="last"
    ),
    "mean of the later versions vs first, one-sided 95%": bound_rule(
        newcombe_upper(Z95_ONE_SIDED), comparisons="none", mean_of_later=True
    ),
    "last and mean of later vs first, Newcombe one-sided 95%": bound_rule(
        newcombe_upper(Z95_ONE_SIDED), comparisons="last", mean_of_later=True
    ),
    "(no principle, for scale) Newcombe one-sided 90%, last vs first": bound_rule(
        newcombe_upper(NORMAL.inv_cdf(0.90)), comparisons="last"
    ),
}
CHOSEN = "gate.decide (chosen): Newcombe one-sided 95%, all vs first"


# --- what no test can beat ----------------------------------------------------------------------
# Not tests: each picks its cut-off per band AFTER seeing the simulated improving histories (the
# largest cut-off that keeps improving prompts wrongly advised <= 2% at every ρ 0.5-0.9 of the
# band), and the second one also knows the simulation's priors. They bound what any plateau test
# could reach on these histories; a test that has to fix its rule in advance does worse.

ORACLE_GRID = [(g * k / 10, g) for g in (0.15 + 0.01 * i for i in range(16)) for k in range(11)]


def _gains(window: Sequence[gate.Iteration]) -> tuple[float, float, float]:
    """(middle - first, last - first, standard error of last - first) on the paired cases."""
    _, broken2, fixed2, _ = cells(window[0], window[1])
    _, broken3, fixed3, _ = cells(window[0], window[-1])
    n = len(window[0].case_ids or ())
    d2, d3 = (fixed2 - broken2) / n, (fixed3 - broken3) / n
    variance = max((fixed3 + broken3) / n - d3**2, 1.0 / n) / n
    return d2, d3, math.sqrt(variance)


def oracle_difference(history: History, decision: gate.Decision) -> float:
    return _gains(decision.window)[1]


def oracle_likelihood(history: History, decision: gate.Decision) -> float:
    """log of the likelihood ratio improving : plateau of the two observed gains (normal model).

    Plateau: mean (0, 0); improving: mean (u·g, g) with g ~ U(15, 30) points and u ~ U(0, 1)
    (the simulation's own priors); covariance s²·[[1, ½], [½, 1]] (three versions, equal
    variances, the first shared by both gains).
    """
    d2, d3, s = _gains(decision.window)
    # Σ⁻¹ of [[1, ½], [½, 1]] is (4/3)·[[1, -½], [-½, 1]].
    terms = []
    for m2, m3 in ORACLE_GRID:
        linear = (4 / 3) * (m2 * d2 + m3 * d3 - 0.5 * (m2 * d3 + m3 * d2)) / s**2
        quadratic = (4 / 3) * (m2 * m2 + m3 * m3 - m2 * m3) / s**2
        terms.append(linear - 0.5 * quadratic)
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms) / len(terms))


def oracle_miss(
    statistic: Callable[[History, gate.Decision], float],
    plateau: Sequence[tuple[History, gate.Decision]],
    improving: Sequence[Sequence[tuple[History, gate.Decision]]],
) -> float:
    """Plateau missed (%) with the best cut-off that keeps every ρ cell of improving <= 2%."""

    def decided(pairs: Sequence[tuple[History, gate.Decision]]) -> list[float]:
        return sorted(
            statistic(h, d) for h, d in pairs if d.finding in PLATEAU_STAGE and not d.noise
        )

    cut = math.inf
    for cell in improving:
        values = decided(cell)
        allowed = math.floor(0.02 * len(cell))  # wrongly advised histories the cell may have
        if allowed < len(values):
            cut = min(cut, values[allowed])
    advised = sum(value < cut for value in decided(plateau))
    return percent(len(plateau) - advised, len(plateau))


# --- running ----------------------------------------------------------------------------------


def draw(
    scenario: str, band: tuple[int, int], count: int, rho: float | None, rng: random.Random
) -> list[History]:
    return [
        simulate(
            scenario, rng.randint(*band), rho if rho is not None else rng.uniform(0.5, 0.9), rng
        )
        for _ in range(count)
    ]


def percent(hits: int, total: int) -> float:
    return 100.0 * hits / total if total else float("nan")


def overall(per_band: Sequence[float]) -> float:
    return sum(w * v for w, v in zip(BAND_WEIGHTS, per_band)) / sum(BAND_WEIGHTS)


def wrong(scenario: str, suggests: bool, verdict: str) -> bool:
    if scenario == "plateau":
        return not suggests
    if scenario == "improving":
        return suggests
    return verdict != PASS  # good


def row(label: str, values: Sequence[float]) -> str:
    cells_ = "".join(f"{v:>9.1f}%" for v in values)
    return f"  {label:<58}{cells_}{overall(values):>9.1f}%"


def header(title: str) -> str:
    bands = "".join(f"{f'{lo}-{hi}':>10}" for lo, hi in BANDS)
    return f"  {title:<58}{bands}{'overall':>10}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--histories", type=int, default=None, help="per scenario and band")
    parser.add_argument("--quick", action="store_true", help="200 histories (a smoke run)")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args(argv)
    count = args.histories or (200 if args.quick else 1000)
    sensitivity_count = max(100, count // 3)
    rng = random.Random(args.seed)
    started = time.perf_counter()

    print(
        f"bench_verdicts: K={K}, threshold {THRESHOLD:.0%}, δ = {MARGIN * 100:.0f} points, "
        f"{count} histories per scenario and band, ρ ~ U(0.5, 0.9), seed {args.seed}\n"
    )
    results: dict[str, dict[str, list[float]]] = {}
    findings: dict[str, list[dict[str, int]]] = {}
    advised_misses: list[tuple[int, int]] = []
    regressed: dict[str, list[float]] = {"today": [], "now": []}
    oracle_plateau: list[list[tuple[History, gate.Decision]]] = []
    oracle_improving: list[list[list[tuple[History, gate.Decision]]]] = [[] for _ in BANDS]
    for scenario in ("plateau", "improving", "good", "near-threshold"):
        per_rule: dict[str, list[float]] = {CHOSEN: [], **{name: [] for name in ALTERNATIVES}}
        findings[scenario] = []
        for band in BANDS:
            histories = draw(scenario, band, count, None, rng)
            decisions = [real(h) for h in histories]
            if scenario == "plateau":
                oracle_plateau.append(list(zip(histories, decisions)))
            if scenario == "near-threshold":
                regressed["today"].append(
                    percent(sum(today_regressed(h) for h in histories), count)
                )
                regressed["now"].append(
                    percent(sum(d.finding == "regressed" for d in decisions), count)
                )
                continue
            tally: dict[str, int] = {}
            for d in decisions:
                tally[d.finding] = tally.get(d.finding, 0) + 1
            findings[scenario].append(tally)
            per_rule[CHOSEN].append(
                percent(
                    sum(
                        wrong(scenario, d.verdict == CONSIDER_FINE_TUNING, d.verdict)
                        for d in decisions
                    ),
                    count,
                )
            )
            if scenario == "plateau":
                misses = [d for d in decisions if d.verdict != CONSIDER_FINE_TUNING]
                advised = sum(
                    d.finding == "too-few-cases" and d.cases_needed is not None for d in misses
                )
                advised_misses.append((advised, len(misses)))
            for name, rule in ALTERNATIVES.items():
                per_rule[name].append(
                    percent(
                        sum(
                            wrong(scenario, rule(h, d), d.verdict)
                            for h, d in zip(histories, decisions)
                        ),
                        count,
                    )
                )
        if scenario != "near-threshold":
            results[scenario] = per_rule

    labels = {
        "plateau": "plateau: CONSIDER FINE-TUNING missed",
        "improving": "improving: wrongly told CONSIDER FINE-TUNING",
        "good": "good: not passed",
    }
    print("The issue's table, by band of n (main mix, ρ ~ U(0.5, 0.9)):\n")
    print(header("scenario (what is wrong)                   rule"))
    for scenario, label in labels.items():
        print(f"  {label}")
        print(row("    today (McNemar p >= 0.05 = plateau)", results[scenario][ALTERNATIVES_TODAY]))
        print(row("    now (gate.decide)", results[scenario][CHOSEN]))
    print(row("  near-threshold plateau told 'regressed': today", regressed["today"]))
    print(row("  near-threshold plateau told 'regressed': now", regressed["now"]))
    misses_with_advice = [percent(a, m) for a, m in advised_misses]
    print(row("  plateau misses that say 'about N cases would'", misses_with_advice))
    silent = [percent(m - a, count) for a, m in advised_misses]
    print(row("  plateau missed without 'about N cases would'", silent))

    print("\nWhat the gate said about plateau histories (share of histories):")
    kinds = sorted({k for tally in findings["plateau"] for k in tally})
    for kind in kinds:
        print(row(f"    {kind}", [percent(t.get(kind, 0), count) for t in findings["plateau"]]))

    print("\nAlternative plateau tests on the same histories (main mix):\n")
    print(header("test / scenario (what is wrong)"))
    for name in [CHOSEN, *ALTERNATIVES]:
        print(f"  {name}")
        for scenario, label in labels.items():
            if scenario == "good":
                continue
            print(row(f"    {label}", results[scenario][name]))

    print(
        f"\nSensitivity to ρ ({sensitivity_count} histories per cell, {count} for improving at "
        "ρ 0.5-0.9; gate.decide):\n"
    )
    print(header("ρ  scenario (what is wrong)"))
    sensitivity: dict[tuple[float, str], list[float]] = {}
    for rho in SENSITIVITY_RHOS:
        for scenario in ("plateau", "improving"):
            values = []
            # The improving target is judged per cell: those cells get the full count.
            cell = count if scenario == "improving" and 0.5 <= rho <= 0.9 else sensitivity_count
            for band in BANDS:
                histories = draw(scenario, band, cell, rho, rng)
                decisions = [real(h) for h in histories]
                if scenario == "improving" and 0.5 <= rho <= 0.9:
                    oracle_improving[BANDS.index(band)].append(list(zip(histories, decisions)))
                values.append(
                    percent(
                        sum(
                            wrong(scenario, d.verdict == CONSIDER_FINE_TUNING, d.verdict)
                            for d in decisions
                        ),
                        cell,
                    )
                )
            sensitivity[(rho, scenario)] = values
            print(row(f"{rho:.1f}  {labels[scenario]}", values))

    print(
        "\nWhat no test can beat (not tests: the cut-off is picked per band after seeing the "
        "improving\nhistories, the largest that keeps every ρ 0.5-0.9 cell <= 2%):\n"
    )
    print(header("oracle / plateau: CONSIDER FINE-TUNING missed"))
    oracles = {
        "last - first, cut-off per band": oracle_difference,
        "likelihood ratio of both gains, knowing the priors": oracle_likelihood,
    }
    oracle_figures = {}
    for name, statistic in oracles.items():
        values = [
            oracle_miss(statistic, oracle_plateau[b], oracle_improving[b])
            for b in range(len(BANDS))
        ]
        oracle_figures[name] = values
        print(row(f"  {name}", values))

    timings = []
    for b, c in ((5000, 5000), (4900, 5100), (0, 10000), (2500, 7500)):
        best = min(_time(mcnemar_exact, b, c) for _ in range(5))
        timings.append((b, c, best))
    print("\nExact McNemar, b + c = 10,000 (best of 5):")
    for b, c, seconds in timings:
        print(f"  mcnemar_exact({b}, {c}) = {mcnemar_exact(b, c):.6g} in {seconds * 1000:.2f} ms")

    plateau, improving, good = (
        results["plateau"][CHOSEN],
        results["improving"][CHOSEN],
        results["good"][CHOSEN],
    )
    worst_improving = max(
        max(values)
        for (rho, scenario), values in sensitivity.items()
        if scenario == "improving" and 0.5 <= rho <= 0.9
    )
    targets = [
        (
            "improving wrongly told to fine-tune <= 2% in every band, ρ 0.5-0.9",
            max(max(improving), worst_improving) <= 2.0,
            f"worst band {max(max(improving), worst_improving):.1f}%",
        ),
        ("plateau missed <= 10% overall", overall(plateau) <= 10.0, f"{overall(plateau):.1f}%"),
        ("plateau missed <= 5% at n >= 100", plateau[-1] <= 5.0, f"{plateau[-1]:.1f}%"),
        (
            "(weaker reading) plateau missed without the 'about N cases would' advice <= 10%",
            overall(silent) <= 10.0,
            f"{overall(silent):.1f}%",
        ),
        ("good not passed <= 2% overall", overall(good) <= 2.0, f"{overall(good):.1f}%"),
        (
            "near-threshold plateau told 'regressed' <= 5% (today "
            f"{overall(regressed['today']):.1f}%)",
            overall(regressed["now"]) <= 5.0,
            f"{overall(regressed['now']):.1f}%",
        ),
        (
            "exact McNemar at b + c = 10,000 under 10 ms",
            max(t for *_, t in timings) < 0.010,
            f"{max(t for *_, t in timings) * 1000:.2f} ms",
        ),
    ]
    print("\nTargets:")
    for label, met, figure in targets:
        print(f"  {'MET   ' if met else 'MISSED'} {label}: {figure}")
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0


def _time(function: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


if __name__ == "__main__":
    raise SystemExit(main())
