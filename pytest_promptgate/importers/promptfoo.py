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

Widening later (when the loader accepts more of promptfoo's form) means editing the tables at the
top of this module; the tests check each table against the loader.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import glob
import io
import itertools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from pytest_promptgate.model import Location, PromptgateError, UsageError

# --- the tables (widen these as the loader learns promptfoo's form) ------------------------

# Keys of promptfoo's assertion object kept as written. `type`/`value` always; the others only
# where the loader accepts them for that type (`assertions.option_keys`): `threshold` is read by
# cost, latency, llm-rubric, assert-set and the similarity types, `provider` by `similar`.
# `assert` is an assert-set's list (converted item by item); `transform` is translated or a TODO.
ASSERTION_KEYS_KEPT: tuple[str, ...] = ("type", "value", "threshold", "weight", "metric", "provider")

# promptfoo assertion type -> our expectation type, where the semantics match (the `not-`
# prefix is handled separately). A type is emitted only if the registry also knows it.
ASSERTION_TYPES: dict[str, str] = {
    name: name
    for name in (
        "equals",
        "contains",
        "icontains",
        "contains-any",
        "contains-all",
        "icontains-any",
        "icontains-all",
        "starts-with",
        "ends-with",
        "regex",
        "is-json",
        "contains-json",
        "is-xml",
        "contains-xml",
        "is-refusal",
        "llm-rubric",
        "cost",
        "latency",
        "word-count",
        "levenshtein",
        "rouge-n",
        "bleu",
        "similar",
        "finish-reason",
        "tool-call",
        "is-valid-openai-tools-call",
        "assert-set",
    )
}

# Types whose promptfoo value is a list that may be written as one comma-separated string.
COMMA_LIST_TYPES = frozenset({"contains-any", "contains-all", "icontains-any", "icontains-all"})

# Types whose value promptfoo turns into text with String(value) (a number is fine there).
TEXT_TYPES = frozenset({"equals", "contains", "icontains", "starts-with", "ends-with", "regex"})

# Types promptfoo configures through `threshold` alone (it refuses them without one).
THRESHOLD_REQUIRED = frozenset({"cost", "latency"})

# Code-running assertions: their code is another language (or a different calling convention),
# so they are kept as a TODO with their text.
CODE_TYPES = frozenset({"javascript", "python", "webhook", "ruby"})

# Assertion keys that do not change the verdict of a single expectation: the expectation is
# converted and the key is reported (a TODO comment) when the loader does not take it there.
ADVISORY_ASSERTION_KEYS = frozenset({"weight", "metric", "provider", "rubricPrompt"})

# A JavaScript transform is translated only when it is `output` or `JSON.parse(output)`
# followed by these string methods (on `output` only) or by property paths (`.name`,
# `["name"]`, `[0]`, on parsed JSON only). JavaScript method -> Jinja2 filter; the results
# agree on text (JavaScript's and Python's whitespace and case tables differ only on rare
# characters such as U+0085 and U+0130).
TRANSFORM_METHODS: dict[str, str] = {"trim": "trim", "toLowerCase": "lower", "toUpperCase": "upper"}

# promptfoo provider id prefix -> litellm model prefix; the longest matching prefix wins.
PROVIDER_PREFIXES: dict[str, str] = {
    "openai:chat:": "openai/",
    "openai:responses:": "openai/",
    "openai:completion:": "text-completion-openai/",
    "openai:": "openai/",
    "anthropic:messages:": "anthropic/",
    "anthropic:completion:": "anthropic/",
    "anthropic:": "anthropic/",
    "azure:chat:": "azure/",
    "azure:completion:": "azure_text/",
    "azure:": "azure/",
    "azureopenai:chat:": "azure/",
    "azureopenai:completion:": "azure_text/",
    "azureopenai:": "azure/",
    "bedrock:converse:": "bedrock/converse/",
    "bedrock:completion:": "bedrock/",
    "bedrock:": "bedrock/",
    "vertex:chat:": "vertex_ai/",
    "vertex:": "vertex_ai/",
    "ollama:chat:": "ollama_chat/",
    "ollama:completion:": "ollama/",
    "ollama:": "ollama/",
    "google:": "gemini/",
    "mistral:": "mistral/",
    "groq:": "groq/",
    "openrouter:": "openrouter/",
    "deepseek:": "deepseek/",
    "togetherai:": "together_ai/",
    "perplexity:": "perplexity/",
    "xai:": "xai/",
    "cohere:": "cohere/",
    "fireworks:": "fireworks_ai/",
}

# promptfoo provider `config` key -> litellm keyword argument.
PROVIDER_PARAMS: dict[str, str] = {
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_completion_tokens",
    "top_p": "top_p",
    "top_k": "top_k",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "seed": "seed",
    "stop": "stop",
    "response_format": "response_format",
    "reasoning_effort": "reasoning_effort",
    "tools": "tools",  # OpenAI's tool format, which litellm takes as is
    "tool_choice": "tool_choice",
    "apiBaseUrl": "api_base",
    "apiVersion": "api_version",
    "region": "aws_region_name",
}

# Keys that hold credentials: never copied into a suite file.
SECRET_CONFIG_KEYS = frozenset({"apiKey", "apiKeyEnvar", "accessKeyId", "secretAccessKey"})

# promptfoo's base assertion types, for reading `__expected` CSV cells (`type:value`).
PROMPTFOO_TYPES = frozenset(
    """
    answer-relevance assert-set bleu classifier contains contains-all contains-any
    contains-html contains-json contains-sql contains-xml context-faithfulness context-recall
    context-relevance conversation-relevance cost equals f-score factuality finish-reason g-eval
    gleu guardrails icontains icontains-all icontains-any is-html is-json is-refusal is-sql
    is-valid-function-call is-valid-openai-function-call is-valid-openai-tools-call is-xml
    javascript latency levenshtein llm-rubric meteor model-graded-closedqa model-graded-factuality
    moderation perplexity perplexity-score pi python regex rouge-n ruby search-rubric select-best
    similar starts-with tool-call-f1 trace-error-spans trace-span-count trace-span-duration
    webhook word-count
    """.split()
)
# `__expected` types whose value promptfoo splits on commas, and those that get a threshold.
_CSV_THRESHOLD_TYPES = frozenset(
    """answer-relevance classifier context-faithfulness context-recall context-relevance cost
    latency levenshtein perplexity-score perplexity rouge-n similar starts-with""".split()
)

CONFIG_KEYS_HANDLED = frozenset(
    {"description", "prompts", "providers", "targets", "tests", "defaultTest", "assertionTemplates"}
)
# Keys about promptfoo's own run (output files, sharing, concurrency): nothing to convert.
CONFIG_KEYS_IGNORED = frozenset(
    {"outputPath", "sharing", "evaluateOptions", "writeLatestResults", "tags", "metadata"}
)
TEST_KEYS_HANDLED = frozenset({"description", "vars", "assert", "options", "threshold"})
PROMPT_TEXT_SUFFIXES = frozenset({".txt", ".md", ".j2", ".prompt", ".tmpl", ".jinja", ""})
CODE_SUFFIXES = frozenset({".py", ".js", ".ts", ".mjs", ".cjs", ".rb"})
# File vars promptfoo encodes (images, PDFs) rather than inlines as text.
BINARY_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".pdf", ".mp3", ".wav"})
SUITE_SUFFIX = ".promptgate.yaml"
MAX_NAME = 60


# --- data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """Something the importer could not convert (``todo``) or changed on the way (a note)."""

    location: Location
    message: str
    todo: bool = True

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


@dataclass(frozen=True)
class ImportedSuite:
    name: str  # the suite's prompt id and file stem
    text: str  # the suite file's YAML, comments included
    versions: int
    cases: int


@dataclass(frozen=True)
class ImportResult:
    source: str
    suites: tuple[ImportedSuite, ...]
    findings: tuple[Finding, ...]

    @property
    def todos(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.todo)

    @property
    def notes(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.todo)


# --- YAML with line numbers (independent of the suite loader's reader) ---------------------


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


