"""The expectation registry: what a check is, how it is registered, how a case's checks run.

A check type is a name plus plain callables, declared in one place (``register`` for plugins,
the ``builtin`` decorator for the families of this package):

* ``check(output, value, ctx)``: sync or async; returns a :class:`CheckOutcome`, a bool, a
  number (a score, passing at >= 0.5), a ``(bool, reason)`` tuple or a
  ``{"pass": ..., "score": ..., "reason": ...}`` dict.
* ``validate(value, suite_dir)``: optional; raises ``ValueError("<what is wrong>; <how to fix>")``
  while the suite is loaded, so a bad value is reported at its YAML line before any model call.
* ``options``: optional ``{key: validator}``, the keys a suite may write beside ``type`` and
  ``value`` in promptfoo's form (``{type: similar, value: ..., threshold: 0.8}``). The suite
  loader accepts exactly these, each validator checks its key's value like ``validate`` does,
  and the values reach the check as ``ctx.options``. A type that declares ``threshold``
  (use ``compat.validate_fraction`` for a score) gets it as its value when the suite gave
  none: promptfoo's ``{type: latency, threshold: 500}`` reads only ``threshold``.

Every type also accepts promptfoo's common keys (``compat.COMMON_OPTIONS``): ``weight`` and
``metric`` are copied onto the result (the case's weighted score, the reports' metrics),
``transform`` rewrites the output before the check sees it; checks never see these three in
``ctx.options``.

Any type can be negated with a ``not-`` prefix (the suite loader folds it into
``Expectation.negate``). A negated check passes when the base check fails, except when the base
check could not decide (unknown cost, a crashing user check, an unreadable judge reply): that
fails both ways, so a broken check never turns into a pass.

Nothing here knows a particular type: the families (``text``, ``json``, ``counts``, ``python``,
``model_graded``) register themselves when ``pytest_promptgate.assertions`` is imported.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import math
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pytest_promptgate.assertions.compat import COMMON_OPTIONS, apply_transform
from pytest_promptgate.assertions.values import clean_text, describe_exception, is_number, quote
from pytest_promptgate.model import (
    CallRequest,
    CallResult,
    Expectation,
    ExpectationResult,
    ProviderFailure,
    ToolCall,
)

REASON_LIMIT = 600  # characters of a whole reason
DEFAULT_SCORE_THRESHOLD = 0.5
# Words a check's or a judge's "pass" field may hold instead of a bool.
TRUE_WORDS = frozenset({"pass", "passed", "yes", "true"})
FALSE_WORDS = frozenset({"fail", "failed", "no", "false"})


@dataclass(frozen=True)
class CheckContext:
    """What a check may look at besides the output itself."""

    output: str
    vars: Mapping[str, Any]
    call: CallResult
    suite_dir: Path
    judge: Callable[[CallRequest], Awaitable[CallResult]] | None = None
    judge_model: str | None = None
    rootdir: Path | None = None
    model: str | None = None  # the model that produced the output (named in reasons)
    messages: tuple[Mapping[str, str], ...] = ()  # the rendered prompt (given to python checks)
    # The expectation's options (keys its type declared beside `value`), set per expectation.
    options: Mapping[str, Any] = field(default_factory=dict)
    # The tools the request offered (``params.tools``, OpenAI format), for tool-call checks.
    tools: tuple[Mapping[str, Any], ...] = ()
    # The request's params (``api_base``/``api_key`` for checks that call an endpoint: similar).
    params: Mapping[str, Any] = field(default_factory=dict)
    # The run's ResponseCache (None: no cache), for checks that cache their own calls.
    cache: Any = None

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The function calls the model made (``output`` is "" when it made only calls)."""
        return self.call.tool_calls

    @property
    def finish_reason(self) -> str | None:
        return self.call.finish_reason

    @property
    def structured(self) -> Any:
        """The parsed JSON output when ``response_format`` asked for JSON, else None."""
        return self.call.structured


