"""Running one expectation with options and a full reply, and loading a one-case suite, for
the unit tests of the expectation families."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pytest_promptgate.api import load_suite
from pytest_promptgate.assertions import CheckContext, check_all
from pytest_promptgate.model import (
    CallResult,
    Expectation,
    ExpectationResult,
    Location,
    SuiteError,
    ToolCall,
)

HERE = Path(__file__).parent


def run_check(
    type_: str,
    value: Any,
    output: str = "",
    *,
    negate: bool = False,
    options: dict[str, Any] | None = None,
    tool_calls: tuple[ToolCall, ...] = (),
    finish_reason: str | None = None,
    structured: Any = None,
    suite_dir: Path = HERE,
    **ctx: Any,
) -> ExpectationResult:
    """The result of one expectation (at suite.yaml:7) on a reply with these parts."""
    call = CallResult(
        output=output,
        tool_calls=tool_calls,
        finish_reason=finish_reason,
        structured=structured,
    )
    expectation = Expectation(
        type_, value, negate=negate, location=Location("suite.yaml", 7), options=options or {}
    )
    context = CheckContext(output=output, vars={}, call=call, suite_dir=suite_dir, **ctx)
    (result,) = asyncio.run(check_all([expectation], context))
    return result


SUITE = """\
prompt: p
model: openai/test
versions:
  v1:
    user: "Answer {{{{ q }}}}"
cases:
  - id: c1
    vars: {{q: x}}
    expect:
{expect}
"""


def suite_error(tmp_path: Path, *expect_lines: str) -> tuple[str, int]:
    """Load a one-case suite whose ``expect:`` holds these YAML lines; return the error message
    and the 1-based line of the first expectation (which the message should name)."""
    body = "\n".join(f"      {line}" for line in expect_lines)
    path = tmp_path / "bad.promptgate.yaml"
    path.write_text(SUITE.format(expect=body), encoding="utf-8")
    first_line = SUITE.format(expect="").splitlines().index("    expect:") + 2
    with pytest.raises(SuiteError) as info:
        load_suite(path, tmp_path)
    return str(info.value), first_line


def loads(tmp_path: Path, *expect_lines: str) -> list[Expectation]:
    """The expectations of a one-case suite that loads."""
    body = "\n".join(f"      {line}" for line in expect_lines)
    path = tmp_path / "ok.promptgate.yaml"
    path.write_text(SUITE.format(expect=body), encoding="utf-8")
    suite = load_suite(path, tmp_path)
    return list(suite.cases[0].expect)