def _is_local_file(base: Path, text: str) -> bool:
    """A bare prompt string naming a file next to the config (promptfoo's legacy form)."""
    if "\n" in text or "{{" in text or len(text) > 255:
        return False
    try:
        return (base / text).is_file()
    except (OSError, ValueError):  # a name the OS refuses is not a file name
        return False


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# --- the conversion --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prompt:
    label: str
    messages: tuple[tuple[str, str], ...]  # (role, content) templates
    location: Location
    single_user: bool  # a text prompt: written as `user:`
    explicit: bool = False  # labelled in the config: kept as a version name even when alone


@dataclass(frozen=True)
class _Provider:
    label: str
    model: str | None
    params: Mapping[str, Any]
    prompts: tuple[str, ...] | None  # promptfoo's per-provider prompt filter
    location: Location
    comments: tuple[str, ...] = ()


@dataclass
class _Expect:
    """One converted expectation, or a TODO comment in its place."""

    data: dict[str, Any] | None  # the expectation as written in the suite
    comments: list[str] = field(default_factory=list)
    templated: bool = False  # its value uses the case's vars (rendered per case)


@dataclass
class _Case:
    id: str
    vars: dict[str, Any]
    expect: list[_Expect]
    comments: list[str]
    description: str | None
    location: Location
    threshold: float | None = None  # promptfoo's test threshold (weighted score)
    transform: str | None = None  # the translated `options.transform` (Jinja2)
    no_defaults: bool = False  # a JavaScript transform kept as a TODO: defaults would misjudge


@dataclass(frozen=True)
class _Transform:
    """A test's (or defaultTest's) `options.transform`: its Jinja2 form, or None (a TODO)."""

    code: Any
    jinja: str | None

    @property
    def parsed(self) -> bool:
        """The output the assertions see is parsed JSON (promptfoo) / its JSON text (here)."""
        return self.jinja == "from_json(output)"


