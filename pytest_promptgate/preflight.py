"""Before the first model call: does every model that will be called have its credentials?

Without this, a run with no API key sends every case to the provider, and each comes back as
an error (litellm even reports a missing key as a server error). Here the run stops first,
with one line per model: which variable is missing, which suites use the model, and the two
ways on without a key. Only calls that will really be made count: a fully cached or replayed
run needs no key and is never stopped.

The variables a model needs come from ``litellm.validate_environment``. For the common
providers a table answers without importing litellm (the import takes 2-3 s, longer than the
whole check is allowed to take); ``tests/unit/test_preflight.py`` checks the table against
litellm, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

LOCAL_MODEL = "local/smollm2"

# provider prefix -> the environment variables litellm.validate_environment asks for (all of
# them are needed). Models without a prefix that litellm maps to a provider by name: see
# _BARE_PREFIXES.
KNOWN_PROVIDER_KEYS: Mapping[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "groq": ("GROQ_API_KEY",),
    "mistral": ("MISTRAL_API_KEY",),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "xai": ("XAI_API_KEY",),
    "openrouter": ("OPENROUTER_API_KEY",),
    "together_ai": ("TOGETHERAI_API_KEY",),
    "fireworks_ai": ("FIREWORKS_AI_API_KEY",),
    "cohere": ("COHERE_API_KEY",),
}
# Bare model names litellm routes to OpenAI (``gpt-4o-mini`` means ``openai/gpt-4o-mini``).
_BARE_PREFIXES = (("gpt-", "openai"), ("o1", "openai"), ("o3", "openai"), ("o4-", "openai"))


@dataclass(frozen=True)
class ModelUse:
    """One model a run will call, with the params that may carry its credentials and the
    suites (files) that use it."""

    model: str
    params: Mapping[str, Any]
    suites: tuple[str, ...]


Job = TypeVar("Job")


def credential_problems(
    jobs: Iterable[Job],
    is_uncached: Callable[[Job], bool] = lambda job: True,
    *,
    cache_exists: bool = False,
    environ: Mapping[str, str] | None = None,
    required_env: Callable[[str, Mapping[str, Any]], list[str] | None] | None = None,
) -> list[str]:
    """One problem line per model that will be called without its credentials.

    ``jobs``: the runner's jobs (anything with ``model``, ``params`` and ``location``/
    ``node_id``) or ``(model, params, suite)`` tuples. ``is_uncached(job)``: will this job
    call the model (False for a cache hit or a replay). ``cache_exists``: a response cache
    is there to replay from, so the message offers ``--promptgate-replay``.
    ``required_env(model, params)``: the missing variables (default: ``missing_env``).
    An empty list means the run may start.
    """
    env = os.environ if environ is None else environ
    missing_for = required_env or (lambda model, params: missing_env(model, params, env))
    uses = models_to_call(jobs, is_uncached)
    problems = []
    for use in uses:
        if use.model.startswith("local/"):
            problem = _local_problem(use.model)
            if problem:
                problems.append(f"{problem} (used by {_suites(use.suites)})")
            continue
        missing = missing_for(use.model, use.params)
        if not missing:
            continue
        problems.append(_missing_line(use, missing, cache_exists))
    return problems


def missing_credentials(
    jobs: Sequence[Any], calls_model: Callable[[Any], bool], *, cache_exists: bool
) -> list[str]:
    """``credential_problems`` for a run's jobs, cheap when the keys are set: the cache
    (``calls_model(job)``: will some sample of ``job`` call the model) is read only for the
    models that lack a key, and litellm is imported only for a provider the table does not
    know whose calls are not all cached. The bundled local model needs no key (a missing
    model file is said up front by the plugin, and per call by the client)."""
    groups: dict[tuple[str, str, bool], list[Any]] = {}
    for job in jobs:
        if job.model.startswith("local/"):
            continue
        params = job.params or {}
        key = (job.model, str(params.get("api_base") or ""), bool(params.get("api_key")))
        groups.setdefault(key, []).append(job)
    calling: list[Any] = []
    for (model, _, has_key), group in groups.items():
        known = known_env(model)
        if has_key or (known and all(os.environ.get(name) for name in known)):
            continue
        calling += [job for job in group if calls_model(job)]
    if not calling:
        return []
    return credential_problems(calling, cache_exists=cache_exists)


def models_to_call(jobs: Iterable[Any], is_uncached: Callable[[Any], bool]) -> list[ModelUse]:
    """The distinct (model, credential params) pairs of the jobs that will call a model, in
    first-seen order, each with the suites that use it."""
    found: dict[tuple[str, str, bool], tuple[str, Mapping[str, Any], list[str]]] = {}
    for job in jobs:
        if not is_uncached(job):
            continue
        model, params, suite = _unpack(job)
        key = (model, str(params.get("api_base") or ""), bool(params.get("api_key")))
        entry = found.setdefault(key, (model, params, []))
        if suite and suite not in entry[2]:
            entry[2].append(suite)
    return [ModelUse(model, params, tuple(suites)) for model, params, suites in found.values()]


def missing_env(
    model: str, params: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> list[str]:
    """The environment variables ``model`` needs that are not set (empty counts as unset);
    [] when a param supplies the key or litellm does not know what the model needs."""
    env = os.environ if environ is None else environ
    if params.get("api_key"):
        return []
    needed = _known_keys(model)
    if needed is None:
        needed = _litellm_keys(model, params)
    return [name for name in needed if not env.get(name)]


def known_env(model: str) -> tuple[str, ...]:
    """The variables a model of a common provider needs, () when the table does not say
    (no litellm import: for messages)."""
    return _known_keys(model) or ()


def _known_keys(model: str) -> tuple[str, ...] | None:
    provider, _, rest = model.partition("/")
    if rest and provider in KNOWN_PROVIDER_KEYS:
        return KNOWN_PROVIDER_KEYS[provider]
    if not rest:
        for prefix, bare_provider in _BARE_PREFIXES:
            if model.startswith(prefix):
                return KNOWN_PROVIDER_KEYS[bare_provider]
    return None


def _litellm_keys(model: str, params: Mapping[str, Any]) -> tuple[str, ...]:
    """Ask litellm (imported here only for providers the table does not know)."""
    from pytest_promptgate.litellm_setup import import_litellm

    try:
        answer = import_litellm().validate_environment(
            model=model,
            api_key=params.get("api_key"),
            api_base=params.get("api_base") or params.get("base_url"),
        )
    except Exception:  # litellm could not tell: the call itself will say what is wrong
        return ()
    missing = answer.get("missing_keys") or []
    # validate_environment reports only what is missing from *its* view of the environment;
    # return them all so that the caller's environ decides.
    return tuple(str(name) for name in missing)


def _local_problem(model: str) -> str | None:
    from pytest_promptgate.local import check_local_model
    from pytest_promptgate.model import PromptgateError

    try:
        check_local_model(model)
    except PromptgateError as exc:
        return exc.message + (f"; {exc.hint}" if exc.hint else "")
    return None


def _missing_line(use: ModelUse, missing: Sequence[str], cache_exists: bool) -> str:
    # litellm lists alternatives (Gemini: GOOGLE_API_KEY or GEMINI_API_KEY) and joint needs
    # (Azure: key, base and version) alike, so several names are listed without and/or.
    needs = (
        f"needs {missing[0]}, which is not set"
        if len(missing) == 1
        else f"needs credentials that are not set ({', '.join(missing)})"
    )
    ways = f"--promptgate-model {LOCAL_MODEL} (the bundled model)"
    if cache_exists:
        ways += ", or --promptgate-replay (answers from the response cache)"
    return (
        f"{use.model} {needs} (used by {_suites(use.suites)}); set it, or run without a key: {ways}"
    )


def _suites(suites: Sequence[str]) -> str:
    if not suites:
        return "the selected cases"
    shown = ", ".join(suites[:3])
    return shown + (f" and {len(suites) - 3} more" if len(suites) > 3 else "")


def _unpack(job: Any) -> tuple[str, Mapping[str, Any], str]:
    if isinstance(job, tuple):
        model, params, suite = job
        return str(model), params or {}, str(suite or "")
    location = getattr(job, "location", None)
    suite = ""
    if location is not None and getattr(location, "file", None):
        suite = _display_path(str(location.file), getattr(job, "rootdir", None))
    elif getattr(job, "node_id", None):
        suite = str(job.node_id).split("::", 1)[0]
    return str(job.model), getattr(job, "params", None) or {}, suite


def _display_path(file: str, rootdir: Path | None) -> str:
    if rootdir is not None:
        try:
            return Path(file).resolve().relative_to(Path(rootdir).resolve()).as_posix()
        except ValueError:
            pass
    return file
