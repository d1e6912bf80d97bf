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
    # Keys written beside `value` in the `{type:, value:}` form that the type declared as its
    # options (``assertions.register(..., options=...)``), e.g. {"threshold": 0.8}. Left out of
    # the hash so an expectation hashes as before (a mapping is not hashable).
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def name(self) -> str:
        return ("not-" if self.negate else "") + self.type


@dataclass(frozen=True)
class MessageTemplate:
    role: str  # system | user | assistant | tool
    content: str  # Jinja2 source ("" for an assistant turn that only calls tools)
    # Multi-turn and images (issue 13), all optional and sent as given:
    tool_call_id: str | None = None  # a `tool` turn: the id of the call it answers
    # an `assistant` turn's calls, in OpenAI form: {id, type: function, function: {name, arguments}}
    tool_calls: tuple[Mapping[str, Any], ...] = field(default=(), hash=False)
    image: str | None = None  # a `user` turn's image: URL, data: URL or file (Jinja2 source)

    def extras(self) -> dict[str, Any]:
        """The optional parts that are set (for content hashes: absent when none is)."""
        extras: dict[str, Any] = {}
        if self.tool_call_id is not None:
            extras["tool_call_id"] = self.tool_call_id
        if self.tool_calls:
            extras["tool_calls"] = [dict(c) for c in self.tool_calls]
        if self.image is not None:
            extras["image"] = self.image
        return extras


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
    # A version may run on its own model and params (issue 13): None / {} inherit the suite's.
    model: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Case:
    id: str
    vars: Mapping[str, Any]
    expect: tuple[Expectation, ...]  # suite defaults already merged in
    tags: tuple[str, ...] = ()
    repeat: int = 1  # samples per case (suite default applied)
    ideal: str | None = None  # explicit target output (fine-tuning label)
    # A target that is a tool call (`ideal: {tool_call: {name, arguments}}`, issue 13): each
    # {"name": str, "arguments": JSON value}. Set instead of ``ideal``.
    ideal_tool_calls: tuple[Mapping[str, Any], ...] = field(default=(), hash=False)
    location: Location | None = None
    # promptfoo's test `threshold`: a sample passes when the weighted score of its checks
    # reaches it (``weighted_score``); None: every check must pass.
    threshold: float | None = None


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
    plateau_margin: float | None = None  # None: the run's default (0.15), see gate.py
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

    def model_for(self, version: Version) -> str | None:
        """The model a version asks for: its own, else the suite's (the command line's
        ``--promptgate-model`` still overrides both, see ``api.resolve_model``)."""
        return version.model or self.model

    def params_for(self, version: Version) -> dict[str, Any]:
        """The params a version runs with: the suite's, with the version's keys replacing them."""
        return {**self.params, **version.params}


@dataclass(frozen=True)
class CallRequest:
    model: str
    messages: tuple[Mapping[str, str], ...]  # [{"role": ..., "content": ...}, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    sample: int = 0  # sample index when a case is repeated
    label: str = ""  # who asked (node id), for messages only; not part of any cache key


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asked for.

    ``arguments`` is the parsed JSON of ``raw_arguments`` (usually a mapping), or None when the
    model's argument text is not JSON; ``raw_arguments`` is always the text as the model sent it.
    """

    id: str
    name: str
    arguments: Any = None
    raw_arguments: str = ""


def parse_tool_arguments(raw: str) -> Any:
    """The JSON value of a tool call's argument text, or None when it does not parse."""
    import json

    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except ValueError:
        return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN / Infinity


def tool_call_to_dict(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "name": call.name,
        "arguments": call.arguments,
        "raw_arguments": call.raw_arguments,
    }


def tool_calls_from_data(data: Any) -> tuple[ToolCall, ...]:
    """ToolCalls from their dict form (``tool_call_to_dict``); absent or malformed: ()."""
    if not isinstance(data, (list, tuple)):
        return ()
    calls = []
    for item in data:
        if not isinstance(item, Mapping):
            continue
        raw = item.get("raw_arguments")
        raw = raw if isinstance(raw, str) else ""
        calls.append(
            ToolCall(
                id=str(item.get("id") or ""),
                name=str(item.get("name") or ""),
                arguments=item.get("arguments", parse_tool_arguments(raw)),
                raw_arguments=raw,
            )
        )
    return tuple(calls)


