"""Case files (``cases_file:``): JSONL, CSV and YAML rows become case mappings with lines.

A row is *structured* (it has ``vars``) or *flat* (reserved keys are case keys, every other key
is a variable). CSV cells are strings: ``tags`` split on ``;``, ``repeat`` read as a number,
``expect`` a JSON list or one ``type:value``; promptfoo's ``__expected`` columns become
expectations (``type:value`` for a known type, ``grade:`` for ``llm-rubric``, else ``equals``).
Each reader returns ``(row, line)`` pairs; ``suite`` turns them into ``Case`` objects. A new
format is a reader added to ``_CASE_READERS``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from typing import Any

from pytest_promptgate.spec.expectations import expectation_from_text
from pytest_promptgate.spec.fields import ReadContext, read_text, typed
from pytest_promptgate.spec.yaml_lines import YamlMap, YamlSeq, attach_line, found, parse_yaml

CASE_KEYS = (
    "id",
    "vars",
    "expect",
    "tags",
    "repeat",
    "ideal",
    "defaults",
    "threshold",  # promptfoo's test threshold (weighted score)
    "options",  # promptfoo's test options: `transform`
)

# Keys of a flat row that are case keys; `threshold` and `options` stay vars there (a column
# named so predates them), a structured row (with `vars`) may use them.
_ROW_KEYS = tuple(key for key in CASE_KEYS if key not in ("vars", "threshold", "options"))


def _is_promptfoo_expected(key: str) -> bool:
    return re.fullmatch(r"__expected\d*", key) is not None


def _structure_flat_row(ctx: ReadContext, row: YamlMap) -> YamlMap:
    """A flat row (no `vars` key): reserved keys are case keys, the rest are the vars."""
    if "vars" in row:
        return row
    structured, variables = YamlMap(row.line), YamlMap(row.line)
    promptfoo_expected = []
    for key, value in row.items():
        if _is_promptfoo_expected(key):
            if value not in (None, ""):
                text = typed(ctx, value, row.line_of(key), key, "str")
                promptfoo_expected.append(expectation_from_text(ctx, text, row.line_of(key), True))
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
        typed(ctx, expect, structured.line_of("expect"), "expect", "list")
        for item in promptfoo_expected:
            expect.put(attach_line(item, row.line), row.line)
    return structured


def _read_jsonl(ctx: ReadContext, text: str) -> list[tuple[Any, int]]:
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
            ctx.fail(number, f"expected a JSON object per line, found {found(value)}")
        rows.append((attach_line(value, number), number))
    return rows


def _read_yaml_rows(ctx: ReadContext, text: str) -> list[tuple[Any, int]]:
    data = parse_yaml(text, ctx.file)
    if data is None:
        return []
    if not isinstance(data, YamlSeq):
        ctx.fail(
            getattr(data, "line", 1), f"a YAML cases file is a list of cases, found {found(data)}"
        )
    return list(zip(data, data.item_lines))


def _read_csv(ctx: ReadContext, text: str) -> list[tuple[Any, int]]:
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


def _csv_row(ctx: ReadContext, cells: dict[str, str], line: int) -> YamlMap:
    row = YamlMap(line)
    for name, cell in cells.items():
        if name in ("id", "ideal", "repeat", "expect", "tags") and not cell.strip():
            continue  # an empty reserved cell means "not given"
        if name == "tags":
            value: Any = attach_line([t.strip() for t in cell.split(";") if t.strip()], line)
        elif name == "repeat":
            value = int(cell) if cell.strip().isdigit() else cell
        elif name == "expect":
            text = cell.strip()
            if text.startswith("["):
                try:
                    value = attach_line(json.loads(text), line)
                except ValueError as exc:
                    ctx.fail(line, f"the `expect` column is not a JSON list: {exc}")
            else:
                value = attach_line([expectation_from_text(ctx, text, line, False)], line)
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


def read_cases_file(
    ctx: ReadContext, relative: Any, line: int
) -> tuple[ReadContext, list[tuple[Any, int]]]:
    typed(ctx, relative, line, "cases_file", "str")
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
    text = read_text(path, file_ctx.file)
    rows = reader(file_ctx, text)
    return file_ctx, [
        (_structure_flat_row(file_ctx, row) if isinstance(row, YamlMap) else row, row_line)
        for row, row_line in rows
    ]
