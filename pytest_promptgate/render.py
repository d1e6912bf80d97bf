"""Prompt rendering and content hashes.

Templates are Jinja2 run in an immutable sandbox with undefined variables as errors: a suite
file is data from the repository, but a template must not be able to reach Python objects
(``__class__``, ``__globals__``, the environment) or mutate the case's variables. Python prompt
builders (``python: module:function``) are the repository's own code and run unsandboxed,
like any test the repository contains.

Every failure is a ``SuiteError`` with a location, never a Jinja traceback.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pytest_promptgate.model import Case, Location, Suite, SuiteError, Version

ROLES = ("system", "user", "assistant", "tool")
# An image file bigger than this is refused: it would be sent (base64) with every call.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}

# Keys whose values are credentials (docs/ARCHITECTURE.md, "Secrets").
_SECRET_KEYS = {"api_key", "extra_headers", "headers"}
_SECRET_WORDS = ("key", "token", "secret", "password", "authorization")
# "max_tokens" contains "token" but is a count, not a credential: "tokens" (plural) is a budget
# and "per_token" a price, while "token" alone (access_token, github_token) is a secret.
_TOKEN_COUNT = re.compile(r"tokens|per_token")

# A template may build strings, but not one big enough to take the machine down.
MAX_RENDERED_SEQUENCE = 1_000_000
MAX_EXPONENT = 10_000


def short_hash(text: str) -> str:
    """First 8 hex digits of the sha256 of ``text``: short labels for unnamed versions."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def is_secret_key(name: str) -> bool:
    lowered = str(name).lower()
    if lowered in _SECRET_KEYS:
        return True
    without_counts = _TOKEN_COUNT.sub("", lowered)
    return any(word in without_counts for word in _SECRET_WORDS)


def public_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """``params`` without credentials, at every depth: what may enter a hash, a report or a log."""

    def strip(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: strip(v) for k, v in value.items() if not is_secret_key(k)}
        if isinstance(value, (list, tuple)):
            return [strip(v) for v in value]
        return value

    return strip(dict(params or {}))


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no whitespace, non-JSON leaves as their repr."""

    def normalise(item: Any) -> Any:
        if isinstance(item, Mapping):
            return {str(k): normalise(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [normalise(v) for v in item]
        if item is None or isinstance(item, (str, int, float, bool)):
            return item
        return repr(item)

    return json.dumps(normalise(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def prompt_source(version: Version) -> dict[str, Any]:
    """What the prompt *is*, independent of its label or where its template file lives."""
    return {
        "kind": version.kind,
        # Multi-turn/image extras only when set, so older prompts keep their hashes.
        "messages": [
            [m.role, m.content] + ([m.extras()] if m.extras() else []) for m in version.messages
        ],
        "python": version.python,
    }


def content_hash(version: Version, model: str | None, params: Mapping[str, Any] | None) -> str:
    """sha256 hex of prompt source + model + params (secrets excluded): one id per iteration.

    ``version.source_hash`` is included because for python builders it also covers the
    builder's code, which ``prompt_source`` (the ``module:function`` reference) cannot see.
    """
    document = {
        "prompt": prompt_source(version),
        "source_hash": version.source_hash,
        "model": model,
        "params": public_params(params),
    }
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


# --- Jinja ----------------------------------------------------------------------------------


def _environment() -> Any:
    """The one sandbox, for the jinja2 currently imported.

    Keyed by the module object because pytester's in-process runs drop and re-import jinja2:
    an environment from the old import would compile templates against the new one and
    silently render undefined variables as "missing" instead of failing.
    """
    from jinja2 import sandbox

    return _sandbox_for(sandbox)


@functools.lru_cache(maxsize=4)
def _sandbox_for(sandbox: Any) -> Any:
    from jinja2 import StrictUndefined
    from jinja2.exceptions import SecurityError

    class PromptSandbox(sandbox.ImmutableSandboxedEnvironment):
        # Intercepting these also stops Jinja from folding them at compile time, so
        # `{{ 'a' * 10**10 }}` is refused instead of exhausting memory while compiling.
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "**" and isinstance(right, int) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is too large for a template")
            if operator == "*":
                for seq, count in ((left, right), (right, left)):
                    if isinstance(seq, (str, list, tuple)) and isinstance(count, int):
                        if len(seq) * count > MAX_RENDERED_SEQUENCE:
                            raise SecurityError("template would build a value over 1,000,000 items")
            return super().call_binop(context, operator, left, right)

    return PromptSandbox(undefined=StrictUndefined, autoescape=False)


def compile_template(source: str) -> Any:
    """The compiled template for ``source`` (cached); raises jinja2's TemplateSyntaxError."""
    return _compile(_environment(), source)


