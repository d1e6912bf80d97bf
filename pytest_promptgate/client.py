"""One model call through litellm, with our own retries, backoff, Retry-After, timeout and cost.

litellm is imported lazily (first call), because importing it costs ~3 s and a run whose every
call is a cache hit must not pay for it. We pass ``max_retries=0`` and a ``timeout`` on every
call and retry here: litellm's own retries need ``tenacity`` (not installed) and silently
change behaviour (see /work/shared/notes/litellm.md).

Provider failures never raise: they come back as ``CallResult(output=None, error=..., error_kind=...)``
with every secret scrubbed from the message.

Failures that cannot heal are not retried. ``classify`` reads the exception type *and* its
message, because litellm reports some configuration errors as a 500 (a missing API key is an
``InternalServerError`` saying "Missing credentials"). Authentication, permission, missing
credentials and unknown model are *model-fatal*: ``ModelHealth`` then ends the remaining calls
for that model at once ("not attempted: ..."), so 1,000 cases without a key make no doomed
requests. Bad requests and context-window errors are not retried but concern one call only.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import logging
import os
import random
import re
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from pytest_promptgate.cache import public_params
from pytest_promptgate.model import CallRequest, CallResult
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

TRANSIENT_KINDS = frozenset({"rate_limit", "server", "timeout", "connection", "malformed"})
# Failures that say the model cannot be used at all with these settings: no retry, and after
# ModelHealth.CONFIRMATIONS of them (with no answer in between) no further call to that model.
MODEL_FATAL_KINDS = frozenset({"auth", "permission", "credentials", "model_not_found"})
# Failures of one request (its content or size): no retry, but other calls may still succeed.
REQUEST_FATAL_KINDS = frozenset({"bad_request", "context_window", "content_policy"})

_SECRET_ENV_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=\-]+", re.IGNORECASE)
_SK = re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}")
_REDACTED = "[redacted]"

_litellm: Any = None
_warmed = False
_local_registered = False
_unpriced_models: set[str] = set()


def unknown_params(params: Mapping[str, Any]) -> list[str]:
    """Params keys litellm does not know (or that the client sets itself), sorted."""
    return sorted(k for k in params if k not in KNOWN_PARAMS)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without secret values: env vars named *_KEY/_TOKEN/_SECRET/_PASSWORD, Bearer and
    sk- tokens, and the extra ``secrets`` given (such as the request's ``api_key``)."""
    values = {v for v in secrets if isinstance(v, str) and len(v) >= 6}
    values |= {
        value
        for name, value in os.environ.items()
        if name.upper().endswith(_SECRET_ENV_SUFFIXES) and len(value) >= 6
    }
    for value in sorted(values, key=len, reverse=True):  # longest first: one may contain another
        text = text.replace(value, _REDACTED)
    text = _BEARER.sub(lambda m: m.group(1) + _REDACTED, text)
    return _SK.sub("sk-" + _REDACTED, text)


def import_litellm() -> Any:
    """Import litellm once, offline and quiet."""
    global _litellm
    if _litellm is None:
        # Without these, importing litellm fetches its price map from the internet (5 s
        # timeout) and token counting downloads tokenizers. The user's own setting wins.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
        with warnings.catch_warnings():  # its dependencies' deprecation chatter is not the user's
            warnings.simplefilter("ignore")
            import litellm

        litellm.suppress_debug_info = True  # otherwise every exception prints a help banner
        for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        _litellm = litellm
    return _litellm


async def warm_up() -> Any:
    """Import litellm and make one offline ``mock_response`` call: litellm loads much of itself
    lazily on its first call (~0.2 s of CPU, and pydantic warnings about its own types), which
    would otherwise land on the first real request and in the user's warning summary."""
    global _warmed
    litellm = import_litellm()
    if _warmed:
        return litellm
    _warmed = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            await litellm.acompletion(
                model="openai/promptgate-warm-up",
                messages=[{"role": "user", "content": "."}],
                mock_response=".",
            )
        except Exception:
            pass
    return litellm


class AttemptGate(Protocol):
    """What the runner's throttle offers the client (see ratelimit.Throttle)."""

    def slot(self, model: str) -> AbstractAsyncContextManager[None]: ...

    def note_outcome(self, model: str, rate_limited: bool, delay_s: float) -> bool: ...


class Failure(Exception):
    """An attempt that failed, already classified (see ``classify``)."""

    def __init__(
        self, kind: str, status: int | None, message: str, retry_after_s: float | None = None
    ):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.message = message
        self.retry_after_s = retry_after_s

    @property
    def transient(self) -> bool:
        """Worth retrying: the same request may succeed later."""
        return self.kind in TRANSIENT_KINDS

    @property
    def model_fatal(self) -> bool:
        """No call to this model (with these credentials and endpoint) can succeed."""
        return self.kind in MODEL_FATAL_KINDS


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
                        error=scrub(_not_attempted(req.model, disabled, attempt), secrets),
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
                    cost_usd=_cost(litellm, req.model, response),
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
                    error=_describe(req, failure, attempt, secrets),
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


def _cost(litellm: Any, model: str, response: Any) -> float | None:
    """USD cost of one reply, None when the price is unknown (never a made-up 0)."""
    if model.startswith("local/"):
        return 0.0
    hidden = getattr(response, "_hidden_params", None) or {}
    if "response_cost" in hidden:  # litellm already priced it; None means it could not
        cost = hidden["response_cost"]
        return float(cost) if cost is not None else None
    if model in _unpriced_models:  # a failed lookup costs ~1 ms of CPU: do it once per model
        return None
    try:
        return float(litellm.completion_cost(completion_response=response, model=model))
    except Exception:
        _unpriced_models.add(model)
        return None


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