@dataclass(frozen=True)
class CheckOutcome:
    """What a check decided. ``undecided`` means it could not decide: fails even when negated."""

    passed: bool
    reason: str = ""
    score: float | None = None
    undecided: bool = False


Check = Callable[[str, Any, CheckContext], Any]
Validator = Callable[[Any, Path], None]
CheckT = TypeVar("CheckT", bound=Callable[..., Any])


@dataclass(frozen=True)
class ExpectationType:
    """One registered type: its check, the validator of its value, its options."""

    name: str
    check: Check
    validate: Validator | None = None
    options: Mapping[str, Validator] = field(default_factory=dict)
    builtin: bool = False


_REGISTRY: dict[str, ExpectationType] = {}
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


def _checked_type(
    name: str, check: Check, validate: Validator | None, options: Mapping[str, Validator] | None
) -> ExpectationType:
    if not isinstance(name, str) or not _TYPE_NAME.match(name):
        raise ValueError(
            f"invalid expectation type name {name!r}; use lower-case letters, digits and '-', e.g. 'is-uppercase'"
        )
    if name.startswith("not-"):
        raise ValueError(
            f"expectation type {name!r} starts with 'not-'; register the positive form, negation is automatic"
        )
    if not callable(check) or (validate is not None and not callable(validate)):
        raise ValueError(f"expectation type {name!r}: check and validate must be callables")
    declared = dict(options or {})
    for key, key_validator in declared.items():
        reserved = key in ("type", "value") or key in COMMON_OPTIONS
        if reserved or not isinstance(key, str) or not callable(key_validator):
            raise ValueError(
                f"expectation type {name!r}: options maps key names (not 'type', 'value', "
                "'weight', 'metric', 'transform') to validators"
            )
    return ExpectationType(name, check, validate, declared)


def register(
    name: str,
    check: Check,
    validate: Validator | None = None,
    *,
    options: Mapping[str, Validator] | None = None,
) -> None:
    """Add an expectation type (third parties call this from ``pytest_promptgate_add_expectations``).

    Registering the same name again replaces the earlier registration, so a plugin configured
    twice in one process (pytester) is harmless; replacing a built-in type is refused.
    """
    entry = _checked_type(name, check, validate, options)
    existing = _REGISTRY.get(name)
    if existing is not None and existing.builtin and existing.check is not check:
        raise ValueError(
            f"expectation type {name!r} is built in; register your check under another name"
        )
    _REGISTRY[name] = dataclasses.replace(entry, builtin=existing is not None and existing.builtin)


def builtin(
    name: str,
    validate: Validator | None = None,
    *,
    options: Mapping[str, Validator] | None = None,
) -> Callable[[CheckT], CheckT]:
    """Register the decorated check as a built-in type; plugins cannot replace it::

        @builtin("contains", validate=text_value("contains"))
        def check_contains(output: str, value: Any, ctx: CheckContext) -> CheckOutcome: ...

    A check made by a factory registers with a call: ``builtin("x", validate)(make_check())``.
    """

    def decorate(check: CheckT) -> CheckT:
        entry = _checked_type(name, check, validate, options)
        _REGISTRY[name] = dataclasses.replace(entry, builtin=True)
        return check

    return decorate


def unregister(name: str) -> None:
    """Remove a third-party type (tests, plugin teardown). Built-in types stay."""
    entry = _REGISTRY.get(name)
    if entry is not None and not entry.builtin:
        del _REGISTRY[name]


def known_types() -> list[str]:
    """Canonical type names (without ``not-``), sorted."""
    return sorted(_REGISTRY)


def option_keys(type_name: str) -> tuple[str, ...]:
    """The keys besides ``type``/``value`` that the promptfoo form of this type may carry:
    its declared options, then the common ``weight``/``metric``/``transform``."""
    entry = _REGISTRY.get(type_name)
    declared = tuple(entry.options) if entry is not None else ()
    return declared + tuple(COMMON_OPTIONS)