def call_extras_to_dict(call: CallResult) -> dict[str, Any]:
    """The optional parts of a reply (tool calls, finish reason, structured output) as JSON;
    empty parts are left out, so plain-text results serialise exactly as before issue 13."""
    extras: dict[str, Any] = {}
    if call.tool_calls:
        extras["tool_calls"] = [tool_call_to_dict(t) for t in call.tool_calls]
    if call.finish_reason is not None:
        extras["finish_reason"] = call.finish_reason
    if call.structured is not None:
        extras["structured"] = call.structured
    return extras


def call_extras_from_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for CallResult from ``call_extras_to_dict``'s form (missing: defaults)."""
    reason = data.get("finish_reason")
    return {
        "tool_calls": tool_calls_from_data(data.get("tool_calls")),
        "finish_reason": reason if isinstance(reason, str) else None,
        "structured": data.get("structured"),
    }


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
    # What the model returned besides text (issue 13). A reply with tool calls and no text is a
    # valid answer: ``output`` is then "".
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None  # stop | length | tool_calls | content_filter | ...
    # The parsed structured output when ``response_format`` asked for JSON and the text parses.
    structured: Any = None

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
    weight: float = 1.0  # promptfoo's `weight`: its share of the case's weighted score
    metric: str | None = None  # promptfoo's `metric`: the named metric the reports aggregate


def weighted_score(checks: tuple[ExpectationResult, ...]) -> float:
    """promptfoo's aggregate score: the weighted mean of the checks' scores (a check's score in
    [0, 1] when it gave one, else 1 passed / 0 failed); 0 when the weights sum to 0."""
    total = sum(c.weight for c in checks)
    if total <= 0:
        return 0.0
    return sum(c.weight * _check_score(c) for c in checks) / total


def _check_score(check: ExpectationResult) -> float:
    if check.score is not None and 0.0 <= check.score <= 1.0:
        return check.score
    return 1.0 if check.passed else 0.0


def checks_pass(checks: tuple[ExpectationResult, ...], threshold: float | None) -> bool:
    """Every check passes or, with promptfoo's test ``threshold``, the weighted score reaches it."""
    if threshold is None:
        return all(c.passed for c in checks)
    return weighted_score(checks) >= threshold


@dataclass(frozen=True)
class SampleResult:
    sample: int
    call: CallResult
    checks: tuple[ExpectationResult, ...] = ()
    threshold: float | None = None  # the case's `threshold` (see ``checks_pass``)

    @cached_property
    def status(self) -> str:
        if not self.call.ok:
            return ERROR
        return PASSED if checks_pass(self.checks, self.threshold) else FAILED


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
                    **call_extras_to_dict(s.call),
                },
                "checks": [
                    {
                        "expectation": c.expectation,
                        "passed": c.passed,
                        "reason": c.reason,
                        "score": c.score,
                        "location": _location_to_dict(c.location),
                        **({"weight": c.weight} if c.weight != 1.0 else {}),
                        **({"metric": c.metric} if c.metric is not None else {}),
                    }
                    for c in s.checks
                ],
                **({"threshold": s.threshold} if s.threshold is not None else {}),
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
                call=_call_from_dict(s["call"]),
                checks=tuple(
                    ExpectationResult(
                        expectation=c["expectation"],
                        passed=c["passed"],
                        reason=c["reason"],
                        score=c["score"],
                        location=_location_from_dict(c.get("location")),
                        weight=c.get("weight", 1.0),
                        metric=c.get("metric"),
                    )
                    for c in s["checks"]
                ),
                threshold=s.get("threshold"),
            )
            for s in data["samples"]
        ),
    )


_CALL_EXTRAS = ("tool_calls", "finish_reason", "structured")


def _call_from_dict(data: Mapping[str, Any]) -> CallResult:
    plain = {k: v for k, v in data.items() if k not in _CALL_EXTRAS}
    return CallResult(**plain, **call_extras_from_dict(data))