class _Converter:
    def __init__(self, config_path: Path, display: str):
        self.config_path = config_path
        self.base = config_path.parent
        self.display = display
        self.findings: list[Finding] = []
        self.root: Any = None
        # Where a TODO's comment goes besides the report: the suite header (config, prompts)
        # or a provider's suite; None while cases collect their own comments.
        self.sink: list[str] | None = None
        self.header_todos: list[str] = []
        self.default_label = "prompt"
        self.structured_vars: set[str] = set()

    # -- reporting

    def where(self, file: str | None, line: int) -> Location:
        return Location(file or self.display, max(1, line))

    def todo(self, where: Location, message: str) -> str:
        self.findings.append(Finding(where, message, todo=True))
        comment = f"TODO(promptfoo): {message} ({where})"
        if self.sink is not None:
            self.sink.append(comment)
        return comment

    def note(self, where: Location, message: str) -> None:
        self.findings.append(Finding(where, message, todo=False))

    def fail(self, where: Location, message: str, hint: str | None = None) -> NoReturn:
        raise PromptgateError(message, where, hint)

    # -- files

    def show(self, path: Path) -> str:
        """A file next to the config, named as the config is named (relative paths stay so)."""
        try:
            relative = path.resolve().relative_to(self.base.resolve())
        except ValueError:
            return path.as_posix()
        return (Path(self.display).parent / relative).as_posix()

    def resolve_files(self, reference: str, where: Location) -> list[Path]:
        relative = reference[len("file://") :] if reference.startswith("file://") else reference
        relative = relative.split(":", 1)[0] if re.search(r"\.\w+:\w+$", relative) else relative
        pattern = str(self.base / relative)
        if any(char in relative for char in "*?["):
            found = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
            if not found:
                self.fail(
                    where, f"no file matches `{reference}`", f"paths are relative to {self.base}"
                )
            return found
        path = Path(pattern)
        if not path.is_file():
            self.fail(where, f"file `{reference}` not found", f"paths are relative to {self.base}")
        return [path]

    def read_text(self, path: Path, where: Location) -> str:
        try:
            return path.read_bytes().decode("utf-8-sig")
        except OSError as exc:
            self.fail(where, f"cannot read `{self.show(path)}`: {exc.strerror or exc}")
        except UnicodeDecodeError:
            self.fail(where, f"`{self.show(path)}` is not UTF-8 text", "save it as UTF-8")

    def read_structured(self, path: Path, where: Location) -> Any:
        """A JSON or YAML file as _Map/_Seq with lines (JSON is read as YAML for the lines)."""
        text = self.read_text(path, where)
        shown = self.show(path)
        if path.suffix.lower() == ".json":
            try:
                json.loads(text)
            except ValueError as exc:
                self.fail(Location(shown, getattr(exc, "lineno", 1)), f"invalid JSON: {exc}")
            try:
                return _read_yaml(text, shown)
            except PromptgateError:  # valid JSON that YAML 1.1 reads differently
                return _with_line(json.loads(text), 1)
        return _read_yaml(text, shown)

    # -- $ref

    def deref(self, value: Any, where: Location) -> tuple[Any, str | None]:
        """``{$ref: '#/a/b'}`` resolved inside the config: (value, None), or (None, a TODO)."""
        if not (isinstance(value, _Map) and set(value) == {"$ref"}):
            return value, None
        target = value["$ref"]
        node = self.root
        if isinstance(target, str) and target.startswith("#/"):
            for part in target[2:].split("/"):
                node = node.get(part) if isinstance(node, dict) else None
            if node is not None:
                return node, None
        message = f"`$ref: {_clip(target)}` not resolved (only `#/...` inside the config)"
        return None, self.todo(where, message)

    # -- prompts

    def prompts(self, data: _Map) -> list[_Prompt]:
        if "prompts" not in data:
            self.fail(
                self.where(None, data.line),
                "the config has no `prompts`",
                "promptfoo can take prompts on its command line; add them to the config first",
            )
        raw = data["prompts"]
        line = data.line_of("prompts")
        entries: list[tuple[Any, str | None, int]] = []
        if isinstance(raw, _Map):  # legacy {path: label}
            entries = [(path, str(label), raw.line_of(path)) for path, label in raw.items()]
        elif isinstance(raw, _Seq):
            entries = [(item, None, raw.line_at(i)) for i, item in enumerate(raw)]
        else:
            entries = [(raw, None, line)]
        prompts: list[_Prompt] = []
        for number, (item, label, item_line) in enumerate(entries, start=1):
            self.default_label = f"prompt-{number}"  # an unlabelled inline prompt's name
            prompts += self.prompt_entry(item, label, self.where(None, item_line))
        if not prompts:
            self.fail(self.where(None, line), "no prompt could be converted (see the TODOs above)")
        return _unique_labels(prompts)

    def prompt_entry(self, item: Any, label: str | None, where: Location) -> list[_Prompt]:
        if isinstance(item, _Map) and isinstance(item.get("label"), str):
            label = item["label"]
        prompts = self.prompt_source(item, label, where)
        if label is not None and len(prompts) == 1:
            prompts = [dataclasses.replace(prompts[0], label=label, explicit=True)]
        return prompts

    def prompt_source(self, item: Any, label: str | None, where: Location) -> list[_Prompt]:
        if isinstance(item, _Map):
            if isinstance(item.get("raw"), str):
                return self.inline_prompt(item["raw"], label, where)
            if isinstance(item.get("id"), str):
                return self.prompt_source(item["id"], label, where)
            self.todo(where, f"prompt object without `raw` or `id` not converted: {_clip(item)}")
            return []
        if not isinstance(item, str):
            self.todo(where, f"prompt `{_clip(item)}` is not text")
            return []
        suffix = Path(item.split(":", 1)[0] if not item.startswith("file://") else item).suffix
        looks_like_path = _is_local_file(self.base, item)
        if item.startswith("file://") or (looks_like_path and suffix):
            return self.file_prompts(item, label, where)
        return self.inline_prompt(item, label, where)

    def inline_prompt(self, text: str, label: str | None, where: Location) -> list[_Prompt]:
        chat = _chat_messages(text)
        name = label or self.default_label
        if chat is not None:
            return self.checked_prompt(name, chat, where, single_user=False)
        return self.checked_prompt(name, (("user", text),), where, single_user=True)

    def file_prompts(self, reference: str, label: str | None, where: Location) -> list[_Prompt]:
        bare = reference[len("file://") :] if reference.startswith("file://") else reference
        if Path(bare.split(":", 1)[0]).suffix.lower() in CODE_SUFFIXES:
            self.todo(
                where,
                f"prompt function `{reference}` not converted: promptfoo calls it with a context "
                "object; rewrite it as `python: module:function` taking the vars as keyword "
                "arguments (docs/suite-format.md)",
            )
            return []
        prompts: list[_Prompt] = []
        files = self.resolve_files(reference, where)
        for path in files:
            stem = label if label and len(files) == 1 else path.stem
            text = self.read_text(path, where)
            suffix = path.suffix.lower()
            if suffix in (".json", ".yaml", ".yml"):
                chat = _chat_messages(text, yaml_too=suffix != ".json")
                if chat is None:
                    self.todo(
                        where,
                        f"chat prompt `{self.show(path)}` is not a static list of "
                        "{role, content} messages (a template that builds the JSON?): rewrite "
                        "it as `messages:` with a template in each content",
                    )
                    continue
                prompts += self.checked_prompt(
                    stem, chat, Location(self.show(path), 1), single_user=False
                )
            elif suffix == ".jsonl":
                for number, raw_line in enumerate(text.splitlines(), start=1):
                    chat = _chat_messages(raw_line) if raw_line.strip() else None
                    if chat is None:
                        if raw_line.strip():
                            self.todo(
                                Location(self.show(path), number),
                                "this line is not a JSON list of {role, content} messages",
                            )
                        continue
                    prompts += self.checked_prompt(
                        f"{stem}-{number}", chat, Location(self.show(path), number), False
                    )
            else:
                separators = list(re.finditer(r"^---[ \t]*$", text, flags=re.M))
                starts = [0] + [m.end() for m in separators]
                ends = [m.start() for m in separators] + [len(text)]
                parts = [(a, text[a:b]) for a, b in zip(starts, ends) if text[a:b].strip()]
                for index, (start, part) in enumerate(parts, start=1):
                    name = stem if len(parts) == 1 else f"{stem}-{index}"
                    first = start + len(part) - len(part.lstrip("\n"))
                    part_where = Location(self.show(path), text.count("\n", 0, first) + 1)
                    prompts += self.checked_prompt(
                        name, (("user", part.strip("\n")),), part_where, True
                    )
        return prompts

    def checked_prompt(
        self, label: str, messages: Iterable[tuple[str, str]], where: Location, single_user: bool
    ) -> list[_Prompt]:
        from pytest_promptgate import render

        converted = []
        for role, content in messages:
            content = self.nunjucks_to_jinja(content, where)
            problem = render.template_syntax_error(content)
            if problem is not None:
                self.todo(
                    where,
                    f"prompt `{label}` is not a valid Jinja2 template ({problem[1]}) and was left "
                    f"out: {_clip(content, 120)}",
                )
                return []
            converted.append((role, content))
        return [_Prompt(label, tuple(converted), where, single_user)]

    def nunjucks_to_jinja(self, text: str, where: Location) -> str:
        if "dump" in text:
            rewritten = re.sub(r"\|\s*dump\b(?!\s*\()", "| tojson", text)
            if rewritten != text:
                self.note(
                    where,
                    'Nunjucks `| dump` became Jinja2 `| tojson` (sorted keys, `", "` '
                    "separators: the prompt text may differ slightly)",
                )
                text = rewritten
        for pattern, what in (
            (r"\{\{[^}]*\.(toUpperCase|toLowerCase|trim|join|includes)\(", "a JavaScript method"),
            (r"\{\{[^}]*\b_conversation\b", "promptfoo's `_conversation` variable"),
        ):
            if re.search(pattern, text):
                self.todo(where, f"the template uses {what}, which Jinja2 does not have: fix it")
        return text

    # -- providers

    def providers(self, data: _Map) -> list[_Provider]:
        raw = data.get("providers", data.get("targets"))
        key = "providers" if "providers" in data else "targets"
        line = data.line_of(key)
        if raw is None:
            self.note(
                self.where(None, data.line),
                "the config has no `providers`: the suite has no `model:` and uses "
                "--promptgate-model",
            )
            return [_Provider("", None, {}, None, self.where(None, data.line))]
        if isinstance(raw, str) and raw.startswith("file://"):
            raw = self.read_structured(
                self.resolve_files(raw, self.where(None, line))[0], self.where(None, line)
            )
        items: list[tuple[Any, int]]
        if isinstance(raw, _Seq):
            items = [(item, raw.line_at(i)) for i, item in enumerate(raw)]
        elif isinstance(raw, _Map) and "id" not in raw:  # legacy {id: options}
            items = []
            for provider_id, options in raw.items():
                entry = _Map(raw.line_of(provider_id))
                entry.update(options if isinstance(options, dict) else {})
                entry["id"] = provider_id
                items.append((entry, raw.line_of(provider_id)))
        else:
            items = [(raw, line)]
        providers = []
        for item, item_line in items:
            self.sink = []
            providers.append(self.provider(item, self.where(None, item_line)))
        self.sink = None
        return [p for p in providers if p is not None]

    def provider(self, item: Any, where: Location) -> _Provider | None:
        if isinstance(item, str):
            item = _map(where.line, id=item)
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            self.todo(where, f"provider `{_clip(item)}` has no string `id`; not converted")
            return None
        provider_id = item["id"]
        label = item["label"] if isinstance(item.get("label"), str) else provider_id
        config = _mapping(item.get("config"))
        model = _litellm_model(provider_id)
        params: dict[str, Any] = {}
        if model is None:
            self.todo(
                where,
                f"provider `{provider_id}` has no litellm equivalent here: set `model:` "
                "(any litellm model string) by hand",
            )
        elif model.endswith("/"):
            self.todo(where, f"provider `{provider_id}` names no model: set `model:` by hand")
            model = None
        for key, value in config.items():
            if key in SECRET_CONFIG_KEYS:
                self.note(
                    where,
                    f"provider config `{key}` left out: credentials come from the environment "
                    "(e.g. OPENAI_API_KEY), never from a suite file",
                )
            elif key == "apiHost" and isinstance(value, str):
                host = value if "://" in value else f"https://{value}"
                params["api_base"] = host
            elif key in PROVIDER_PARAMS:
                if isinstance(value, str) and "{{" in value:
                    self.todo(
                        where, f"provider config `{key}: {value}` is a template; set it by hand"
                    )
                    continue
                params[PROVIDER_PARAMS[key]] = _plain(value)
            else:
                self.todo(
                    where, f"provider config `{key}` not converted: {_shown_value(key, value)}"
                )
        if "api_base" in params and model and provider_id.startswith("openai:"):
            # An OpenAI-compatible server: litellm's `openai/` prefix with its base URL.
            model = "openai/" + model.split("/", 1)[1]
        prompts = item.get("prompts")
        filters = tuple(str(p) for p in prompts) if isinstance(prompts, list) else None
        for extra in sorted(set(item) - {"id", "label", "config", "prompts"}):
            self.todo(
                where, f"provider key `{extra}` not converted: {_shown_value(extra, item[extra])}"
            )
        return _Provider(label, model, params, filters, where, tuple(self.sink or ()))

    # -- assertions

    def assertion(
        self,
        raw: Any,
        where: Location,
        transformed: bool,
        parsed: bool = False,
        in_set: bool = False,
    ) -> _Expect:
        """One promptfoo assertion. ``transformed``: the test's output went through a transform
        that was not translated (every assertion becomes a TODO); ``parsed``: the test's
        translated transform was ``JSON.parse(output)`` (property paths on ``output`` then read
        the parsed JSON)."""
        raw, problem = self.deref(raw, where)
        if problem is not None:
            return _Expect(None, [problem])
        if isinstance(raw, str):
            raw = _map(where.line, type=raw)
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            return _Expect(None, [self.todo(where, f"assertion not understood: {_clip(raw)}")])
        original = _clip(_plain(raw), 300)
        name = raw["type"]
        negate = name.startswith("not-")
        base = name[4:] if negate else name
        if transformed:
            return _Expect(
                None,
                [
                    self.todo(
                        where,
                        f"`{name}` runs on a transformed output (`options.transform`, "
                        f"JavaScript): not converted: {original}",
                    )
                ],
            )
        if base in CODE_TYPES:
            return _Expect(None, [self.todo(where, f"{base} assertion not converted: {original}")])
        ours = ASSERTION_TYPES.get(base)
        if ours is None or ours not in _known_types():
            return _Expect(
                None, [self.todo(where, f"assertion type `{name}` has no equivalent: {original}")]
            )
        if base == "assert-set":
            return self.assertion_set(raw, where, parsed, in_set, original)
        transform = None
        if "transform" in raw:
            transform = self.transform(raw["transform"], where, parsed, f"`transform` of `{name}`")
            if transform is None:
                return _Expect(
                    None,
                    [
                        self.todo(
                            where,
                            f"`{name}` with a JavaScript `transform` not converted: {original}",
                        )
                    ],
                )
        value = _plain(raw.get("value"))
        if base in THRESHOLD_REQUIRED:
            if not _is_number(raw.get("threshold")):
                return _Expect(None, [self.todo(where, f"`{name}` needs `threshold`: {original}")])
            value = None  # promptfoo reads only `threshold` here
        if base in TEXT_TYPES and _is_number(value):
            value = _js_number_text(value)  # promptfoo compares with String(value)
        if base in COMMA_LIST_TYPES and isinstance(value, list):
            value = [_js_number_text(v) if _is_number(v) else v for v in value]
        if base == "regex" and isinstance(value, str) and not _has_template(value):
            try:
                re.compile(value)
            except re.error as exc:
                return _Expect(
                    None,
                    [
                        self.todo(
                            where,
                            f"regex {value!r} is JavaScript syntax Python's re does not read "
                            f"({exc}): {original}",
                        )
                    ],
                )
        if base in COMMA_LIST_TYPES and isinstance(value, str) and not _has_template(value):
            try:
                parse_comma_separated(value)  # kept as written: the loader splits it the same way
            except ValueError as exc:
                return _Expect(None, [self.todo(where, f"`{name}` value: {exc}: {original}")])
        if (
            isinstance(value, str)
            and value.startswith("file://")
            and base in ("is-json", "contains-json")
        ):
            value = _plain(self.read_structured(self.resolve_files(value, where)[0], where))
        elif isinstance(value, str) and base in ("is-json", "contains-json"):
            schema = _schema_text(value)  # a schema written inline as JSON/YAML text
            if schema is None:
                return _Expect(
                    None, [self.todo(where, f"`{name}` schema is not JSON or YAML: {original}")]
                )
            value = schema
        if base == "word-count" and isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        data: dict[str, Any] = {"type": ("not-" if negate else "") + ours}
        if value is not None:
            data["value"] = value
        comments = self.assertion_keys(raw, data, where, name, ours)
        if transform is not None:
            data["transform"] = transform
        return _Expect(data, comments, templated=_has_template(value))

    def assertion_keys(
        self, raw: Mapping[str, Any], data: dict[str, Any], where: Location, name: str, ours: str
    ) -> list[str]:
        """promptfoo's keys besides type/value/transform: kept in ``data`` where the loader
        takes them for ``ours``; the TODO comments of the others."""
        accepted = set(_option_keys(ours))
        comments: list[str] = []
        handled = {"type", "value", "transform", "assert"}
        for key in ASSERTION_KEYS_KEPT:
            if key in handled or key not in raw:
                continue
            if key not in accepted:
                if key == "threshold":
                    self.note(
                        where,
                        f"`threshold: {_clip(raw[key])}` of `{name}` left out: a pass/fail "
                        "check takes no threshold",
                    )
                else:
                    comments.append(
                        self.todo(where, f"`{key}: {_clip(raw[key])}` of `{name}` not supported")
                    )
                continue
            value = _plain(raw[key])
            if key == "provider":
                value = self.embedding_provider(value, where, name)
                if value is None:
                    comments.append(
                        self.todo(
                            where,
                            f"`provider: {_clip(raw[key])}` of `{name}` not converted: set a "
                            "litellm embedding model by hand",
                        )
                    )
                    continue
            data[key] = value
        for key in sorted(set(raw) - handled - set(ASSERTION_KEYS_KEPT)):
            if key in ADVISORY_ASSERTION_KEYS:
                comments.append(
                    self.todo(where, f"`{key}: {_clip(raw[key])}` of `{name}` not supported yet")
                )
            else:
                comments.append(self.todo(where, f"`{key}` of `{name}` not converted"))
        return comments

    def assertion_set(
        self, raw: Mapping[str, Any], where: Location, parsed: bool, in_set: bool, original: str
    ) -> _Expect:
        """promptfoo's ``assert-set``: converted only when every inner assertion is (a partial
        set would score differently)."""
        name = raw["type"]
        if in_set or name != "assert-set":
            what = "inside another assert-set" if in_set else "negated"
            return _Expect(None, [self.todo(where, f"an assert-set {what}: {original}")])
        if "transform" in raw:
            return _Expect(
                None, [self.todo(where, f"assert-set with a `transform` not converted: {original}")]
            )
        line = raw.line_of("assert") if isinstance(raw, _Map) else where.line
        inner = self.assertions(
            raw.get("assert"), Location(where.file, line), False, parsed, in_set=True
        )
        comments = [c for e in inner for c in e.comments]
        if not inner or any(e.data is None for e in inner):
            comments.append(
                self.todo(
                    where,
                    "assert-set not converted: "
                    + ("it has no `assert` list" if not inner else "an inner assertion was not")
                    + f": {original}",
                )
            )
            return _Expect(None, comments)
        data: dict[str, Any] = {"type": "assert-set"}
        comments += self.assertion_keys(raw, data, where, name, "assert-set")
        data["assert"] = [e.data for e in inner]
        if any(e.data is not None and "metric" in e.data for e in inner):
            self.note(
                where,
                "a `metric` inside an assert-set is kept but not reported on its own "
                "(promptfoo reports it): name the metric on the set",
            )
        return _Expect(data, comments, templated=any(e.templated for e in inner))

    def embedding_provider(self, value: Any, where: Location, name: str) -> str | None:
        """promptfoo's `provider` of `similar` as a litellm embedding model, else None."""
        if isinstance(value, dict) and set(value) == {"id"}:
            value = value["id"]
        if not isinstance(value, str) or not value.strip():
            return None
        parts = value.split(":")
        if len(parts) == 3 and parts[1] == "embedding":
            model = _litellm_model(f"{parts[0]}:{parts[2]}")
            return model if model and not model.endswith("/") else None
        if ":" in value:
            model = _litellm_model(value)
            return model if model and not model.endswith("/") else None
        return value  # already a litellm model string

    def transform(self, code: Any, where: Location, parsed: bool, what: str) -> str | None:
        """A JavaScript transform as a Jinja2 expression (a note says so), or None."""
        if not isinstance(code, str):
            return None
        jinja = translate_transform(code, parsed)
        if jinja is not None:
            self.note(
                where,
                f"{what}: JavaScript `{_clip(code, 80)}` became the Jinja2 expression `{jinja}`",
            )
        return jinja

    def assertions(
        self,
        raw: Any,
        where: Location,
        transformed: bool,
        parsed: bool = False,
        in_set: bool = False,
    ) -> list[_Expect]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            return [_Expect(None, [self.todo(where, f"`assert` is not a list: {_clip(raw)}")])]
        seq = raw if isinstance(raw, _Seq) else _with_line(raw, where.line)
        return [
            self.assertion(item, Location(where.file, seq.line_at(i)), transformed, parsed, in_set)
            for i, item in enumerate(seq)
        ]

    def expected_cell(self, text: str, where: Location) -> tuple[_Expect, str | None]:
        """A CSV `__expected` cell, read as promptfoo's assertionFromString reads it."""
        raw: dict[str, Any]
        for prefix in ("javascript:", "fn:", "eval:"):
            if text.startswith(prefix):
                return self.assertion(
                    {"type": "javascript", "value": text[len(prefix) :].strip()}, where, False
                ), None
        if text.startswith("grade:") or text.startswith("llm-rubric:"):
            raw = {"type": "llm-rubric", "value": text.split(":", 1)[1]}
            return self.assertion(raw, where, False), None
        if text.startswith("python:") or (text.startswith("file://") and ".py" in text):
            return self.assertion(
                {"type": "python", "value": text.split(":", 1)[1].lstrip("/")}, where, False
            ), None
        if text.startswith("file://") and re.search(r"\.(js|ts)(:|$)", text):
            return self.assertion({"type": "javascript", "value": text}, where, False), None
        match = re.fullmatch(r"(not-)?([a-z0-9-]+?)(?:\((\d+(?:\.\d+)?)\))?(?::([\s\S]*))?", text)
        if match and match.group(2) in PROMPTFOO_TYPES:
            negate, base, threshold, value = match.groups()
            raw = {"type": (negate or "") + base}
            if value is not None:
                raw["value"] = value
            if base in COMMA_LIST_TYPES and value is not None:
                raw["value"] = [part.strip() for part in value.split(",")]
            elif base in _CSV_THRESHOLD_TYPES and base != "starts-with":  # unused there
                raw["threshold"] = float(threshold) if threshold else 0.75
                if base == "similar" and not threshold:
                    raw["threshold"] = 0.8
                if base in ("cost", "latency") and not threshold:
                    del raw["threshold"]
            return self.assertion(raw, where, False), None
        return self.assertion({"type": "equals", "value": text}, where, False), None

    # -- tests

    def test_rows(self, data: _Map) -> list[tuple[Any, Location]]:
        raw = data.get("tests")
        line = data.line_of("tests")
        if raw is None:
            return []
        sources: list[tuple[Any, Location]] = []
        items = list(zip(raw, raw.lines)) if isinstance(raw, _Seq) else [(raw, line)]
        for item, item_line in items:
            where = self.where(None, item_line)
            if isinstance(item, str):
                if not item.startswith("file://") and not _is_local_file(self.base, item):
                    self.todo(where, f"tests from `{_clip(item)}` not converted (not a local file)")
                    continue
                for path in self.resolve_files(item, where):
                    sources += self.test_file(path, where)
            else:
                sources.append((item, where))
        return sources

    def test_file(self, path: Path, where: Location) -> list[tuple[Any, Location]]:
        suffix = path.suffix.lower()
        shown = self.show(path)
        if suffix in CODE_SUFFIXES:
            self.todo(
                where, f"tests generated by `{shown}` not converted: run it and save the tests"
            )
            return []
        if suffix == ".csv":
            return self.csv_tests(path, where)
        if suffix == ".jsonl":
            rows = []
            for number, text in enumerate(self.read_text(path, where).splitlines(), start=1):
                if not text.strip():
                    continue
                try:
                    rows.append((_with_line(json.loads(text), number), Location(shown, number)))
                except ValueError as exc:
                    self.fail(Location(shown, number), f"invalid JSON: {exc}")
            return rows
        if suffix in (".json", ".yaml", ".yml"):
            data = self.read_structured(path, where)
            if isinstance(data, _Map):
                data = _with_line([data], data.line) if "vars" in data or "assert" in data else data
            if not isinstance(data, _Seq):
                self.fail(
                    Location(shown, getattr(data, "line", 1)), "a tests file holds a list of tests"
                )
            return [(row, Location(shown, data.line_at(i))) for i, row in enumerate(data)]
        self.todo(where, f"tests file `{shown}` (a {suffix or 'no'} file) not converted")
        return []

    def csv_tests(self, path: Path, where: Location) -> list[tuple[Any, Location]]:
        shown = self.show(path)
        reader = csv.reader(io.StringIO(self.read_text(path, where), newline=""))
        rows: list[tuple[Any, Location]] = []
        header: list[str] | None = None
        next_line = 1
        try:
            for cells in reader:
                line, next_line = next_line, reader.line_num + 1
                if header is None:
                    header = [cell.strip() for cell in cells]
                    continue
                if not any(cell.strip() for cell in cells):
                    continue
                if len(cells) != len(header):
                    self.fail(
                        Location(shown, line),
                        f"this row has {len(cells)} fields but the header has {len(header)}",
                        "quote fields that contain commas",
                    )
                row = _Map(line)
                row["__csv__"] = True
                for name, cell in zip(header, cells):
                    row[name] = cell
                    row.lines[name] = line
                rows.append((row, Location(shown, line)))
        except csv.Error as exc:
            self.fail(Location(shown, next_line), f"invalid CSV: {exc}")
        return rows

    def csv_case(self, row: _Map, where: Location) -> tuple[_Map, list[_Expect], list[str]]:
        """A CSV row as promptfoo's testCaseFromCsvRow reads it: (test, its expectations, TODOs)."""
        test = _Map(row.line)
        variables = _Map(row.line)
        expects: list[_Expect] = []
        comments: list[str] = []
        metric: str | None = None
        for key, value in row.items():
            if key == "__csv__":
                continue
            if key.startswith("__expected"):
                if value.strip():
                    expects.append(self.expected_cell(value, where)[0])
            elif key == "__description":
                test["description"] = value
            elif key == "__threshold" and value.strip():
                test["threshold"] = _number(value)
            elif key == "__metric" and value.strip():
                metric = value.strip()
            elif key.startswith("__"):
                if value.strip():
                    comments.append(
                        self.todo(where, f"CSV column `{key}` not converted: {_clip(value)}")
                    )
            else:
                variables[key] = value
                variables.lines[key] = row.line
        test["vars"] = variables
        if metric is not None:  # promptfoo's testCaseFromCsvRow: the row's assertions' metric
            for expect in expects:
                if expect.data is not None:
                    expect.data["metric"] = metric
        return test, expects, comments

    def cases(
        self,
        rows: list[tuple[Any, Location]],
        default_vars: Mapping[str, Any],
        default_transform: _Transform | None,
        default_threshold: Any = None,
    ) -> list[_Case]:
        cases: list[_Case] = []
        used: set[str] = set()
        for number, (row, where) in enumerate(rows, start=1):
            row, problem = self.deref(row, where)
            if problem is not None:
                self.header_todos.append(problem)
                continue
            comments: list[str] = []
            if isinstance(row, _Map) and row.get("__csv__"):
                row, expects, comments = self.csv_case(row, where)
            elif isinstance(row, dict):
                expects = []
            else:
                message = f"test `{_clip(row)}` is not a mapping; not converted"
                self.header_todos.append(self.todo(where, message))
                continue
            options = _mapping(row.get("options"))
            transform = default_transform
            if "transform" in options:
                options_where = _key_location(row, "options", where)
                code = options["transform"]
                transform = _Transform(
                    code, self.transform(code, options_where, False, "`options.transform`")
                )
                if transform.jinja is None:
                    comments.append(
                        self.todo(
                            options_where,
                            f"`options.transform: {_clip(code)}` (JavaScript) not converted",
                        )
                    )
            transformed = transform is not None and transform.jinja is None
            parsed = transform is not None and transform.parsed
            for key in sorted(set(options) - {"transform"}):
                comments.append(
                    self.todo(
                        _key_location(row, "options", where),
                        f"`options.{key}` not converted: {_clip(options[key])}",
                    )
                )
            assert_line = row.line_of("assert") if isinstance(row, _Map) else where.line
            expects += self.assertions(
                row.get("assert"), Location(where.file, assert_line), transformed, parsed
            )
            threshold = row.get("threshold", default_threshold)
            if threshold is not None and not (_is_number(threshold) and 0 <= threshold <= 1):
                comments.append(
                    self.todo(
                        _key_location(row, "threshold", where),
                        f"test `threshold: {_clip(threshold)}` not converted: a case's threshold "
                        "is a score from 0 to 1",
                    )
                )
                threshold = None
            for key in sorted(set(row) - TEST_KEYS_HANDLED):
                comments.append(
                    self.todo(
                        _key_location(row, key, where),
                        f"test key `{key}` not converted: {_clip(row[key])}",
                    )
                )
            if row.get("vars") is not None and not isinstance(row.get("vars"), dict):
                comments.append(
                    self.todo(
                        _key_location(row, "vars", where),
                        f"`vars: {_clip(row['vars'])}` is not a mapping; not converted",
                    )
                )
            own_vars = _mapping(row.get("vars"))
            own = self.load_vars(own_vars, where)
            merged = {**own, **{k: v for k, v in default_vars.items() if k not in own}}
            description = (
                row.get("description") if isinstance(row.get("description"), str) else None
            )
            combos = _var_combinations(merged)
            for key in sorted(k for k, v in combos[0].items() if isinstance(v, (list, dict))):
                if key not in self.structured_vars:
                    self.structured_vars.add(key)
                    self.note(
                        where,
                        f"var `{key}` is a list or mapping: `{{{{ {key} }}}}` renders as Python "
                        f"text here (Nunjucks: JavaScript text); `{{{{ {key} | tojson }}}}` "
                        "gives JSON in both",
                    )
            if len(combos) > 1:
                self.note(where, f"array vars expand into {len(combos)} cases, as promptfoo does")
            for index, variables in enumerate(combos, start=1):
                stem = _slug(description) if description else f"test-{number}"
                if len(combos) > 1:
                    stem = f"{stem}-{index}"
                case_id = _unique(stem or f"test-{number}", used)
                cases.append(
                    _Case(
                        id=case_id,
                        vars=variables,
                        expect=[_copy_expect(e) for e in expects],
                        comments=list(comments),
                        description=description,
                        location=where,
                        threshold=threshold,
                        transform=None if transform is None else transform.jinja,
                        no_defaults=transformed and default_transform is None,
                    )
                )
        return cases

    def load_vars(self, variables: Mapping[str, Any], where: Location) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in variables.items():
            if isinstance(value, str) and value.startswith("file://"):
                path_text = value[len("file://") :]
                if Path(path_text).suffix.lower() in CODE_SUFFIXES | BINARY_SUFFIXES:
                    self.header_todos.append(
                        self.todo(
                            where,
                            f"var `{key}: {value}` not converted (promptfoo runs or encodes the file)",
                        )
                    )
                    result[key] = value
                    continue
                files = self.resolve_files(value, where)
                texts = []
                for path in files:
                    if path.suffix.lower() in (".yaml", ".yml"):  # promptfoo passes it as JSON
                        text = json.dumps(_plain(self.read_structured(path, where)))
                    else:
                        text = self.read_text(path, where)
                    texts.append(text)
                result[key] = texts[0] if len(texts) == 1 else texts
                self.note(where, f"var `{key}` holds the text of `{value}`, inlined")
            else:
                result[key] = _plain(value)
        return result

    # -- the whole config

    def convert(self, name: str | None) -> ImportResult:
        text = self.read_text(self.config_path, self.where(None, 1))
        if self.config_path.suffix.lower() == ".json":
            self.root = self.read_structured(self.config_path, self.where(None, 1))
        else:
            self.root = _read_yaml(text, self.display)
        data = self.root
        if not isinstance(data, _Map):
            self.fail(
                self.where(None, 1),
                "a promptfoo config is a mapping (prompts, providers, tests...)",
            )
        self.sink = self.header_todos
        for key in sorted(set(data) - CONFIG_KEYS_HANDLED):
            if key == "env":
                self.note(
                    self.where(None, data.line_of(key)),
                    "`env` left out: set those variables in the environment of the run",
                )
            elif key not in CONFIG_KEYS_IGNORED:
                self.todo(self.where(None, data.line_of(key)), f"`{key}` not converted")
        prompts = self.prompts(data)
        self.sink = None
        providers = self.providers(data)

        default, problem = self.deref(
            data.get("defaultTest"), self.where(None, data.line_of("defaultTest"))
        )
        if problem is not None:
            self.header_todos.append(problem)
        default_where = self.where(None, data.line_of("defaultTest"))
        if isinstance(default, str) and default.startswith("file://"):
            default = self.read_structured(
                self.resolve_files(default, default_where)[0], default_where
            )
        default = default if isinstance(default, _Map) else _Map(data.line)
        default_options = _mapping(default.get("options"))
        default_transform = "transform" in default_options
        default_comments: list[str] = []
        if default_transform:
            default_comments.append(
                self.todo(
                    default_where,
                    f"`defaultTest.options.transform: {_clip(default_options['transform'])}` not converted",
                )
            )
        for key in sorted(set(default_options) - {"transform"}):
            default_comments.append(
                self.todo(default_where, f"`defaultTest.options.{key}` not converted")
            )
        for key in sorted(set(default) - {"assert", "vars", "options", "threshold"}):
            default_comments.append(self.todo(default_where, f"`defaultTest.{key}` not converted"))
        if default.get("threshold") is not None:
            default_comments.append(
                self.todo(
                    default_where,
                    f"`defaultTest.threshold: {default['threshold']}` not supported yet",
                )
            )
        default_expect = self.assertions(
            default.get("assert"),
            Location(default_where.file, default.line_of("assert")),
            default_transform,
        )
        default_vars = self.load_vars(_mapping(default.get("vars")), default_where)

        self.sink = self.header_todos  # tests that cannot be read have no case to sit in
        rows = self.test_rows(data)
        self.sink = None
        if not rows:
            rows = [(_map(data.line, description="default"), self.where(None, data.line))]
            self.note(
                self.where(None, data.line),
                "no tests: one case with the default vars, as promptfoo runs one",
            )
        cases = self.cases(rows, default_vars, default_transform)

        shared = [e for e in default_expect if not e.templated]
        per_case = [e for e in default_expect if e.templated]
        for case in cases:
            case.expect = [_copy_expect(e) for e in per_case] + case.expect
            self.render_values(case)
        base_name = _slug(name or _default_name(self.config_path)) or "promptfoo"
        suites = []
        used: set[str] = set()
        for provider in providers:
            chosen = [p for p in prompts if _allowed(p.label, provider.prompts)]
            if not chosen:
                self.todo(
                    provider.location, f"provider `{provider.label}` matches none of the prompts"
                )
                continue
            suite_name = base_name
            if len(providers) > 1:
                suite_name = f"{base_name}-{_slug(provider.label) or 'provider'}"
            suite_name = _unique(suite_name, used)
            filled = self.fill_missing_vars(chosen, cases)
            suites.append(
                ImportedSuite(
                    name=suite_name,
                    text=self.suite_text(
                        suite_name, data, provider, chosen, shared, default_comments, filled
                    ),
                    versions=len(chosen),
                    cases=len(filled),
                )
            )
        return ImportResult(self.display, tuple(suites), tuple(self.findings))

    def render_values(self, case: _Case) -> None:
        """promptfoo renders assertion values with the test's vars: do it now, per case."""
        from pytest_promptgate import render

        for expect in case.expect:
            if not expect.templated or expect.data is None:
                continue
            try:
                expect.data["value"] = _render_value(expect.data["value"], case.vars, render)
            except Exception as exc:  # a template error is the user's to fix, not a crash
                expect.comments.append(
                    self.todo(
                        case.location,
                        f"value of `{expect.data['type']}` could not be rendered ({exc})",
                    )
                )
                expect.data = None

    def fill_missing_vars(self, prompts: list[_Prompt], cases: list[_Case]) -> list[_Case]:
        """promptfoo renders an undefined variable as empty text; our loader refuses it."""
        import jinja2
        from jinja2 import meta

        environment = jinja2.Environment()
        needed: set[str] = set()
        for prompt in prompts:
            for _, content in prompt.messages:
                try:
                    needed |= meta.find_undeclared_variables(environment.parse(content))
                except jinja2.TemplateSyntaxError:
                    pass
        filled = []
        reported: set[str] = set()
        for case in cases:
            missing = sorted(needed - set(case.vars))
            if missing:
                for variable in missing:
                    if variable not in reported:
                        reported.add(variable)
                        self.note(
                            case.location,
                            f'var `{variable}` is missing in some tests; set to "" there, as '
                            "promptfoo renders an undefined variable as empty text",
                        )
                case = dataclasses.replace(case, vars={**case.vars, **{v: "" for v in missing}})
            filled.append(case)
        return filled

    # -- writing

    def suite_text(
        self,
        name: str,
        data: _Map,
        provider: _Provider,
        prompts: list[_Prompt],
        shared: list[_Expect],
        default_comments: list[str],
        cases: list[_Case],
    ) -> str:
        lines = [
            f"# Imported from the promptfoo config {self.display} by `promptgate import promptfoo`.",
            "# Review every `TODO(promptfoo)` comment: those parts were not converted.",
        ]
        top: dict[str, Any] = {"prompt": name}
        description = data.get("description")
        parts = [description] if isinstance(description, str) else []
        if provider.label:
            parts.append(f"provider {provider.label}")
        if parts:
            top["description"] = " · ".join(parts)
        if provider.model:
            top["model"] = provider.model
        if provider.params:
            top["params"] = dict(provider.params)
        lines += [_comment(c, 0) for c in self.header_todos + list(provider.comments)]
        lines.append(_dump(top))
        if len(prompts) == 1 and not prompts[0].explicit:
            lines.append(_dump(_version(prompts[0])))
        else:
            lines.append(_dump({"versions": {p.label: _version(p) for p in prompts}}))
        default_data = [e.data for e in shared if e.data is not None]
        default_notes = default_comments + [c for e in shared for c in e.comments]
        if default_data or default_notes:
            lines.append("defaults:")
            lines.append(_indent(_dump({"expect": default_data}), 2))
            lines += [_comment(c, 2) for c in default_notes]
        lines.append("cases:" if cases else "cases: []")
        for case in cases:
            if case.description:
                lines.append(_comment(f"{case.description} ({case.location})", 2))
            body: dict[str, Any] = {"id": case.id}
            if case.vars:
                body["vars"] = case.vars
            expects = [e.data for e in case.expect if e.data is not None]
            if expects:
                body["expect"] = expects
            lines.append(_indent(_dump([body]), 2))
            notes = case.comments + [c for e in case.expect for c in e.comments]
            lines += [_comment(c, 4) for c in notes]
        return "\n".join(line.rstrip("\n") for line in lines) + "\n"


