"""Suite files (``*.promptgate.yaml``) become validated ``Suite`` objects: ``load_suite``.

The format is described in ``docs/suite-format.md``. The modules, in reading order:

- ``yaml_lines``: the YAML reader that remembers the line of every value;
- ``fields``: typed value readers whose errors name file, line, expected and found;
- ``expectations``: ``expect:`` entries as ``Expectation`` objects, checked by the registry;
- ``case_files``: JSONL/CSV/YAML case files and promptfoo's ``__expected`` columns;
- ``turns``: multi-turn/image messages, tool-call ``ideal``, a version's model and params;
- ``suite``: the suite's keys, versions, cases and settings; ``load_suite``.
"""

from __future__ import annotations

from pytest_promptgate.spec.case_files import CASE_KEYS
from pytest_promptgate.spec.expectations import PROMPTFOO_EXPECTATION_KEYS
from pytest_promptgate.spec.suite import (
    DEFAULTS_KEYS,
    FINETUNE_KEYS,
    MESSAGE_KEYS,
    RESERVED_TAGS,
    SOURCE_KEYS,
    TOP_KEYS,
    USAGE_KEYS,
    load_suite,
)
from pytest_promptgate.spec.yaml_lines import YamlMap, YamlSeq, parse_yaml

__all__ = [
    "CASE_KEYS",
    "DEFAULTS_KEYS",
    "FINETUNE_KEYS",
    "MESSAGE_KEYS",
    "PROMPTFOO_EXPECTATION_KEYS",
    "RESERVED_TAGS",
    "SOURCE_KEYS",
    "TOP_KEYS",
    "USAGE_KEYS",
    "YamlMap",
    "YamlSeq",
    "load_suite",
    "parse_yaml",
]
