"""Text checks: the output compared with strings (``equals``, ``contains``, ``regex``...).

What belongs here: checks that read the output as plain text. To add one, write its check
below and put ``@builtin("<name>", validate=<validator>)`` above it (``values.require_text``
and ``text_value`` word the usual value errors); the type is live as soon as this module is
imported by ``pytest_promptgate.assertions``. Document it in ``docs/expectations.md``.

Rules a user could not guess from the name:

* ``equals``: the output with surrounding whitespace stripped must equal the value exactly
  (case-sensitive). A mapping or list value compares the output parsed as JSON (a ```json fence
  is allowed) with it.
* ``starts-with``: leading whitespace of the output is ignored.
* ``one-of``: the stripped output equals one of the listed values (case-sensitive).
* ``regex``: ``re.search`` (use ``^...$`` to anchor, ``(?i)`` for case-insensitive).
* ``ends-with``: trailing whitespace of the output is ignored.
* ``is-refusal``: a heuristic, not a model: the output is a refusal when it is empty (and the
  model made no tool call) or when one of ``REFUSAL_PHRASES`` occurs in its first
  ``REFUSAL_WINDOW`` characters, ignoring case and curly apostrophes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_promptgate.assertions.json import parse_json_output
from pytest_promptgate.assertions.registry import (
    Check,
    CheckContext,
    CheckOutcome,
    Validator,
    builtin,
)
from pytest_promptgate.assertions.values import (
    as_text,
    clean_text,
    kind,
    quote,
    require_text,
    require_text_list,
)


def text_value(type_name: str) -> Validator:
    """A validator for a non-empty string (a number is taken as its text)."""

    def validate(value: Any, suite_dir: Path) -> None:
        require_text(type_name, value, "refund")

    return validate


def text_list_value(type_name: str) -> Validator:
    """A validator for a non-empty list of non-empty strings."""

    def validate(value: Any, suite_dir: Path) -> None:
        require_text_list(type_name, value)

    return validate


def _validate_equals(value: Any, suite_dir: Path) -> None:
    if isinstance(value, (dict, list)):
        return
    require_text("equals", value, "billing")


@builtin("equals", validate=_validate_equals)
def check_equals(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    if isinstance(value, (dict, list)):
        parsed, error = parse_json_output(output)
        if error is not None:
            return CheckOutcome(False, f"output is not JSON ({error}): {quote(output)}")
        if parsed == value:
            return CheckOutcome(True, "output JSON equals the expected value")
        return CheckOutcome(
            False,
            f"output JSON differs: expected {quote(json.dumps(value))}, got {quote(json.dumps(parsed))}",
        )
    expected = as_text(value)
    actual = output.strip()
    if actual == expected:
        return CheckOutcome(True, f"output equals {quote(expected)}")
    return CheckOutcome(False, f"expected {quote(expected)}, got {quote(actual)}")


@builtin("contains", validate=text_value("contains"))
def check_contains(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    needle = as_text(value)
    if needle in output:
        return CheckOutcome(True, f"output contains {quote(needle)}")
    return CheckOutcome(False, f"output does not contain {quote(needle)}: {quote(output)}")


@builtin("icontains", validate=text_value("icontains"))
def check_icontains(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    needle = as_text(value)
    if needle.casefold() in output.casefold():
        return CheckOutcome(True, f"output contains {quote(needle)} (ignoring case)")
    return CheckOutcome(
        False, f"output does not contain {quote(needle)} (ignoring case): {quote(output)}"
    )


@builtin("starts-with", validate=text_value("starts-with"))
def check_starts_with(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    prefix = as_text(value)
    if output.lstrip().startswith(prefix):
        return CheckOutcome(True, f"output starts with {quote(prefix)}")
    return CheckOutcome(
        False, f"output does not start with {quote(prefix)}: {quote(output.lstrip())}"
    )


def _list_check(need_all: bool, ignore_case: bool) -> Check:
    def check(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
        needles = [as_text(v) for v in value]
        haystack = output.casefold() if ignore_case else output
        found = [n for n in needles if (n.casefold() if ignore_case else n) in haystack]
        missing = [n for n in needles if n not in found]
        case_note = " (ignoring case)" if ignore_case else ""
        if need_all:
            if not missing:
                return CheckOutcome(
                    True, f"output contains all of {_quote_list(needles)}{case_note}"
                )
            return CheckOutcome(
                False, f"output lacks {_quote_list(missing)}{case_note}: {quote(output)}"
            )
        if found:
            return CheckOutcome(True, f"output contains {quote(found[0])}{case_note}")
        return CheckOutcome(
            False, f"output contains none of {_quote_list(needles)}{case_note}: {quote(output)}"
        )

    return check


builtin("contains-any", text_list_value("contains-any"))(_list_check(False, ignore_case=False))
builtin("contains-all", text_list_value("contains-all"))(_list_check(True, ignore_case=False))
builtin("icontains-any", text_list_value("icontains-any"))(_list_check(False, ignore_case=True))
builtin("icontains-all", text_list_value("icontains-all"))(_list_check(True, ignore_case=True))


def _quote_list(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(quote(item, 40) for item in items[:limit])
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return f"[{shown}{more}]"


def _validate_regex(value: Any, suite_dir: Path) -> None:
    if not isinstance(value, str) or value == "":
        raise ValueError(
            f"regex needs a non-empty pattern string, got {kind(value)}; write e.g. {{regex: '^(yes|no)$'}}"
        )
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(
            f"regex {value!r} does not compile: {exc}; fix the pattern (Python re syntax)"
        ) from None


@builtin("regex", validate=_validate_regex)
def check_regex(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    match = re.search(value, output)
    if match:
        return CheckOutcome(
            True, f"output matches /{clean_text(value, 60)}/ at {quote(match.group(0), 40)}"
        )
    return CheckOutcome(False, f"output does not match /{clean_text(value, 60)}/: {quote(output)}")


@builtin("one-of", validate=text_list_value("one-of"))
def check_one_of(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    allowed = [as_text(v) for v in value]
    actual = output.strip()
    if actual in allowed:
        return CheckOutcome(True, f"output is {quote(actual)}, one of the allowed values")
    return CheckOutcome(False, f"expected one of {_quote_list(allowed)}, got {quote(actual)}")


@builtin("ends-with", validate=text_value("ends-with"))
def check_ends_with(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    suffix = as_text(value)
    if output.rstrip().endswith(suffix):
        return CheckOutcome(True, f"output ends with {quote(suffix)}")
    tail = output.rstrip()[-QUOTE_TAIL:]
    return CheckOutcome(False, f"output does not end with {quote(suffix)}: …{quote(tail)}")


QUOTE_TAIL = 60  # characters of the output's end quoted when ends-with fails
# Where a refusal is looked for: a refusal opens the reply; a long answer that mentions
# "I can't provide legal advice" in its conclusion is still an answer.
REFUSAL_WINDOW = 300
# Phrases that open a refusal in the replies of the common chat models (English only). Each is
# specific enough not to occur in an ordinary helpful answer: "I will not" or "unfortunately"
# alone are left out on purpose.
REFUSAL_PHRASES = (
    "i'm sorry, but",
    "i am sorry, but",
    "i apologize, but",
    "sorry, but i can't",
    "sorry, i can't",
    "i can't help with",
    "i cannot help with",
    "i can't assist",
    "i cannot assist",
    "i can't provide",
    "i cannot provide",
    "i can't comply",
    "i cannot comply",
    "i can't fulfill",
    "i cannot fulfill",
    "i can't do that",
    "i cannot do that",
    "i can't share",
    "i cannot share",
    "i'm not able to",
    "i am not able to",
    "i'm unable to",
    "i am unable to",
    "i won't be able to",
    "i must decline",
    "i have to decline",
    "i'm not allowed to",
    "i am not allowed to",
    "i'm not permitted to",
    "i am not permitted to",
    "as an ai",
    "as a language model",
    "against my guidelines",
    "violates my guidelines",
    "it would be inappropriate for me",
)
_REFUSAL = re.compile("|".join(re.escape(p) for p in REFUSAL_PHRASES))
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


def refusal_phrase(output: str) -> str | None:
    """The refusal phrase that opens ``output`` (see ``REFUSAL_PHRASES``), or None."""
    head = " ".join(output[:REFUSAL_WINDOW].split()).lower().translate(_APOSTROPHES)
    head = head.replace("can not", "cannot")
    match = _REFUSAL.search(head)
    return match.group(0) if match else None


def _validate_no_value(value: Any, suite_dir: Path) -> None:
    if value is not None and value is not True:
        raise ValueError(f"is-refusal takes no value, got {kind(value)}; write `- is-refusal`")


@builtin("is-refusal", validate=_validate_no_value)
def check_is_refusal(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    if not output.strip():
        if ctx.tool_calls:
            return CheckOutcome(False, "the model answered with tool calls, not a refusal")
        return CheckOutcome(True, "the output is empty (treated as a refusal)")
    phrase = refusal_phrase(output)
    if phrase is not None:
        return CheckOutcome(True, f"the output refuses ({quote(phrase)})")
    return CheckOutcome(False, f"no refusal phrase in the output: {quote(output)}")
