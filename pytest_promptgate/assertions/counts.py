"""Count and threshold checks: ``word-count``, ``sentence-count``, ``cost``, ``latency``.

What belongs here: checks that measure the output (words, sentences) or the call (cost,
latency) against bounds. To add one, write its check below with ``@builtin("<name>",
validate=...)`` above it; a new measure of the output can reuse ``count_check`` and
``count_value`` (a whole number, or ``{min, max, exact}``).

Rules a user could not guess from the name: ``word-count`` words are whitespace-separated
tokens holding at least one letter or digit ("state-of-the-art" and "don't" are one word each,
a lone "-" is none); ``sentence-count``: see :func:`count_sentences`; a count may be written
as a string of digits (``word-count: "3"``, what ``{{ n }}`` renders to), as promptfoo allows;
``cost`` fails when the price of the call is unknown, it never passes silently, and ``cost: 0``
passes only for a free call; ``latency`` is the recorded latency, also on a cache replay.
``cost`` and ``latency`` take promptfoo's ``threshold`` key as their bound
(``{type: latency, threshold: 500}``); given both, ``threshold`` wins, as in promptfoo.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_promptgate.assertions.registry import (
    Check,
    CheckContext,
    CheckOutcome,
    Validator,
    builtin,
)
from pytest_promptgate.assertions.values import is_number, kind, quote

_HAS_LETTER_OR_DIGIT = re.compile(r"[^\W_]")
_COUNT_KEYS = ("min", "max", "exact")


def count_words(text: str) -> int:
    """Whitespace-separated tokens that hold at least one letter or digit."""
    return sum(1 for token in text.split() if _HAS_LETTER_OR_DIGIT.search(token))


# A sentence ends at a run of . ! ? … (optionally followed by closing quotes/brackets) that is
# followed by whitespace or the end of the text. "3.5" and "example.com" never qualify because
# no whitespace follows the dot. The lookbehind stops the engine from retrying inside a long
# run of dots, which would make a hostile output quadratic.
_SENTENCE_END = re.compile(r"(?<![.!?…])[.!?…]+[\"'”’»)\]]*(?=\s|$)")
_TERMINATOR_RUN = re.compile(r"[.!?…]+")
_TERMINATOR_CHARS = frozenset(".!?…")
_WORD_WINDOW = 12  # longer than any abbreviation below, plus an opening bracket or quote
# A dot after these never ends a sentence: they are followed by a name or an example.
_ABBREVIATIONS_NEVER_FINAL = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "mt",
        "vs",
        "e.g",
        "i.e",
        "cf",
        "approx",
        "fig",
        "eg",
        "ie",
    }
)
# A dot after these ends a sentence only when an upper-case letter (or the end of text) follows.
_ABBREVIATIONS_MAYBE_FINAL = frozenset({"etc", "a.m", "p.m", "inc", "ltd", "co", "al"})
_NEXT_VISIBLE = re.compile(r"\S")


def count_sentences(text: str) -> int:
    """Count sentences with a small, predictable rule (no language model, no NLTK).

    A sentence ends at ``.``, ``!``, ``?`` (or a run such as ``?!``), optionally followed by
    closing quotes or brackets, when whitespace or the end of the text follows. Not sentence
    ends: decimals and dotted names (``3.5``, ``example.com``: no space after the dot);
    ellipses (``...`` or ``…``); the dot of a title or Latin abbreviation (``Dr.``, ``Mr.``,
    ``e.g.``, ``i.e.``, ``vs.``, ...); single-letter initials (``J. Smith``); list markers
    (``1.`` at the start of a line); ``etc.``, ``a.m.``, ``Inc.`` unless an upper-case letter
    or the end of the text follows. Line breaks alone do not end a sentence. The count is the
    number of pieces between sentence ends that hold a letter or a digit, so a final sentence
    without a full stop still counts.
    """
    count = 0
    piece_start = 0
    for match in _SENTENCE_END.finditer(text):
        if not _ends_sentence(text, match):
            continue
        if _HAS_LETTER_OR_DIGIT.search(text, piece_start, match.end()):
            count += 1
        piece_start = match.end()
    if _HAS_LETTER_OR_DIGIT.search(text, piece_start):
        count += 1
    return count


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    matched = match.group(0)
    single_dot = matched[0] == "." and (len(matched) == 1 or matched[1] not in _TERMINATOR_CHARS)
    if not single_dot:
        run = _TERMINATOR_RUN.match(matched).group(0)  # type: ignore[union-attr]
        # An ellipsis ("..." or "…") trails off; ! ? and runs like ?! end the sentence.
        return not set(run) <= {".", "…"}
    token, token_start = _word_before(text, match.start())
    if not token:
        return True
    lowered = token.lower()
    if lowered in _ABBREVIATIONS_NEVER_FINAL:
        return False
    if len(token) == 1 and token.isalpha() and token.isupper():
        return False  # an initial, as in "J. Smith"
    if token.isdigit() and _starts_line(text, token_start):
        return False  # a list marker such as "1. Buy milk"
    if lowered in _ABBREVIATIONS_MAYBE_FINAL:
        following = _NEXT_VISIBLE.search(text, match.end())
        return following is None or following.group(0).isupper()
    return True


def _word_before(text: str, end: int) -> tuple[str, int]:
    """The word that ends at ``end`` (opening brackets/quotes dropped) and where it starts.

    Looks at a bounded window only, so every candidate costs the same; a word longer than the
    window is returned as "" (no abbreviation is that long).
    """
    begin = max(0, end - _WORD_WINDOW)
    window = text[begin:end]
    if not window or window[-1].isspace():
        return "", end
    parts = window.rsplit(None, 1)
    if len(parts) == 1 and begin > 0 and not window[0].isspace():
        return "", end  # the word started before the window
    word = parts[-1].lstrip("([{\"'“‘«")
    return word, end - len(word)


def _starts_line(text: str, position: int) -> bool:
    """Only spaces between the previous line break (or the start of the text) and position."""
    begin = max(0, position - _WORD_WINDOW)
    before = text[begin:position]
    line_break = before.rfind("\n")
    if line_break == -1 and begin > 0:
        return False
    return before[line_break + 1 :].strip() == ""


def count_value(type_name: str) -> Validator:
    """A validator for a whole number (exact) or a mapping of ``min``/``max``/``exact``."""

    def validate(value: Any, suite_dir: Path) -> None:
        example = f"{{{type_name}: {{min: 1, max: 3}}}} or {{{type_name}: 2}}"
        value = _whole_number_text(value)
        if isinstance(value, bool) or not isinstance(value, (int, dict)):
            raise ValueError(
                f"{type_name} needs a whole number or a mapping with min/max/exact, got {kind(value)}; write {example}"
            )
        bounds = {"exact": value} if isinstance(value, int) else value
        unknown = sorted(str(k) for k in bounds if k not in _COUNT_KEYS)
        if unknown:
            raise ValueError(
                f"{type_name} has unknown key(s) {', '.join(unknown)}; use min, max or exact, e.g. {example}"
            )
        if not bounds:
            raise ValueError(
                f"{type_name} needs at least one of min, max or exact; write {example}"
            )
        for key, bound in bounds.items():
            if isinstance(bound, bool) or not isinstance(bound, int) or bound < 0:
                raise ValueError(
                    f"{type_name} {key} must be a whole number >= 0, got {bound!r}; write {example}"
                )
        if "exact" in bounds and len(bounds) > 1:
            raise ValueError(f"{type_name} mixes exact with min/max; use either exact or min/max")
        if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
            raise ValueError(
                f"{type_name} min {bounds['min']} is greater than max {bounds['max']}; swap them"
            )

    return validate


def _whole_number_text(value: Any) -> Any:
    """``"3"`` (or ``" 3 "``) as 3; anything else unchanged."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return value


