"""One model call through litellm, with our own retries, backoff, Retry-After, timeout and cost.

litellm is imported lazily (``litellm_setup``), because importing it costs ~2-3 s and a run
whose every call is a cache hit must not pay for it. We pass ``max_retries=0`` and a
``timeout`` on every call and retry here: litellm's own retries need ``tenacity`` (not
installed) and silently change behaviour (see /work/shared/notes/litellm.md).

Provider failures never raise: they come back as ``CallResult(output=None, error=..., error_kind=...)``
with every secret scrubbed from the message. What kind a failure is, and so whether it is
retried, is decided in ``provider_errors``; ``ModelHealth`` here ends the remaining calls of a
model whose credentials or name cannot work ("not attempted: ..."), so 1,000 cases without a
key make no doomed requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from pytest_promptgate.cache import public_params
from pytest_promptgate.litellm_setup import import_litellm, warm_up
from pytest_promptgate.model import CallRequest, CallResult
from pytest_promptgate.pricing import reply_cost
from pytest_promptgate.provider_errors import (
    Failure,
    classify,
    describe_failure,
    not_attempted,
    scrub,
)
from pytest_promptgate.ratelimit import Refused

# Keys a suite may put in ``params``; anything else is forwarded into the request body by
# litellm, so the plugin warns about it (a typo like ``temprature`` would otherwise be silent).
KNOWN_PARAMS = frozenset(
    {
        # OpenAI chat parameters
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "n",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "functions",
        "function_call",
        "user",
        "reasoning_effort",
        "modalities",
        "audio",
        "prediction",
        "web_search_options",
        "service_tier",
        "store",
        "metadata",
        "stream_options",
        # other providers' sampling knobs that litellm maps
        "top_k",
        "thinking",
        # endpoint, credentials and litellm routing
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "organization",
        "deployment_id",
        "custom_llm_provider",
        "extra_headers",
        "headers",
        "extra_body",
        "drop_params",
        "input_cost_per_token",
        "output_cost_per_token",
        "mock_response",
        "aws_region_name",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "aws_profile_name",
        "vertex_project",
        "vertex_location",
        "vertex_credentials",
    }
)
# How many Retry-After 429s one call may wait out before it is reported as rate limited.
PACED_RETRIES = 10

# Set by the client itself on every call; a suite value would clash or defeat our retries.
RESERVED_PARAMS = frozenset(
    {"model", "messages", "timeout", "max_retries", "num_retries", "stream"}
)

_local_registered = False


def unknown_params(params: Mapping[str, Any]) -> list[str]:
    """Params keys litellm does not know (or that the client sets itself), sorted."""
    return sorted(k for k in params if k not in KNOWN_PARAMS)


class AttemptGate(Protocol):
    """What the runner's throttle offers the client (see ratelimit.Throttle)."""

    def slot(self, model: str) -> AbstractAsyncContextManager[None]: ...

    def note_outcome(self, model: str, rate_limited: bool, delay_s: float) -> bool: ...


