"""Suite files (``*.promptgate.yaml``) become validated ``Suite`` objects.

The suite format
================

A suite file holds one prompt, its versions (iterations) and the cases it is tested on::

    prompt: support-triage            # required; the prompt's id (unique in the run)
    description: Route tickets to a queue
    model: openai/gpt-4o-mini         # any litellm model string (default: --promptgate-model)
    params: {temperature: 0}          # passed to litellm as keyword arguments
    threshold: 0.8                    # 0 < threshold <= 1 (a fraction: 0.8, not 80)
    finetune_after: 3                 # iterations below threshold before "consider fine-tuning" (>= 2)
    repeat: 1                         # samples per case (>= 1); see "Repeats" below
    rpm: 60                           # requests per minute for this suite's model (> 0)
    usage: {calls_per_month: 100000, months: 12}      # for the fine-tuning cost estimate
    finetune:                         # override the fine-tuning cost assumptions
      training_cost_usd: [500, 5000]  # a number or [low, high]; stored as [low, high]
      inference_multiplier: 2.5       # a number or [low, high]; stored as [low, high]
    versions:                         # ordered; the LAST version is the current one
      v1:
        system: Classify the ticket as billing, bug, feature or account.
        user: "{{ ticket }}"
      v2:
        messages:
          - {role: system, content: "You route support tickets."}
          - {role: user, content: "Ticket: {{ ticket }}"}
    defaults:                         # applied to every case
      expect: [{one-of: [billing, bug, feature, account]}]
      repeat: 1
      tags: [triage]
    cases:
      - id: double-charge
        vars: {ticket: I was charged twice this month}
        expect: [{equals: billing}]
        tags: [payments]
    cases_file: cases/triage.jsonl    # more cases (.jsonl, .csv, .yaml/.yml), or a list of files

Only ``prompt`` and a prompt source are required. Every key is checked: an unknown key is an
error with a did-you-mean suggestion, and a value of the wrong type names what was expected and
what was found. Every error names the file and the 1-based line.

Versions
--------
A version (under ``versions:``, keyed by its label) is one of:

- ``system`` and/or ``user``: the system and user messages (Jinja2 templates);
- ``messages``: a list of ``{role, content}``, role ``system``, ``user`` or ``assistant``;
- ``template: prompts/triage.txt``: the file's text (relative to the suite's directory) is the
  user message template; it may be combined with ``system``;
- ``python: myapp.prompts:build``: the function is called with the case's vars as keyword
  arguments (``build(**vars)``) and returns a string (the user message) or a list of
  ``{role, content}``. The suite's directory and the rootdir are put on ``sys.path``.

Instead of ``versions``, a suite may give a single version at the top level with the same keys
(``system``/``user``/``messages``/``template``/``python``); its label is the first 8 hex
digits of the sha256 of its source, so editing the prompt makes a new iteration.

Templates are Jinja2 in a sandbox, with undefined variables as errors. Every (version, case)
pair is rendered when the suite is loaded, so a variable a case lacks is reported at once, at
the case's line.

Cases
-----
Each case has ``id`` (default ``case-<n>``, n counting all cases from 1 in file order, inline
cases first; ids must be unique), ``vars`` (a mapping), ``expect`` (a list of expectations),
``tags`` (pytest markers: letters, digits, ``_`` and ``-``; the names of pytest's own markers
and the ``-m`` operators ``and``/``or``/``not`` are refused), ``repeat`` (samples, >= 1),
``ideal`` (the target output, used as a fine-tuning label) and ``defaults: false`` to opt out
of the suite's ``defaults`` entirely.

Defaults merge as follows: ``defaults.expect`` come first, then the case's own; tags are
``defaults.tags`` followed by the case's (duplicates dropped); ``repeat`` is the case's, else
``defaults.repeat``, else the top-level ``repeat``, else 1. A suite may have zero cases (the
plugin reports that); it must have at least one version.

Expectations
------------
Two forms are accepted:

- shorthand, exactly one key: ``{contains: refund}``, ``{not-contains: sorry}``,
  ``{word-count: {max: 50}}``; a bare name such as ``is-json`` stands for ``{is-json: null}``;
- promptfoo's form: ``{type: contains, value: refund}`` (``value`` may be omitted).

Any type may be negated with the ``not-`` prefix. The type must be registered (built-ins plus
plugins' ``pytest_promptgate_add_expectations``) and its value is checked when the suite loads.

Cases files
-----------
``cases_file`` paths are relative to the suite's directory. Each row's location is the cases
file and the row's line.

- ``.jsonl``: one JSON object per line. An object with a ``vars`` key uses the case keys above;
  otherwise it is *flat*: the reserved keys ``id``, ``expect``, ``tags``, ``repeat``, ``ideal``,
  ``defaults`` and ``__expected*`` are taken as such and every other key is a variable.
- ``.yaml``/``.yml``: a list of the same objects (structured or flat).
- ``.csv``: a header row, then one case per row. Columns are variables except the reserved
  ``id``, ``tags`` (separated by ``;``), ``ideal``, ``repeat``, ``expect`` (a JSON list of
  expectations, or one ``type:value`` such as ``equals:billing``) and promptfoo's ``__expected``
  (also ``__expected1``, ``__expected2``...): ``type:value`` for a known type, ``grade:...`` for
  ``llm-rubric``, anything else means ``equals``. In ``type:value``, a value starting with
  ``[`` or ``{`` is read as JSON; otherwise it is the string after the first colon, stripped.

Trust model
-----------
YAML is loaded with the safe loader (tags such as ``!!python/object`` are refused) and Jinja2
runs in a sandbox. ``python:`` prompt builders and ``python`` expectations run the repository's
own code, like any test in it.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import hashlib
import io
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

from pytest_promptgate import render
from pytest_promptgate.model import (
    Case,
    Expectation,
    Location,
    MessageTemplate,
    Suite,
    SuiteError,
    Version,
)

TOP_KEYS = (
    "prompt",
    "description",
    "model",
    "params",
    "threshold",
    "finetune_after",
    "repeat",
    "rpm",
    "usage",
    "finetune",
    "versions",
    "system",
    "user",
    "messages",
    "template",
    "python",
    "defaults",
    "cases",
    "cases_file",
)
SOURCE_KEYS = ("system", "user", "messages", "template", "python")
DEFAULTS_KEYS = ("expect", "repeat", "tags")
CASE_KEYS = ("id", "vars", "expect", "tags", "repeat", "ideal", "defaults")
MESSAGE_KEYS = ("role", "content")
USAGE_KEYS = ("calls_per_month", "months")
FINETUNE_KEYS = ("training_cost_usd", "inference_multiplier")
PROMPTFOO_EXPECTATION_KEYS = ("type", "value")

# Tags become pytest markers: these names would change what pytest does with the item, or
# break `-m` expressions.
RESERVED_TAGS = frozenset(
    {
        "and",
        "or",
        "not",
        "skip",
        "skipif",
        "xfail",
        "parametrize",
        "usefixtures",
        "filterwarnings",
        "tryfirst",
        "trylast",
    }
)
TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
MAX_NAME_LENGTH = 200
# Aliases can make a small file expand exponentially ("billion laughs"); stop well before that.
MAX_YAML_VALUES = 200_000
FORMS_HINT = (
    "a version is `system`/`user`, or `messages`, or `template` (optionally with "
    "`system`), or `python: module:function`"
)


# --- YAML with line numbers ----------------------------------------------------------------


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


def _fail(file: str, line: int, message: str, hint: str | None = None) -> NoReturn:
    raise SuiteError(message, Location(file, max(1, int(line))), hint)


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
                _fail(
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
            _fail(
                self.file,
                line,
                "a YAML alias refers to a node that contains it",
                "recursive structures cannot be a suite",
            )
        self.open_nodes.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, line)
            return self._sequence(node, line)
        finally:
            self.open_nodes.discard(id(node))

    def _refuse_tag(self, node: yaml.Node, line: int) -> NoReturn:
        _fail(
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
            _fail(self.file, line, f"`{node.value}` cannot be read as {_tag_name(node.tag)}")

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
                _fail(
                    self.file,
                    key_line,
                    "a mapping key must be a plain string, not a list or mapping",
                )
            if not isinstance(key, str):
                _fail(
                    self.file,
                    key_line,
                    f"a mapping key must be a string; found {_found(key)}",
                    f"quote it: '{key_node.value}'",
                )
            if key in result:
                _fail(
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
                    _fail(self.file, merged_node.start_mark.line + 1, "`<<` merges only mappings")
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
            _fail(
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
            _fail(file, node.start_mark.line + 1, "the document is nested too deeply")
    finally:
        loader.dispose()


def _attach_line(value: Any, line: int) -> Any:
    """JSON/CSV data as YamlMap/YamlSeq where every entry sits on ``line`` (its row)."""
    if isinstance(value, dict):
        result = YamlMap(line)
        for key, item in value.items():
            result.put(str(key), _attach_line(item, line), line)
        return result
    if isinstance(value, list):
        seq = YamlSeq(line)
        for item in value:
            seq.put(_attach_line(item, line), line)
        return seq
    return value


def _plain(value: Any) -> Any:
    """Back to plain dicts and lists (what flows out of this module)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