def count_check(noun: str, counter: Callable[[str], int]) -> Check:
    """A check that ``counter(output)`` is within the bounds ``count_value`` accepts."""

    def check(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
        value = _whole_number_text(value)
        bounds = {"exact": value} if isinstance(value, int) else dict(value)
        count = counter(output)
        if "exact" in bounds:
            passed = count == bounds["exact"]
            wanted = f"exactly {bounds['exact']}"
        else:
            low, high = bounds.get("min"), bounds.get("max")
            passed = (low is None or count >= low) and (high is None or count <= high)
            if low is not None and high is not None:
                wanted = f"between {low} and {high}"
            elif low is not None:
                wanted = f"at least {low}"
            else:
                wanted = f"at most {high}"
        plural = noun if count == 1 else noun + "s"
        if passed:
            return CheckOutcome(True, f"output has {count} {plural} ({wanted})")
        return CheckOutcome(False, f"expected {wanted} {noun}s, got {count}: {quote(output)}")

    return check


builtin("word-count", count_value("word-count"))(count_check("word", count_words))
builtin("sentence-count", count_value("sentence-count"))(count_check("sentence", count_sentences))


def _bound_validator(type_name: str, unit: str, example: str) -> Validator:
    def validate(value: Any, suite_dir: Path) -> None:
        if not is_number(value) or not math.isfinite(value) or value < 0:
            raise ValueError(
                f"{type_name} needs a number >= 0 ({unit}), got {value!r}; "
                f"write e.g. {{{type_name}: {example}}} or {{type: {type_name}, threshold: {example}}}"
            )

    return validate


_validate_cost = _bound_validator("cost", "max USD per call", "0.002")
_validate_latency = _bound_validator("latency", "max milliseconds", "2000")


def _bound(value: Any, ctx: CheckContext) -> Any:
    """promptfoo reads only ``threshold``: it wins over a value given beside it."""
    return ctx.options.get("threshold", value)


@builtin("cost", validate=_validate_cost, options={"threshold": _validate_cost})
def check_cost(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    value = _bound(value, ctx)
    cost = ctx.call.cost_usd
    if cost is None:
        model = ctx.model or "of this call"
        return CheckOutcome(
            False,
            f"cost unknown for model {model} (no price in litellm's cost map), so cost <= {value:g} USD cannot be checked",
            undecided=True,
        )
    if cost <= value:
        return CheckOutcome(True, f"cost {cost:.6g} USD <= {value:g} USD")
    return CheckOutcome(False, f"cost {cost:.6g} USD exceeds {value:g} USD")


@builtin("latency", validate=_validate_latency, options={"threshold": _validate_latency})
def check_latency(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    value = _bound(value, ctx)
    latency = ctx.call.latency_ms
    if latency <= value:
        return CheckOutcome(True, f"latency {latency:.0f} ms <= {value:g} ms")
    return CheckOutcome(False, f"latency {latency:.0f} ms exceeds {value:g} ms")
