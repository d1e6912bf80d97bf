"""Rates, 95% intervals and paired comparisons for prompt versions.

Plain Python on purpose (no scipy): the formulas are short, and tests/unit/test_stats.py
checks them against published values and, to 1e-12, against statsmodels.

Choices that matter for the verdicts:

* ``wilson(s, n)`` returns ``None`` when ``n <= 0``: the JSON report shows ``null`` for the
  interval of a version with no evaluated case, and "no data" must never look like 0%..100%.
* A case is the unit of the success rate. With ``repeat: k`` each case contributes its pass
  fraction, and the k samples of one case are not independent (the same input tends to pass
  or fail every time), so the interval uses an *effective* sample size
  ``n_eff = samples / design_effect`` instead of the raw number of samples.
* Provider errors are not evaluations: they are excluded from ``n`` and from the rate.
* The plateau test of the gate needs an interval for the *difference* of two rates measured on
  the same cases: ``paired_difference_interval`` is Newcombe's hybrid score interval for paired
  proportions (method 10 of Newcombe 1998, Statistics in Medicine 17:2635), built from the two
  Wilson intervals and the correlation of the paired outcomes. ``independent_difference_interval``
  is its twin for unpaired rates (method 10 of Newcombe 1998, Statistics in Medicine 17:873).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

from pytest_promptgate.model import ERROR, FAILED, PASSED, CaseResult

Z95 = NormalDist().inv_cdf(0.975)  # two-sided 95% normal quantile, 1.959963984540054
Z95_ONE_SIDED = NormalDist().inv_cdf(0.95)  # one-sided 95%: the bound of a 90% interval


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for ``successes`` out of ``n``; ``None`` when ``n <= 0``.

    ``successes`` and ``n`` may be fractional (an effective sample size for clustered data).
    """
    if n <= 0:
        return None
    p = min(max(successes / n, 0.0), 1.0)
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denominator
    half_width = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denominator
    low, high = centre - half_width, centre + half_width
    # Exact endpoints at p = 0 / p = 1 (avoid 1e-17 noise from the subtraction).
    if p == 0.0:
        low = 0.0
    if p == 1.0:
        high = 1.0
    return max(0.0, low), min(1.0, high)


def effective_sample_size(case_rates: Sequence[float], samples_per_case: Sequence[int]) -> float:
    """Number of independent samples the clustered data is worth (between #cases and #samples).

    Design effect estimated by the ratio of the observed variance of the case rates to the
    variance they would have if every sample were independent: ``deff = s² · m̄ / (p(1-p))``
    (s² = sample variance of case rates, m̄ = mean samples per case, p = mean case rate).
    It is 1 when samples are independent and m̄ when a case always passes or always fails.
    It is clamped to [1, m̄] (never narrower than the naive interval, never wider than
    treating each case as one observation). When the variance cannot be estimated (one case,
    or every case at 0% / every case at 100%) the conservative bound ``deff = m̄`` is used.
    """
    k = len(case_rates)
    if k == 0:
        return 0.0
    total = float(sum(samples_per_case))
    mean_samples = total / k
    if mean_samples <= 1.0:
        return total
    p = sum(case_rates) / k
    if k < 2 or p <= 0.0 or p >= 1.0:
        return float(k)
    variance = sum((r - p) ** 2 for r in case_rates) / (k - 1)
    design_effect = variance * mean_samples / (p * (1.0 - p))
    design_effect = min(max(design_effect, 1.0), mean_samples)
    return total / design_effect


