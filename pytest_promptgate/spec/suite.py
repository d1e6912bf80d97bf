"""Suite files (``*.promptgate.yaml``) become validated, render-checked ``Suite`` objects.

The format is described in ``docs/suite-format.md``. ``load_suite`` reads the YAML with lines
(``yaml_lines``), checks every key and value (``fields``), builds the versions, the cases
(inline and from ``case_files``) with their expectations (``expectations``), and renders every
(version, case) pair once, so a variable a case lacks is an error at load time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_promptgate import render
from pytest_promptgate.assertions.compat import validate_transform
from pytest_promptgate.model import Case, Expectation, Location, MessageTemplate, Suite, Version
from pytest_promptgate.spec.case_files import CASE_KEYS, read_cases_file
from pytest_promptgate.spec.expectations import (
    expectation_registry,
    parse_expectations,
    render_expectations,
)
from pytest_promptgate.spec.fields import (
    ReadContext,
    at_least,
    check_keys,
    check_name,
    did_you_mean,
    display,
    read_field,
    read_text,
    typed,
)
from pytest_promptgate.spec.turns import (
    MESSAGE_EXTRA_KEYS,
    message_extras,
    parse_ideal,
    version_settings,
)
from pytest_promptgate.spec.yaml_lines import YamlMap, YamlSeq, fail, found, parse_yaml, plain
from pytest_promptgate.textsafe import clip

TOP_KEYS = (
    "prompt",
    "description",
    "model",
    "params",
    "threshold",
    "finetune_after",
    "plateau_margin",
    "repeat",
    "rpm",
    "usage",
    "finetune",
    "versions",
    "system",
    "user",
    "messages",
    "template",
    "python",
    "defaults",
    "cases",
    "cases_file",
)
SOURCE_KEYS = ("system", "user", "messages", "template", "python")
# Settings a version under `versions:` may give itself (issue 13), inheriting the suite's.
VERSION_SETTING_KEYS = ("model", "params")
DEFAULTS_KEYS = ("expect", "repeat", "tags")
MESSAGE_KEYS = ("role", "content")
USAGE_KEYS = ("calls_per_month", "months")
FINETUNE_KEYS = ("training_cost_usd", "inference_multiplier")
CASE_OPTION_KEYS = ("transform",)

# Tags become pytest markers: these names would change what pytest does with the item, or
# break `-m` expressions.
RESERVED_TAGS = frozenset(
    {
        "and",
        "or",
        "not",
        "skip",
        "skipif",
        "xfail",
        "parametrize",
        "usefixtures",
        "filterwarnings",
        "tryfirst",
        "trylast",
    }
)
TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
FORMS_HINT = (
    "a version is `system`/`user`, or `messages`, or `template` (optionally with "
    "`system`), or `python: module:function`"
)


# --- tags -----------------------------------------------------------------------------------


def _parse_tags(ctx: ReadContext, value: Any, line: int, name: str) -> list[str]:
    items = typed(ctx, value, line, name, "list")
    tags = []
    for tag, tag_line in zip(items, items.item_lines):
        typed(ctx, tag, tag_line, f"a tag in `{name}`", "str")
        if not TAG_PATTERN.fullmatch(tag):
            ctx.fail(
                tag_line,
                f"tag {clip(tag, 40)!r} cannot be a pytest marker",
                "use letters, digits, `_` and `-`, not starting with `-`",
            )
        if tag in RESERVED_TAGS:
            ctx.fail(
                tag_line,
                f"tag `{tag}` is reserved by pytest",
                "choose another name, e.g. `case-{tag}`",
            )
        if tag not in tags:
            tags.append(tag)
    return tags


# --- versions -------------------------------------------------------------------------------


def _check_template_syntax(ctx: ReadContext, label: str, source: str, where: Location) -> None:
    """Report a template syntax error at its own line (inside the YAML string or the file)."""
    problem = render.template_syntax_error(source)
    if problem is not None:
        line, message = problem
        fail(
            where.file,
            where.line + line - 1,
            f"template syntax error in version `{label}`: {message}",
        )


def _parse_message_list(
    ctx: ReadContext, value: Any, line: int
) -> list[tuple[MessageTemplate, Location]]:
    items = typed(ctx, value, line, "messages", "list")
    if not items:
        ctx.fail(line, "`messages` is empty", "give at least one `{role: user, content: ...}`")
    messages = []
    for item, item_line in zip(items, items.item_lines):
        typed(ctx, item, item_line, "a message", "mapping")
        check_keys(ctx, item, MESSAGE_KEYS + MESSAGE_EXTRA_KEYS, "in a message")
        for key in MESSAGE_KEYS:
            if key not in item and not (key == "content" and "tool_calls" in item):
                ctx.fail(
                    item_line, f"a message needs `{key}`", 'write `{role: user, content: "..."}`'
                )
        role = read_field(ctx, item, "role", "str")
        if role not in render.ROLES:
            ctx.fail(
                item.line_of("role"),
                f"unknown role `{role}`{did_you_mean(role, render.ROLES)}",
                "roles are " + ", ".join(render.ROLES),
            )
        content = read_field(ctx, item, "content", "str") or ""
        template = MessageTemplate(role, content, **message_extras(ctx, item, role))
        where = item.value_lines.get("content", item_line)
        messages.append((template, ctx.location(where)))
    return messages


def _parse_version(
    ctx: ReadContext, label: str | None, spec: Any, line: int, top_level: bool
) -> Version:
    name = f"version `{label}`" if label else "the prompt"
    if not top_level:
        typed(ctx, spec, line, name, "mapping")
        check_keys(ctx, spec, SOURCE_KEYS + VERSION_SETTING_KEYS, f"in {name}")
    present = [key for key in SOURCE_KEYS if key in spec]
    if not present:
        ctx.fail(line, f"{name} has no prompt", FORMS_HINT)
    allowed_together = ({"system", "user"}, {"messages"}, {"template", "system"}, {"python"})
    if not any(set(present) <= group for group in allowed_together):
        second = present[1]
        ctx.fail(
            spec.line_of(second),
            f"{name} mixes `{present[0]}` and `{second}`; use one form",
            FORMS_HINT,
        )

    messages: list[tuple[MessageTemplate, Location]] = []
    template_path = python_ref = None
    source_extra = ""
    if "system" in spec:
        text = read_field(ctx, spec, "system", "str")
        messages.append((MessageTemplate("system", text), ctx.location(spec.value_lines["system"])))
    if "user" in spec:
        text = read_field(ctx, spec, "user", "str")
        messages.append((MessageTemplate("user", text), ctx.location(spec.value_lines["user"])))
    if "messages" in spec:
        messages = _parse_message_list(ctx, spec["messages"], spec.line_of("messages"))
    if "template" in spec:
        template_path = read_field(ctx, spec, "template", "str")
        template_file = ctx.suite_dir / template_path
        if not template_path.strip() or not template_file.is_file():
            ctx.fail(
                spec.line_of("template"),
                f"template file `{template_path}` not found",
                f"the path is relative to the suite's directory ({ctx.show('.')})",
            )
        try:
            text = template_file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            ctx.fail(
                spec.line_of("template"), f"cannot read template file `{template_path}`: {exc}"
            )
        messages.append((MessageTemplate("user", text), Location(ctx.show(template_path), 1)))
    if "python" in spec:
        python_ref = read_field(ctx, spec, "python", "str")
        where = ctx.location(spec.line_of("python"))
        search_dirs = [ctx.suite_dir] + ([Path(ctx.rootdir).resolve()] if ctx.rootdir else [])
        builder = render.resolve_builder(python_ref, search_dirs, where)
        source_extra = render.builder_source(builder)

    draft = Version(
        label="",
        kind="python" if python_ref else "template" if template_path else "messages",
        messages=tuple(m for m, _ in messages),
        python=python_ref,
        template_path=template_path,
    )
    source_text = render.canonical_json(
        {"prompt": render.prompt_source(draft), "code": source_extra}
    )
    full_hash = hashlib.sha256(source_text.encode("utf-8")).hexdigest()
    label = label or render.short_hash(source_text)  # the first 8 hex digits of full_hash
    for template, where in messages:
        _check_template_syntax(ctx, label, template.content, where)
    version_line = spec.line_of(present[0]) if top_level else line
    own_model, own_params = (None, {}) if top_level else version_settings(ctx, spec, name)
    return dataclasses.replace(
        draft,
        label=label,
        source_hash=full_hash,
        location=ctx.location(version_line),
        model=own_model,
        params=own_params,
    )


def _parse_versions(ctx: ReadContext, data: YamlMap) -> tuple[Version, ...]:
    top_sources = [key for key in SOURCE_KEYS if key in data]
    if "versions" in data:
        if top_sources:
            ctx.fail(
                data.line_of(top_sources[0]),
                f"`{top_sources[0]}` at the top level cannot be combined with `versions`",
                "move it into one of the versions",
            )
        versions = read_field(ctx, data, "versions", "mapping")
        if not versions:
            ctx.fail(
                data.line_of("versions"),
                "`versions` is empty; a suite needs at least one version",
                FORMS_HINT,
            )
        return tuple(
            _parse_version(
                ctx,
                check_name(ctx, label, versions.line_of(label), "version label"),
                spec,
                versions.line_of(label),
                top_level=False,
            )
            for label, spec in versions.items()
        )
    if top_sources:
        return (_parse_version(ctx, None, data, data.line, top_level=True),)
    ctx.fail(
        data.line_of("prompt"),
        "the suite has no prompt text: add `versions:`, or `system`/`user`, "
        "`messages`, `template` or `python` at the top level",
        FORMS_HINT,
    )


# --- cases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Defaults:
    expect: tuple[Expectation, ...] = ()
    tags: tuple[str, ...] = ()
    repeat: int | None = None


def _parse_defaults(ctx: ReadContext, data: YamlMap, top_repeat: int | None) -> _Defaults:
    spec = read_field(ctx, data, "defaults", "mapping")
    if spec is None:
        return _Defaults(repeat=top_repeat)
    check_keys(ctx, spec, DEFAULTS_KEYS, "in `defaults`")
    expect = (
        parse_expectations(ctx, spec["expect"], spec.line_of("expect"), "defaults.expect")
        if "expect" in spec
        else []
    )
    tags = (
        _parse_tags(ctx, spec["tags"], spec.line_of("tags"), "defaults.tags")
        if "tags" in spec
        else []
    )
    repeat = at_least(ctx, spec, "repeat", "int", 1, name="defaults.repeat")
    return _Defaults(tuple(expect), tuple(tags), repeat if repeat is not None else top_repeat)


def _parse_case(ctx: ReadContext, row: Any, line: int, index: int, defaults: _Defaults) -> Case:
    typed(ctx, row, line, "a case", "mapping")
    check_keys(ctx, row, CASE_KEYS, "in a case")
    case_id = f"case-{index}"
    if "id" in row:
        case_id = check_name(ctx, row["id"], row.line_of("id"), "case id")
    variables = read_field(ctx, row, "vars", "mapping")
    use_defaults = read_field(ctx, row, "defaults", "bool")
    applied = defaults if use_defaults is not False else _Defaults(repeat=defaults.repeat)
    own_expect = (
        parse_expectations(ctx, row["expect"], row.line_of("expect"), "expect")
        if "expect" in row
        else []
    )
    own_tags = _parse_tags(ctx, row["tags"], row.line_of("tags"), "tags") if "tags" in row else []
    repeat = at_least(ctx, row, "repeat", "int", 1)
    ideal, ideal_tool_calls = parse_ideal(ctx, row)
    tags = list(applied.tags) + [tag for tag in own_tags if tag not in applied.tags]
    case_vars = plain(variables) if variables is not None else {}
    expect = render_expectations(
        ctx,
        tuple(applied.expect) + tuple(own_expect),
        case_vars,
        case_id,
        _parse_case_transform(ctx, row),
    )
    return Case(
        id=case_id,
        vars=case_vars,
        expect=expect,
        tags=tuple(tags),
        repeat=repeat or applied.repeat or 1,
        ideal=ideal,
        ideal_tool_calls=ideal_tool_calls,
        location=ctx.location(line),
        threshold=_parse_case_threshold(ctx, row),
    )


def _parse_case_threshold(ctx: ReadContext, row: YamlMap) -> float | None:
    """promptfoo's test `threshold`: the weighted score (0 to 1) a sample needs to pass."""
    threshold = read_field(ctx, row, "threshold", "number")
    if threshold is not None and not 0 <= threshold <= 1:
        ctx.fail(
            row.line_of("threshold"),
            f"a case's `threshold` is a score from 0 to 1, found {threshold:g}",
            "the case passes when the weighted share of its expectations reaches it, e.g. 0.75",
        )
    return None if threshold is None else float(threshold)


