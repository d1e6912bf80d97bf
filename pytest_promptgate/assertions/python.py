"""``python`` checks: a user's function decides (``module:function`` or ``file.py:function``).

What belongs here: importing and calling user code as a check. The function is imported with
the suite's directory and the rootdir on ``sys.path`` (a ``file.py`` path is relative to the
suite) and called as ``fn(output, context)`` with context ``{vars, messages, model, config,
call}``; ``call`` holds ``cost_usd, latency_ms, prompt_tokens, completion_tokens, cached,
tool_calls`` (``[{id, name, arguments, raw_arguments}]``), ``finish_reason`` and
``structured`` (copies: a check cannot change what the next check sees). A value
``{function: ..., threshold: 0.7, config: {...}}`` sets the pass mark of a returned score.
Sync checks run on the event loop, so they must be quick (or ``async``). An import problem or
an exception is a failed check that fails even when negated.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import inspect
import math
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pytest_promptgate.assertions.registry import (
    DEFAULT_SCORE_THRESHOLD,
    CheckContext,
    CheckOutcome,
    builtin,
    to_outcome,
)
from pytest_promptgate.assertions.values import describe_exception, is_number
from pytest_promptgate.model import ProviderFailure, tool_call_to_dict

_MODULE_REF = re.compile(
    r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<function>[A-Za-z_]\w*)$"
)
_FILE_REF = re.compile(r"^(?P<path>.+\.py):(?P<function>[A-Za-z_]\w*)$")
_PYTHON_KEYS = ("function", "threshold", "config")
_FUNCTION_CACHE: dict[tuple[str, str, str], Callable[..., Any]] = {}


class _CheckSetupError(Exception):
    """A python check cannot be imported or is not callable."""


def _python_settings(value: Any) -> tuple[str, float, Any]:
    if isinstance(value, str):
        return value, DEFAULT_SCORE_THRESHOLD, None
    threshold = value.get("threshold", DEFAULT_SCORE_THRESHOLD)
    return value["function"], float(threshold), value.get("config")


def _validate_python(value: Any, suite_dir: Path) -> None:
    example = (
        "{python: checks.py:is_polite} or {python: {function: mypkg.checks:score, threshold: 0.7}}"
    )
    if isinstance(value, dict):
        unknown = sorted(str(k) for k in value if k not in _PYTHON_KEYS)
        if unknown or "function" not in value:
            raise ValueError(
                f"python check mapping needs 'function' (and optional threshold, config); write {example}"
            )
        threshold = value.get("threshold", DEFAULT_SCORE_THRESHOLD)
        if not is_number(threshold) or not math.isfinite(threshold):
            raise ValueError(
                f"python check threshold must be a number, got {threshold!r}; e.g. threshold: 0.7"
            )
        ref = value["function"]
    else:
        ref = value
    if not isinstance(ref, str) or not (_MODULE_REF.match(ref) or _FILE_REF.match(ref)):
        raise ValueError(
            f"python check {ref!r} is not of the form module:function or path/to/file.py:function; write {example}"
        )
    file_match = _FILE_REF.match(ref)  # "checks.py:fn" is a file, not a module "checks.py"
    if file_match:
        path = Path(file_match.group("path"))
        candidates = [path] if path.is_absolute() else [Path(suite_dir) / path, Path.cwd() / path]
        if not any(p.is_file() for p in candidates):
            raise ValueError(
                f"python check file {str(path)!r} not found next to the suite; give a path relative to the suite file"
            )


def _resolve_function(ref: str, suite_dir: Path, rootdir: Path | None) -> Callable[..., Any]:
    key = (ref, str(suite_dir), str(rootdir))
    cached = _FUNCTION_CACHE.get(key)
    if cached is not None:
        return cached
    search_dirs = [str(suite_dir)] + ([str(rootdir)] if rootdir is not None else [])
    file_match = _FILE_REF.match(ref)
    if file_match:
        target, function_name = file_match.group("path"), file_match.group("function")
        module = _import_file(target, suite_dir, rootdir, search_dirs)
    else:
        module_match = _MODULE_REF.match(ref)
        assert module_match is not None  # validated at load time
        target, function_name = module_match.group("module"), module_match.group("function")
        with _extra_sys_path(search_dirs):
            importlib.invalidate_caches()  # the module may have been written after start-up
            try:
                module = importlib.import_module(target)
            except Exception as exc:
                raise _CheckSetupError(
                    f"cannot import {target}: {describe_exception(exc)}"
                ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise _CheckSetupError(f"{target} has no function {function_name!r}")
    _FUNCTION_CACHE[key] = function
    return function


def _import_file(target: str, suite_dir: Path, rootdir: Path | None, search_dirs: list[str]) -> Any:
    path = Path(target)
    if not path.is_absolute():
        candidates = (
            [Path(suite_dir) / path]
            + ([Path(rootdir) / path] if rootdir is not None else [])
            + [Path.cwd() / path]
        )
        path = next((p for p in candidates if p.is_file()), candidates[0])
    path = path.resolve()
    if not path.is_file():
        raise _CheckSetupError(f"python check file {target!r} not found")
    # One module per file path, so two suites' checks.py files do not shadow each other.
    module_name = "_promptgate_check_" + hashlib.sha256(str(path).encode()).hexdigest()[:16]
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise _CheckSetupError(f"cannot load {target}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        with _extra_sys_path([str(path.parent)] + search_dirs):
            spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise _CheckSetupError(f"cannot import {target}: {describe_exception(exc)}") from None
    return module


@contextmanager
def _extra_sys_path(dirs: Sequence[str]) -> Iterator[None]:
    added = [d for d in dict.fromkeys(dirs) if d not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for directory in added:
            try:
                sys.path.remove(directory)
            except ValueError:
                pass


@builtin("python", validate=_validate_python)
async def check_python(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    ref, threshold, config = _python_settings(value)
    who = f"python check {ref}"
    try:
        function = _resolve_function(ref, ctx.suite_dir, ctx.rootdir)
    except _CheckSetupError as exc:
        return CheckOutcome(False, f"{who}: {exc}", undecided=True)
    context = {
        "vars": dict(ctx.vars),
        "messages": [dict(m) for m in ctx.messages],
        "model": ctx.model,
        "config": config,
        "call": {
            "cost_usd": ctx.call.cost_usd,
            "latency_ms": ctx.call.latency_ms,
            "prompt_tokens": ctx.call.prompt_tokens,
            "completion_tokens": ctx.call.completion_tokens,
            "cached": ctx.call.cached,
            # What the model returned besides text (issue 13), as JSON-able copies.
            "tool_calls": copy.deepcopy([tool_call_to_dict(t) for t in ctx.call.tool_calls]),
            "finish_reason": ctx.call.finish_reason,
            "structured": copy.deepcopy(ctx.call.structured),
        },
    }
    try:
        returned = function(output, context)
        if inspect.isawaitable(returned):
            returned = await returned
    except ProviderFailure:
        raise
    except (Exception, SystemExit) as exc:  # the user's code: report it, keep the run going
        return CheckOutcome(False, f"{who} raised {describe_exception(exc)}", undecided=True)
    return to_outcome(returned, who=who, threshold=threshold)