def wilson_clustered(
    case_rates: Sequence[float], samples_per_case: Sequence[int], z: float = Z95
) -> tuple[float, float] | None:
    """Wilson interval for the mean of case rates, with repeated samples per case."""
    if not case_rates:
        return None
    n_eff = effective_sample_size(case_rates, samples_per_case)
    rate = sum(case_rates) / len(case_rates)
    return wilson(rate * n_eff, n_eff, z)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (q in 0..100) with linear interpolation (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * min(max(q, 0.0), 100.0) / 100.0
    below = math.floor(position)
    above = math.ceil(position)
    fraction = position - below
    return ordered[below] + (ordered[above] - ordered[below]) * fraction


def binomial_half_cdf(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), accurate to a few ulps for any n.

    The anchor term C(n, k) / 2**n is an exact integer ratio rounded once (Python divides
    big integers exactly); the terms below it follow by the ratio C(n, i-1) / C(n, i) =
    i / (n - i + 1) in floating point, and the sum stops once a term no longer counts.
    b + c = 10,000 takes well under a millisecond (benchmarks/bench_verdicts.py measures it).
    """
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if 2 * k >= n:  # the upper tail is the short one: P(X <= k) = 1 - P(X <= n - k - 1)
        return 1.0 - binomial_half_cdf(n - k - 1, n)
    anchor = math.comb(n, k) / (1 << n)  # int / int is exact, then rounded once: no overflow
    if anchor == 0.0:
        return 0.0  # below the smallest float: the tail is too
    total, term = 1.0, 1.0
    for i in range(k, 0, -1):
        term *= i / (n - i + 1)
        total += term
        if term < total * 1e-17:
            break
    return min(1.0, anchor * total)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value on the discordant pairs b (fixed) and c (broken).

    Under "no change", b ~ Binomial(b + c, 1/2); the p-value is twice the smaller tail,
    capped at 1 (as statsmodels' ``mcnemar(exact=True)``). Fast and finite for any counts.
    """
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be non-negative")
    n = b + c
    if n == 0:
        return 1.0
    return min(1.0, 2.0 * binomial_half_cdf(min(b, c), n))


def paired_difference_interval(
    both: float, broken: float, fixed: float, neither: float, z: float = Z95
) -> tuple[float, float] | None:
    """Interval for ``later rate - earlier rate`` on the same cases; ``None`` without cases.

    The cells count the cases that pass in both versions (``both``), only in the earlier one
    (``broken``), only in the later one (``fixed``) and in neither. Newcombe's method 10: the
    Wilson intervals of the two rates, combined with the correlation of the paired outcomes
    (phi, made conservative by Newcombe's n/2 correction). Counts may be fractional.
    """
    n = both + broken + fixed + neither
    if n <= 0:
        return None
    earlier, later = (both + broken) / n, (both + fixed) / n
    earlier_ci, later_ci = wilson(both + broken, n, z), wilson(both + fixed, n, z)
    assert earlier_ci is not None and later_ci is not None
    margins = (both + broken) * (fixed + neither) * (both + fixed) * (broken + neither)
    phi = 0.0
    if margins > 0:
        cross = both * neither - broken * fixed
        if cross > n / 2:
            phi = (cross - n / 2) / math.sqrt(margins)
        elif cross < 0:
            phi = cross / math.sqrt(margins)
    return _combine(later - earlier, later, later_ci, earlier, earlier_ci, phi)


def independent_difference_interval(
    later_successes: float,
    later_n: float,
    earlier_successes: float,
    earlier_n: float,
    z: float = Z95,
) -> tuple[float, float] | None:
    """Interval for ``later rate - earlier rate`` measured on different (unpaired) samples.

    Newcombe's hybrid score interval (method 10 of his 1998 paper on independent
    proportions; statsmodels' ``confint_proportions_2indep(method="newcomb")``). The sizes may
    be effective sample sizes (repeated samples per case).
    """
    later_ci, earlier_ci = (
        wilson(later_successes, later_n, z),
        wilson(earlier_successes, earlier_n, z),
    )
    if later_ci is None or earlier_ci is None:
        return None
    later, earlier = later_successes / later_n, earlier_successes / earlier_n
    return _combine(later - earlier, later, later_ci, earlier, earlier_ci, 0.0)


def _combine(
    difference: float,
    later: float,
    later_ci: tuple[float, float],
    earlier: float,
    earlier_ci: tuple[float, float],
    phi: float,
) -> tuple[float, float]:
    # Newcombe's square-and-add: each end of the difference's interval from the distances of
    # the two rates to the ends of their own intervals, less their covariance.
    below_later, above_later = later - later_ci[0], later_ci[1] - later
    below_earlier, above_earlier = earlier - earlier_ci[0], earlier_ci[1] - earlier
    low_squared = below_later**2 - 2 * phi * below_later * above_earlier + above_earlier**2
    high_squared = above_later**2 - 2 * phi * above_later * below_earlier + below_earlier**2
    low = difference - math.sqrt(max(low_squared, 0.0))
    high = difference + math.sqrt(max(high_squared, 0.0))
    return max(-1.0, low), min(1.0, high)


def cases_to_bound(
    upper_bound_at: Callable[[float], float | None], cases: int, margin: float, limit: int = 100_000
) -> int | None:
    """Smallest number of cases at which ``upper_bound_at(scale)`` falls below ``margin``.

    ``upper_bound_at(scale)`` is the upper bound of the interval the same observed
    proportions would give with every count multiplied by ``scale`` (more cases, same
    discordance). ``None`` when no size up to ``limit`` would do (the observed gain itself
    reaches the margin).
    """

    def below(n: int) -> bool:
        bound = upper_bound_at(n / cases)
        return bound is not None and bound < margin

    if cases <= 0 or not below(limit):
        return None
    low, high = 1, limit  # the interval narrows as the counts grow, so bisect on the size
    while low < high:
        middle = (low + high) // 2
        if below(middle):
            high = middle
        else:
            low = middle + 1
    return low


def two_proportion_p(rate_a: float, n_a: float, rate_b: float, n_b: float) -> float:
    """Two-sided pooled z-test p-value for two independent proportions (1.0 if undefined)."""
    if n_a <= 0 or n_b <= 0:
        return 1.0
    pooled = (rate_a * n_a + rate_b * n_b) / (n_a + n_b)
    variance = pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b)
    if variance <= 0.0:
        return 1.0
    z = abs(rate_a - rate_b) / math.sqrt(variance)
    return math.erfc(z / math.sqrt(2.0))


