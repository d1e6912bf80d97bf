"""promptfoo's assertion conventions that are not one check: the keys every expectation may
carry (``weight``, ``metric``, ``transform``), comma-separated values for the ``*-any``/``*-all``
family, and expectation values rendered with a case's vars.

Rules a user could not guess:

* ``split_comma_values`` follows promptfoo's ``parseCommaSeparatedValues``: items are separated
  by commas and trimmed; an item in double quotes keeps its commas and spaces (``\\"`` or ``""``
  inside it is a quote); empty items are skipped; an unterminated quote is an error.
* ``render_value`` renders every string that holds ``{{``, ``{%`` or ``{#`` with the case's vars
  in the prompt sandbox (undefined variables are errors); other values are returned unchanged.
  One pass: ``{{ '{{' }}`` or ``{% raw %}{{{% endraw %}`` leaves a literal ``{{``.
* a ``transform`` is a Jinja2 *expression* (not JavaScript) over ``output`` (the output text),
  ``vars`` (the case's vars) and ``from_json(text)``; what it returns replaces the output for
  that expectation (a string as is, anything else as its JSON text). A case's
  ``options.transform`` runs first, then the expectation's own.

Nothing here imports jinja2 until a template or a transform is actually used.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_promptgate.assertions.values import clean_text, is_number, kind

# Types whose value may be one string of comma-separated items (promptfoo splits it).
COMMA_LIST_TYPES = frozenset({"contains-any", "contains-all", "icontains-any", "icontains-all"})
_TEMPLATE_MARKERS = ("{{", "{%", "{#")
TRANSFORM_LIMIT = 1_000_000  # characters a transform may return


# --------------------------------------------------------------------------- comma lists


def split_comma_values(text: str) -> list[str]:
    """``'a, "b, c", d'`` -> ``['a', 'b, c', 'd']`` (promptfoo's rules, see the module doc)."""
    items: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and (text[i].isspace() or text[i] == ","):
            i += 1
        if i >= n:
            break
        if text[i] == '"':
            i, item = _quoted_item(text, i)
            items.append(item)
            while i < n and text[i].isspace():
                i += 1
            if i < n and text[i] != ",":
                raise ValueError(
                    f"expected a comma after the quoted item {item!r}; "
                    'separate items with commas, e.g. "a, b", c'
                )
        else:
            end = text.find(",", i)
            end = n if end == -1 else end
            items.append(text[i:end].strip())
            i = end
    return items


def _quoted_item(text: str, start: int) -> tuple[int, str]:
    i, n = start + 1, len(text)
    item: list[str] = []
    while i < n:
        char = text[i]
        if char == "\\" and i + 1 < n and text[i + 1] in ('"', "\\"):
            item.append(text[i + 1])
            i += 2
        elif char == '"' and i + 1 < n and text[i + 1] == '"':
            item.append('"')
            i += 2
        elif char == '"':
            return i + 1, "".join(item)
        else:
            item.append(char)
            i += 1
    raise ValueError(
        f'unterminated quote in {clean_text(text, 60)!r}; close the quoted item with a second "'
    )


def comma_list(type_name: str, value: Any) -> Any:
    """The value of a ``*-any``/``*-all`` type with a string split into its items."""
    if type_name in COMMA_LIST_TYPES and isinstance(value, str):
        return split_comma_values(value)
    return value


# --------------------------------------------------------------------------- vars in values


def has_template(value: Any) -> bool:
    """True when a string in ``value`` (lists and mappings included) holds Jinja2 syntax."""
    if isinstance(value, str):
        return any(marker in value for marker in _TEMPLATE_MARKERS)
    if isinstance(value, Mapping):
        return any(has_template(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_template(item) for item in value)
    return False


def render_value(value: Any, variables: Mapping[str, Any]) -> Any:
    """``value`` with every templated string rendered with ``variables``; raises ValueError."""
    if isinstance(value, str):
        if not any(marker in value for marker in _TEMPLATE_MARKERS):
            return value
        from pytest_promptgate import render

        try:
            return render.compile_template(value).render(dict(variables))
        except Exception as exc:  # syntax, undefined variable, sandbox: all the user's to fix
            raise ValueError(f"{_template_problem(exc)} in {clean_text(value, 80)!r}") from None
    if isinstance(value, Mapping):
        return {key: render_value(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, variables) for item in value]
    return value


def _template_problem(exc: Exception) -> str:
    from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError

    if isinstance(exc, UndefinedError):
        return f"{clean_text(str(exc), 100)} (the case has no such var)"
    if isinstance(exc, TemplateSyntaxError):
        return f"template syntax error: {clean_text(exc.message or str(exc), 100)}"
    if isinstance(exc, SecurityError):
        return f"the template sandbox refused: {clean_text(str(exc), 100)}"
    return f"rendering failed: {type(exc).__name__}: {clean_text(str(exc), 100)}"


# --------------------------------------------------------------------------- transform


def _transform_source(expression: str) -> str:
    return "{{ (" + expression + ") | tojson }}"


def validate_transform(value: Any, suite_dir: Path) -> None:
    expressions = value if isinstance(value, (list, tuple)) else [value]
    for expression in expressions:
        if not isinstance(expression, str) or not expression.strip():
            raise ValueError(
                f"transform needs a Jinja2 expression over `output`, got {kind(expression)}; "
                "write e.g. transform: 'output | trim | lower'"
            )
        from pytest_promptgate import render

        problem = render.template_syntax_error(_transform_source(expression))
        if problem is not None:
            raise ValueError(
                f"transform {clean_text(expression, 60)!r} is not a Jinja2 expression: {problem[1]}; "
                "transforms are Jinja2 (e.g. `from_json(output).answer`, `output | upper`), not JavaScript"
            )


def apply_transform(
    transform: str | Sequence[str], output: str, variables: Mapping[str, Any]
) -> str:
    """The output after the transform expression(s); raises ValueError naming what failed."""
    from pytest_promptgate import render

    expressions = [transform] if isinstance(transform, str) else list(transform)
    for expression in expressions:
        context = {"output": output, "vars": dict(variables), "from_json": _from_json}
        try:
            rendered = render.compile_template(_transform_source(expression)).render(context)
            result = json.loads(rendered)
        except Exception as exc:
            raise ValueError(
                f"transform {clean_text(expression, 60)!r} failed: {_template_problem(exc)}"
            ) from None
        output = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
        if len(output) > TRANSFORM_LIMIT:
            raise ValueError(
                f"transform {clean_text(expression, 60)!r} returned over 1,000,000 characters"
            )
    return output


def _from_json(text: Any) -> Any:
    """``json.loads`` for transforms (strict: NaN and Infinity are refused)."""
    return json.loads(str(text), parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# --------------------------------------------------------------------------- option validators


def validate_weight(value: Any, suite_dir: Path) -> None:
    if not is_number(value) or not math.isfinite(value) or value < 0:
        raise ValueError(
            f"weight needs a number >= 0, got {value!r}; write e.g. weight: 2 (the default is 1)"
        )


def validate_metric(value: Any, suite_dir: Path) -> None:
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        raise ValueError(
            f"metric needs a name (one line of text), got {kind(value)}; write e.g. metric: accuracy"
        )


def validate_fraction(value: Any, suite_dir: Path) -> None:
    """A score threshold: a number from 0 to 1."""
    if not is_number(value) or not 0 <= float(value) <= 1:
        raise ValueError(
            f"threshold needs a number from 0 to 1, got {value!r}; write e.g. threshold: 0.8"
        )


# Keys every expectation accepts beside `type` and `value` (promptfoo's), with their validators.
COMMON_OPTIONS = {
    "weight": validate_weight,
    "metric": validate_metric,
    "transform": validate_transform,
}