class ModelHealth:
    """Per model and endpoint: may a call go ahead? Consulted by ``ModelClient.complete``
    before every attempt; one instance per client, so per run (and per call worker).

    Until a model has answered once, its attempts go one at a time: the first tells whether
    the credentials work, and 99 others do not pile up behind a 401. After CONFIRMATIONS
    model-fatal failures in a row with no answer (two different calls, so one case's odd 401
    does not condemn the rest), the model is disabled: every waiting and later call ends at
    once as "not attempted". Any reply other than a model-fatal failure (an answer, a 429, a
    500) opens the gate: the model is reachable, and then concurrency is back to normal. A
    model that has answered is never disabled (a later 401 is that call's error).
    """

    CONFIRMATIONS = 2

    def __init__(self) -> None:
        self._locks: dict[tuple[str, ...], asyncio.Lock] = {}
        self._open: set[tuple[str, ...]] = set()
        self._answered: set[tuple[str, ...]] = set()
        self._fatal_counts: dict[tuple[str, ...], int] = {}
        self._disabled: dict[tuple[str, ...], Failure] = {}
        self._models: dict[tuple[str, ...], str] = {}

    @staticmethod
    def key(model: str, params: Mapping[str, Any]) -> tuple[str, ...]:
        """Calls share a fate when they share model, endpoint and key (the key is hashed)."""
        api_key = params.get("api_key")
        digest = hashlib.sha256(str(api_key).encode()).hexdigest()[:16] if api_key else ""
        return (model, str(params.get("api_base") or params.get("base_url") or ""), digest)

    async def admit(self, key: tuple[str, ...]) -> tuple[bool, Failure | None]:
        """Wait until an attempt may go: (holds the probe lock, disabling failure or None)."""
        if key in self._disabled:
            return False, self._disabled[key]
        if key in self._open:
            return False, None
        lock = self._locks.setdefault(key, asyncio.Lock())
        await lock.acquire()
        if key in self._disabled or key in self._open:
            lock.release()
            return False, self._disabled.get(key)
        return True, None

    def record(
        self, key: tuple[str, ...], model: str, failure: Failure | None, probing: bool
    ) -> None:
        """The outcome of one attempt (None: answered). Releases the probe lock if held."""
        try:
            if failure is None:
                self._answered.add(key)
                self._open.add(key)
            elif failure.model_fatal:
                if key not in self._answered:
                    count = self._fatal_counts.get(key, 0) + 1
                    self._fatal_counts[key] = count
                    if count >= self.CONFIRMATIONS:
                        self._disabled.setdefault(key, failure)
                        self._models[key] = model
            else:
                self._open.add(key)
        finally:
            if probing:
                self._locks[key].release()

    def release(self, key: tuple[str, ...]) -> None:
        """Give the probe turn back without an outcome (the attempt was never sent)."""
        self._locks[key].release()

    def disabled(self) -> dict[str, str]:
        """Disabled models and the (scrubbed) provider message that disabled each: what a
        runner reports once per model."""
        return {
            self._models[key]: scrub(failure.message) for key, failure in self._disabled.items()
        }


class ModelClient:
    """Calls models through litellm. ``complete`` never raises for a provider failure."""

    def __init__(
        self,
        retries: int = 3,
        timeout_s: float = 60.0,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ):
        self.retries = max(0, int(retries))
        self.timeout_s = float(timeout_s)
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_max_s = float(backoff_max_s)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.health = ModelHealth()

    def backoff_s(self, attempt: int) -> float:
        """Exponential backoff with jitter for the retry after ``attempt`` (1-based).

        Half fixed, half random ("equal jitter"): callers that failed together spread out,
        and no wait is ever close to zero.
        """
        ceiling = min(self.backoff_max_s, self.backoff_base_s * (2 ** (attempt - 1)))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    async def complete(self, req: CallRequest, gate: AttemptGate | None = None) -> CallResult:
        params = {k: v for k, v in req.params.items() if k not in RESERVED_PARAMS}
        secrets = _secret_values(params)
        if req.model.startswith("local/"):
            problem = _ensure_local_provider()
            if problem:
                return CallResult(
                    output=None, error=scrub(problem, secrets), error_kind="config", attempts=0
                )
        try:
            litellm = await warm_up()
        except ImportError as exc:  # pragma: no cover - litellm is a dependency
            return CallResult(
                output=None,
                error=f"litellm is not importable: {exc}",
                error_kind="config",
                attempts=0,
            )

        messages = [dict(m) for m in req.messages]
        # The bundled model needs no credentials and is never disabled: no probe for it.
        health_key = None if req.model.startswith("local/") else self.health.key(req.model, params)
        attempt = 0
        paced = 0  # 429s that said when to come back (Retry-After)
        while True:
            probing = False
            if health_key is not None:
                probing, disabled = await self.health.admit(health_key)
                if disabled is not None:
                    return CallResult(
                        output=None,
                        error=scrub(not_attempted(req.model, disabled, attempt), secrets),
                        error_kind=disabled.kind,
                        attempts=attempt,
                    )
            attempt += 1
            failure: Failure | None = None
            started = time.perf_counter()
            refused: Refused | None = None
            try:
                if gate is None:
                    response = await self._call(litellm, req.model, messages, params)
                else:
                    async with gate.slot(req.model):
                        started = time.perf_counter()
                        response = await self._call(litellm, req.model, messages, params)
                latency_ms = (time.perf_counter() - started) * 1000.0
                output = _content(response)
                extras = reply_extras(response, params)
                if not output and not extras["tool_calls"]:
                    raise Failure("malformed", None, "the reply had no choices or empty content")
            except Refused as exc:  # the throttle stopped this attempt before it was sent
                refused = exc
            except Failure as exc:
                failure = exc
            except Exception as exc:  # litellm raises many unrelated classes; classify them all
                failure = classify(exc)
            except BaseException:  # cancelled or interrupted: hand the probe turn on
                if probing and health_key is not None:
                    self.health.release(health_key)
                raise
            if refused is not None:
                if probing and health_key is not None:
                    self.health.release(health_key)
                return CallResult(
                    output=None,
                    error=refused.message,
                    error_kind=refused.kind,
                    attempts=attempt - 1,
                )
            if health_key is not None:
                self.health.record(health_key, req.model, failure, probing)

            if failure is None:
                if gate is not None:
                    gate.note_outcome(req.model, False, 0.0)
                usage = getattr(response, "usage", None)
                return CallResult(
                    output=output or "",
                    **extras,
                    prompt_tokens=getattr(usage, "prompt_tokens", None),
                    completion_tokens=getattr(usage, "completion_tokens", None),
                    cost_usd=reply_cost(litellm, req.model, params, response),
                    latency_ms=latency_ms,
                    attempts=attempt,
                )

            if failure.kind == "rate_limit" and failure.retry_after_s is not None:
                # The provider told us when to come back: pacing, not a fault. These do not use
                # up the retry budget (a 10% 429 rate would otherwise lose a case now and then),
                # but they are bounded too, and --promptgate-retries 0 still means no retry.
                paced += 1
                retry = self.retries > 0 and paced <= max(self.retries, PACED_RETRIES)
            else:
                retry = failure.transient and attempt - paced <= self.retries
            delay = self.backoff_s(attempt)
            if failure.retry_after_s is not None:
                delay = min(max(failure.retry_after_s, 0.0), self.backoff_max_s)
            waited_by_gate = False
            if gate is not None:
                waited_by_gate = gate.note_outcome(req.model, failure.kind == "rate_limit", delay)
            if not retry:
                return CallResult(
                    output=None,
                    error=describe_failure(req, failure, attempt, secrets),
                    error_kind=failure.kind,
                    attempts=attempt,
                )
            if not waited_by_gate:  # a paused gate already holds every caller back
                await self._sleep(delay)

    async def _call(
        self, litellm: Any, model: str, messages: list[dict], params: dict[str, Any]
    ) -> Any:
        # The outer wait_for is a safety net for a transport that ignores ``timeout``.
        return await asyncio.wait_for(
            litellm.acompletion(
                model=model, messages=messages, timeout=self.timeout_s, max_retries=0, **params
            ),
            timeout=self.timeout_s * 1.5 + 1.0,
        )


