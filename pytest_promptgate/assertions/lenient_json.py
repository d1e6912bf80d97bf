"""The JSON that models write, as promptfoo's ``contains-json`` accepts it.

promptfoo's extractor (``extractJsonObjects``) reads each ``{...}`` candidate as YAML after
turning ``//`` comments into ``#``, and closes braces missing at the very end of the output.
So it accepts, and ``contains-json`` here accepts too (deliberately, so a converted suite
gives promptfoo's verdicts), when the strict JSON scan found nothing:

* trailing commas: ``{"a": 1,}``, ``[1, 2,]``;
* ``//`` comments outside strings (a ``//`` inside a string, e.g. a URL, stays);
* unquoted keys: ``{answer: 42}`` (letters, digits, ``_``, ``$``, ``-``; not starting with a digit);
* single-quoted strings: ``{'a': 'b'}``;
* closers missing at the end of the output: ``{"a": {"b": 1}`` (a cut-off reply whose last
  value is complete).

Not accepted (YAML would read them, but they are not what a model means by JSON, and the
parsed value would surprise): unquoted string values (``{a: yes}`` is not ``true``), ``NaN`` and
``Infinity``, ``/* */`` and ``#`` comments, a reply cut inside a string or after a ``:``.
Values are parsed with the strict ``json`` module once repaired, so numbers and strings mean
what they mean in JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

MAX_CANDIDATE_CHARS = 100_000  # promptfoo's bound on one candidate
MAX_STARTS = 20  # candidates tried per output (a hostile output full of braces stays cheap)
_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")
_CLOSERS = {"{": "}", "[": "]"}


def lenient_json_values(text: str) -> Iterator[Any]:
    """Objects and arrays found in ``text`` with the repairs listed in the module doc."""
    position = 0
    starts = 0
    while starts < MAX_STARTS:
        start = _next_start(text, position)
        if start == -1:
            return
        starts += 1
        repaired, end = _repair(text, start)
        value = _loads(repaired) if repaired is not None else None
        if isinstance(value, (dict, list)):
            yield value
            position = end
        else:
            position = start + 1


def _next_start(text: str, position: int) -> int:
    starts = [i for i in (text.find("{", position), text.find("[", position)) if i != -1]
    return min(starts) if starts else -1


def _loads(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse)
    except (ValueError, RecursionError):
        return None


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _repair(text: str, start: int) -> tuple[str | None, int]:
    """(strict JSON text of the candidate at ``start``, where it ends) or (None, start)."""
    limit = min(len(text), start + MAX_CANDIDATE_CHARS)
    out: list[str] = []
    stack: list[str] = []
    i = start
    while i < limit:
        char = text[i]
        if char in "\"'":
            end = _string_end(text, i, limit)
            if end == -1:
                return None, start  # cut inside a string
            out.append(_as_json_string(text[i : end + 1]))
            i = end + 1
            continue
        if char == "/" and text.startswith("//", i):
            newline = text.find("\n", i, limit)
            i = limit if newline == -1 else newline
            continue
        if char in _CLOSERS:
            stack.append(_CLOSERS[char])
        elif char in "}]":
            if not stack or stack[-1] != char:
                return None, start
            _drop_trailing_comma(out)
            stack.pop()
            out.append(char)
            i += 1
            if not stack:
                return "".join(out), i
            continue
        elif stack and stack[-1] == "}" and _KEY.match(text, i) and _in_key_position(out):
            key = _KEY.match(text, i).group(0)  # type: ignore[union-attr]
            after = i + len(key)
            while after < limit and text[after] in " \t":
                after += 1
            if after < limit and text[after] == ":":
                out.append(json.dumps(key))
                i += len(key)
                continue
        out.append(char)
        i += 1
    if i < len(text) or not stack:
        return None, start  # too long, or nothing opened
    _drop_trailing_comma(out)
    if "".join(out).strip() in _CLOSERS:
        return None, start  # a lone "{" at the end is not an empty object
    return "".join(out) + "".join(reversed(stack)), i  # closers missing at the end


def _string_end(text: str, start: int, limit: int) -> int:
    quote = text[start]
    i = start + 1
    while i < limit:
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i
        if text[i] == "\n":
            return -1
        i += 1
    return -1


def _as_json_string(literal: str) -> str:
    if literal[0] == '"':
        return literal
    body = literal[1:-1].replace("\\'", "'")
    return '"' + body.replace('"', '\\"') + '"'


def _in_key_position(out: list[str]) -> bool:
    """The last significant character written opens an object or ends a member."""
    for piece in reversed(out):
        stripped = piece.rstrip()
        if stripped:
            return stripped[-1] in "{,"
    return False


def _drop_trailing_comma(out: list[str]) -> None:
    for index in range(len(out) - 1, -1, -1):
        if out[index].strip() == "":
            continue
        if out[index] == ",":
            del out[index]
        return