@dataclass(frozen=True)
class VersionStats:
    """Everything the gate and the reports need about one (prompt, version, model)."""

    n: int  # cases evaluated (errored cases excluded)
    passed: int  # cases whose every sample passed
    failed: int  # cases with at least one failed sample (flaky cases included)
    errors: int  # cases with a provider error
    rate: float | None  # mean of case pass fractions; None when n == 0
    ci_low: float | None
    ci_high: float | None
    samples: int  # samples per case (the largest, when cases differ)
    effective_n: float  # sample size behind the interval (= n without repeats)
    cost_usd: float | None  # spent in this run (cache hits cost nothing); None if unknown
    cost_per_call_usd: float | None  # measured price of one call (cache hits included)
    calls: int  # successful model calls (samples)
    tokens: Mapping[str, int] = field(default_factory=dict)  # prompt, completion, total
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    failing_cases: tuple[str, ...] = ()
    flaky_cases: tuple[str, ...] = ()
    error_cases: tuple[str, ...] = ()
    case_rates: Mapping[str, float] = field(default_factory=dict)  # errored cases absent


def version_stats(results: Sequence[CaseResult]) -> VersionStats:
    """Aggregate the case results of one version.

    Costs: ``cost_usd`` is what this run paid, so cached calls count as 0; it is ``None`` as
    soon as one successful, uncached call has an unknown price. ``cost_per_call_usd`` is the
    mean recorded price of successful calls, cached or not (the advisor needs the price of a
    call, not what this run happened to pay). Latency percentiles use uncached successful
    calls (a cache hit measures the disk), falling back to all successful calls.
    """
    evaluated = [r for r in results if r.status != ERROR]
    errored = [r for r in results if r.status == ERROR]
    case_rates = {r.case: float(r.rate or 0.0) for r in evaluated}  # rate is not None here
    rates = list(case_rates.values())
    n = len(evaluated)
    repeated = any(len(r.samples) > 1 for r in evaluated)
    if repeated:
        samples_per_case = [len(r.samples) for r in evaluated]
        effective_n = effective_sample_size(rates, samples_per_case)
        interval = wilson_clustered(rates, samples_per_case)
    else:
        effective_n = float(n)
        interval = wilson(sum(rates), n)
    rate = sum(rates) / n if n else None

    calls = [s.call for r in results for s in r.samples]
    ok_calls = [c for c in calls if c.ok]
    spent: float | None = 0.0
    for call in calls:
        if call.cached:
            continue
        if call.cost_usd is None:
            if call.ok:
                spent = None
                break
            continue  # a failed call with no price: nothing was billed that we know of
        spent = (spent or 0.0) + call.cost_usd
    priced = [c.cost_usd for c in ok_calls if c.cost_usd is not None]
    cost_per_call = sum(priced) / len(priced) if priced and len(priced) == len(ok_calls) else None
    prompt_tokens = sum(c.prompt_tokens or 0 for c in calls)
    completion_tokens = sum(c.completion_tokens or 0 for c in calls)
    latencies = [c.latency_ms for c in ok_calls if not c.cached] or [c.latency_ms for c in ok_calls]

    return VersionStats(
        n=n,
        passed=sum(r.status == PASSED for r in evaluated),
        failed=sum(r.status == FAILED for r in evaluated),
        errors=len(errored),
        rate=rate,
        ci_low=interval[0] if interval else None,
        ci_high=interval[1] if interval else None,
        samples=max((len(r.samples) for r in results), default=0),
        effective_n=effective_n,
        cost_usd=None if spent is None else round(spent, 10),  # no 0.04000000000000003
        cost_per_call_usd=None if cost_per_call is None else round(cost_per_call, 12),
        calls=len(ok_calls),
        tokens={
            "prompt": prompt_tokens,
            "completion": completion_tokens,
            "total": prompt_tokens + completion_tokens,
        },
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
        failing_cases=tuple(r.case for r in evaluated if r.status == FAILED),
        flaky_cases=tuple(r.case for r in evaluated if r.flaky),
        error_cases=tuple(r.case for r in errored),
        case_rates=case_rates,
    )


