"""Expectations as a suite writes them (``expect:`` lists, CSV cells, promptfoo's ``__expected``)
become ``Expectation`` objects, checked against the expectation registry when the suite loads.

Two forms: the shorthand ``{contains: refund}`` (or a bare name such as ``is-json``) and
promptfoo's ``{type: contains, value: refund}``, which may also carry the options the type
declared (``assertions.register(..., options=...)``) and promptfoo's ``weight``, ``metric``
and ``transform``. A ``not-`` prefix becomes ``negate``. promptfoo's conventions applied here:
a string value of a ``*-any``/``*-all`` type is split on commas (``compat.comma_list``);
``{type: assert-set, assert: [...]}`` becomes an ``assert-set`` whose value is the tuple of
its parsed expectations. A value holding ``{{``/``{%`` is validated only once rendered with
each case's vars (``render_expectations``, called per case by the suite loader).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_promptgate.assertions.compat import comma_list, has_template, render_value
from pytest_promptgate.model import Expectation
from pytest_promptgate.spec.fields import ReadContext, check_keys, did_you_mean, typed
from pytest_promptgate.spec.yaml_lines import YamlMap, YamlSeq, fail, found, plain

PROMPTFOO_EXPECTATION_KEYS = ("type", "value")
ASSERT_SET = "assert-set"


def split_negation(name: str) -> tuple[str, bool]:
    """``not-contains`` -> (``contains``, True)."""
    return (name[4:], True) if name.startswith("not-") else (name, False)


def parse_expectation(ctx: ReadContext, item: Any, line: int) -> Expectation:
    """One entry of an ``expect:`` list, its type known and its value (and options) valid."""
    options: dict[str, Any] = {}
    value_line = line
    if isinstance(item, str):
        name, value = item, None
    elif isinstance(item, YamlMap):
        if "type" in item:
            declared = item["type"]
            option_names = (
                ctx.option_keys(split_negation(declared)[0]) if isinstance(declared, str) else ()
            )
            value_key = "assert" if declared == ASSERT_SET else "value"
            check_keys(
                ctx,
                item,
                ("type", value_key) + option_names,
                "in an expectation of the `type:`/`value:` form",
            )
            name = typed(ctx, declared, item.line_of("type"), "type", "str")
            value = item.get(value_key)
            value_line = item.line_of(value_key) if value_key in item else line
            options = {key: plain(item[key]) for key in option_names if key in item}
        elif len(item) == 1:
            name, value = next(iter(item.items()))
            value_line = item.line_of(name)
        else:
            keys = ", ".join(f"`{k}`" for k in item) or "none"
            ctx.fail(
                line,
                f"an expectation has one `type: value` pair; found keys {keys}",
                "write `{contains: foo}` or `{type: contains, value: foo}`, one per list item",
            )
    else:
        ctx.fail(line, f"expected an expectation such as `{{contains: foo}}`, found {found(item)}")
    base, negate = split_negation(name)
    if base not in ctx.known_types:
        choices = sorted(ctx.known_types) + [f"not-{t}" for t in sorted(ctx.known_types)]
        ctx.fail(
            line,
            f"unknown expectation `{name}`{did_you_mean(name, choices)}",
            "known types: " + ", ".join(sorted(ctx.known_types)),
        )
    if base == ASSERT_SET:
        if not isinstance(value, YamlSeq) or not value:
            ctx.fail(
                value_line,
                f"an assert-set needs a non-empty `assert:` list, found {found(value)}",
                "write `{type: assert-set, assert: [{contains: a}, {contains: b}]}`",
            )
        inner = tuple(parse_expectations(ctx, value, value_line, "assert"))
        expectation = Expectation(
            type=base, value=inner, negate=negate, location=ctx.location(line), options=options
        )
    else:
        raw = plain(value)
        if not has_template(raw):
            try:
                raw = comma_list(base, raw)
            except ValueError as exc:
                ctx.fail(value_line, f"invalid `{name}` expectation: {exc}")
        expectation = Expectation(
            type=base,
            value=raw,
            negate=negate,
            location=ctx.location(line),
            options=options,
        )
        if has_template(expectation.value):
            return expectation  # rendered, split and validated per case (render_expectations)
    try:
        ctx.validate(expectation, ctx.suite_dir)
    except Exception as exc:  # ValueError by contract; a plugin's validator may raise anything
        ctx.fail(line, f"invalid `{expectation.name}` expectation: {_message(exc)}")
    return expectation


def _message(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def render_expectations(
    ctx: ReadContext,
    expectations: tuple[Expectation, ...],
    variables: Any,
    case_id: str,
    transform: Any = None,
) -> tuple[Expectation, ...]:
    """A case's expectations with templated values rendered with its vars (then split and
    validated), and the case's ``options.transform`` put before each expectation's own."""
    return tuple(_render_one(ctx, exp, variables, case_id, transform) for exp in expectations)


def _render_one(
    ctx: ReadContext, exp: Expectation, variables: Any, case_id: str, transform: Any
) -> Expectation:
    changes: dict[str, Any] = {}
    if transform is not None:
        own = exp.options.get("transform")
        chain = [transform] + ([] if own is None else own if isinstance(own, list) else [own])
        changes["options"] = {**exp.options, "transform": chain}
    if exp.type == ASSERT_SET:
        changes["value"] = tuple(_render_one(ctx, e, variables, case_id, None) for e in exp.value)
    elif has_template(exp.value):
        where = exp.location
        file, line = (where.file, where.line) if where is not None else (ctx.file, 1)
        try:
            rendered = comma_list(exp.type, render_value(exp.value, variables))
            changes["value"] = rendered
            ctx.validate(dataclasses.replace(exp, value=rendered), ctx.suite_dir)
        except Exception as exc:
            fail(
                file,
                line,
                f"invalid `{exp.name}` expectation for case `{case_id}`: {_message(exc)}",
                "values are rendered with the case's vars; write {{ '{{' }} for a literal {{",
            )
    return dataclasses.replace(exp, **changes) if changes else exp


def parse_expectations(ctx: ReadContext, value: Any, line: int, name: str) -> list[Expectation]:
    items = typed(ctx, value, line, name, "list")
    return [
        parse_expectation(ctx, item, item_line) for item, item_line in zip(items, items.item_lines)
    ]


def expectation_from_text(ctx: ReadContext, text: str, line: int, promptfoo: bool) -> Any:
    """``type:value`` (CSV cells, promptfoo's ``__expected``) as a shorthand expectation."""
    name, colon, value = text.partition(":")
    name = name.strip()
    if promptfoo:
        if name == "grade" and colon:
            name = "llm-rubric"
        elif not colon or split_negation(name)[0] not in ctx.known_types:
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


def expectation_registry() -> tuple[
    frozenset[str], Callable[[Expectation, Path], None], Callable[[str], tuple[str, ...]]
]:
    """The registered type names, the validator and each type's option keys, read when a suite
    loads (lazily: plugins register their types before suites load)."""
    from pytest_promptgate import assertions

    return (
        frozenset(assertions.known_types()),
        assertions.validate_expectation,
        assertions.option_keys,
    )
