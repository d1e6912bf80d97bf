"""``promptgate import promptfoo promptfooconfig.yaml -o prompts/``: a promptfoo config becomes suites.

What maps to what (docs/promptfoo.md has the user's view):

- ``prompts`` (inline strings, ``file://`` text files split on ``---`` lines, ``file://`` JSON/YAML
  chat files, ``{id|raw, label}`` objects, the legacy ``{path: label}`` mapping) become the
  suite's versions, labels kept as version names. Nunjucks templates are Jinja2 templates with a
  few differences: ``| dump`` becomes ``| tojson``; anything else Jinja2 refuses is reported.
- ``providers`` become ``model:`` (litellm strings, ``PROVIDER_PREFIXES``) and ``params:``
  (``PROVIDER_PARAMS``); several providers give one suite per provider, named after it.
- ``tests`` (inline, or ``file://`` CSV/JSON/JSONL/YAML files) and ``defaultTest`` become cases
  and ``defaults``; ``description`` becomes the case id; CSV ``__expected`` columns follow
  promptfoo's ``assertionFromString``.
- Assertions map 1:1 where this project has the type (``ASSERTION_TYPES``); promptfoo's keys
  ``threshold``/``weight``/``metric``/``provider`` are kept where the loader accepts them for the
  type (``ASSERTION_KEYS_KEPT`` and the registry's options), ``assert-set`` keeps its keys, a
  test's ``threshold`` (CSV ``__threshold``) is the case's, CSV ``__metric`` is each row
  assertion's ``metric``. Values with ``{{ var }}`` stay as written (the loader renders them per
  case) when every case has the var. A JavaScript ``transform``/``options.transform`` that is
  one of a few plain forms (``TRANSFORM_METHODS``, ``JSON.parse(output)`` and property paths on
  it) becomes its Jinja2 expression, reported as a note. Everything else (``javascript``,
  ``python``, ``webhook``, unknown types, other transforms) becomes a
  ``# TODO(promptfoo): ...`` comment in the suite and a line of the report with the config's
  file:line: never silently dropped.

One subject per module: ``tables`` (every supported key and type, in one place: widening later,
when the loader accepts more of promptfoo's form, means editing it; the tests check each table
against the loader), ``yaml12`` (YAML 1.2 with lines), ``base`` (findings, files, ``$ref``),
``prompts``, ``providers``, ``assertions`` (and transforms), ``cases`` (tests and their files),
``rendering`` (``{{ var }}`` values), ``suite_file`` (writing suites), ``convert`` (the whole
config and the report), ``cli``. This module re-exports what callers use.
"""

from __future__ import annotations

from pytest_promptgate.importers.promptfoo.assertions import (
    parse_comma_separated,
    translate_transform,
)
from pytest_promptgate.importers.promptfoo.cli import add_cli
from pytest_promptgate.importers.promptfoo.convert import convert_config, format_report
from pytest_promptgate.importers.promptfoo.data import Finding, ImportedSuite, ImportResult
from pytest_promptgate.importers.promptfoo.suite_file import check_suites, write_suites
from pytest_promptgate.importers.promptfoo.tables import (
    ADVISORY_ASSERTION_KEYS,
    ASSERTION_KEYS_KEPT,
    ASSERTION_TYPES,
    BINARY_SUFFIXES,
    CODE_SUFFIXES,
    CODE_TYPES,
    COMMA_LIST_TYPES,
    CONFIG_KEYS_HANDLED,
    CONFIG_KEYS_IGNORED,
    PROMPT_TEXT_SUFFIXES,
    PROMPTFOO_TYPES,
    PROVIDER_PARAMS,
    PROVIDER_PREFIXES,
    SECRET_CONFIG_KEYS,
    SUITE_SUFFIX,
    TEST_KEYS_HANDLED,
    TEXT_TYPES,
    THRESHOLD_REQUIRED,
    TRANSFORM_METHODS,
)

__all__ = [
    "ADVISORY_ASSERTION_KEYS",
    "ASSERTION_KEYS_KEPT",
    "ASSERTION_TYPES",
    "BINARY_SUFFIXES",
    "CODE_SUFFIXES",
    "CODE_TYPES",
    "COMMA_LIST_TYPES",
    "CONFIG_KEYS_HANDLED",
    "CONFIG_KEYS_IGNORED",
    "PROMPT_TEXT_SUFFIXES",
    "PROMPTFOO_TYPES",
    "PROVIDER_PARAMS",
    "PROVIDER_PREFIXES",
    "SECRET_CONFIG_KEYS",
    "SUITE_SUFFIX",
    "TEST_KEYS_HANDLED",
    "TEXT_TYPES",
    "THRESHOLD_REQUIRED",
    "TRANSFORM_METHODS",
    "Finding",
    "ImportResult",
    "ImportedSuite",
    "add_cli",
    "check_suites",
    "convert_config",
    "format_report",
    "parse_comma_separated",
    "translate_transform",
    "write_suites",
]
