"""The line-tracking YAML reader: every mapping and list remembers the 1-based line of itself
and of each entry, so every later error can name ``file:line``.

YAML is read with the safe loader's composer and converted here, refusing tags beyond plain
strings, numbers, booleans, null, lists and mappings (``!!python/object`` and friends), duplicate
keys (YAML would silently keep the last one) and alias bombs. JSON and CSV rows become the same
``YamlMap``/``YamlSeq`` with ``attach_line``, so one set of field readers serves every source.
"""

from __future__ import annotations

from typing import Any, NoReturn, cast

import yaml

from pytest_promptgate.model import Location, SuiteError
from pytest_promptgate.textsafe import clip

# Aliases can make a small file expand exponentially ("billion laughs"); stop well before that.
MAX_YAML_VALUES = 200_000


class YamlMap(dict):
    """A mapping read from a file, remembering the 1-based line of itself and of each entry."""

    def __init__(self, line: int):
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}
        # Where a value's text starts (a block scalar's text starts below its `|`).
        self.value_lines: dict[str, int] = {}

    def put(self, key: str, value: Any, key_line: int, value_line: int | None = None) -> None:
        self[key] = value
        self.key_lines[key] = key_line
        self.value_lines[key] = value_line or key_line

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class YamlSeq(list):
    """A list read from a file, remembering the 1-based line of itself and of each item."""

    def __init__(self, line: int):
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []

    def put(self, value: Any, line: int) -> None:
        self.append(value)
        self.item_lines.append(line)


_STD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_STD}{name}" for name in ("str", "int", "float", "bool", "null")}
# Kept as the text the user wrote: a date is a string to a prompt, and stays JSON-friendly.
_TEXT_TAGS = {f"{_STD}timestamp", f"{_STD}value", f"{_STD}merge"}


def _safe_loader_class() -> type:
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_STD) :] if tag.startswith(_STD) else tag


def _content_line(node: yaml.Node) -> int:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        line += 1
    return line


def fail(file: str, line: int, message: str, hint: str | None = None) -> NoReturn:
    """Stop reading the suite: a ``SuiteError`` at ``file:line`` (what is wrong, how to fix it)."""
    raise SuiteError(message, Location(file, max(1, int(line))), hint)


