"""Reading a suite's values with readable errors: each reader checks a value's type and range
and fails at the value's line, naming what was expected and what was found, with a did-you-mean
for unknown keys. ``ReadContext`` carries where values come from (for messages) and what the
expectation registry knows.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from pytest_promptgate.model import Expectation, Location
from pytest_promptgate.spec.yaml_lines import YamlMap, YamlSeq, fail, found
from pytest_promptgate.textsafe import clip

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
MAX_NAME_LENGTH = 200


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean `expect`?"`` for a close choice, else ""."""
    choices = list(choices)
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    if not close and len(str(word)) >= 3:  # an abbreviation: `calls` for `calls_per_month`
        close = [choice for choice in choices if choice.startswith(str(word))][:1]
    return f"; did you mean `{close[0]}`?" if close else ""


@dataclass(frozen=True)
class ReadContext:
    """Where values come from (for messages) and what the expectation registry knows."""

    file: str  # shown in locations
    suite_dir: Path  # absolute; suite-relative paths start here
    given_dir: Path  # the suite's directory as given, for showing related files
    rootdir: Path | None
    known_types: frozenset[str]
    validate: Callable[[Expectation, Path], None]
    option_keys: Callable[[str], tuple[str, ...]]  # a type's keys beside `type`/`value`

    def fail(self, line: int, message: str, hint: str | None = None) -> NoReturn:
        fail(self.file, line, message, hint)

    def location(self, line: int) -> Location:
        return Location(self.file, max(1, line))

    def show(self, relative: str | Path) -> str:
        """How to name a file given relative to the suite's directory."""
        return display(self.given_dir / relative, self.rootdir)


def display(path: Path, rootdir: Path | None) -> str:
    """A file as messages name it: relative to the rootdir when inside it."""
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


def typed(ctx: ReadContext, value: Any, line: int, name: str, kind: str) -> Any:
    """``value`` if it is of ``kind``; ``name`` is a key (quoted) or a phrase with its own quotes."""
    shown = name if "`" in name or " " in name else f"`{name}`"
    if not _is_kind(value, kind):
        ctx.fail(line, f"expected {_KIND_WORDS[kind]} for {shown}, found {found(value)}")
    if kind == "number" and not math.isfinite(value):
        ctx.fail(line, f"expected a finite number for {shown}, found {value}")
    return value


def read_field(
    ctx: ReadContext, mapping: YamlMap, key: str, kind: str, name: str | None = None
) -> Any:
    """``mapping[key]`` checked to be of ``kind``, or None when absent."""
    if key not in mapping:
        return None
    return typed(ctx, mapping[key], mapping.line_of(key), name or key, kind)


def at_least(
    ctx: ReadContext,
    mapping: YamlMap,
    key: str,
    kind: str,
    minimum: float,
    exclusive: bool = False,
    name: str | None = None,
) -> Any:
    """``read_field``, then at least (or, ``exclusive``, greater than) ``minimum``."""
    value = read_field(ctx, mapping, key, kind, name)
    if value is not None and (value <= minimum if exclusive else value < minimum):
        relation = "greater than" if exclusive else "at least"
        ctx.fail(
            mapping.line_of(key), f"`{name or key}` must be {relation} {minimum:g}, found {value}"
        )
    return value


def check_keys(ctx: ReadContext, mapping: YamlMap, allowed: Iterable[str], where: str) -> None:
    """Fail at the first key not in ``allowed``, with a did-you-mean and the allowed keys."""
    allowed = tuple(allowed)
    for key in mapping:
        if key not in allowed:
            ctx.fail(
                mapping.line_of(key),
                f"unknown key `{key}` {where}{did_you_mean(key, allowed)}",
                "allowed keys: " + ", ".join(allowed),
            )


def check_name(ctx: ReadContext, value: Any, line: int, what: str) -> str:
    """Prompt ids, version labels and case ids end up in pytest node ids: keep them sane."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        ctx.fail(line, f"expected a string for {what}, found {found(value)}")
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
            f"{what} {clip(value, 40)!r} {problem}",
            "use a short name such as `double-charge` or `v2`",
        )
    return value


def read_text(path: Path, file: str) -> str:
    """A suite or cases file as text (UTF-8, a BOM allowed); errors name ``file``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(file, 1, f"cannot read the file: {exc.strerror or exc}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        fail(
            file,
            data.count(b"\n", 0, exc.start) + 1,
            "the file is not valid UTF-8",
            "save it as UTF-8",
        )