def _parse_case_transform(ctx: ReadContext, row: YamlMap) -> str | None:
    """promptfoo's test `options.transform`, checked to be a Jinja2 expression."""
    spec = read_field(ctx, row, "options", "mapping")
    if spec is None:
        return None
    check_keys(ctx, spec, CASE_OPTION_KEYS, "in a case's `options`")
    transform = read_field(ctx, spec, "transform", "str", name="options.transform")
    if transform is not None:
        try:
            validate_transform(transform, ctx.suite_dir)
        except ValueError as exc:
            ctx.fail(spec.line_of("transform"), str(exc))
    return transform


def _parse_cases(ctx: ReadContext, data: YamlMap, defaults: _Defaults) -> tuple[Case, ...]:
    sources: list[tuple[ReadContext, Any, int]] = []
    inline = read_field(ctx, data, "cases", "list")
    if inline is not None:
        sources += [(ctx, row, row_line) for row, row_line in zip(inline, inline.item_lines)]
    if "cases_file" in data:
        files = data["cases_file"]
        line = data.line_of("cases_file")
        entries = (
            list(zip(files, files.item_lines)) if isinstance(files, YamlSeq) else [(files, line)]
        )
        for relative, entry_line in entries:
            file_ctx, rows = read_cases_file(ctx, relative, entry_line)
            sources += [(file_ctx, row, row_line) for row, row_line in rows]

    cases: list[Case] = []
    first_seen: dict[str, Location | None] = {}
    for index, (row_ctx, row, row_line) in enumerate(sources, start=1):
        case = _parse_case(row_ctx, row, row_line, index, defaults)
        if case.id in first_seen:
            row_ctx.fail(
                row_line,
                f"duplicate case id `{case.id}`: also defined at {first_seen[case.id]}",
                "case ids must be unique within a suite; rename one",
            )
        first_seen[case.id] = case.location
        cases.append(case)
    return tuple(cases)


