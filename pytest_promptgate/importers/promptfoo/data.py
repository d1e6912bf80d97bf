"""What the importer hands between its stages, and its result (suites and findings)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_promptgate.model import Location


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