@functools.lru_cache(maxsize=4096)
def _compile(environment: Any, source: str) -> Any:
    return environment.from_string(source)


def template_syntax_error(source: str) -> tuple[int, str] | None:
    """(1-based line inside ``source``, message) of its syntax error, or None if it compiles."""
    from jinja2.exceptions import TemplateSyntaxError

    try:
        compile_template(source)
    except TemplateSyntaxError as exc:
        return max(1, exc.lineno or 1), exc.message or str(exc)
    return None


def _describe_template_failure(exc: Exception) -> str:
    from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError

    text = str(exc)
    if isinstance(exc, SecurityError):
        reached = re.search(r"attribute '([^']+)'", text)
        if reached:
            return f"template tried to reach `{reached.group(1)}`, which the sandbox forbids"
        return f"template did something the sandbox forbids: {text}"
    if isinstance(exc, UndefinedError):
        missing = re.fullmatch(r"'(.+)' is undefined", text)
        if missing:
            return f"template variable `{missing.group(1)}` is not defined"
        attribute = re.fullmatch(r"'(.+)' has no attribute '(.+)'", text)
        if attribute:
            return f"template reads `{attribute.group(2)}`, which the variable ({attribute.group(1)}) does not have"
        return f"template uses an undefined value: {text}"
    if isinstance(exc, TemplateSyntaxError):
        return f"template syntax error: {exc.message}"
    return f"template failed: {type(exc).__name__}: {text}"


def _render_template(source: str, variables: Mapping[str, Any]) -> str:
    return compile_template(source).render(dict(variables))


# --- python prompt builders -----------------------------------------------------------------

_BUILDERS: dict[str, Callable[..., Any]] = {}
PYTHON_REF = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")


def resolve_builder(
    ref: str, search_dirs: Iterable[Path], location: Location | None = None
) -> Callable[..., Any]:
    """Import ``module:function`` with ``search_dirs`` on sys.path (kept there, as pytest does
    for rootdir-relative imports, so the builder's own lazy imports keep working)."""
    if ref in _BUILDERS:
        return _BUILDERS[ref]
    if not PYTHON_REF.fullmatch(ref):
        raise SuiteError(
            f"`{ref}` is not a `module:function` reference",
            location,
            "write it like `myapp.prompts:build_messages`",
        )
    for directory in reversed(list(search_dirs)):  # the first directory ends up first
        entry = str(directory)
        if entry not in sys.path:
            sys.path.insert(0, entry)
    module_name, function_name = ref.split(":")
    hint = "the module is imported with the suite's directory and the rootdir on sys.path"
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the repository's own code: any failure is the user's to fix
        raise SuiteError(
            f"cannot import `{module_name}` for prompt builder `{ref}`: "
            f"{type(exc).__name__}: {exc}",
            location,
            hint,
        ) from None
    builder = getattr(module, function_name, None)
    if not callable(builder):
        raise SuiteError(
            f"module `{module_name}` has no function `{function_name}`", location, hint
        )
    _BUILDERS[ref] = builder
    return builder


def builder_source(builder: Callable[..., Any]) -> str:
    """The builder's code when Python can show it, so editing it makes a new iteration."""
    try:
        return inspect.getsource(builder)
    except (OSError, TypeError):
        return ""