# --- small helpers ---------------------------------------------------------------------------


def _copy_expect(expect: _Expect) -> _Expect:
    """Each case renders its own copy of a shared (defaultTest or CSV) expectation."""
    return dataclasses.replace(
        expect, data=copy.deepcopy(expect.data), comments=list(expect.comments)
    )


def _known_types() -> frozenset[str]:
    from pytest_promptgate import assertions  # lazily: plugins register their types first

    return frozenset(assertions.known_types())


def _option_keys(type_name: str) -> tuple[str, ...]:
    """The keys the loader takes beside `value` for this type (threshold, weight, metric...)."""
    from pytest_promptgate import assertions

    return tuple(assertions.option_keys(type_name))


_TRANSFORM_BASE = re.compile(r"JSON\.parse\(\s*output\s*\)|output\b")
_TRANSFORM_STEP = re.compile(
    r"\s*(?:\.(?P<method>[A-Za-z]+)\(\s*\)|\.(?P<prop>[A-Za-z_$][A-Za-z0-9_$]*)(?![\w$(])"
    r"|\[\s*(?:'(?P<single>[^'\\\n]*)'|\"(?P<double>[^\"\\\n]*)\"|(?P<index>\d+))\s*\])"
)


def translate_transform(code: str, parsed: bool = False) -> str | None:
    """A JavaScript transform as its Jinja2 expression, only for the plain forms below; None
    for anything else (the caller keeps it as a TODO).

    ``output`` followed by ``.trim()``, ``.toLowerCase()``, ``.toUpperCase()`` (filters), or
    ``JSON.parse(output)`` followed by property paths (``.name``, ``['name']``, ``[0]``):
    ``from_json(output)["name"][0]``. With ``parsed`` (the test's own transform parsed the JSON
    already), ``output`` is that parsed value: ``output.name`` reads ``from_json(output)["name"]``.
    One optional ``return`` and trailing ``;`` are allowed; a string method after a property
    (the value's type is unknown) or ``.length`` is not translated.
    """
    text = code.strip()
    if text.startswith("return ") or text.startswith("return\t"):
        text = text[len("return") :].strip()
    text = text[:-1].rstrip() if text.endswith(";") else text
    start = _TRANSFORM_BASE.match(text)
    if start is None or "\n" in text:
        return None
    from_json = start.group(0) != "output"
    if from_json and parsed:
        return None  # JSON.parse of a value that is no longer text
    is_json = from_json or parsed
    filters: list[str] = []
    path: list[str] = []
    position = start.end()
    while position < len(text):
        step = _TRANSFORM_STEP.match(text, position)
        if step is None:
            return None
        position = step.end()
        method = step.group("method")
        if method is not None:
            if is_json or method not in TRANSFORM_METHODS:
                return None
            filters.append(TRANSFORM_METHODS[method])
            continue
        if not is_json or filters:
            return None
        index = step.group("index")
        key = step.group("prop") or step.group("single") or step.group("double")
        if index is not None:
            path.append(f"[{int(index)}]")
        elif key is None or key == "length":
            return None
        else:
            path.append(f"[{json.dumps(key, ensure_ascii=False)}]")
    if is_json and not path:
        expression = "from_json(output)" if from_json else "output"
    else:
        expression = ("from_json(output)" if is_json else "output") + "".join(path)
    expression += "".join(f" | {name}" for name in filters)
    from pytest_promptgate.assertions.compat import validate_transform

    try:
        validate_transform(expression, Path("."))
    except ValueError:
        return None
    return expression