def _retry_after_s(exc: BaseException) -> float | None:
    headers: Any = getattr(exc, "litellm_response_headers", None)
    if not headers:
        headers = getattr(getattr(exc, "response", None), "headers", None)
    if not headers:
        return None
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return float(millis) / 1000.0
        value = headers.get("retry-after")
    except Exception:
        return None
    return parse_retry_after(value)


def parse_retry_after(value: Any, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After value: a number of seconds or an HTTP date."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


# Message fragments that identify configuration errors whatever class or status litellm gives
# them (a missing key arrives as InternalServerError 500). Checked in this order, lowercased.
_MESSAGE_KINDS = (
    (
        "credentials",
        re.compile(
            r"missing credentials|missing (?:\w+ )?api key|api key is missing|no api key"
            r"|api_key client option must be set"
        ),
    ),
    (
        "auth",
        re.compile(
            r"invalid api key|incorrect api key|invalid x-api-key|invalid_api_key"
            r"|invalid authentication|authentication failed"
        ),
    ),
    (
        "model_not_found",
        re.compile(
            r"model_not_found|llm provider not provided|model not found|unknown model"
            r"|does not exist or you do not have access|no such model"
        ),
    ),
    (
        "context_window",
        re.compile(
            r"context_length_exceeded|maximum context length|context window|prompt is too long"
        ),
    ),
)
# Exception class names (litellm's own and the openai SDK's) that settle the kind by themselves.
_CLASS_KINDS = (
    ("ContextWindowExceededError", "context_window"),
    ("ContentPolicyViolationError", "content_policy"),
    ("AuthenticationError", "auth"),
    ("PermissionDeniedError", "permission"),
    ("NotFoundError", "model_not_found"),
)


def classify(exc: BaseException) -> Failure:
    """The kind of one failed attempt, from the exception's class, status *and* message.

    Kinds: transient (``TRANSIENT_KINDS``: retried), model-fatal (``MODEL_FATAL_KINDS``: not
    retried, and the model is disabled by ``ModelHealth``) and request-fatal
    (``REQUEST_FATAL_KINDS``: not retried, this call only).
    """
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    names = {cls.__name__ for cls in type(exc).__mro__}
    name = type(exc).__name__
    text = str(getattr(exc, "message", None) or exc)
    lowered = text.lower()
    by_message = next(
        (kind for kind, pattern in _MESSAGE_KINDS if pattern.search(lowered)),
        None,
    )
    by_class = next((kind for cls, kind in _CLASS_KINDS if cls in names), None)
    kind: str
    if by_message == "credentials":
        kind = "credentials"  # before the status: litellm says 500 or 401 for it
    elif by_class in ("context_window", "content_policy") or by_message == "context_window":
        kind = "context_window" if by_class != "content_policy" else "content_policy"
    # litellm maps dropped sockets and unparsable bodies to InternalServerError (500), so the
    # message is the only way to tell them from a real 500.
    elif isinstance(exc, asyncio.TimeoutError) or "Timeout" in name or status == 408:
        kind = "timeout"
    elif "connection error" in lowered or "APIConnectionError" in name or "ConnectError" in name:
        kind = "connection"
    elif "empty or invalid response" in lowered or "JSONDecodeError" in name:
        kind = "malformed"
    elif status == 429:
        kind = "rate_limit"
    elif status == 401 or by_class == "auth" or (by_message == "auth" and status != 403):
        kind = "auth"
    elif status == 403 or by_class == "permission":
        kind = "permission"
    elif by_class == "model_not_found" or status == 404 or by_message == "model_not_found":
        kind = "model_not_found"
    elif status is not None and 400 <= status < 500 and status != 409:
        kind = "bad_request"
    elif status is None or status == 409 or status >= 500:
        kind = "server"
    else:
        kind = "bad_request"
    if isinstance(exc, asyncio.TimeoutError):
        text = "no reply within the timeout"
    return Failure(kind, status, text, _retry_after_s(exc) if kind == "rate_limit" else None)


_KIND_WORDS = {
    "rate_limit": "rate limit",
    "server": "server error",
    "auth": "authentication failed",
    "permission": "permission denied",
    "credentials": "missing credentials",
    "model_not_found": "unknown model",
    "bad_request": "bad request",
    "context_window": "prompt too long for the context window",
    "content_policy": "refused by the content policy",
    "timeout": "timed out",
    "connection": "connection failed",
    "malformed": "malformed reply",
}


def _describe(req: CallRequest, failure: Failure, attempts: int, secrets: list[str]) -> str:
    provider = req.model.split("/", 1)[0] if "/" in req.model else "provider"
    status = f" {failure.status}" if failure.status is not None else ""
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    detail = failure.message.strip()
    return scrub(
        f"{provider}{status} {_KIND_WORDS.get(failure.kind, failure.kind)} for model {req.model}{tries}: {detail}",
        secrets,
    )


def _not_attempted(model: str, failure: Failure, attempts: int) -> str:
    """The short reason given to every call of a disabled model after the first failures."""
    what = _KIND_WORDS.get(failure.kind, failure.kind)
    started = f"stopped after {attempts} attempt(s)" if attempts else "not attempted"
    return (
        f"{started}: {what} for {model} (the model's first failed call has the provider's message)"
    )
