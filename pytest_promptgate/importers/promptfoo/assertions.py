"""Assertions: promptfoo's types and keys as expectations (or TODOs), `assert-set`, CSV
`__expected` cells, and the plain JavaScript transforms translated to Jinja2.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pytest_promptgate.importers.promptfoo.base import _Base
from pytest_promptgate.importers.promptfoo.data import _Expect
from pytest_promptgate.importers.promptfoo.providers import _litellm_model
from pytest_promptgate.importers.promptfoo.tables import (
    _CSV_THRESHOLD_TYPES,
    ADVISORY_ASSERTION_KEYS,
    ASSERTION_KEYS_KEPT,
    ASSERTION_TYPES,
    CODE_TYPES,
    COMMA_LIST_TYPES,
    PROMPTFOO_TYPES,
    TEXT_TYPES,
    THRESHOLD_REQUIRED,
    TRANSFORM_METHODS,
)
from pytest_promptgate.importers.promptfoo.text import (
    _clip,
    _has_template,
    _is_number,
    _js_number_text,
    _number,
)
from pytest_promptgate.importers.promptfoo.yaml12 import _Map, _map, _plain, _Seq, _with_line
from pytest_promptgate.model import Location


class _Assertions(_Base):
    """promptfoo assertions as expectations, or TODO comments in their place."""

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
            if key in ("threshold", "weight") and isinstance(value, str):
                value = _number(value)  # promptfoo's YAML/CSV may quote a number
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
            if key == "threshold" and ours == "levenshtein" and _is_number(value) and value >= 0:
                # promptfoo passes at distance <= threshold; the distance is a whole number
                value = math.floor(value)
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


def _schema_text(text: str) -> dict[str, Any] | None:
    try:
        schema = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return schema if isinstance(schema, dict) else None
