"""Tool-use checks: ``tool-call``, ``is-valid-openai-tools-call``, ``finish-reason``.

What belongs here: checks that read the function calls a model made (``ctx.tool_calls``), the
tools the request offered (``ctx.tools``, from ``params.tools``) or why the reply ended
(``ctx.finish_reason``). A reply made only of tool calls has the output ``""``.

Rules a user could not guess from the name:

* ``tool-call`` with no value passes when the model made any call. A value is a *call spec*:
  a function name, or ``{name, arguments, schema}`` where ``arguments`` is a subset the call's
  arguments must contain (nested mappings match key by key, extra keys are fine; a field
  written ``{regex: pattern}`` matches a string with ``re.search``; lists and scalars must be
  equal) and ``schema`` a JSON schema (or a schema file) the arguments must validate against.
  A list of specs passes when each spec is matched by a different call, in any order;
  ``{in-order: [specs]}`` also needs the matching calls in that order (other calls may come
  between). ``not-tool-call`` is the negation: with a list, it passes unless all are called.
* ``is-valid-openai-tools-call`` passes when there is at least one call and every call names
  an offered tool and its arguments are JSON that validates against that tool's
  ``parameters`` schema.
* ``finish-reason``: one of ``stop``, ``length``, ``tool_calls``, ``content_filter`` (checked
  when the suite loads), compared ignoring case; a reply without a finish reason cannot be
  judged and fails even when negated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_promptgate.assertions.json import load_schema, schema_error, validate_schema_value
from pytest_promptgate.assertions.registry import CheckContext, CheckOutcome, builtin
from pytest_promptgate.assertions.values import clean_text, is_number, kind, quote
from pytest_promptgate.model import ToolCall

_SPEC_KEYS = frozenset({"name", "arguments", "schema"})
_IN_ORDER = "in-order"
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter")
_EXAMPLE = "{tool-call: {name: refund, arguments: {order_id: {regex: '^A\\d+$'}}}}"


# --------------------------------------------------------------------------- validation


def _validate_arguments(pattern: Any, where: str) -> None:
    """A subset pattern: mappings recurse, ``{regex: ...}`` must compile, anything else is literal."""
    if isinstance(pattern, Mapping):
        if set(pattern) == {"regex"}:
            regex = pattern["regex"]
            if not isinstance(regex, str) or not regex:
                raise ValueError(
                    f"tool-call {where}: regex needs a pattern string, got {kind(regex)}; write {{regex: '^A\\d+$'}}"
                )
            try:
                re.compile(regex)
            except re.error as exc:
                raise ValueError(
                    f"tool-call {where}: regex {regex!r} does not compile: {exc}; fix the pattern (Python re syntax)"
                ) from None
            return
        for key, item in pattern.items():
            _validate_arguments(item, f"{where}.{key}")
    elif isinstance(pattern, list):
        for index, item in enumerate(pattern):
            _validate_arguments(item, f"{where}[{index}]")


def _validate_spec(spec: Any, suite_dir: Path) -> None:
    if isinstance(spec, str):
        if not spec.strip():
            raise ValueError(
                f"tool-call needs a function name, got an empty string; write e.g. {_EXAMPLE}"
            )
        return
    if not isinstance(spec, Mapping):
        raise ValueError(
            f"tool-call needs a function name or {{name, arguments, schema}}, got {kind(spec)}; write e.g. {_EXAMPLE}"
        )
    unknown = sorted(str(k) for k in spec if k not in _SPEC_KEYS)
    if unknown:
        raise ValueError(
            f"tool-call takes the keys name, arguments, schema; found {', '.join(unknown)}; write e.g. {_EXAMPLE}"
        )
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"tool-call needs `name` (the function's name); write e.g. {_EXAMPLE}")
    if "arguments" in spec:
        if not isinstance(spec["arguments"], Mapping):
            raise ValueError(
                f"tool-call arguments are a mapping of the fields to match, got {kind(spec['arguments'])}; write e.g. {_EXAMPLE}"
            )
        _validate_arguments(spec["arguments"], "arguments")
    if "schema" in spec:
        validate_schema_value("tool-call schema", spec["schema"], suite_dir)


def _validate_tool_call(value: Any, suite_dir: Path) -> None:
    if value is None or value is True:
        return
    specs = value
    if isinstance(value, Mapping) and _IN_ORDER in value:
        if len(value) != 1:
            raise ValueError(
                "tool-call `in-order` stands alone; write {tool-call: {in-order: [lookup_order, refund]}}"
            )
        specs = value[_IN_ORDER]
        if not isinstance(specs, list) or not specs:
            raise ValueError(
                f"tool-call `in-order` needs a non-empty list of calls, got {kind(specs)}; write {{tool-call: {{in-order: [lookup_order, refund]}}}}"
            )
    if isinstance(specs, list):
        if not specs:
            raise ValueError(
                "tool-call has an empty list; list the calls, e.g. [lookup_order, refund]"
            )
        for spec in specs:
            _validate_spec(spec, suite_dir)
        return
    _validate_spec(specs, suite_dir)


# --------------------------------------------------------------------------- matching


def _subset_problem(pattern: Any, actual: Any, where: str) -> str | None:
    """Why ``actual`` does not contain ``pattern`` (None when it does)."""
    if isinstance(pattern, Mapping):
        if set(pattern) == {"regex"}:
            text = actual if isinstance(actual, str) else json.dumps(actual)
            if re.search(pattern["regex"], text):
                return None
            return f"{where} is {quote(text, 40)}, which does not match /{clean_text(pattern['regex'], 40)}/"
        if not isinstance(actual, Mapping):
            return f"{where} is {kind(actual)}, expected a mapping"
        for key, item in pattern.items():
            if key not in actual:
                return f"{where}.{key} is missing"
            problem = _subset_problem(item, actual[key], f"{where}.{key}")
            if problem is not None:
                return problem
        return None
    if isinstance(pattern, list):
        if not isinstance(actual, list) or len(actual) != len(pattern):
            return f"{where} is {_show(actual)}, expected {_show(pattern)}"
        for index, (item, got) in enumerate(zip(pattern, actual)):
            problem = _subset_problem(item, got, f"{where}[{index}]")
            if problem is not None:
                return problem
        return None
    same = (is_number(pattern) and is_number(actual) and pattern == actual) or (
        type(pattern) is type(actual) and pattern == actual
    )
    if same:
        return None
    return f"{where} is {_show(actual)}, expected {_show(pattern)}"


def _show(value: Any) -> str:
    """A JSON value as it reads in a reason (escaped, clipped)."""
    return clean_text(json.dumps(value, ensure_ascii=False), 60)


def _spec_name(spec: Any) -> str:
    return spec if isinstance(spec, str) else str(spec["name"])


def _call_problem(spec: Any, call: ToolCall, ctx: CheckContext) -> str | None:
    """Why ``call`` does not satisfy ``spec`` (None when it does)."""
    name = _spec_name(spec)
    if call.name != name:
        return f"called {quote(call.name, 40)}, not {quote(name, 40)}"
    if isinstance(spec, str) or ("arguments" not in spec and "schema" not in spec):
        return None
    if call.arguments is None and call.raw_arguments.strip():
        return f"{name} arguments are not JSON: {quote(call.raw_arguments)}"
    arguments = call.arguments if call.arguments is not None else {}
    if "arguments" in spec:
        problem = _subset_problem(spec["arguments"], arguments, "arguments")
        if problem is not None:
            return f"{name} {problem}"
    if "schema" in spec:
        error = schema_error(arguments, load_schema(spec["schema"], ctx.suite_dir))
        if error is not None:
            return f"{name} arguments do not match the schema: {error}"
    return None


def _describe(calls: Sequence[ToolCall]) -> str:
    if not calls:
        return "no tool calls"
    names = ", ".join(quote(c.name, 40) for c in calls[:5])
    more = f" and {len(calls) - 5} more" if len(calls) > 5 else ""
    return f"calls: {names}{more}"


def _match_one(spec: Any, calls: Sequence[ToolCall], ctx: CheckContext) -> tuple[int | None, str]:
    """The index of the first call satisfying ``spec``, else None and the closest miss."""
    closest = ""
    for index, call in enumerate(calls):
        problem = _call_problem(spec, call, ctx)
        if problem is None:
            return index, ""
        if call.name == _spec_name(spec) and not closest:
            closest = problem
    return None, closest


def _match_any_order(
    specs: Sequence[Any], calls: Sequence[ToolCall], ctx: CheckContext
) -> str | None:
    """Each spec matched by a different call (bipartite matching: specs are few)."""
    fits = [
        [i for i, call in enumerate(calls) if _call_problem(spec, call, ctx) is None]
        for spec in specs
    ]
    owner: dict[int, int] = {}

    def assign(spec_index: int, seen: set[int]) -> bool:
        for call_index in fits[spec_index]:
            if call_index in seen:
                continue
            seen.add(call_index)
            if call_index not in owner or assign(owner[call_index], seen):
                owner[call_index] = spec_index
                return True
        return False

    for spec_index, spec in enumerate(specs):
        if not assign(spec_index, set()):
            _, closest = _match_one(spec, calls, ctx)
            detail = closest or f"no call to {quote(_spec_name(spec), 40)}"
            if fits[spec_index]:
                detail = f"{quote(_spec_name(spec), 40)} is called fewer times than listed"
            return detail
    return None


def _match_in_order(
    specs: Sequence[Any], calls: Sequence[ToolCall], ctx: CheckContext
) -> str | None:
    position = 0
    for spec in specs:
        found, closest = _match_one(spec, calls[position:], ctx)
        if found is None:
            where = " after the earlier calls" if position else ""
            return (closest or f"no call to {quote(_spec_name(spec), 40)}") + where
        position += found + 1
    return None


@builtin("tool-call", validate=_validate_tool_call)
def check_tool_call(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    calls = ctx.tool_calls
    if value is None or value is True:
        if calls:
            return CheckOutcome(True, f"the model made tool calls ({_describe(calls)})")
        return CheckOutcome(False, f"the model made no tool call: {quote(output)}")
    if isinstance(value, Mapping) and _IN_ORDER in value:
        specs = value[_IN_ORDER]
        problem = _match_in_order(specs, calls, ctx)
        label = "in order"
    else:
        specs = value if isinstance(value, list) else [value]
        problem = _match_any_order(specs, calls, ctx)
        label = "in any order" if len(specs) > 1 else ""
    wanted = ", ".join(quote(_spec_name(s), 40) for s in specs)
    if problem is None:
        return CheckOutcome(True, f"the model called {wanted}{' ' + label if label else ''}")
    return CheckOutcome(False, f"{problem} ({_describe(calls)})")


# --------------------------------------------------------------------------- offered tools


def _validate_no_value(type_name: str) -> Any:
    def validate(value: Any, suite_dir: Path) -> None:
        if value is not None and value is not True:
            raise ValueError(
                f"{type_name} takes no value (the tools come from params.tools), got {kind(value)}; write `- {type_name}`"
            )

    return validate


def _offered(tools: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Offered function name -> its parameters schema (None when it declares none)."""
    offered: dict[str, Any] = {}
    for tool in tools:
        function = tool.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            offered[function["name"]] = function.get("parameters")
    return offered