def _effective_value(exp: Expectation, entry: ExpectationType) -> Any:
    """The value, or the ``threshold`` option standing in for a missing one."""
    if exp.value is None and "threshold" in entry.options and "threshold" in exp.options:
        return exp.options["threshold"]
    return exp.value


def validate_expectation(exp: Expectation, suite_dir: Path) -> None:
    """Raise ``ValueError("<what is wrong>; <how to fix>")`` when the expectation cannot run."""
    entry = _REGISTRY.get(exp.type)
    if entry is None:
        raise ValueError(
            f"unknown expectation type {exp.type!r}; known types: {', '.join(known_types())}"
        )
    if entry.validate is not None:
        entry.validate(_effective_value(exp, entry), Path(suite_dir))
    for key, value in exp.options.items():
        key_validator = entry.options.get(key) or COMMON_OPTIONS.get(key)
        if key_validator is None:
            allowed = ", ".join(option_keys(exp.type))
            raise ValueError(f"{exp.type} takes no option {key!r}; its options: {allowed}")
        key_validator(value, Path(suite_dir))


# --------------------------------------------------------------------------- running checks


async def check_all(
    expectations: Sequence[Expectation], ctx: CheckContext
) -> tuple[ExpectationResult, ...]:
    """Evaluate every expectation (no short-circuit: a report shows all failures), in order.

    Synchronous checks (all the deterministic built-ins) run inline; those that return an
    awaitable (``llm-rubric`` judges, async plugins) are awaited together so that several
    judges overlap. A check that raises becomes a failed result naming the exception;
    ``ProviderFailure`` propagates so the runner can make the case an error.
    """
    results, pending = start_checks(expectations, ctx)
    if pending:
        outcomes = await asyncio.gather(
            *(_finish_one(exp, awaitable) for _, exp, awaitable in pending), return_exceptions=True
        )
        for (index, _, _), outcome in zip(pending, outcomes):
            if isinstance(outcome, BaseException):  # only ProviderFailure and cancellation get here
                raise outcome
            results[index] = outcome
    return tuple(results)  # type: ignore[arg-type]


Pending = list[tuple[int, Expectation, Awaitable[Any]]]


def start_checks(
    expectations: Sequence[Expectation], ctx: CheckContext
) -> tuple[list[ExpectationResult | None], Pending]:
    """Run the synchronous checks now. Returns the results in order, with None where a check
    returned an awaitable, and those (index, expectation, awaitable) triples: ``check_all``
    awaits them; a caller that cannot wait must ``discard_pending`` them."""
    results: list[ExpectationResult | None] = []
    pending: Pending = []
    try:
        for exp in expectations:
            started = _start_one(exp, ctx)
            if isinstance(started, ExpectationResult):
                results.append(started)
            else:
                pending.append((len(results), exp, started))
                results.append(None)
    except BaseException:
        discard_pending(pending)
        raise
    return results, pending


def discard_pending(pending: Pending) -> None:
    """Close checks that will never be awaited, without a "never awaited" warning."""
    for _, _, awaitable in pending:
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()


def _start_one(exp: Expectation, ctx: CheckContext) -> ExpectationResult | Awaitable[Any]:
    """The result of a synchronous check, or the awaitable an asynchronous one returned."""
    entry = _REGISTRY.get(exp.type)
    if entry is None:
        return _apply_negation(
            exp, CheckOutcome(False, f"unknown expectation type {exp.type!r}", undecided=True)
        )
    value = exp.value
    if exp.options:
        own = {k: v for k, v in exp.options.items() if k not in COMMON_OPTIONS}
        ctx = dataclasses.replace(ctx, options=own)
        value = _effective_value(exp, entry)
        transform = exp.options.get("transform")
        if transform:
            try:
                output = apply_transform(transform, ctx.output or "", ctx.vars)
            except ValueError as exc:
                return _apply_negation(exp, CheckOutcome(False, str(exc), undecided=True))
            ctx = dataclasses.replace(ctx, output=output)
    try:
        returned = entry.check(ctx.output if ctx.output is not None else "", value, ctx)
        if inspect.isawaitable(returned):
            return returned
        outcome = to_outcome(returned, who=f"{exp.type} check")
    except ProviderFailure:
        raise
    except (Exception, SystemExit) as exc:  # a plugin's bug must not abort the whole run
        outcome = _check_raised(exp, exc)
    return _apply_negation(exp, outcome)