# --- reading values with readable errors ----------------------------------------------------


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _found(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"bool {str(value).lower()}"
    if isinstance(value, str):
        return f"str {_clip(value)!r}"
    if isinstance(value, (int, float)):
        return f"{type(value).__name__} {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    if not close and len(str(word)) >= 3:  # an abbreviation: `calls` for `calls_per_month`
        close = [choice for choice in choices if choice.startswith(str(word))][:1]
    return f"; did you mean `{close[0]}`?" if close else ""


@dataclass(frozen=True)
class _Context:
    """Where values come from (for messages) and what the expectation registry knows."""

    file: str  # shown in locations
    suite_dir: Path  # absolute; suite-relative paths start here
    given_dir: Path  # the suite's directory as given, for showing related files
    rootdir: Path | None
    known_types: frozenset[str]
    validate: Callable[[Expectation, Path], None]

    def fail(self, line: int, message: str, hint: str | None = None) -> NoReturn:
        _fail(self.file, line, message, hint)

    def location(self, line: int) -> Location:
        return Location(self.file, max(1, line))

    def show(self, relative: str | Path) -> str:
        """How to name a file given relative to the suite's directory."""
        return _display(self.given_dir / relative, self.rootdir)


def _display(path: Path, rootdir: Path | None) -> str:
    if rootdir is not None:
        try:
            return path.resolve().relative_to(Path(rootdir).resolve()).as_posix()
        except (ValueError, OSError):
            pass
    return path.as_posix()


_KIND_WORDS = {
    "str": "a string",
    "int": "an integer",
    "number": "a number",
    "bool": "true or false",
    "mapping": "a mapping",
    "list": "a list",
}


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "mapping":
        return isinstance(value, YamlMap)
    return isinstance(value, YamlSeq)


def _typed(ctx: _Context, value: Any, line: int, name: str, kind: str) -> Any:
    """``value`` if it is of ``kind``; ``name`` is a key (quoted) or a phrase with its own quotes."""
    shown = name if "`" in name or " " in name else f"`{name}`"
    if not _is_kind(value, kind):
        ctx.fail(line, f"expected {_KIND_WORDS[kind]} for {shown}, found {_found(value)}")
    if kind == "number" and not math.isfinite(value):
        ctx.fail(line, f"expected a finite number for {shown}, found {value}")
    return value


def _field(ctx: _Context, mapping: YamlMap, key: str, kind: str, name: str | None = None) -> Any:
    """``mapping[key]`` checked to be of ``kind``, or None when absent."""
    if key not in mapping:
        return None
    return _typed(ctx, mapping[key], mapping.line_of(key), name or key, kind)


def _at_least(
    ctx: _Context,
    mapping: YamlMap,
    key: str,
    kind: str,
    minimum: float,
    exclusive: bool = False,
    name: str | None = None,
) -> Any:
    value = _field(ctx, mapping, key, kind, name)
    if value is not None and (value <= minimum if exclusive else value < minimum):
        relation = "greater than" if exclusive else "at least"
        ctx.fail(
            mapping.line_of(key), f"`{name or key}` must be {relation} {minimum:g}, found {value}"
        )
    return value


def _check_keys(ctx: _Context, mapping: YamlMap, allowed: Iterable[str], where: str) -> None:
    allowed = tuple(allowed)
    for key in mapping:
        if key not in allowed:
            ctx.fail(
                mapping.line_of(key),
                f"unknown key `{key}` {where}{_did_you_mean(key, allowed)}",
                "allowed keys: " + ", ".join(allowed),
            )


def _check_name(ctx: _Context, value: Any, line: int, what: str) -> str:
    """Prompt ids, version labels and case ids end up in pytest node ids: keep them sane."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        ctx.fail(line, f"expected a string for {what}, found {_found(value)}")
    problem = None
    if not value.strip():
        problem = "is empty"
    elif value != value.strip():
        problem = "starts or ends with whitespace"
    elif CONTROL_CHARACTERS.search(value):
        problem = "contains a control character (newline, tab...)"
    elif "::" in value:
        problem = "contains `::`, which separates the parts of a pytest node id"
    elif len(value) > MAX_NAME_LENGTH:
        problem = f"is longer than {MAX_NAME_LENGTH} characters"
    if problem:
        ctx.fail(
            line,
            f"{what} {_clip(value)!r} {problem}",
            "use a short name such as `double-charge` or `v2`",
        )
    return value


# --- expectations ---------------------------------------------------------------------------


def _split_negation(name: str) -> tuple[str, bool]:
    return (name[4:], True) if name.startswith("not-") else (name, False)


def _parse_expectation(ctx: _Context, item: Any, line: int) -> Expectation:
    if isinstance(item, str):
        name, value = item, None
    elif isinstance(item, YamlMap):
        if "type" in item:
            _check_keys(
                ctx,
                item,
                PROMPTFOO_EXPECTATION_KEYS,
                "in an expectation of the `type:`/`value:` form",
            )
            name = _typed(ctx, item["type"], item.line_of("type"), "type", "str")
            value = item.get("value")
        elif len(item) == 1:
            name, value = next(iter(item.items()))
        else:
            keys = ", ".join(f"`{k}`" for k in item) or "none"
            ctx.fail(
                line,
                f"an expectation has one `type: value` pair; found keys {keys}",
                "write `{contains: foo}` or `{type: contains, value: foo}`, one per list item",
            )
    else:
        ctx.fail(line, f"expected an expectation such as `{{contains: foo}}`, found {_found(item)}")
    base, negate = _split_negation(name)
    if base not in ctx.known_types:
        choices = sorted(ctx.known_types) + [f"not-{t}" for t in sorted(ctx.known_types)]
        ctx.fail(
            line,
            f"unknown expectation `{name}`{_did_you_mean(name, choices)}",
            "known types: " + ", ".join(sorted(ctx.known_types)),
        )
    expectation = Expectation(
        type=base, value=_plain(value), negate=negate, location=ctx.location(line)
    )
    try:
        ctx.validate(expectation, ctx.suite_dir)
    except Exception as exc:  # ValueError by contract; a plugin's validator may raise anything
        ctx.fail(line, f"invalid `{expectation.name}` expectation: {exc}")
    return expectation


def _parse_expectations(ctx: _Context, value: Any, line: int, name: str) -> list[Expectation]:
    items = _typed(ctx, value, line, name, "list")
    return [
        _parse_expectation(ctx, item, item_line) for item, item_line in zip(items, items.item_lines)
    ]


def _parse_tags(ctx: _Context, value: Any, line: int, name: str) -> list[str]:
    items = _typed(ctx, value, line, name, "list")
    tags = []
    for tag, tag_line in zip(items, items.item_lines):
        _typed(ctx, tag, tag_line, f"a tag in `{name}`", "str")
        if not TAG_PATTERN.fullmatch(tag):
            ctx.fail(
                tag_line,
                f"tag {_clip(tag)!r} cannot be a pytest marker",
                "use letters, digits, `_` and `-`, not starting with `-`",
            )
        if tag in RESERVED_TAGS:
            ctx.fail(
                tag_line,
                f"tag `{tag}` is reserved by pytest",
                "choose another name, e.g. `case-{tag}`",
            )
        if tag not in tags:
            tags.append(tag)
    return tags


# --- versions -------------------------------------------------------------------------------


def _check_template_syntax(ctx: _Context, label: str, source: str, where: Location) -> None:
    """Report a template syntax error at its own line (inside the YAML string or the file)."""
    problem = render.template_syntax_error(source)
    if problem is not None:
        line, message = problem
        _fail(
            where.file,
            where.line + line - 1,
            f"template syntax error in version `{label}`: {message}",
        )


def _parse_message_list(
    ctx: _Context, value: Any, line: int
) -> list[tuple[MessageTemplate, Location]]:
    items = _typed(ctx, value, line, "messages", "list")
    if not items:
        ctx.fail(line, "`messages` is empty", "give at least one `{role: user, content: ...}`")
    messages = []
    for item, item_line in zip(items, items.item_lines):
        _typed(ctx, item, item_line, "a message", "mapping")
        _check_keys(ctx, item, MESSAGE_KEYS, "in a message")
        for key in MESSAGE_KEYS:
            if key not in item:
                ctx.fail(
                    item_line, f"a message needs `{key}`", 'write `{role: user, content: "..."}`'
                )
        role = _field(ctx, item, "role", "str")
        if role not in render.ROLES:
            ctx.fail(
                item.line_of("role"),
                f"unknown role `{role}`{_did_you_mean(role, render.ROLES)}",
                "roles are " + ", ".join(render.ROLES),
            )
        content = _field(ctx, item, "content", "str")
        messages.append((MessageTemplate(role, content), ctx.location(item.value_lines["content"])))
    return messages


def _parse_version(
    ctx: _Context, label: str | None, spec: Any, line: int, top_level: bool
) -> Version:
    name = f"version `{label}`" if label else "the prompt"
    if not top_level:
        _typed(ctx, spec, line, name, "mapping")
        _check_keys(ctx, spec, SOURCE_KEYS, f"in {name}")
    present = [key for key in SOURCE_KEYS if key in spec]
    if not present:
        ctx.fail(line, f"{name} has no prompt", FORMS_HINT)
    allowed_together = ({"system", "user"}, {"messages"}, {"template", "system"}, {"python"})
    if not any(set(present) <= group for group in allowed_together):
        second = present[1]
        ctx.fail(
            spec.line_of(second),
            f"{name} mixes `{present[0]}` and `{second}`; use one form",
            FORMS_HINT,
        )

    messages: list[tuple[MessageTemplate, Location]] = []
    template_path = python_ref = None
    source_extra = ""
    if "system" in spec:
        text = _field(ctx, spec, "system", "str")
        messages.append((MessageTemplate("system", text), ctx.location(spec.value_lines["system"])))
    if "user" in spec:
        text = _field(ctx, spec, "user", "str")
        messages.append((MessageTemplate("user", text), ctx.location(spec.value_lines["user"])))
    if "messages" in spec:
        messages = _parse_message_list(ctx, spec["messages"], spec.line_of("messages"))
    if "template" in spec:
        template_path = _field(ctx, spec, "template", "str")
        template_file = ctx.suite_dir / template_path
        if not template_path.strip() or not template_file.is_file():
            ctx.fail(
                spec.line_of("template"),
                f"template file `{template_path}` not found",
                f"the path is relative to the suite's directory ({ctx.show('.')})",
            )
        try:
            text = template_file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            ctx.fail(
                spec.line_of("template"), f"cannot read template file `{template_path}`: {exc}"
            )
        messages.append((MessageTemplate("user", text), Location(ctx.show(template_path), 1)))
    if "python" in spec:
        python_ref = _field(ctx, spec, "python", "str")
        where = ctx.location(spec.line_of("python"))
        search_dirs = [ctx.suite_dir] + ([Path(ctx.rootdir).resolve()] if ctx.rootdir else [])
        builder = render.resolve_builder(python_ref, search_dirs, where)
        source_extra = render.builder_source(builder)

    draft = Version(
        label="",
        kind="python" if python_ref else "template" if template_path else "messages",
        messages=tuple(m for m, _ in messages),
        python=python_ref,
        template_path=template_path,
    )
    source_text = render.canonical_json(
        {"prompt": render.prompt_source(draft), "code": source_extra}
    )
    full_hash = hashlib.sha256(source_text.encode("utf-8")).hexdigest()
    label = label or render.short_hash(source_text)  # the first 8 hex digits of full_hash
    for template, where in messages:
        _check_template_syntax(ctx, label, template.content, where)
    version_line = spec.line_of(present[0]) if top_level else line
    return dataclasses.replace(
        draft, label=label, source_hash=full_hash, location=ctx.location(version_line)
    )


def _parse_versions(ctx: _Context, data: YamlMap) -> tuple[Version, ...]:
    top_sources = [key for key in SOURCE_KEYS if key in data]
    if "versions" in data:
        if top_sources:
            ctx.fail(
                data.line_of(top_sources[0]),
                f"`{top_sources[0]}` at the top level cannot be combined with `versions`",
                "move it into one of the versions",
            )
        versions = _field(ctx, data, "versions", "mapping")
        if not versions:
            ctx.fail(
                data.line_of("versions"),
                "`versions` is empty; a suite needs at least one version",
                FORMS_HINT,
            )
        return tuple(
            _parse_version(
                ctx,
                _check_name(ctx, label, versions.line_of(label), "version label"),
                spec,
                versions.line_of(label),
                top_level=False,
            )
            for label, spec in versions.items()
        )
    if top_sources:
        return (_parse_version(ctx, None, data, data.line, top_level=True),)
    ctx.fail(
        data.line_of("prompt"),
        "the suite has no prompt text: add `versions:`, or `system`/`user`, "
        "`messages`, `template` or `python` at the top level",
        FORMS_HINT,
    )


# --- cases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Defaults:
    expect: tuple[Expectation, ...] = ()
    tags: tuple[str, ...] = ()
    repeat: int | None = None


def _parse_defaults(ctx: _Context, data: YamlMap, top_repeat: int | None) -> _Defaults:
    spec = _field(ctx, data, "defaults", "mapping")
    if spec is None:
        return _Defaults(repeat=top_repeat)
    _check_keys(ctx, spec, DEFAULTS_KEYS, "in `defaults`")
    expect = (
        _parse_expectations(ctx, spec["expect"], spec.line_of("expect"), "defaults.expect")
        if "expect" in spec
        else []
    )
    tags = (
        _parse_tags(ctx, spec["tags"], spec.line_of("tags"), "defaults.tags")
        if "tags" in spec
        else []
    )
    repeat = _at_least(ctx, spec, "repeat", "int", 1, name="defaults.repeat")
    return _Defaults(tuple(expect), tuple(tags), repeat if repeat is not None else top_repeat)


def _parse_case(ctx: _Context, row: Any, line: int, index: int, defaults: _Defaults) -> Case:
    _typed(ctx, row, line, "a case", "mapping")
    _check_keys(ctx, row, CASE_KEYS, "in a case")
    case_id = f"case-{index}"
    if "id" in row:
        case_id = _check_name(ctx, row["id"], row.line_of("id"), "case id")
    variables = _field(ctx, row, "vars", "mapping")
    use_defaults = _field(ctx, row, "defaults", "bool")
    applied = defaults if use_defaults is not False else _Defaults(repeat=defaults.repeat)
    own_expect = (
        _parse_expectations(ctx, row["expect"], row.line_of("expect"), "expect")
        if "expect" in row
        else []
    )
    own_tags = _parse_tags(ctx, row["tags"], row.line_of("tags"), "tags") if "tags" in row else []
    repeat = _at_least(ctx, row, "repeat", "int", 1)
    ideal = _field(ctx, row, "ideal", "str")
    tags = list(applied.tags) + [tag for tag in own_tags if tag not in applied.tags]
    return Case(
        id=case_id,
        vars=_plain(variables) if variables is not None else {},
        expect=tuple(applied.expect) + tuple(own_expect),
        tags=tuple(tags),
        repeat=repeat or applied.repeat or 1,
        ideal=ideal,
        location=ctx.location(line),
    )


_ROW_KEYS = tuple(key for key in CASE_KEYS if key != "vars")


def _is_promptfoo_expected(key: str) -> bool:
    return re.fullmatch(r"__expected\d*", key) is not None


def _expectation_from_text(ctx: _Context, text: str, line: int, promptfoo: bool) -> Any:
    """``type:value`` (CSV cells, promptfoo's ``__expected``) as a shorthand expectation."""
    name, colon, value = text.partition(":")
    name = name.strip()
    if promptfoo:
        if name == "grade" and colon:
            name = "llm-rubric"
        elif not colon or _split_negation(name)[0] not in ctx.known_types:
            return {"equals": text}
    if not colon:
        return name
    value = value.strip()
    if value[:1] in ("[", "{"):
        try:
            return {name: json.loads(value)}
        except ValueError as exc:
            ctx.fail(line, f"the value of `{name}` looks like JSON but is not: {exc}")
    return {name: value}


def _structure_flat_row(ctx: _Context, row: YamlMap) -> YamlMap:
    """A flat row (no `vars` key): reserved keys are case keys, the rest are the vars."""
    if "vars" in row:
        return row
    structured, variables = YamlMap(row.line), YamlMap(row.line)
    promptfoo_expected = []
    for key, value in row.items():
        if _is_promptfoo_expected(key):
            if value not in (None, ""):
                text = _typed(ctx, value, row.line_of(key), key, "str")
                promptfoo_expected.append(_expectation_from_text(ctx, text, row.line_of(key), True))
        elif key in _ROW_KEYS:
            structured.put(key, value, row.line_of(key), row.value_lines.get(key))
        else:
            variables.put(key, value, row.line_of(key), row.value_lines.get(key))
    structured.put("vars", variables, row.line)
    if promptfoo_expected:
        expect = structured.get("expect")
        if expect is None:
            expect = YamlSeq(row.line)
            structured.put("expect", expect, row.line)
        _typed(ctx, expect, structured.line_of("expect"), "expect", "list")
        for item in promptfoo_expected:
            expect.put(_attach_line(item, row.line), row.line)
    return structured


def _read_jsonl(ctx: _Context, text: str) -> list[tuple[Any, int]]:
    rows = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except ValueError as exc:
            ctx.fail(
                number, f"invalid JSON: {exc}", "each line of a .jsonl file is one JSON object"
            )
        if not isinstance(value, dict):
            ctx.fail(number, f"expected a JSON object per line, found {_found(value)}")
        rows.append((_attach_line(value, number), number))
    return rows


def _read_yaml_rows(ctx: _Context, text: str) -> list[tuple[Any, int]]:
    data = parse_yaml(text, ctx.file)
    if data is None:
        return []
    if not isinstance(data, YamlSeq):
        ctx.fail(
            getattr(data, "line", 1), f"a YAML cases file is a list of cases, found {_found(data)}"
        )
    return list(zip(data, data.item_lines))


def _read_csv(ctx: _Context, text: str) -> list[tuple[Any, int]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[Any, int]] = []
    header: list[str] | None = None
    next_line = 1
    try:
        for cells in reader:
            line, next_line = next_line, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = [cell.strip() for cell in cells]
                for column, name in enumerate(header):
                    if not name:
                        ctx.fail(line, f"column {column + 1} of the header has no name")
                    if name in header[:column]:
                        ctx.fail(line, f"column `{name}` appears twice in the header")
                continue
            if len(cells) != len(header):
                ctx.fail(
                    line,
                    f"this row has {len(cells)} fields but the header has {len(header)}",
                    "quote fields that contain commas",
                )
            rows.append((_csv_row(ctx, dict(zip(header, cells)), line), line))
    except csv.Error as exc:
        ctx.fail(next_line, f"invalid CSV: {exc}")
    return rows


def _csv_row(ctx: _Context, cells: dict[str, str], line: int) -> YamlMap:
    row = YamlMap(line)
    for name, cell in cells.items():
        if name in ("id", "ideal", "repeat", "expect", "tags") and not cell.strip():
            continue  # an empty reserved cell means "not given"
        if name == "tags":
            value: Any = _attach_line([t.strip() for t in cell.split(";") if t.strip()], line)
        elif name == "repeat":
            value = int(cell) if cell.strip().isdigit() else cell
        elif name == "expect":
            text = cell.strip()
            if text.startswith("["):
                try:
                    value = _attach_line(json.loads(text), line)
                except ValueError as exc:
                    ctx.fail(line, f"the `expect` column is not a JSON list: {exc}")
            else:
                value = _attach_line([_expectation_from_text(ctx, text, line, False)], line)
        else:
            value = cell
        row.put(name, value, line)
    return row


_CASE_READERS = {
    ".jsonl": _read_jsonl,
    ".csv": _read_csv,
    ".yaml": _read_yaml_rows,
    ".yml": _read_yaml_rows,
}


def _read_cases_file(
    ctx: _Context, relative: Any, line: int
) -> tuple[_Context, list[tuple[Any, int]]]:
    _typed(ctx, relative, line, "cases_file", "str")
    path = ctx.suite_dir / relative
    reader = _CASE_READERS.get(path.suffix.lower())
    if reader is None:
        ctx.fail(
            line,
            f"cases_file `{relative}` has an unsupported extension",
            "use .jsonl, .csv, .yaml or .yml",
        )
    if not relative.strip() or not path.is_file():
        ctx.fail(
            line,
            f"cases_file `{relative}` not found",
            f"the path is relative to the suite's directory ({ctx.show('.')})",
        )
    file_ctx = dataclasses.replace(ctx, file=ctx.show(relative))
    text = _read_text(path, file_ctx.file)
    rows = reader(file_ctx, text)
    return file_ctx, [
        (_structure_flat_row(file_ctx, row) if isinstance(row, YamlMap) else row, row_line)
        for row, row_line in rows
    ]


def _parse_cases(ctx: _Context, data: YamlMap, defaults: _Defaults) -> tuple[Case, ...]:
    sources: list[tuple[_Context, Any, int]] = []
    inline = _field(ctx, data, "cases", "list")
    if inline is not None:
        sources += [(ctx, row, row_line) for row, row_line in zip(inline, inline.item_lines)]
    if "cases_file" in data:
        files = data["cases_file"]
        line = data.line_of("cases_file")
        entries = (
            list(zip(files, files.item_lines)) if isinstance(files, YamlSeq) else [(files, line)]
        )
        for relative, entry_line in entries:
            file_ctx, rows = _read_cases_file(ctx, relative, entry_line)
            sources += [(file_ctx, row, row_line) for row, row_line in rows]

    cases: list[Case] = []
    first_seen: dict[str, Location] = {}
    for index, (row_ctx, row, row_line) in enumerate(sources, start=1):
        case = _parse_case(row_ctx, row, row_line, index, defaults)
        if case.id in first_seen:
            row_ctx.fail(
                row_line,
                f"duplicate case id `{case.id}`: also defined at {first_seen[case.id]}",
                "case ids must be unique within a suite; rename one",
            )
        first_seen[case.id] = case.location
        cases.append(case)
    return tuple(cases)


# --- the suite ------------------------------------------------------------------------------


def _read_text(path: Path, file: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        _fail(file, 1, f"cannot read the file: {exc.strerror or exc}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        _fail(
            file,
            data.count(b"\n", 0, exc.start) + 1,
            "the file is not valid UTF-8",
            "save it as UTF-8",
        )


def _parse_threshold(ctx: _Context, data: YamlMap) -> float | None:
    threshold = _field(ctx, data, "threshold", "number")
    if threshold is not None and not 0 < threshold <= 1:
        hint = f"use {threshold / 100:g}" if 1 < threshold <= 100 else None
        ctx.fail(
            data.line_of("threshold"),
            f"`threshold` is a fraction between 0 (excluded) and 1, found {threshold:g}",
            hint and f"{hint} (a fraction, not a percentage)",
        )
    return None if threshold is None else float(threshold)


def _cost_range(
    ctx: _Context, spec: YamlMap, key: str, minimum: float, exclusive: bool
) -> list[float] | None:
    if key not in spec:
        return None
    value, line = spec[key], spec.line_of(key)
    bounds = list(value) if isinstance(value, YamlSeq) else [value, value]
    if len(bounds) != 2:
        ctx.fail(
            line, f"`finetune.{key}` is a number or [low, high], found a list of {len(bounds)}"
        )
    for bound in bounds:
        _typed(ctx, bound, line, f"finetune.{key}", "number")
        if bound < minimum or (exclusive and bound == minimum):
            relation = "greater than" if exclusive else "at least"
            ctx.fail(line, f"`finetune.{key}` must be {relation} {minimum:g}, found {bound:g}")
    if bounds[0] > bounds[1]:
        ctx.fail(line, f"`finetune.{key}` is [low, high] but low > high")
    return bounds


def _parse_usage(ctx: _Context, data: YamlMap) -> dict[str, Any]:
    spec = _field(ctx, data, "usage", "mapping")
    if spec is None:
        return {}
    _check_keys(ctx, spec, USAGE_KEYS, "in `usage`")
    calls = _at_least(ctx, spec, "calls_per_month", "number", 0, name="usage.calls_per_month")
    months = _at_least(ctx, spec, "months", "number", 0, exclusive=True, name="usage.months")
    return {
        key: value
        for key, value in (("calls_per_month", calls), ("months", months))
        if value is not None
    }


def _parse_finetune(ctx: _Context, data: YamlMap) -> dict[str, Any]:
    spec = _field(ctx, data, "finetune", "mapping")
    if spec is None:
        return {}
    _check_keys(ctx, spec, FINETUNE_KEYS, "in `finetune`")
    ranges = {
        "training_cost_usd": _cost_range(ctx, spec, "training_cost_usd", 0, exclusive=False),
        "inference_multiplier": _cost_range(ctx, spec, "inference_multiplier", 0, exclusive=True),
    }
    return {key: value for key, value in ranges.items() if value is not None}


def _parse_params(ctx: _Context, data: YamlMap) -> dict[str, Any]:
    params = _field(ctx, data, "params", "mapping")
    return _plain(params) if params is not None else {}


def _expectation_registry() -> tuple[frozenset[str], Callable[[Expectation, Path], None]]:
    from pytest_promptgate import (
        assertions,
    )  # lazily: plugins register their types before suites load

    return frozenset(assertions.known_types()), assertions.validate_expectation


def load_suite(path: Path, rootdir: Path | None = None) -> Suite:
    """Read, validate and render-check one suite file; every problem is a ``SuiteError``."""
    path = Path(path)
    file = _display(path, rootdir)
    known_types, validate = _expectation_registry()
    ctx = _Context(
        file=file,
        suite_dir=path.resolve().parent,
        given_dir=path.parent,
        rootdir=Path(rootdir) if rootdir is not None else None,
        known_types=known_types,
        validate=validate,
    )
    data = parse_yaml(_read_text(path, file), file)
    if data is None:
        ctx.fail(1, "the suite file is empty", "start it with `prompt: <id>`")
    if not isinstance(data, YamlMap):
        ctx.fail(
            getattr(data, "line", 1),
            f"a suite is a mapping (prompt, versions, cases...), found {_found(data)}",
        )
    _check_keys(ctx, data, TOP_KEYS, "at the top level of the suite")
    if "prompt" not in data:
        ctx.fail(1, "missing required key `prompt`", "add `prompt: <id>`, a name for this prompt")
    prompt = _check_name(ctx, data["prompt"], data.line_of("prompt"), "`prompt`")

    model = _field(ctx, data, "model", "str")
    if model is not None and not model.strip():
        ctx.fail(data.line_of("model"), "`model` is empty", "e.g. `openai/gpt-4o-mini`")
    # Plain settings first, then versions (which may import builders), then cases.
    settings = dict(
        description=_field(ctx, data, "description", "str") or "",
        model=model,
        params=_parse_params(ctx, data),
        threshold=_parse_threshold(ctx, data),
        finetune_after=_at_least(ctx, data, "finetune_after", "int", 2),
        rpm=_at_least(ctx, data, "rpm", "number", 0, exclusive=True),
        usage=_parse_usage(ctx, data),
        finetune=_parse_finetune(ctx, data),
    )
    top_repeat = _at_least(ctx, data, "repeat", "int", 1)
    defaults = _parse_defaults(ctx, data, top_repeat)
    versions = _parse_versions(ctx, data)
    suite = Suite(
        prompt=prompt,
        file=path.resolve(),
        versions=versions,
        cases=_parse_cases(ctx, data, defaults),
        location=ctx.location(data.line_of("prompt")),
        **settings,
    )
    # Render every pair now: a variable a case lacks is a suite error, not a run-time failure.
    # The messages are kept, so the run does not render (or call a python builder) again.
    rendered = {
        (version.label, case.id): render.render_messages(suite, version, case.vars, case=case)
        for version in suite.versions
        for case in suite.cases
    }
    return dataclasses.replace(suite, rendered=rendered)