def cases_needed(
    rate: float, threshold: float, z: float = Z95, limit: int = 1_000_000
) -> int | None:
    """Smallest n whose Wilson interval around ``rate`` excludes ``threshold``.

    ``None`` when no n up to ``limit`` does (a rate equal to the threshold never separates).
    """
    if rate == threshold:
        return None

    def separates(n: int) -> bool:
        interval = wilson(rate * n, n, z)
        assert interval is not None
        low, high = interval
        return high < threshold if rate < threshold else low > threshold

    if not separates(limit):
        return None
    low, high = 1, limit  # the interval narrows as n grows, so bisect on n
    while low < high:
        middle = (low + high) // 2
        if separates(middle):
            high = middle
        else:
            low = middle + 1
    return low


def format_percent(x: float) -> str:
    """70% / 72.5%: whole percents when exact, otherwise one decimal (85% vs 84.9% matters)."""
    value = round(x * 100, 1)
    return f"{value:.0f}%" if value == int(value) else f"{value:.1f}%"


def _whole(x: float) -> str:
    return f"{x * 100:.0f}%"


def width_note(
    rate: float | None,
    ci_low: float | None,
    ci_high: float | None,
    threshold: float,
    n: int,
    effective_n: float | None = None,
) -> str | None:
    """Say so when the 95% interval is too wide to tell the rate from the threshold.

    With repeated samples, ``effective_n`` (the sample size behind the interval) turns the
    sample size needed into cases: each case is worth ``effective_n / n`` samples.
    """
    if rate is None or ci_low is None or ci_high is None:
        return None
    if not ci_low <= threshold <= ci_high:
        return None
    head = (
        f"n={n}: the 95% interval {_whole(ci_low)}–{_whole(ci_high)} cannot separate "
        f"{format_percent(rate)} from the {format_percent(threshold)} threshold"
    )
    needed = cases_needed(rate, threshold)
    if needed is None:
        return head + "; no number of cases would at this rate"
    if effective_n is not None and n > 0 and effective_n > 0:
        needed = math.ceil(needed * n / effective_n)
    return head + f"; about {needed} cases would"