# --- the suite ------------------------------------------------------------------------------


def _parse_threshold(ctx: ReadContext, data: YamlMap, key: str = "threshold") -> float | None:
    threshold = read_field(ctx, data, key, "number")
    if threshold is not None and not 0 < threshold <= 1:
        hint = f"use {threshold / 100:g}" if 1 < threshold <= 100 else None
        ctx.fail(
            data.line_of(key),
            f"`{key}` is a fraction between 0 (excluded) and 1, found {threshold:g}",
            hint and f"{hint} (a fraction, not a percentage)",
        )
    return None if threshold is None else float(threshold)


def _cost_range(
    ctx: ReadContext, spec: YamlMap, key: str, minimum: float, exclusive: bool
) -> list[float] | None:
    if key not in spec:
        return None
    value, line = spec[key], spec.line_of(key)
    bounds = list(value) if isinstance(value, YamlSeq) else [value, value]
    if len(bounds) != 2:
        ctx.fail(
            line, f"`finetune.{key}` is a number or [low, high], found a list of {len(bounds)}"
        )
    for bound in bounds:
        typed(ctx, bound, line, f"finetune.{key}", "number")
        if bound < minimum or (exclusive and bound == minimum):
            relation = "greater than" if exclusive else "at least"
            ctx.fail(line, f"`finetune.{key}` must be {relation} {minimum:g}, found {bound:g}")
    if bounds[0] > bounds[1]:
        ctx.fail(line, f"`finetune.{key}` is [low, high] but low > high")
    return bounds


