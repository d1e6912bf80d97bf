"""Rates, Wilson intervals (plain and clustered), percentiles, exact McNemar."""

from __future__ import annotations

import math
import random
from statistics import NormalDist

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_promptgate.model import CallResult, CaseResult, ExpectationResult, SampleResult
from pytest_promptgate.stats import (
    Z95,
    Z95_ONE_SIDED,
    binomial_half_cdf,
    cases_needed,
    cases_to_bound,
    effective_sample_size,
    independent_difference_interval,
    mcnemar_exact,
    paired_difference_interval,
    percentile,
    two_proportion_p,
    version_stats,
    width_note,
    wilson,
    wilson_clustered,
)


def sample(
    index: int,
    outcome: bool | None,
    *,
    cost: float | None = 0.001,
    latency: float = 100.0,
    cached: bool = False,
) -> SampleResult:
    """outcome True/False = passed/failed; None = provider error."""
    if outcome is None:
        return SampleResult(index, CallResult(output=None, error="boom", error_kind="server"))
    call = CallResult(
        output="x",
        prompt_tokens=10,
        completion_tokens=2,
        cost_usd=cost,
        latency_ms=latency,
        cached=cached,
    )
    return SampleResult(index, call, (ExpectationResult("equals", outcome),))


def case(case_id: str, *outcomes: bool | None, **call: object) -> CaseResult:
    return CaseResult(
        prompt="p",
        version="v1",
        case=case_id,
        model="m",
        messages=(),
        samples=tuple(sample(i, o, **call) for i, o in enumerate(outcomes)),  # type: ignore[arg-type]
    )


# --- Wilson ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        (17, 20, 0.6396, 0.9476),  # textbook 17/20
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (14, 20, 0.4810, 0.8545),
        (81, 263, 0.2553, 0.3662),  # Newcombe (1998) example 81/263
    ],
)
def test_wilson_matches_known_values(successes, n, low, high):
    interval = wilson(successes, n)
    assert interval is not None
    assert interval[0] == pytest.approx(low, abs=5e-4)
    assert interval[1] == pytest.approx(high, abs=5e-4)


def test_wilson_without_data_is_none_not_zero_to_one():
    assert wilson(0, 0) is None


def test_wilson_accepts_fractional_counts():
    interval = wilson(8.5, 10.0)
    assert interval is not None and interval[0] < 0.85 < interval[1]


# --- clustered (repeat: k) ----------------------------------------------------------------


def test_perfectly_correlated_repeats_count_as_one_sample_per_case():
    # Each case always passes or always fails: 3 samples per case carry one case's information.
    rates = [1.0] * 14 + [0.0] * 6
    assert effective_sample_size(rates, [3] * 20) == pytest.approx(20.0)
    naive = wilson(42, 60)
    clustered = wilson_clustered(rates, [3] * 20)
    assert naive is not None and clustered is not None
    assert clustered[1] - clustered[0] > naive[1] - naive[0]
    assert clustered == pytest.approx(wilson(14, 20))


def test_independent_looking_repeats_keep_most_samples():
    # Case rates spread as binomial(3, 0.7)/3 would: about the naive interval.
    rates = [1.0] * 7 + [2 / 3] * 9 + [1 / 3] * 4
    n_eff = effective_sample_size(rates, [3] * 20)
    assert 40 < n_eff <= 60


def test_clustered_interval_is_wider_than_naive_for_correlated_repeats():
    rng = random.Random(7)
    rates = []
    for _ in range(40):
        # A case is easy (passes 95%) or hard (passes 20%): samples of one case correlate.
        p = 0.95 if rng.random() < 0.7 else 0.2
        rates.append(sum(rng.random() < p for _ in range(5)) / 5)
    total_passes = sum(r * 5 for r in rates)
    naive = wilson(total_passes, 200)
    clustered = wilson_clustered(rates, [5] * 40)
    assert naive is not None and clustered is not None
    assert clustered[1] - clustered[0] > 1.2 * (naive[1] - naive[0])


# --- percentiles, McNemar, two proportions ---------------------------------------------------


def test_percentile_interpolates_linearly_like_numpy():
    values = [15, 20, 35, 40, 50]
    assert percentile(values, 50) == 35
    assert percentile(values, 95) == pytest.approx(48.0)  # numpy.percentile(values, 95)
    assert percentile(values, 0) == 15 and percentile(values, 100) == 50
    assert percentile([], 50) is None


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        (0, 0, 1.0),
        (1, 9, 0.021484375),  # 2 * 11 / 1024
        (0, 5, 0.0625),
        (3, 3, 1.0),
        (2, 8, 0.109375),  # 2 * 56 / 1024
        (0, 10, 0.001953125),
    ],
)
def test_mcnemar_exact_known_values(b, c, p):
    assert mcnemar_exact(b, c) == pytest.approx(p)
    assert mcnemar_exact(c, b) == pytest.approx(p)


