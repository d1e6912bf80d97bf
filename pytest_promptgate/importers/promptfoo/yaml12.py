"""promptfoo's YAML 1.2 read with the line of every mapping key and list item (independent of the
suite loader's reader), and JSON/CSV data given the same shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

from pytest_promptgate.model import Location, PromptgateError


class _Map(dict):
    """A mapping from a file, with the 1-based line of itself and of each key."""

    def __init__(self, line: int):
        super().__init__()
        self.line = line
        self.lines: dict[str, int] = {}

    def line_of(self, key: str) -> int:
        return self.lines.get(key, self.line)


class _Seq(list):
    """A list from a file, with the 1-based line of itself and of each item."""

    def __init__(self, line: int):
        super().__init__()
        self.line = line
        self.lines: list[int] = []

    def line_at(self, index: int) -> int:
        return self.lines[index] if index < len(self.lines) else self.line


def _read_yaml(text: str, file: str) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 1
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise PromptgateError(
                f"invalid YAML: {problem}",
                Location(file, line),
                "promptfoo reads the same YAML; check the indentation and quoting here",
            ) from None
        return None if node is None else _convert_node(node, loader, file, 0)
    finally:
        loader.dispose()


_YAML11_ONLY = frozenset(
    {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
)
_YAML12_PLAIN = re.compile(
    r"true|false|True|False|TRUE|FALSE|[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"
    r"|[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
)


def _convert_node(node: yaml.Node, loader: Any, file: str, depth: int) -> Any:
    line = node.start_mark.line + 1
    if depth > 200:
        raise PromptgateError("the document is nested too deeply", Location(file, line))
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # `<<: *base` merges
        result = _Map(line)
        for key_node, value_node in node.value:
            key = _convert_node(key_node, loader, file, depth + 1)
            key = key if isinstance(key, str) else json.dumps(key)
            result[key] = _convert_node(value_node, loader, file, depth + 1)
            result.lines[key] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        seq = _Seq(line)
        for item in node.value:
            seq.append(_convert_node(item, loader, file, depth + 1))
            seq.lines.append(item.start_mark.line + 1)
        return seq
    if (
        isinstance(node, yaml.ScalarNode)
        and not node.style
        and node.tag in _YAML11_ONLY
        and not _YAML12_PLAIN.fullmatch(node.value)
    ):
        # promptfoo reads YAML 1.2 (js-yaml): `yes`, `on`, `1:20`, `1_000` are strings there.
        return node.value
    if node.tag == "tag:yaml.org,2002:timestamp":
        return node.value  # a date is text to a prompt (and stays JSON-friendly)
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError:
        return node.value  # an unusual tag: keep the text


def _with_line(value: Any, line: int) -> Any:
    """JSON/CSV data as _Map/_Seq whose every entry sits on ``line``."""
    if isinstance(value, dict) and not isinstance(value, _Map):
        result = _Map(line)
        for key, item in value.items():
            result[str(key)] = _with_line(item, line)
            result.lines[str(key)] = line
        return result
    if isinstance(value, list) and not isinstance(value, _Seq):
        seq = _Seq(line)
        for item in value:
            seq.append(_with_line(item, line))
            seq.lines.append(line)
        return seq
    return value


def _map(line: int, **items: Any) -> _Map:
    result = _Map(line)
    for key, value in items.items():
        result[key] = value
        result.lines[key] = line
    return result


def _key_location(row: Any, key: str, where: Location) -> Location:
    """Where ``key`` of a test is written (the test's own line for CSV/JSON rows)."""
    return Location(where.file, row.line_of(key) if isinstance(row, _Map) else where.line)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
