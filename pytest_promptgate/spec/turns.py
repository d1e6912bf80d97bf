"""Issue 13's additions to the suite format: multi-turn and image messages, tool-call targets,
a model and params per version.

- ``message_extras``: a message's ``tool_call_id`` (tool turns), ``tool_calls`` (assistant
  turns, OpenAI's form or the short ``{id, name, arguments}``) and ``image`` (user turns);
- ``parse_ideal``: a case's ``ideal`` as a text or as tool call(s) (``{tool_call: {...}}``);
- ``version_settings``: a version's own ``model:`` and ``params:``.

Errors name the file and line like every other loader error (``ReadContext.fail``).
"""

from __future__ import annotations

from typing import Any

from pytest_promptgate import render
from pytest_promptgate.spec.fields import ReadContext, check_keys, read_field, typed
from pytest_promptgate.spec.yaml_lines import YamlMap, plain

# Multi-turn and image keys of a message (issue 13), sent as given.
MESSAGE_EXTRA_KEYS = ("tool_call_id", "tool_calls", "image")
TOOL_CALL_KEYS = ("id", "type", "function", "name", "arguments")


def message_extras(ctx: ReadContext, item: YamlMap, role: str) -> dict[str, Any]:
    """`tool_call_id` (tool turns), `tool_calls` (assistant turns) and `image` (user turns)."""
    extras: dict[str, Any] = {}
    rules = (("tool_call_id", "tool"), ("tool_calls", "assistant"), ("image", "user"))
    for key, wanted in rules:
        if key in item and role != wanted:
            ctx.fail(item.line_of(key), f"`{key}` belongs to a `{wanted}` message, not `{role}`")
    if role == "tool" and "tool_call_id" not in item:
        ctx.fail(
            item.line_of("role"),
            "a `tool` message needs `tool_call_id`: the id of the assistant's call it answers",
            'write `{role: tool, tool_call_id: call_1, content: \'{"status": "shipped"}\'}`',
        )
    if "tool_call_id" in item:
        extras["tool_call_id"] = read_field(ctx, item, "tool_call_id", "str")
    if "image" in item:
        extras["image"] = read_field(ctx, item, "image", "str")
    if "tool_calls" in item:
        calls = typed(ctx, item["tool_calls"], item.line_of("tool_calls"), "tool_calls", "list")
        if not calls:
            ctx.fail(item.line_of("tool_calls"), "`tool_calls` is empty")
        extras["tool_calls"] = tuple(
            _tool_call(ctx, call, call_line, index)
            for index, (call, call_line) in enumerate(zip(calls, calls.item_lines), start=1)
        )
    return extras


def _tool_call(ctx: ReadContext, call: Any, line: int, index: int) -> dict[str, Any]:
    """One assistant tool call, in OpenAI's form or the short `{id, name, arguments}` form."""
    typed(ctx, call, line, "a tool call", "mapping")
    check_keys(ctx, call, TOOL_CALL_KEYS, "in a tool call")
    value = plain(call)
    function = value.get("function") or {
        "name": value.get("name"),
        "arguments": value.get("arguments"),
    }
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or not name:
        ctx.fail(
            line,
            "a tool call needs a function name",
            "write `{id: call_1, name: lookup_order, arguments: {order_id: A-1}}`",
        )
    arguments = function.get("arguments", {})
    if not isinstance(arguments, str):  # the API carries arguments as a JSON string
        arguments = render.canonical_json(arguments if arguments is not None else {})
    return {
        "id": str(value.get("id") or f"call_{index}"),
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def version_settings(ctx: ReadContext, spec: YamlMap, name: str) -> tuple[str | None, dict]:
    """A version's own `model:` and `params:` (the suite's apply where it sets none)."""
    model = read_field(ctx, spec, "model", "str")
    if model is not None and not model.strip():
        ctx.fail(spec.line_of("model"), f"`model` of {name} is empty", "e.g. `openai/gpt-4o`")
    params = read_field(ctx, spec, "params", "mapping")
    return model, plain(params) if params is not None else {}


IDEAL_HINT = (
    "`ideal` is the target text, or a tool call: `{tool_call: {name: refund, arguments: "
    "{order_id: A-1}}}` (several: `{tool_calls: [...]}`)"
)


def parse_ideal(ctx: ReadContext, row: YamlMap) -> tuple[str | None, tuple[dict[str, Any], ...]]:
    """A case's `ideal`: a text, or the tool call(s) a fine-tuned model should make."""
    if "ideal" not in row or not isinstance(row["ideal"], YamlMap):
        return read_field(ctx, row, "ideal", "str"), ()
    spec, line = row["ideal"], row.line_of("ideal")
    check_keys(ctx, spec, ("tool_call", "tool_calls"), "in `ideal`")
    if len(spec) != 1:
        ctx.fail(line, "`ideal` has one key, `tool_call` or `tool_calls`", IDEAL_HINT)
    key = next(iter(spec))
    if key == "tool_call":
        raw, lines = [spec[key]], [spec.line_of(key)]
    else:
        raw = typed(ctx, spec[key], spec.line_of(key), "ideal.tool_calls", "list")
        lines = list(raw.item_lines)
    if not raw:
        ctx.fail(spec.line_of(key), "`ideal.tool_calls` is empty", IDEAL_HINT)
    calls = []
    for call, call_line in zip(raw, lines):
        typed(ctx, call, call_line, "a tool call in `ideal`", "mapping")
        check_keys(ctx, call, ("name", "arguments"), "in a tool call of `ideal`")
        name = read_field(ctx, call, "name", "str")
        if not name:
            ctx.fail(call_line, "a tool call in `ideal` needs `name`", IDEAL_HINT)
        arguments = plain(call["arguments"]) if "arguments" in call else {}
        calls.append({"name": name, "arguments": arguments})
    return None, tuple(calls)
