"""Data that flows between the stages (spec -> run -> stats -> gate -> report).

Everything here is a frozen dataclass or a small exception class and imports nothing heavy:
no pytest, no litellm. Each stage module owns one arrow of the data flow and exchanges only
these types (or the JSON documents described in docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

# Files that are prompt suites (plugin collection, xdist bookkeeping).
SUITE_SUFFIXES = (".promptgate.yaml", ".promptgate.yml")

# Verdict words, shared by gate, reports and the GitHub integration.
PASS = "PASS"
FAIL = "FAIL"
INCONCLUSIVE = "INCONCLUSIVE"
CONSIDER_FINE_TUNING = "CONSIDER FINE-TUNING"
RETHINK = "RETHINK"
VERDICTS = (PASS, FAIL, INCONCLUSIVE, CONSIDER_FINE_TUNING, RETHINK)

# Case statuses.
PASSED = "passed"
FAILED = "failed"
ERROR = "error"


@dataclass(frozen=True)
class Location:
    """A place in a user's file. ``line`` is 1-based (pytest's reportinfo wants it 0-based)."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class PromptgateError(Exception):
    """An error the user can act on: shown as one message, never as a traceback."""

    def __init__(self, message: str, location: Location | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def format(self) -> str:
        where = f"{self.location}: " if self.location else ""
        text = f"{where}{self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.format()


class SuiteError(PromptgateError):
    """A suite file is invalid (syntax, schema, template, cases file...)."""


class UsageError(PromptgateError):
    """A command-line option or ini value is invalid."""


class ProviderFailure(Exception):
    """Raised inside an expectation (e.g. llm-rubric's judge call) when a model call failed.

    The runner turns it into an *error* sample: a provider failure never counts as a pass or
    as a prompt failure.
    """

    def __init__(self, call: CallResult):
        super().__init__(call.error or "provider failure")
        self.call = call


@dataclass(frozen=True)
class Expectation:
    """One check on a model output, as written in the suite (``not-`` prefix folded into negate)."""

    type: str  # canonical type name without "not-", e.g. "contains", "word-count"
    value: Any  # the YAML value after the type key (str, number, list, mapping)
    negate: bool = False
    location: Location | None = None

    @property
    def name(self) -> str:
        return ("not-" if self.negate else "") + self.type


@dataclass(frozen=True)
class MessageTemplate:
    role: str  # system | user | assistant
    content: str  # Jinja2 source


@dataclass(frozen=True)
class Version:
    """One iteration of a prompt. The last version of a suite is the current one."""

    label: str
    kind: str  # "messages" | "template" | "python"
    messages: tuple[MessageTemplate, ...] = ()  # for kind messages/template
    python: str | None = None  # "module:function" for kind python (vars -> messages)
    template_path: str | None = None  # for kind template, relative to the suite file
    source_hash: str = ""  # sha256 of the prompt source (messages / template text / python ref)
    location: Location | None = None


@dataclass(frozen=True)
class Case:
    id: str
    vars: Mapping[str, Any]
    expect: tuple[Expectation, ...]  # suite defaults already merged in
    tags: tuple[str, ...] = ()
    repeat: int = 1  # samples per case (suite default applied)
    ideal: str | None = None  # explicit target output (fine-tuning label)
    location: Location | None = None


@dataclass(frozen=True)
class Suite:
    prompt: str
    file: Path  # absolute path of the suite file
    versions: tuple[Version, ...]
    cases: tuple[Case, ...]
    description: str = ""
    model: str | None = None  # None: the run's default model
    params: Mapping[str, Any] = field(default_factory=dict)
    threshold: float | None = None  # None: the run's default threshold
    finetune_after: int | None = None  # None: the run's default (3)
    rpm: float | None = None  # requests per minute for this suite's model
    usage: Mapping[str, Any] = field(default_factory=dict)  # {calls_per_month, months}
    finetune: Mapping[str, Any] = field(default_factory=dict)  # cost assumption overrides
    location: Location | None = None
    # The chat messages of every (version label, case id), rendered once when the suite loads
    # (which is also how a variable a case lacks is found before any call).
    rendered: Mapping[tuple[str, str], tuple[Mapping[str, str], ...]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def current(self) -> Version:
        return self.versions[-1]


@dataclass(frozen=True)
class CallRequest:
    model: str
    messages: tuple[Mapping[str, str], ...]  # [{"role": ..., "content": ...}, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    sample: int = 0  # sample index when a case is repeated
    label: str = ""  # who asked (node id), for messages only; not part of any cache key


@dataclass(frozen=True)
class CallResult:
    """The outcome of one model call. Provider failures are data here, never exceptions."""

    output: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None  # None: price unknown (never reported as 0)
    latency_ms: float = 0.0
    error: str | None = None  # scrubbed provider message; set => output is None
    error_kind: str | None = (
        None  # rate_limit|server|auth|bad_request|timeout|connection|malformed|replay_miss|budget|config
    )
    attempts: int = 1
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ExpectationResult:
    expectation: str  # display name, e.g. "not-contains"
    passed: bool
    reason: str = ""
    score: float | None = None
    location: Location | None = None


@dataclass(frozen=True)
class SampleResult:
    sample: int
    call: CallResult
    checks: tuple[ExpectationResult, ...] = ()

    @cached_property
    def status(self) -> str:
        if not self.call.ok:
            return ERROR
        return PASSED if all(c.passed for c in self.checks) else FAILED


@dataclass(frozen=True)
class CaseResult:
    """All samples of one (prompt, version, case, model)."""

    prompt: str
    version: str
    case: str
    model: str
    messages: tuple[Mapping[str, str], ...]
    samples: tuple[SampleResult, ...]
    location: Location | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)

    # Derived once: the gate, the stats and every report ask for these many times.
    @cached_property
    def status(self) -> str:
        statuses = [s.status for s in self.samples]
        if not statuses or ERROR in statuses:
            return ERROR
        return PASSED if all(s == PASSED for s in statuses) else FAILED

    @cached_property
    def rate(self) -> float | None:
        """Fraction of samples that passed; None when the case errored."""
        if self.status == ERROR:
            return None
        return sum(s.status == PASSED for s in self.samples) / len(self.samples)

    @property
    def flaky(self) -> bool:
        rate = self.rate
        return rate is not None and 0.0 < rate < 1.0


def _location_to_dict(loc: Location | None) -> dict[str, Any] | None:
    return None if loc is None else {"file": loc.file, "line": loc.line}


def _location_from_dict(data: Mapping[str, Any] | None) -> Location | None:
    return None if not data else Location(str(data["file"]), int(data["line"]))


def case_result_to_dict(result: CaseResult) -> dict[str, Any]:
    """Lossless JSON form of a CaseResult (rides on item.user_properties across xdist)."""
    return {
        "prompt": result.prompt,
        "version": result.version,
        "case": result.case,
        "model": result.model,
        "messages": [dict(m) for m in result.messages],
        "vars": dict(result.vars),
        "location": _location_to_dict(result.location),
        "samples": [
            {
                "sample": s.sample,
                "call": {
                    "output": s.call.output,
                    "prompt_tokens": s.call.prompt_tokens,
                    "completion_tokens": s.call.completion_tokens,
                    "cost_usd": s.call.cost_usd,
                    "latency_ms": s.call.latency_ms,
                    "error": s.call.error,
                    "error_kind": s.call.error_kind,
                    "attempts": s.call.attempts,
                    "cached": s.call.cached,
                },
                "checks": [
                    {
                        "expectation": c.expectation,
                        "passed": c.passed,
                        "reason": c.reason,
                        "score": c.score,
                        "location": _location_to_dict(c.location),
                    }
                    for c in s.checks
                ],
            }
            for s in result.samples
        ],
    }


def case_result_from_dict(data: Mapping[str, Any]) -> CaseResult:
    return CaseResult(
        prompt=data["prompt"],
        version=data["version"],
        case=data["case"],
        model=data["model"],
        messages=tuple(dict(m) for m in data["messages"]),
        vars=dict(data.get("vars") or {}),
        location=_location_from_dict(data.get("location")),
        samples=tuple(
            SampleResult(
                sample=s["sample"],
                call=CallResult(**s["call"]),
                checks=tuple(
                    ExpectationResult(
                        expectation=c["expectation"],
                        passed=c["passed"],
                        reason=c["reason"],
                        score=c["score"],
                        location=_location_from_dict(c.get("location")),
                    )
                    for c in s["checks"]
                ),
            )
            for s in data["samples"]
        ),
    )
