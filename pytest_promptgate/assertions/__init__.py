"""Expectations: the registry of check types and the built-in checks, one module per family.

Where to add an expectation type: open the family's module and put ``@builtin("<name>",
validate=...)`` above a ``check(output, value, ctx)`` function; a new family gets a new module,
imported below. Plugins call ``register`` instead (the ``pytest_promptgate_add_expectations``
hook). The contract of a check, a validator and a type's options is in ``registry``.

- ``registry``: ``CheckContext``, ``CheckOutcome``, ``register``/``builtin``, running a case's
  checks (``check_all``, ``start_checks``), negation, normalising what a check returned;
- ``values``: quoting output in reasons and the shared value validators;
- ``text``: ``equals``, ``contains`` (+ ``icontains``, ``-any``, ``-all``), ``starts-with``,
  ``ends-with``, ``regex``, ``one-of``, ``is-refusal``;
- ``json``: ``is-json``, ``contains-json``, ``json-schema`` (on the structured output when
  there is one);
- ``xml``: ``is-xml``, ``contains-xml`` (defusedxml);
- ``tools``: ``tool-call``, ``is-valid-openai-tools-call``, ``finish-reason``;
- ``similarity``: ``levenshtein``, ``rouge-n``, ``bleu``, ``similar`` (embeddings);
- ``counts``: ``word-count``, ``sentence-count``, ``cost``, ``latency``;
- ``python``: ``python`` (a user's function);
- ``model_graded``: ``llm-rubric`` (a judge model);
- ``scoring``: ``assert-set`` (grouped expectations) and per-metric pass rates;
- ``compat``: promptfoo's common keys (``weight``, ``metric``, ``transform``), comma lists,
  values rendered with a case's vars.

The full list with values and rules is ``docs/expectations.md``.
"""

from __future__ import annotations

# The families register their built-in types when imported.
from pytest_promptgate.assertions import (  # noqa: F401  # noqa: F401
    counts,
    json,
    model_graded,
    python,
    scoring,
    similarity,
    text,
    tools,
    xml,
)
from pytest_promptgate.assertions.counts import count_sentences, count_words
from pytest_promptgate.assertions.model_graded import (
    JUDGE_SYSTEM_PROMPT,
    judge_messages,
    parse_judge_reply,
)
from pytest_promptgate.assertions.registry import (
    DEFAULT_SCORE_THRESHOLD,
    REASON_LIMIT,
    Check,
    CheckContext,
    CheckOutcome,
    ExpectationType,
    Pending,
    Validator,
    builtin,
    check_all,
    discard_pending,
    known_types,
    option_keys,
    register,
    start_checks,
    to_outcome,
    unregister,
    validate_expectation,
)
from pytest_promptgate.assertions.values import QUOTE_LIMIT, clean_text, quote

__all__ = [
    "DEFAULT_SCORE_THRESHOLD",
    "JUDGE_SYSTEM_PROMPT",
    "QUOTE_LIMIT",
    "REASON_LIMIT",
    "Check",
    "CheckContext",
    "CheckOutcome",
    "ExpectationType",
    "Pending",
    "Validator",
    "builtin",
    "check_all",
    "clean_text",
    "count_sentences",
    "count_words",
    "discard_pending",
    "judge_messages",
    "known_types",
    "option_keys",
    "parse_judge_reply",
    "quote",
    "register",
    "start_checks",
    "to_outcome",
    "unregister",
    "validate_expectation",
]