def _litellm_model(provider_id: str) -> str | None:
    for prefix in sorted(PROVIDER_PREFIXES, key=len, reverse=True):
        if provider_id.startswith(prefix):
            return PROVIDER_PREFIXES[prefix] + provider_id[len(prefix) :]
    return None


def parse_comma_separated(text: str) -> list[str]:
    """promptfoo's parseCommaSeparatedValues: fields split on commas, unquoted ones trimmed;
    a double-quoted field keeps its commas (escapes: ``\\"``, ``\\\\``, ``""``). Raises
    ValueError for an unterminated quote, as promptfoo does."""
    results: list[str] = []
    i, size = 0, len(text)
    while i < size:
        while i < size and (text[i].isspace() or text[i] == ","):
            i += 1
        if i >= size:
            break
        if text[i] == '"':
            i += 1
            value, terminated = "", False
            while i < size:
                if text[i] == "\\" and i + 1 < size and text[i + 1] in '"\\':
                    value, i = value + text[i + 1], i + 2
                elif text[i] == '"' and i + 1 < size and text[i + 1] == '"':
                    value, i = value + '"', i + 2
                elif text[i] == '"':
                    i, terminated = i + 1, True
                    break
                else:
                    value, i = value + text[i], i + 1
            if not terminated:
                raise ValueError("unterminated quoted field")
            while i < size and text[i].isspace():
                i += 1
            if i < size and text[i] != ",":
                raise ValueError("expected a comma after a quoted field")
            results.append(value)
        else:
            comma = text.find(",", i)
            comma = size if comma < 0 else comma
            results.append(text[i:comma].strip())
            i = comma
    return results