def _parse_usage(ctx: ReadContext, data: YamlMap) -> dict[str, Any]:
    spec = read_field(ctx, data, "usage", "mapping")
    if spec is None:
        return {}
    check_keys(ctx, spec, USAGE_KEYS, "in `usage`")
    calls = at_least(ctx, spec, "calls_per_month", "number", 0, name="usage.calls_per_month")
    months = at_least(ctx, spec, "months", "number", 0, exclusive=True, name="usage.months")
    return {
        key: value
        for key, value in (("calls_per_month", calls), ("months", months))
        if value is not None
    }


def _parse_finetune(ctx: ReadContext, data: YamlMap) -> dict[str, Any]:
    spec = read_field(ctx, data, "finetune", "mapping")
    if spec is None:
        return {}
    check_keys(ctx, spec, FINETUNE_KEYS, "in `finetune`")
    ranges = {
        "training_cost_usd": _cost_range(ctx, spec, "training_cost_usd", 0, exclusive=False),
        "inference_multiplier": _cost_range(ctx, spec, "inference_multiplier", 0, exclusive=True),
    }
    return {key: value for key, value in ranges.items() if value is not None}


def _parse_params(ctx: ReadContext, data: YamlMap) -> dict[str, Any]:
    params = read_field(ctx, data, "params", "mapping")
    return plain(params) if params is not None else {}


