"""Tool calls and structured output: reading them from a reply, showing them in reports.

A reply's tool calls arrive as litellm objects (``message.tool_calls[i].function.name`` ...)
or, from a cache entry or a report, as plain mappings; both become ``model.ToolCall``. The
argument text is kept as sent (``raw_arguments``) and parsed when it is JSON (``arguments``),
so a check can match fields and a report can show exactly what the model wrote.

Nothing here escapes: a report escapes a formatted call like any other model text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pytest_promptgate.model import ToolCall, parse_tool_arguments

# Longest argument text shown inline by ``format_tool_call`` (reports clip further).
MAX_SHOWN_ARGUMENTS = 2_000
JSON_RESPONSE_TYPES = frozenset({"json_object", "json_schema"})


def _field(item: Any, name: str) -> Any:
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


def tool_calls_of(raw: Any) -> tuple[ToolCall, ...]:
    """ToolCalls from a reply message's ``tool_calls`` (objects or mappings); None → ()."""
    if not raw or not isinstance(raw, (list, tuple)):
        return ()
    calls = []
    for index, item in enumerate(raw):
        function = _field(item, "function")
        name = _field(function, "name") if function is not None else _field(item, "name")
        arguments = (
            _field(function, "arguments") if function is not None else _field(item, "arguments")
        )
        if isinstance(arguments, str):
            text = arguments
        elif arguments is None:
            text = ""
        else:  # a provider that already parsed them: keep a canonical text
            text = json.dumps(arguments, ensure_ascii=False)
        call_id = _field(item, "id")
        calls.append(
            ToolCall(
                id=str(call_id) if call_id else f"call_{index}",
                name=str(name or ""),
                arguments=parse_tool_arguments(text) if text else None,
                raw_arguments=text,
            )
        )
    return tuple(calls)


def wants_json(response_format: Any) -> bool:
    """Whether ``params.response_format`` asks for JSON output."""
    return isinstance(response_format, Mapping) and (
        response_format.get("type") in JSON_RESPONSE_TYPES
    )


def parse_structured(text: str | None, response_format: Any) -> Any:
    """The parsed JSON of ``text`` when JSON was requested and it parses; None otherwise."""
    if not text or not wants_json(response_format):
        return None
    value = parse_tool_arguments(text.strip())
    return value


def offered_tools(params: Mapping[str, Any] | None) -> tuple[Mapping[str, Any], ...]:
    """The ``tools`` a request offered (OpenAI format), as given; () when none."""
    tools = (params or {}).get("tools")
    if not isinstance(tools, (list, tuple)):
        return ()
    return tuple(t for t in tools if isinstance(t, Mapping))


def format_tool_call(call: ToolCall | Mapping[str, Any]) -> str:
    """``name({"k": "v"})``: one readable line per call (the arguments as the model sent them
    when they are not JSON). Not escaped: callers escape it like any model output."""
    if isinstance(call, Mapping):
        name = str(call.get("name") or "")
        arguments = call.get("arguments")
        raw = call.get("raw_arguments")
        raw = raw if isinstance(raw, str) else ""
    else:
        name, arguments, raw = call.name, call.arguments, call.raw_arguments
    if arguments is not None:
        shown = json.dumps(arguments, ensure_ascii=False, sort_keys=False)
    else:
        shown = raw
    if len(shown) > MAX_SHOWN_ARGUMENTS:
        shown = shown[:MAX_SHOWN_ARGUMENTS] + "…"
    return f"{name}({shown})"


def format_tool_calls(calls: Any) -> list[str]:
    """``format_tool_call`` of each call in a list (ToolCalls or their dict form)."""
    if not isinstance(calls, (list, tuple)):
        return []
    return [format_tool_call(c) for c in calls if isinstance(c, (ToolCall, Mapping))]


def shown_output(output: str | None, tool_calls: Any) -> str | None:
    """The text a report shows for a reply: its text, then one ``→ tool call: …`` line per
    call. None when there is neither."""
    lines = [f"→ tool call: {line}" for line in format_tool_calls(tool_calls)]
    if not lines:
        return output
    text = output or ""
    return (text + "\n" if text else "") + "\n".join(lines)
