"""JSON checks: ``is-json``, ``contains-json``, ``json-schema``, and the JSON readers they share.

What belongs here: checks that parse the output as JSON (and validate it with a schema). To add
one, write its check below with ``@builtin("<name>", validate=...)`` above it; the type is live
as soon as ``pytest_promptgate.assertions`` imports this module. ``jsonschema`` (and YAML for
schema files) are imported inside the functions that need them: suites are loaded at collection
and must not pay for them unless a schema is used.

Rules a user could not guess from the name: ``is-json`` needs the whole stripped output to be
JSON; ``contains-json`` finds a JSON object or array anywhere (e.g. inside a ``` fence);
``json-schema`` parses the output, or the first ``` fence, as JSON. When no strict JSON
candidate is accepted, ``contains-json`` also tries what models write and promptfoo accepts
(trailing commas, ``//`` comments, unquoted keys, closers missing at the end: ``lenient_json``). A schema is a mapping, or a
path to a .json/.yaml file relative to the suite. When the request asked for structured output
(``response_format`` JSON) and the reply parsed, all three check that parsed value
(``ctx.structured``). ``format`` keywords (date, date-time, email, uri...) are enforced, and
``NaN``/``Infinity`` are not JSON (Python's json module accepts them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_promptgate.assertions.lenient_json import lenient_json_values
from pytest_promptgate.assertions.registry import CheckContext, CheckOutcome, Validator, builtin
from pytest_promptgate.assertions.values import clean_text, fenced_blocks, kind, quote

_MAX_JSON_STARTS = 200  # bounds the scan of a huge output full of brackets
_JSON_START = re.compile(r"[\[{]")
# Deeply nested input makes the json module raise RecursionError rather than ValueError.
_JSON_ERRORS = (ValueError, RecursionError)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (JSON has no NaN or Infinity)")


def loads_json(text: str) -> Any:
    """``json.loads`` that refuses ``NaN``/``Infinity`` (Python's json accepts them; JSON does not)."""
    return json.loads(text, parse_constant=_reject_constant)


def parse_json_output(output: str) -> tuple[Any, str | None]:
    """The stripped output as JSON, or the first ``` fence's content; (value, None) or (None, error)."""
    text = output.strip()
    try:
        return loads_json(text), None
    except _JSON_ERRORS as exc:
        first_error = _json_error(exc)
    for block in fenced_blocks(text):
        try:
            return loads_json(block), None
        except _JSON_ERRORS as exc:
            return None, f"in the ``` block: {_json_error(exc)}"
    return None, first_error


def _json_error(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return clean_text(str(exc), 100)


def json_values_in_text(text: str) -> Iterator[Any]:
    """JSON objects/arrays found in free text: fenced blocks first, then by scanning brackets."""
    for block in fenced_blocks(text):
        try:
            value = loads_json(block)
        except _JSON_ERRORS:
            continue
        if isinstance(value, (dict, list)):
            yield value
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    starts = 0
    position = 0
    while starts < _MAX_JSON_STARTS:
        match = _JSON_START.search(text, position)
        if match is None:
            return
        starts += 1
        try:
            value, end = decoder.raw_decode(text, match.start())
        except _JSON_ERRORS:
            position = match.start() + 1
            continue
        yield value
        position = end


def load_schema(value: Any, suite_dir: Path) -> Mapping[str, Any] | bool:
    """A schema written inline (mapping/bool) or a .json/.yaml file relative to the suite."""
    if isinstance(value, (dict, bool)):
        return value
    path = Path(value)
    if not path.is_absolute():
        path = Path(suite_dir) / path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(
            f"schema file {value!r} cannot be read ({exc.strerror}); give a path relative to the suite file"
        ) from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            schema = yaml.safe_load(text)
        else:
            schema = json.loads(text)
    except Exception as exc:  # YAML and JSON parse errors have no common base
        raise ValueError(
            f"schema file {value!r} is not valid JSON/YAML: {clean_text(str(exc), 150)}; fix the file"
        ) from None
    if not isinstance(schema, (dict, bool)):
        raise ValueError(f"schema file {value!r} holds {kind(schema)}; a JSON schema is an object")
    return schema


def validate_schema_value(type_name: str, value: Any, suite_dir: Path) -> None:
    if not isinstance(value, (dict, bool, str)) or value == "":
        raise ValueError(
            f"{type_name} needs a JSON schema (a mapping) or a schema file path, got {kind(value)}; "
            f"write e.g. {{{type_name}: {{type: object, required: [label]}}}}"
        )
    schema: Any = load_schema(value, suite_dir)
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        where = _json_path(exc.path)
        raise ValueError(
            f"{type_name} schema is not a valid JSON schema: {clean_text(exc.message, 150)} at {where}; "
            "see https://json-schema.org/understanding-json-schema/"
        ) from None


def _json_path(path: Sequence[Any]) -> str:
    text = "$"
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def schema_error(instance: Any, schema: Any) -> str | None:
    """The first validation error as '<path>: <message>', or None when the instance is valid.

    ``format`` keywords (date, date-time, email, uri, ipv4...) are enforced with the
    validator's own FormatChecker: without one, jsonschema treats ``format`` as a note and
    "not a date" passes ``format: date``.
    """
    from jsonschema.validators import validator_for

    cls = validator_for(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    errors = sorted(
        validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path]
    )
    if not errors:
        return None
    first = errors[0]
    return f"{_json_path(first.absolute_path)}: {clean_text(first.message, 150)}"


def _structured(ctx: CheckContext) -> Any:
    """The reply's parsed structured output (``response_format`` asked for JSON), else None."""
    return getattr(ctx, "structured", None)


def _validate_optional_schema(type_name: str) -> Validator:
    def validate(value: Any, suite_dir: Path) -> None:
        if value is None or value is True:  # `is-json:` / `is-json: true` with no schema
            return
        validate_schema_value(type_name, value, suite_dir)

    return validate


@builtin("is-json", validate=_validate_optional_schema("is-json"))
def check_is_json(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    parsed = _structured(ctx)
    what = "structured output" if parsed is not None else "output"
    if parsed is None:
        try:
            parsed = loads_json(output.strip())
        except _JSON_ERRORS as exc:
            return CheckOutcome(
                False,
                f"output is not JSON ({_json_error(exc)}): {quote(output)}; contains-json allows fences and text around it",
            )
    if value is None or value is True:
        return CheckOutcome(True, f"{what} is valid JSON")
    error = schema_error(parsed, load_schema(value, ctx.suite_dir))
    if error is None:
        return CheckOutcome(True, f"{what} is JSON matching the schema")
    return CheckOutcome(False, f"{what} JSON does not match the schema: {error}")


@builtin("contains-json", validate=_validate_optional_schema("contains-json"))
def check_contains_json(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    schema = None if value is None or value is True else load_schema(value, ctx.suite_dir)
    first_error = None
    structured = _structured(ctx)
    candidates: Iterable[Any] = (
        [structured]
        if structured is not None
        # then promptfoo's repairs (trailing commas, // comments...): lenient_json
        else _strict_then_lenient(output)
    )
    what = "structured output" if structured is not None else "output"
    for candidate in candidates:
        if schema is None:
            return CheckOutcome(True, f"{what} contains JSON {quote(json.dumps(candidate), 60)}")
        error = schema_error(candidate, schema)
        if error is None:
            return CheckOutcome(True, f"{what} contains JSON matching the schema")
        first_error = first_error or error
    if first_error is not None:
        return CheckOutcome(False, f"no JSON in the {what} matches the schema: {first_error}")
    return CheckOutcome(False, f"output contains no JSON object or array: {quote(output)}")


def _strict_then_lenient(output: str) -> Iterator[Any]:
    """Strict JSON first; the repaired candidates only when no strict one was accepted."""
    yield from json_values_in_text(output)
    yield from lenient_json_values(output)


def _validate_json_schema(value: Any, suite_dir: Path) -> None:
    validate_schema_value("json-schema", value, suite_dir)


@builtin("json-schema", validate=_validate_json_schema)
def check_json_schema(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    parsed = _structured(ctx)
    what = "structured output" if parsed is not None else "output"
    if parsed is None:
        parsed, error = parse_json_output(output)
        if error is not None:
            return CheckOutcome(False, f"output is not JSON ({error}): {quote(output)}")
    failure = schema_error(parsed, load_schema(value, ctx.suite_dir))
    if failure is None:
        return CheckOutcome(True, f"{what} matches the JSON schema")
    return CheckOutcome(False, failure)