def load_suite(path: Path, rootdir: Path | None = None) -> Suite:
    """Read, validate and render-check one suite file; every problem is a ``SuiteError``."""
    path = Path(path)
    file = display(path, rootdir)
    known_types, validate, option_keys = expectation_registry()
    ctx = ReadContext(
        file=file,
        suite_dir=path.resolve().parent,
        given_dir=path.parent,
        rootdir=Path(rootdir) if rootdir is not None else None,
        known_types=known_types,
        validate=validate,
        option_keys=option_keys,
    )
    data = parse_yaml(read_text(path, file), file)
    if data is None:
        ctx.fail(1, "the suite file is empty", "start it with `prompt: <id>`")
    if not isinstance(data, YamlMap):
        ctx.fail(
            getattr(data, "line", 1),
            f"a suite is a mapping (prompt, versions, cases...), found {found(data)}",
        )
    check_keys(ctx, data, TOP_KEYS, "at the top level of the suite")
    if "prompt" not in data:
        ctx.fail(1, "missing required key `prompt`", "add `prompt: <id>`, a name for this prompt")
    prompt = check_name(ctx, data["prompt"], data.line_of("prompt"), "`prompt`")

    model = read_field(ctx, data, "model", "str")
    if model is not None and not model.strip():
        ctx.fail(data.line_of("model"), "`model` is empty", "e.g. `openai/gpt-4o-mini`")
    # Plain settings first, then versions (which may import builders), then cases.
    settings = dict(
        description=read_field(ctx, data, "description", "str") or "",
        model=model,
        params=_parse_params(ctx, data),
        threshold=_parse_threshold(ctx, data),
        finetune_after=at_least(ctx, data, "finetune_after", "int", 2),
        plateau_margin=_parse_threshold(ctx, data, "plateau_margin"),
        rpm=at_least(ctx, data, "rpm", "number", 0, exclusive=True),
        usage=_parse_usage(ctx, data),
        finetune=_parse_finetune(ctx, data),
    )
    top_repeat = at_least(ctx, data, "repeat", "int", 1)
    defaults = _parse_defaults(ctx, data, top_repeat)
    versions = _parse_versions(ctx, data)
    suite = Suite(
        prompt=prompt,
        file=path.resolve(),
        versions=versions,
        cases=_parse_cases(ctx, data, defaults),
        location=ctx.location(data.line_of("prompt")),
        **settings,
    )
    # Render every pair now: a variable a case lacks is a suite error, not a run-time failure.
    # The messages are kept, so the run does not render (or call a python builder) again.
    rendered = {
        (version.label, case.id): render.render_messages(suite, version, case.vars, case=case)
        for version in suite.versions
        for case in suite.cases
    }
    return dataclasses.replace(suite, rendered=rendered)