def found(value: Any) -> str:
    """How an error message names a value it did not expect: ``str 'abc'``, ``a list``..."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"bool {str(value).lower()}"
    if isinstance(value, str):
        return f"str {clip(value, 40)!r}"
    if isinstance(value, (int, float)):
        return f"{type(value).__name__} {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class _YamlConverter:
    """Turns composed YAML nodes into YamlMap/YamlSeq/scalars, refusing non-standard tags."""

    def __init__(self, loader: Any, file: str):
        self.loader = loader
        self.file = file
        self.repeated = 0  # values produced by alias expansion (a node converted again)
        self.converted: set[int] = set()
        self.open_nodes: set[int] = set()

    def convert(self, node: yaml.Node) -> Any:
        line = node.start_mark.line + 1
        # Only repeats count against the limit: a large plain suite is bounded by its file size,
        # an alias bomb ("billion laughs") by this.
        if id(node) in self.converted:
            self.repeated += 1
            if self.repeated > MAX_YAML_VALUES:
                fail(
                    self.file,
                    line,
                    f"YAML aliases expand to more than {MAX_YAML_VALUES:,} repeated values",
                    "YAML aliases (*name) repeat whole subtrees; expand fewer of them",
                )
        else:
            self.converted.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, line)
        if id(node) in self.open_nodes:
            fail(
                self.file,
                line,
                "a YAML alias refers to a node that contains it",
                "recursive structures cannot be a suite",
            )
        self.open_nodes.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, line)
            return self._sequence(cast(yaml.SequenceNode, node), line)
        finally:
            self.open_nodes.discard(id(node))

    def _refuse_tag(self, node: yaml.Node, line: int) -> NoReturn:
        fail(
            self.file,
            line,
            f"YAML tag `{_tag_name(node.tag)}` is not allowed",
            "suites are read with YAML's safe loader: plain strings, numbers, booleans, null, "
            "lists and mappings only",
        )

    def _scalar(self, node: yaml.ScalarNode, line: int) -> Any:
        if node.tag in _TEXT_TAGS:
            return node.value
        if node.tag not in _SCALAR_TAGS:
            self._refuse_tag(node, line)
        construct = yaml.constructor.SafeConstructor.yaml_constructors[node.tag]
        try:
            return construct(self.loader, node)
        except Exception:  # e.g. `!!int abc`: the explicit tag does not fit the text
            fail(self.file, line, f"`{node.value}` cannot be read as {_tag_name(node.tag)}")

    def _sequence(self, node: yaml.SequenceNode, line: int) -> YamlSeq:
        if node.tag != f"{_STD}seq":
            self._refuse_tag(node, line)
        result = YamlSeq(line)
        for item in node.value:
            result.put(self.convert(item), item.start_mark.line + 1)
        return result

    def _mapping(self, node: yaml.MappingNode, line: int) -> YamlMap:
        if node.tag != f"{_STD}map":
            self._refuse_tag(node, line)
        result = YamlMap(line)
        merges = []
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == f"{_STD}merge":
                merges.append(value_node)
                continue
            key = self.convert(key_node)
            if isinstance(key, (list, dict)):
                fail(
                    self.file,
                    key_line,
                    "a mapping key must be a plain string, not a list or mapping",
                )
            if not isinstance(key, str):
                fail(
                    self.file,
                    key_line,
                    f"a mapping key must be a string; found {found(key)}",
                    f"quote it: '{key_node.value}'",
                )
            if key in result:
                fail(
                    self.file,
                    key_line,
                    f"duplicate key `{key}` (first at line {result.line_of(key)})",
                    "YAML would silently keep only the last one; remove or rename one",
                )
            result.put(key, self.convert(value_node), key_line, _content_line(value_node))
        # `<<: *base` merges: keys written in this mapping win, then earlier sources win.
        for source in merges:
            sources = source.value if isinstance(source, yaml.SequenceNode) else [source]
            for merged_node in sources:
                merged = self.convert(merged_node)
                if not isinstance(merged, YamlMap):
                    fail(self.file, merged_node.start_mark.line + 1, "`<<` merges only mappings")
                for key, value in merged.items():
                    if key not in result:
                        result.put(key, value, merged.key_lines[key], merged.value_lines[key])
        return result


def _yaml_error_place(exc: yaml.YAMLError, text: str) -> tuple[int, str]:
    """(line, message) for a YAML syntax error."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    problem_mark = getattr(exc, "problem_mark", None)
    context_mark = getattr(exc, "context_mark", None)
    message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    if problem_mark is None:
        position = getattr(exc, "position", None)  # ReaderError: a character offset
        line = text.count("\n", 0, max(0, position)) + 1 if isinstance(position, int) else 1
        return line, message
    line = problem_mark.line + 1
    if context_mark is not None and context_mark.line != problem_mark.line:
        started = context_mark.line + 1
        message += f", started at line {started}"
        if "end of stream" in str(problem):
            line = started  # "unexpected end of stream" is past the file: the opening is the news
    return line, message


def parse_yaml(text: str, file: str) -> Any:
    """The YAML document in ``text`` as YamlMap/YamlSeq/scalars; None for an empty document."""
    loader = _safe_loader_class()(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            line, message = _yaml_error_place(exc, text)
            fail(
                file,
                line,
                message,
                "check the indentation and quoting here; quote strings that contain `: ` or "
                "` #`, or that start with `{`, `[`, `*`, `&`, `!`, `%`, `@` or a backtick",
            )
        if node is None:
            return None
        try:
            return _YamlConverter(loader, file).convert(node)
        except RecursionError:
            fail(file, node.start_mark.line + 1, "the document is nested too deeply")
    finally:
        loader.dispose()


def attach_line(value: Any, line: int) -> Any:
    """JSON/CSV data as YamlMap/YamlSeq where every entry sits on ``line`` (its row)."""
    if isinstance(value, dict):
        result = YamlMap(line)
        for key, item in value.items():
            result.put(str(key), attach_line(item, line), line)
        return result
    if isinstance(value, list):
        seq = YamlSeq(line)
        for item in value:
            seq.put(attach_line(item, line), line)
        return seq
    return value


def plain(value: Any) -> Any:
    """Back to plain dicts and lists (what flows out of this module)."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value
