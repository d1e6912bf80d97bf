"""Helpers every family of checks shares: quoting output in reasons, and checking suite values.

Reasons quote untrusted model output: ``quote`` (a ``repr``, so control characters never reach a
terminal) for the output, ``clean_text`` for free text (a judge's or a user check's reason).
Validators raise ``ValueError("<what is wrong>; <how to fix>")``; the ``require_*`` helpers
here word the common cases the same way for every type.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from typing import Any, TypeGuard

QUOTE_LIMIT = 80  # characters of an output quoted in a reason


def quote(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``repr`` of a truncated text, so control characters never reach a terminal."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} chars)"


def clean_text(text: str, limit: int = 300) -> str:
    """Free text (a judge's or a user check's reason) with non-printable characters escaped.

    Stricter than ``textsafe.printable``: newlines, tabs and invisible Unicode (zero-width and
    bidi controls) are escaped too, so a reason is one visible line.
    """
    text = text.strip()
    truncated = len(text) > limit
    text = text[:limit]
    if text.isprintable():  # the common case, without a generator step per character
        return text + ("…" if truncated else "")
    cleaned = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return cleaned + ("…" if truncated else "")


def is_number(value: Any) -> TypeGuard[numbers.Real]:
    """A real number that is not a bool (YAML's ``true`` is not 1 here)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def describe_exception(exc: BaseException) -> str:
    message = clean_text(str(exc), limit=200)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def kind(value: Any) -> str:
    """How a validation message names what the suite wrote: ``a mapping``, ``nothing``..."""
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def require_text(type_name: str, value: Any, example: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(
            f"{type_name} needs a string, got {kind(value)}; write e.g. {{{type_name}: {example}}}"
        )
    if isinstance(value, str) and value == "":
        raise ValueError(
            f"{type_name} has an empty string, which every output matches; give the text to look for"
        )


def require_text_list(type_name: str, value: Any) -> None:
    if not isinstance(value, list) or not value:
        raise ValueError(
            f"{type_name} needs a non-empty list of strings, got {kind(value)}; write e.g. {{{type_name}: [refund, charge]}}"
        )
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (str, int, float)) or item == "":
            raise ValueError(
                f"{type_name} needs a list of non-empty strings, found {kind(item)} {item!r}; quote each item"
            )


def require_positive_number(type_name: str, value: Any, unit: str) -> None:
    if not is_number(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"{type_name} needs a positive number ({unit}), got {value!r}; write e.g. {{{type_name}: 0.01}}"
        )


def fenced_blocks(text: str) -> Iterator[str]:
    """Contents of ``` fences, in order. str.find keeps this linear: a regex with a lazy
    body rescans to the end for every unclosed fence of a hostile output."""
    position = 0
    while True:
        opening = text.find("```", position)
        if opening == -1:
            return
        body_start = text.find("\n", opening + 3)
        if body_start == -1:
            return
        closing = text.find("```", body_start + 1)
        if closing == -1:
            return
        yield text[body_start + 1 : closing]
        position = closing + 3