def _secret_values(params: Mapping[str, Any]) -> list[str]:
    """String values of the params that are secrets (api_key, extra_headers' values, ...)."""
    public = public_params(params)
    values: list[str] = []
    for name, value in params.items():
        if name in public:
            continue
        if isinstance(value, str):
            values.append(value)
        elif isinstance(value, Mapping):
            values += [v for v in value.values() if isinstance(v, str)]
    return values


def _content(response: Any) -> str | None:
    choices = getattr(response, "choices", None)
    if not choices:
        return None
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    return content if isinstance(content, str) else None


def reply_extras(response: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """Tool calls, finish reason and structured output of a reply, as CallResult keywords.

    ``structured`` is set only when ``params`` asked for JSON (``response_format`` of type
    ``json_object`` or ``json_schema``) and the text parses as JSON.
    """
    from pytest_promptgate.toolcalls import parse_structured, tool_calls_of

    choices = getattr(response, "choices", None)
    choice = choices[0] if choices else None
    message = getattr(choice, "message", None)
    reason = getattr(choice, "finish_reason", None)
    return {
        "tool_calls": tool_calls_of(getattr(message, "tool_calls", None)),
        "finish_reason": reason if isinstance(reason, str) else None,
        "structured": parse_structured(_content(response), params.get("response_format")),
    }


def _ensure_local_provider() -> str | None:
    """Register the bundled ``local/`` provider once; return a problem message or None."""
    global _local_registered
    if _local_registered:
        return None
    try:
        from pytest_promptgate.local import register_local_provider

        register_local_provider()
    except ImportError as exc:
        return f"local models need extra packages: {exc}"
    except Exception as exc:  # the provider explains what is missing (model file, llama.cpp)
        return f"local model provider unavailable: {exc}"
    _local_registered = True
    return None


__all__ = [  # names other modules import from here (the failure kinds live in provider_errors)
    "AttemptGate",
    "KNOWN_PARAMS",
    "ModelClient",
    "ModelHealth",
    "PACED_RETRIES",
    "RESERVED_PARAMS",
    "import_litellm",
    "reply_extras",
    "scrub",
    "unknown_params",
    "warm_up",
]