def _var_combinations(variables: Mapping[str, Any]) -> list[dict[str, Any]]:
    """promptfoo's generateVarCombinations: a list of strings is one case per item."""
    axes = []
    for key, value in variables.items():
        if isinstance(value, list) and value and isinstance(value[0], str):
            axes.append([(key, item) for item in value])
        else:
            axes.append([(key, value)])
    return [dict(combo) for combo in itertools.product(*axes)] if axes else [{}]


def _schema_text(text: str) -> dict[str, Any] | None:
    try:
        schema = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return schema if isinstance(schema, dict) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _js_number_text(value: float) -> str:
    """String(value) as JavaScript writes a number: 3, 1.5, 1e+21."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return json.dumps(value) if isinstance(value, int) else repr(value)


def _has_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, list):
        return any(_has_template(v) for v in value)
    if isinstance(value, dict):
        return any(_has_template(v) for v in value.values())
    return False


def _render_value(value: Any, variables: Mapping[str, Any], render: Any) -> Any:
    if isinstance(value, str):
        return render.compile_template(value).render(dict(variables))
    if isinstance(value, list):
        return [_render_value(v, variables, render) for v in value]
    if isinstance(value, dict):
        return {k: _render_value(v, variables, render) for k, v in value.items()}
    return value


def _chat_messages(text: str, yaml_too: bool = False) -> tuple[tuple[str, str], ...] | None:
    """A JSON (or YAML) list of {role, content} strings as (role, content) pairs, else None."""
    stripped = text.strip()
    data: Any = None
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
    if data is None and yaml_too:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            return None
    if not isinstance(data, list) or not data:
        return None
    messages = []
    for item in data:
        if not (
            isinstance(item, dict)
            and set(item) <= {"role", "content"}
            and item.get("role") in ("system", "user", "assistant")
            and isinstance(item.get("content"), str)
        ):
            return None
        messages.append((item["role"], item["content"]))
    return tuple(messages)


def _version(prompt: _Prompt) -> dict[str, Any]:
    if prompt.single_user:
        return {"user": prompt.messages[0][1]}
    if len(prompt.messages) <= 2 and [r for r, _ in prompt.messages] in (
        ["user"],
        ["system", "user"],
    ):
        return {role: content for role, content in prompt.messages}
    return {"messages": [{"role": r, "content": c} for r, c in prompt.messages]}


def _allowed(label: str, filters: tuple[str, ...] | None) -> bool:
    """promptfoo's isAllowedPrompt: an exact label, or a `group:` prefix."""
    if filters is None:
        return True
    return any(label == f or label.startswith(f"{f}:") or _slug(label) == _slug(f) for f in filters)


