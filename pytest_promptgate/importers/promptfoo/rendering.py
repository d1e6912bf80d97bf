"""Values with `{{ var }}`: kept as written when every case can render them, else rendered now
with promptfoo's empty text for a var a test does not set; prompts' missing vars filled in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pytest_promptgate.importers.promptfoo.base import _Base
from pytest_promptgate.importers.promptfoo.data import _Case, _Expect, _Prompt
from pytest_promptgate.importers.promptfoo.text import _has_template


class _Rendering(_Base):
    """Templated assertion values and prompts' vars, per case."""

    def render_values(self, case: _Case) -> None:
        """promptfoo renders assertion values with the test's vars, and so does the loader (per
        case): a value stays as written when it renders with the case's vars. A var the test
        does not set is empty text in promptfoo; that value is rendered now, with it as ""."""
        from pytest_promptgate import render

        for expect in case.expect:
            if not expect.templated or expect.data is None:
                continue
            needed = _template_vars(expect.data)
            missing = sorted(needed - set(case.vars)) if needed is not None else []
            variables = {**case.vars, **{name: "" for name in missing}}
            try:
                if needed is None:
                    raise ValueError("not a valid Jinja2 template")
                rendered = _render_data(expect.data, variables, render)
            except Exception as exc:  # a template error is the user's to fix, not a crash
                expect.comments.append(
                    self.todo(
                        case.location,
                        f"value of `{expect.data['type']}` could not be rendered ({exc})",
                    )
                )
                expect.data = None
                continue
            if missing:
                expect.data = rendered
                shown = ", ".join(f"`{name}`" for name in missing)
                self.note(
                    case.location,
                    f"the value of `{expect.data['type']}` uses {shown}, which this test does "
                    'not set: rendered now with "" (promptfoo renders an undefined var as '
                    "empty text)",
                )

    def fill_missing_vars(self, prompts: list[_Prompt], cases: list[_Case]) -> list[_Case]:
        """promptfoo renders an undefined variable as empty text; our loader refuses it."""
        import jinja2
        from jinja2 import meta

        environment = jinja2.Environment()
        needed: set[str] = set()
        for prompt in prompts:
            for _, content in prompt.messages:
                try:
                    needed |= meta.find_undeclared_variables(environment.parse(content))
                except jinja2.TemplateSyntaxError:
                    pass
        filled = []
        reported: set[str] = set()
        for case in cases:
            missing = sorted(needed - set(case.vars))
            if missing:
                for variable in missing:
                    if variable not in reported:
                        reported.add(variable)
                        self.note(
                            case.location,
                            f'var `{variable}` is missing in some tests; set to "" there, as '
                            "promptfoo renders an undefined variable as empty text",
                        )
                case = dataclasses.replace(case, vars={**case.vars, **{v: "" for v in missing}})
            filled.append(case)
        return filled


def _template_strings(data: Mapping[str, Any]) -> list[str]:
    """The strings of an expectation's value (and of an assert-set's inner values)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(data.get("value"))
    for inner in data.get("assert") or ():
        found += _template_strings(inner)
    return found


def _template_vars(data: Mapping[str, Any]) -> set[str] | None:
    """The vars an expectation's templated value reads; None when one is not valid Jinja2."""
    import jinja2
    from jinja2 import meta

    environment = jinja2.Environment()
    needed: set[str] = set()
    for text in _template_strings(data):
        if not _has_template(text):
            continue
        try:
            needed |= meta.find_undeclared_variables(environment.parse(text))
        except jinja2.TemplateSyntaxError:
            return None
    return needed


def _render_data(data: Mapping[str, Any], variables: Mapping[str, Any], render: Any) -> dict:
    result = dict(data)
    if "value" in data:
        result["value"] = _render_value(data["value"], variables, render)
    if "assert" in data:
        result["assert"] = [_render_data(inner, variables, render) for inner in data["assert"]]
    return result


def _renders_for(expect: _Expect, cases: list[_Case]) -> bool:
    """A templated expectation renders, as written, with the vars of every case."""
    from pytest_promptgate import render

    needed = _template_vars(expect.data or {})
    if expect.data is None or needed is None:
        return False
    for case in cases:
        if not needed <= set(case.vars):
            return False
        try:
            _render_data(expect.data, case.vars, render)
        except Exception:  # the per-case copy reports it
            return False
    return True


def _render_value(value: Any, variables: Mapping[str, Any], render: Any) -> Any:
    if isinstance(value, str):
        return render.compile_template(value).render(dict(variables))
    if isinstance(value, list):
        return [_render_value(v, variables, render) for v in value]
    if isinstance(value, dict):
        return {k: _render_value(v, variables, render) for k, v in value.items()}
    return value