def test_two_proportion_test_known_value():
    # 45/100 vs 60/100: pooled z = 2.1243, two-sided p = 0.0336
    assert two_proportion_p(0.45, 100, 0.60, 100) == pytest.approx(0.0336, abs=2e-4)
    assert two_proportion_p(0.5, 0, 0.6, 10) == 1.0


# --- version stats -------------------------------------------------------------------------


def test_version_stats_counts_rates_and_excludes_errors():
    results = [case(f"c{i}", True) for i in range(17)] + [
        case("f1", False),
        case("f2", False),
        case("f3", False),
        case("e1", None),
    ]
    stats = version_stats(results)
    assert (stats.n, stats.passed, stats.failed, stats.errors) == (20, 17, 3, 1)
    assert stats.rate == pytest.approx(0.85)
    assert stats.ci_low == pytest.approx(0.6396, abs=5e-4)
    assert stats.failing_cases == ("f1", "f2", "f3")
    assert stats.error_cases == ("e1",)
    assert stats.tokens == {"prompt": 200, "completion": 40, "total": 240}
    assert stats.cost_usd == pytest.approx(0.020)
    assert stats.cost_per_call_usd == pytest.approx(0.001)
    assert stats.latency_p95_ms == pytest.approx(100.0)


def test_unknown_price_makes_the_cost_unknown_never_zero():
    stats = version_stats([case("a", True), case("b", True, cost=None)])
    assert stats.cost_usd is None
    assert stats.cost_per_call_usd is None


def test_cached_calls_cost_nothing_in_this_run_but_keep_their_price():
    stats = version_stats([case("a", True, cost=0.002, cached=True), case("b", True, cost=0.002)])
    assert stats.cost_usd == pytest.approx(0.002)
    assert stats.cost_per_call_usd == pytest.approx(0.002)


def test_repeats_give_case_rates_flaky_cases_and_a_clustered_interval():
    results = [
        case("a", True, True, True),
        case("b", True, False, True),
        case("c", False, False, False),
    ]
    stats = version_stats(results)
    assert stats.samples == 3
    assert stats.rate == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert stats.case_rates["b"] == pytest.approx(2 / 3)
    assert stats.flaky_cases == ("b",)
    assert stats.failing_cases == ("b", "c")
    assert stats.effective_n <= 9


def test_no_evaluated_case_has_no_rate():
    stats = version_stats([case("a", None)])
    assert stats.n == 0 and stats.rate is None and stats.ci_low is None


# --- width note ------------------------------------------------------------------------------


def test_width_note_when_interval_straddles_threshold():
    note = width_note(0.7, 0.481, 0.8545, 0.8, 20)
    assert note is not None
    assert note.startswith(
        "n=20: the 95% interval 48%–85% cannot separate 70% from the 80% threshold"
    )
    needed = cases_needed(0.7, 0.8)
    assert f"about {needed} cases would" in note
    # The n it names really separates, and one fewer does not.
    assert wilson(0.7 * needed, needed)[1] < 0.8
    assert wilson(0.7 * (needed - 1), needed - 1)[1] >= 0.8


def test_no_width_note_when_interval_is_clear_of_threshold():
    assert width_note(0.5, 0.3, 0.7, 0.8, 20) is None
    assert width_note(None, None, None, 0.8, 0) is None


def test_rate_equal_to_threshold_can_never_be_separated():
    assert cases_needed(0.8, 0.8) is None
    assert "no number of cases" in width_note(0.8, 0.58, 0.92, 0.8, 20)


@given(st.integers(min_value=1, max_value=5000), st.data())
def test_wilson_interval_is_ordered_inside_unit_and_contains_the_rate(n, data):
    successes = data.draw(st.integers(min_value=0, max_value=n))
    low, high = wilson(successes, n)
    assert 0.0 <= low <= successes / n <= high <= 1.0


# --- issue 12: exact z, McNemar at any size, Newcombe intervals, statsmodels agreement -------


def test_z95_is_the_exact_normal_quantile():
    assert Z95 == NormalDist().inv_cdf(0.975)
    assert abs(Z95 - 1.959964) > 1e-8  # the rounded constant it replaces was 1.5e-8 off


def test_mcnemar_exact_handles_a_thousand_and_more_discordant_pairs():
    # The old code raised OverflowError from 1,024 discordant pairs on (2.0 * tail / 2**n).
    assert mcnemar_exact(0, 1024) == 2.0 * 0.5**1024
    assert mcnemar_exact(5000, 5000) == 1.0
    assert mcnemar_exact(0, 10_000) == 0.0  # 2**-9999 is below the smallest float
    assert 0.0 < mcnemar_exact(4900, 5100) < 0.05


