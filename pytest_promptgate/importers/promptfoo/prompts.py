"""`prompts`: inline strings, `file://` text files split on `---` lines, JSON/YAML chat files,
labelled objects; Nunjucks templates checked as Jinja2 (`| dump` becomes `| tojson`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from pytest_promptgate.importers.promptfoo.base import _Base, _is_local_file
from pytest_promptgate.importers.promptfoo.data import _Prompt
from pytest_promptgate.importers.promptfoo.tables import CODE_SUFFIXES, MAX_NAME
from pytest_promptgate.importers.promptfoo.text import _clip, _slug, _unique
from pytest_promptgate.importers.promptfoo.yaml12 import _Map, _Seq
from pytest_promptgate.model import Location


class _Prompts(_Base):
    """`prompts` as the suite's versions."""

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
