"""promptfoo's scoring: ``assert-set`` (grouped expectations) and the per-metric pass rates.

A case's own weighted score lives with the results (``model.weighted_score``/``checks_pass``:
a sample passes when every check passes or, with the case's ``threshold``, when the weighted
mean of its checks' scores reaches it). ``assert-set`` applies the same rule to its group:

    - type: assert-set
      threshold: 0.5          # optional; without it every inner expectation must pass
      weight: 2               # the set's weight in the case (like any expectation)
      metric: tone
      assert:
        - {type: icontains, value: sorry}
        - {type: icontains, value: apolog}

The set passes like a case would; its score is the inner weighted score. Inner expectations
keep their own ``weight`` and ``transform``; a ``metric`` inside a set is not reported on its
own (put it on the set). The loader builds the set's value: a tuple of ``Expectation``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pytest_promptgate.assertions.compat import validate_fraction
from pytest_promptgate.assertions.registry import (
    CheckContext,
    CheckOutcome,
    builtin,
    check_all,
    discard_pending,
    start_checks,
)
from pytest_promptgate.model import (
    ERROR,
    CaseResult,
    Expectation,
    ExpectationResult,
    checks_pass,
    weighted_score,
)

_SHOWN_FAILURES = 3


def _validate_assert_set(value: Any, suite_dir: Path) -> None:
    if (
        not isinstance(value, tuple)
        or not value
        or not all(isinstance(item, Expectation) for item in value)
    ):
        raise ValueError(
            "assert-set needs a non-empty `assert:` list of expectations; write "
            "{type: assert-set, assert: [{type: contains, value: a}, {type: contains, value: b}]}"
        )
    if any(item.type == "assert-set" for item in value):
        raise ValueError("an assert-set cannot hold another assert-set; flatten the groups")


@builtin("assert-set", validate=_validate_assert_set, options={"threshold": validate_fraction})
def check_assert_set(output: str, value: Any, ctx: CheckContext) -> Any:
    threshold = ctx.options.get("threshold")
    inner_ctx = dataclasses.replace(ctx, options={})
    results, pending = start_checks(value, inner_ctx)
    if not pending:
        return _set_outcome([r for r in results if r is not None], threshold)
    discard_pending(pending)  # check_all runs the set again, awaiting its judges together

    async def finish() -> CheckOutcome:
        return _set_outcome(list(await check_all(value, inner_ctx)), threshold)

    return finish()


def _set_outcome(results: Sequence[ExpectationResult], threshold: float | None) -> CheckOutcome:
    checks = tuple(results)
    score = weighted_score(checks)
    passed = checks_pass(checks, threshold)
    held = sum(1 for r in checks if r.passed)
    summary = f"{held}/{len(checks)} passed, score {score:.2f}"
    if threshold is not None:
        summary += f" {'>=' if passed else '<'} threshold {threshold:g}"
    failures = [f"{r.expectation}: {r.reason}" for r in checks if not r.passed]
    if failures and not passed:
        shown = "; ".join(failures[:_SHOWN_FAILURES])
        more = (
            f" (+{len(failures) - _SHOWN_FAILURES} more)" if len(failures) > _SHOWN_FAILURES else ""
        )
        summary += f": {shown}{more}"
    return CheckOutcome(passed, f"assert-set {summary}", score)


def metric_rates(results: Iterable[CaseResult]) -> dict[str, dict[str, Any]]:
    """``{metric: {passed, n, rate}}`` over the checks that name a ``metric`` (errored samples
    left out), metrics sorted by name; {} when no expectation names one."""
    counts: dict[str, list[int]] = {}
    for result in results:
        for sample in result.samples:
            if sample.status == ERROR:
                continue
            for check in sample.checks:
                if check.metric is None:
                    continue
                tally = counts.setdefault(check.metric, [0, 0])
                tally[0] += check.passed
                tally[1] += 1
    return {
        name: {"passed": passed, "n": n, "rate": round(passed / n, 6)}
        for name, (passed, n) in sorted(counts.items())
    }
