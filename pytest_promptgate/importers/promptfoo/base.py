"""The converter's shared state and services: findings (TODOs and notes), reading the files a
config names (relative paths, globs, UTF-8, JSON/YAML with lines), `$ref` inside the config.
"""

from __future__ import annotations

import glob
import json
import re
from pathlib import Path
from typing import Any, NoReturn

from pytest_promptgate.importers.promptfoo.data import Finding
from pytest_promptgate.importers.promptfoo.text import _clip
from pytest_promptgate.importers.promptfoo.yaml12 import _Map, _read_yaml, _with_line
from pytest_promptgate.model import Location, PromptgateError


def _is_local_file(base: Path, text: str) -> bool:
    """A bare prompt string naming a file next to the config (promptfoo's legacy form)."""
    if "\n" in text or "{{" in text or len(text) > 255:
        return False
    try:
        return (base / text).is_file()
    except (OSError, ValueError):  # a name the OS refuses is not a file name
        return False


class _Base:
    """The converter's state and what every stage uses: findings, files, `$ref`."""

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