def _unique_labels(prompts: list[_Prompt]) -> list[_Prompt]:
    used: set[str] = set()
    result = []
    for prompt in prompts:
        label = _clean_label(prompt.label)
        result.append(dataclasses.replace(prompt, label=_unique(label, used)))
    return result


def _clean_label(label: str) -> str:
    label = re.sub(r"[\x00-\x1f\x7f]+", " ", label).replace("::", ":").strip()
    if len(label) > MAX_NAME:
        label = _slug(label)[:MAX_NAME].strip("-")
    return label or "prompt"


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:MAX_NAME].strip("-")


def _unique(name: str, used: set[str]) -> str:
    candidate, number = name, 2
    while candidate in used:
        candidate = f"{name}-{number}"
        number += 1
    used.add(candidate)
    return candidate


def _default_name(config_path: Path) -> str:
    stem = config_path.name.split(".")[0]
    if stem.lower() in ("promptfooconfig", "promptfoo", "config"):
        return config_path.resolve().parent.name
    return stem


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _shown_value(key: str, value: Any) -> str:
    """A provider setting for the report, unless it may hold a credential (headers, env...)."""
    from pytest_promptgate import render

    if key in ("env", "headers") or render.is_secret_key(key):
        return "(value not shown: it may hold a credential)"
    plain = _plain(value)
    if isinstance(plain, dict) and any(render.is_secret_key(k) for k in plain):
        return "(value not shown: it may hold a credential)"
    return _clip(plain)


