"""The suite files: their YAML text (TODO comments in place), writing them, loading them back."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from pytest_promptgate.importers.promptfoo.base import _Base
from pytest_promptgate.importers.promptfoo.data import (
    ImportResult,
    _Case,
    _Expect,
    _Prompt,
    _Provider,
)
from pytest_promptgate.importers.promptfoo.tables import SUITE_SUFFIX
from pytest_promptgate.importers.promptfoo.yaml12 import _Map
from pytest_promptgate.model import PromptgateError, UsageError


class _SuiteWriter(_Base):
    """A suite's YAML text, TODO comments where promptfoo's parts were not converted."""

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
            if case.threshold is not None:
                body["threshold"] = case.threshold
            if case.transform is not None:
                body["options"] = {"transform": case.transform}
            if case.no_defaults and (default_data or default_notes):
                body["defaults"] = False
            expects = [e.data for e in case.expect if e.data is not None]
            if expects:
                body["expect"] = expects
            lines.append(_indent(_dump([body]), 2))
            notes = case.comments + [c for e in case.expect for c in e.comments]
            lines += [_comment(c, 4) for c in notes]
        return "\n".join(line.rstrip("\n") for line in lines) + "\n"


def _version(prompt: _Prompt) -> dict[str, Any]:
    if prompt.single_user:
        return {"user": prompt.messages[0][1]}
    if len(prompt.messages) <= 2 and [r for r, _ in prompt.messages] in (
        ["user"],
        ["system", "user"],
    ):
        return {role: content for role, content in prompt.messages}
    return {"messages": [{"role": r, "content": c} for r, c in prompt.messages]}


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