async def _finish_one(exp: Expectation, returned: Awaitable[Any]) -> ExpectationResult:
    """``_start_one``'s second half for a check that returned an awaitable."""
    try:
        outcome = to_outcome(await returned, who=f"{exp.type} check")
    except ProviderFailure:
        raise
    except (Exception, SystemExit) as exc:
        outcome = _check_raised(exp, exc)
    return _apply_negation(exp, outcome)


def _check_raised(exp: Expectation, exc: BaseException) -> CheckOutcome:
    return CheckOutcome(False, f"{exp.type} check raised {describe_exception(exc)}", undecided=True)


def _apply_negation(exp: Expectation, outcome: CheckOutcome) -> ExpectationResult:
    passed, reason, score = outcome.passed, outcome.reason, outcome.score
    if exp.negate and not outcome.undecided:
        if passed:
            reason = f"{reason or exp.type + ' holds'}, which {exp.name} rules out"
        passed = not passed
        if score is not None and 0.0 <= score <= 1.0:
            score = 1.0 - score
    if not passed and not reason:
        reason = f"{exp.name} failed"
    # Plugins build reasons from raw output too; escape here so nothing reaches a terminal raw.
    reason = clean_text(reason, limit=REASON_LIMIT)
    weight = exp.options.get("weight", 1.0) if exp.options else 1.0
    return ExpectationResult(
        expectation=exp.name,
        passed=passed,
        reason=reason,
        score=score,
        location=exp.location,
        weight=float(weight),
        metric=exp.options.get("metric") if exp.options else None,
    )


def to_outcome(returned: Any, who: str, threshold: float = DEFAULT_SCORE_THRESHOLD) -> CheckOutcome:
    """Normalise what a check returned: CheckOutcome, bool, score, (bool|score, reason), dict."""
    if isinstance(returned, CheckOutcome):
        return returned
    if isinstance(returned, bool):
        return CheckOutcome(returned, "" if returned else f"{who} returned False")
    if is_number(returned):
        score = float(returned)
        return _score_outcome(score, threshold, "")
    if (
        isinstance(returned, tuple)
        and len(returned) == 2
        and (isinstance(returned[0], bool) or is_number(returned[0]))
    ):
        first, reason = returned
        reason_text = clean_text(str(reason)) if reason is not None else ""
        if isinstance(first, bool):
            return CheckOutcome(first, reason_text or ("" if first else f"{who} returned False"))
        return _score_outcome(float(first), threshold, reason_text)
    if isinstance(returned, Mapping) and ("pass" in returned or "score" in returned):
        reason_text = clean_text(str(returned.get("reason") or ""))
        given = returned.get("score")
        given_score = float(given) if is_number(given) else None
        if "pass" in returned and returned["pass"] is not None:
            raw = returned["pass"]
            passed = raw.strip().lower() in TRUE_WORDS if isinstance(raw, str) else bool(raw)
            return CheckOutcome(
                passed, reason_text or ("" if passed else f"{who} returned pass=False"), given_score
            )
        if given_score is not None:
            return _score_outcome(given_score, threshold, reason_text)
    return CheckOutcome(
        False,
        f"{who} returned {type(returned).__name__} {quote(repr(returned))}; "
        "return a bool, a score, (bool, reason) or {'pass': ..., 'reason': ...}",
        undecided=True,
    )


def _score_outcome(score: float, threshold: float, reason: str) -> CheckOutcome:
    if math.isnan(score):
        return CheckOutcome(False, "score is NaN", undecided=True)
    passed = score >= threshold
    relation = ">=" if passed else "<"
    detail = f"score {score:g} {relation} threshold {threshold:g}"
    return CheckOutcome(passed, f"{detail}: {reason}" if reason else detail, score)