def _clip(value: Any, limit: int = 160) -> str:
    text = (
        value
        if isinstance(value, str)
        else json.dumps(_plain(value), ensure_ascii=False, default=str)
    )
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Dumper(yaml.SafeDumper):
    """Block scalars for multi-line text, so prompts read as written."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not re.search(r"[ \t]\n|[\x00-\x08\x0b-\x1f]", value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(value: Any) -> str:
    return yaml.dump(
        value,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=1_000_000,  # long prompt lines stay on one line
        default_flow_style=False,
    )


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line else line for line in text.rstrip("\n").split("\n"))


def _comment(text: str, spaces: int) -> str:
    pad = " " * spaces
    clean = text.replace("\r", "")
    return "\n".join(f"{pad}# {line}".rstrip() for line in clean.split("\n"))


# --- the public API and the command ----------------------------------------------------------


def convert_config(
    config_path: Path, name: str | None = None, rootdir: Path | None = None
) -> ImportResult:
    """Convert one promptfoo config (YAML or JSON) into suite texts and a list of findings.

    Raises PromptgateError (with file:line) when the config cannot be read at all.
    """
    config_path = Path(config_path)
    display = config_path.as_posix()
    if rootdir is not None:
        try:
            display = config_path.resolve().relative_to(Path(rootdir).resolve()).as_posix()
        except ValueError:
            pass
    if not config_path.is_file():
        raise UsageError(
            f"promptfoo config `{config_path}` not found",
            hint="give the path of promptfooconfig.yaml",
        )
    return _Converter(config_path, display).convert(name)


def write_suites(result: ImportResult, out_dir: Path, force: bool = False) -> list[Path]:
    """Write each suite as ``<name>.promptgate.yaml``; refuses (writing nothing) to overwrite
    an existing file unless ``force``."""
    from pytest_promptgate.atomic import write_atomic

    out_dir = Path(out_dir)
    targets = [out_dir / f"{suite.name}{SUITE_SUFFIX}" for suite in result.suites]
    existing = [path for path in targets if path.exists()]
    if existing and not force:
        shown = ", ".join(str(path) for path in existing)
        raise UsageError(
            f"would overwrite {shown}",
            hint="pass --force to replace them, or choose another -o directory",
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for suite, path in zip(result.suites, targets):
            write_atomic(path, suite.text)
    except OSError as exc:
        raise UsageError(
            f"cannot write into {out_dir}: {exc.strerror or exc}",
            hint="choose a directory you can write to with -o",
        ) from None
    return targets


def check_suites(paths: Iterable[Path]) -> list[str]:
    """Load each written suite with the real loader; the problems, one line each."""
    from pytest_promptgate import spec

    problems = []
    for path in paths:
        try:
            spec.load_suite(path)
        except PromptgateError as exc:
            problems.append(exc.format())
    return problems


def format_report(result: ImportResult, written: list[Path], problems: list[str]) -> str:
    lines = [f"promptgate import promptfoo: {result.source}"]
    for suite, path in zip(result.suites, written):
        lines.append(f"  wrote {path} ({suite.versions} version(s), {suite.cases} case(s))")
    todos, notes = result.todos, result.notes
    if todos:
        lines.append(
            f"not converted ({len(todos)}; a TODO(promptfoo) comment marks each in the suites):"
        )
        lines += [f"  {finding}" for finding in todos]
    if notes:
        lines.append(f"changed on the way ({len(notes)}):")
        lines += [f"  {finding}" for finding in notes]
    if problems:
        lines.append("the written suites do not load yet:")
        lines += ["  " + problem.replace("\n", "\n  ") for problem in problems]
    if not todos and not problems:
        lines.append("everything was converted.")
    return "\n".join(lines)


def _run_import(args: Any) -> int:
    result = convert_config(Path(args.config), name=args.name)
    if not result.suites:
        raise PromptgateError("nothing to write: no provider could be paired with a prompt")
    written = write_suites(result, Path(args.output), force=args.force)
    problems = check_suites(written)
    print(format_report(result, written, problems))
    return 1 if problems else 0


def add_cli(subparsers: Any) -> None:
    """``promptgate import promptfoo CONFIG -o DIR [--name NAME] [--force]``."""
    from pytest_promptgate.importers import import_subparsers

    parser = import_subparsers(subparsers).add_parser(
        "promptfoo",
        help="convert a promptfooconfig.yaml into suites",
        description="Convert a promptfoo config into *.promptgate.yaml suites and report what "
        "could not be converted (TODO(promptfoo) comments, with the config's line).",
    )
    parser.add_argument("config", help="the promptfoo config (promptfooconfig.yaml)")
    parser.add_argument("-o", "--output", required=True, help="directory for the suites")
    parser.add_argument("--name", help="suite name (default: the config's file or directory name)")
    parser.add_argument("--force", action="store_true", help="overwrite existing suite files")
    parser.set_defaults(func=_run_import)
