"""Count and threshold checks (assertions/counts.py)."""

from __future__ import annotations

import pytest
from helpers.expectation_checks import check

from pytest_promptgate.assertions import (
    count_sentences,
    count_words,
)
from pytest_promptgate.model import CallResult


def test_cost_and_latency_fail_above_the_limit():
    expensive = CallResult(output="x", cost_usd=0.5, latency_ms=900.0)
    cost = check("cost", 0.01, "x", call=expensive)
    latency = check("latency", 500, "x", call=expensive)
    assert not cost.passed and "exceeds" in cost.reason
    assert not latency.passed and "900 ms exceeds 500 ms" in latency.reason


def test_unknown_cost_fails_even_when_negated():
    unknown = CallResult(output="x", cost_usd=None)
    result = check("cost", 1.0, "x", call=unknown, model="openai/mystery")
    assert not result.passed
    assert result.reason.startswith("cost unknown for model openai/mystery")
    assert not check("cost", 1.0, "x", negate=True, call=unknown).passed


# --------------------------------------------------------------------------- counting rules


@pytest.mark.parametrize(
    "text,expected",
    [
        ("", 0),
        ("No full stop at the end", 1),
        ("One. Two.", 2),
        ("Really?! Yes.", 2),
        ("Pi is 3.14 roughly. Fine.", 2),
        ("Dr. Smith met Mr. Jones. They talked.", 2),
        ("Use a fruit, e.g. an apple, or i.e. a pear. Done.", 2),
        ("Wait... what happened… nothing.", 1),
        ("Visit example.com today. Thanks.", 2),
        ("J. R. R. Tolkien wrote books.", 1),
        ("Steps.\n1. Open it.\n2. Close it.", 3),
        ("Steps:\n1. Open it.\n2. Close it.", 2),
        ("We sell apples, pears, etc. and more.", 1),
        ("We sell apples, pears, etc. That is all.", 2),
        ('He said "stop." Then left.', 2),
    ],
)
def test_sentence_count_rule(text, expected):
    assert count_sentences(text) == expected


def test_word_count_ignores_lone_punctuation():
    assert count_words("state-of-the-art — don't stop - now") == 4
