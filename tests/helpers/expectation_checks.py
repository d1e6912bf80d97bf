"""Running one expectation against an output, the way the runner does, for unit tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pytest_promptgate.assertions import CheckContext, check_all
from pytest_promptgate.model import (
    CallRequest,
    CallResult,
    Expectation,
    ExpectationResult,
    Location,
)

HERE = Path(__file__).parent


def make_ctx(
    output: str, call: CallResult | None = None, suite_dir: Path = HERE, **extra
) -> CheckContext:
    call = call or CallResult(
        output=output, cost_usd=0.001, latency_ms=120.0, prompt_tokens=10, completion_tokens=3
    )
    return CheckContext(
        output=output,
        vars=extra.pop("vars", {"ticket": "x"}),
        call=call,
        suite_dir=suite_dir,
        **extra,
    )


def check(type_: str, value, output: str, negate: bool = False, **ctx_kw) -> ExpectationResult:
    """The result of one expectation (located at suite.yaml:7) on ``output``."""
    expectation = Expectation(type_, value, negate=negate, location=Location("suite.yaml", 7))
    (result,) = asyncio.run(check_all([expectation], make_ctx(output, **ctx_kw)))
    return result


def fake_judge(reply: str | None, error: str | None = None, seen: list | None = None):
    """A judge that answers ``reply`` (or fails with ``error``), recording requests in ``seen``."""

    async def judge(request: CallRequest) -> CallResult:
        if seen is not None:
            seen.append(request)
        return CallResult(output=reply, error=error, error_kind="server" if error else None)

    return judge