@builtin("is-valid-openai-tools-call", validate=_validate_no_value("is-valid-openai-tools-call"))
def check_valid_tools_call(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    calls = ctx.tool_calls
    if not calls:
        return CheckOutcome(False, f"the model made no tool call: {quote(output)}")
    offered = _offered(ctx.tools)
    if not offered:
        return CheckOutcome(
            False,
            "the request offered no tools (params.tools); add the tools the model may call",
            undecided=True,
        )
    for call in calls:
        if call.name not in offered:
            names = ", ".join(quote(n, 40) for n in list(offered)[:8])
            return CheckOutcome(
                False,
                f"the model called {quote(call.name, 40)}, which was not offered (offered: {names})",
            )
        if call.arguments is None and call.raw_arguments.strip():
            return CheckOutcome(
                False, f"{call.name} arguments are not JSON: {quote(call.raw_arguments)}"
            )
        schema = offered[call.name]
        if isinstance(schema, (Mapping, bool)):
            arguments = call.arguments if call.arguments is not None else {}
            error = schema_error(arguments, schema)
            if error is not None:
                return CheckOutcome(
                    False, f"{call.name} arguments do not match its parameters: {error}"
                )
    return CheckOutcome(
        True, f"every call names an offered tool with valid arguments ({_describe(calls)})"
    )


# --------------------------------------------------------------------------- finish reason


def _validate_finish_reason(value: Any, suite_dir: Path) -> None:
    if not isinstance(value, str) or value.strip().lower() not in FINISH_REASONS:
        raise ValueError(
            f"finish-reason is one of {', '.join(FINISH_REASONS)}, got {value!r}; write e.g. {{finish-reason: stop}}"
        )


@builtin("finish-reason", validate=_validate_finish_reason)
def check_finish_reason(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    expected = value.strip().lower()
    actual = ctx.finish_reason
    if not actual:
        return CheckOutcome(False, "the provider gave no finish reason", undecided=True)
    if actual.lower() == expected:
        return CheckOutcome(True, f"finish reason is {quote(actual, 40)}")
    return CheckOutcome(
        False, f"finish reason is {quote(actual, 40)}, expected {quote(expected, 40)}"
    )