def test_binomial_half_cdf_is_exact_on_small_counts():
    for n in range(0, 30):
        for k in range(-1, n + 1):
            exact = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
            assert binomial_half_cdf(k, n) == pytest.approx(exact, rel=1e-14, abs=1e-300)


def test_newcombe_paired_interval_matches_the_published_example():
    # Fagerland, Lydersen & Laake, "Statistical Analysis of Contingency Tables", ch. 8: complete
    # response before/after consolidation (Cavo et al. 2012), n = [[59, 6], [16, 80]]:
    # Newcombe square-and-add estimate -0.0621 (95% CI -0.1186 to -0.0046) for first - later.
    low, high = paired_difference_interval(59, 6, 16, 80)
    assert (round(low, 4), round(high, 4)) == (0.0046, 0.1186)  # later - first: mirrored


def test_paired_interval_is_narrower_than_unpaired_when_outcomes_agree():
    paired = paired_difference_interval(28, 0, 2, 10)  # 70% -> 75%, same failures
    unpaired = independent_difference_interval(30, 40, 28, 40)
    assert paired is not None and unpaired is not None
    assert paired[0] <= 0.05 <= paired[1]
    assert paired[1] - paired[0] < unpaired[1] - unpaired[0]
    assert paired_difference_interval(0, 0, 0, 0) is None


def test_cases_to_bound_names_the_first_size_that_bounds_the_gain():
    cells = (10, 1, 3, 6)  # 20 cases, +10 points observed

    def upper_at(scale: float) -> float:
        interval = paired_difference_interval(*(c * scale for c in cells), Z95_ONE_SIDED)
        assert interval is not None
        return interval[1]

    needed = cases_to_bound(upper_at, 20, 0.15)
    assert needed is not None and needed > 20
    assert upper_at(needed / 20) < 0.15 <= upper_at((needed - 1) / 20)
    # A gain observed at the margin or above can never be bounded below it.
    assert cases_to_bound(upper_at, 20, 0.10) is None


def test_width_note_counts_cases_not_samples_with_repeats():
    plain = width_note(0.7, 0.481, 0.8545, 0.8, 20)
    repeated = width_note(0.7, 0.52, 0.83, 0.8, 20, effective_n=40.0)  # each case worth 2
    needed = cases_needed(0.7, 0.8)
    assert plain is not None and repeated is not None
    assert f"about {needed} cases would" in plain
    assert f"about {math.ceil(needed / 2)} cases would" in repeated


WILSON_GRID = [
    (s, n)
    for n in (1, 2, 3, 7, 20, 37, 100, 263, 1000, 2500, 5000)
    for s in sorted({0, 1, n // 7, n // 3, n // 2, (4 * n) // 5, n - 1, n})
    if 0 <= s <= n
]
MCNEMAR_GRID = [
    (b, c)
    for total in (1, 2, 5, 10, 40, 100, 333, 1000, 2000, 5000)
    for b in sorted({0, 1, total // 10, total // 3, total // 2 - 1, total // 2})
    if 0 <= b <= total
    for c in (total - b,)
]


def test_wilson_agrees_with_statsmodels_to_1e_12():
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    for s, n in WILSON_GRID:
        ours = wilson(s, n)
        theirs = proportion.proportion_confint(s, n, alpha=0.05, method="wilson")
        assert ours is not None
        assert abs(ours[0] - theirs[0]) <= 1e-12 and abs(ours[1] - theirs[1]) <= 1e-12, (s, n)


def test_exact_mcnemar_agrees_with_statsmodels_to_1e_12():
    tables = pytest.importorskip("statsmodels.stats.contingency_tables")
    for b, c in MCNEMAR_GRID:
        theirs = tables.mcnemar([[0, b], [c, 0]], exact=True).pvalue
        assert abs(mcnemar_exact(b, c) - theirs) <= 1e-12, (b, c)
        assert abs(mcnemar_exact(c, b) - theirs) <= 1e-12, (c, b)


def test_unpaired_newcombe_agrees_with_statsmodels_to_1e_12():
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    for later, first, n in ((30, 20, 40), (0, 5, 20), (20, 20, 20), (331, 280, 500), (1, 0, 7)):
        ours = independent_difference_interval(later, n, first, n)
        theirs = proportion.confint_proportions_2indep(
            later, n, first, n, method="newcomb", compare="diff"
        )
        assert ours is not None
        assert abs(ours[0] - theirs[0]) <= 1e-12 and abs(ours[1] - theirs[1]) <= 1e-12