def _builder_messages(result: Any) -> tuple[dict[str, str], ...] | None:
    """A builder's result as messages, or None when it is not a string or a message list."""
    if isinstance(result, str):
        return ({"role": "user", "content": result},)
    if not isinstance(result, (list, tuple)) or not result:
        return None
    messages = []
    for message in result:
        if not (
            isinstance(message, Mapping)
            and set(message) == {"role", "content"}
            and message["role"] in ROLES
            and isinstance(message["content"], str)
        ):
            return None
        messages.append({"role": message["role"], "content": message["content"]})
    return tuple(messages)


# --- the entry point ------------------------------------------------------------------------


def render_messages(
    suite: Suite, version: Version, vars: Mapping[str, Any], case: Case | None = None
) -> tuple[dict[str, Any], ...]:
    """The chat messages of ``version`` for one case's ``vars``.

    With ``case`` given, errors point at the case (its file:line) and name it; otherwise they
    point at the version.
    """
    location = (case.location if case else None) or version.location or suite.location
    subject = (
        f"case `{case.id}`, version `{version.label}`" if case else f"version `{version.label}`"
    )
    if version.kind == "python":
        ref = version.python or ""
        builder = resolve_builder(ref, [suite.file.parent], version.location)
        try:
            result = builder(**dict(vars))
        except Exception as exc:  # the repository's code failed for this case's vars
            raise SuiteError(
                f"{subject}: prompt builder `{ref}` raised {type(exc).__name__}: {exc}", location
            ) from None
        messages = _builder_messages(result)
        if messages is None:
            raise SuiteError(
                f"{subject}: prompt builder `{ref}` returned {type(result).__name__}; expected a "
                "string (the user message) or a non-empty list of {role, content}",
                location,
                f"roles are {', '.join(ROLES)}; every content is a string",
            )
        return messages
    rendered = []
    for template in version.messages:
        try:
            content = _render_template(template.content, vars)
            image = _render_template(template.image, vars) if template.image else None
        except Exception as exc:  # Jinja raises many types; each becomes one readable message
            hint = None
            if "is not defined" in _describe_template_failure(exc):
                hint = "add the variable to the case's `vars`, or guard it with `{% if name is defined %}`"
            raise SuiteError(
                f"{subject}: {_describe_template_failure(exc)}", location, hint
            ) from None
        message: dict[str, Any] = {"role": template.role, "content": content}
        if image is not None:
            url = image_url(image.strip(), suite.file.parent, subject, location)
            message["content"] = [
                *([{"type": "text", "text": content}] if content else []),
                {"type": "image_url", "image_url": {"url": url}},
            ]
        if template.tool_calls:
            message["tool_calls"] = [dict(call) for call in template.tool_calls]
            if not content:
                message["content"] = None  # what the API sends for a calls-only turn
        if template.tool_call_id is not None:
            message["tool_call_id"] = template.tool_call_id
        rendered.append(message)
    return tuple(rendered)


def image_url(image: str, suite_dir: Path, subject: str, location: Location | None) -> str:
    """An image reference as the URL an OpenAI content part carries: http(s) and data: URLs as
    given, a file (relative to the suite's directory) as a base64 data: URL."""
    if image.startswith(("http://", "https://", "data:")):
        return image
    path = (suite_dir / image).resolve()
    media = _IMAGE_TYPES.get(path.suffix.lower())
    hint = "give an http(s):// URL, a data: URL, or a .png/.jpg/.gif/.webp file next to the suite"
    if media is None:
        raise SuiteError(f"{subject}: image `{image}` is not a known image type", location, hint)
    return _data_url(str(path), media, subject, image, location)


@functools.lru_cache(maxsize=64)
def _data_url(path: str, media: str, subject: str, shown: str, location: Location | None) -> str:
    import base64

    hint = "the path is relative to the suite's directory"
    try:
        size = Path(path).stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise SuiteError(
                f"{subject}: image `{shown}` is {size:,} bytes, over {MAX_IMAGE_BYTES:,}",
                location,
                "resize it: it is sent with every call",
            )
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SuiteError(
            f"{subject}: cannot read image `{shown}`: {exc.strerror or exc}", location, hint
        ) from None
    return f"data:{media};base64,{base64.b64encode(data).decode('ascii')}"
