"""One model call through litellm, with our own retries, backoff, Retry-After, timeout and cost.

litellm is imported lazily (first call), because importing it costs ~3 s and a run whose every
call is a cache hit must not pay for it. We pass ``max_retries=0`` and a ``timeout`` on every
call and retry here: litellm's own retries need ``tenacity`` (not installed) and silently
change behaviour (see /work/shared/notes/litellm.md).

Provider failures never raise: they come back as ``CallResult(output=None, error=..., error_kind=...)``
with every secret scrubbed from the message.
"""

from __future__ import annotations

import asyncio
import email.utils
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


class _Failure(Exception):
    """An attempt that failed, already classified."""

    def __init__(
        self, kind: str, status: int | None, message: str, retry_after_s: float | None = None
    ):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.message = message
        self.retry_after_s = retry_after_s


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
        attempt = 0
        paced = 0  # 429s that said when to come back (Retry-After)
        while True:
            attempt += 1
            failure: _Failure | None = None
            started = time.perf_counter()
            try:
                if gate is None:
                    response = await self._call(litellm, req.model, messages, params)
                else:
                    async with gate.slot(req.model):
                        started = time.perf_counter()
                        response = await self._call(litellm, req.model, messages, params)
                latency_ms = (time.perf_counter() - started) * 1000.0
                output = _content(response)
                if not output:
                    raise _Failure("malformed", None, "the reply had no choices or empty content")
            except asyncio.CancelledError:
                raise
            except Refused as refusal:  # the throttle stopped this attempt before it was sent
                return CallResult(
                    output=None,
                    error=refusal.message,
                    error_kind=refusal.kind,
                    attempts=attempt - 1,
                )
            except _Failure as exc:
                failure = exc
            except Exception as exc:  # litellm raises many unrelated classes; classify them all
                failure = _classify(exc)

            if failure is None:
                if gate is not None:
                    gate.note_outcome(req.model, False, 0.0)
                usage = getattr(response, "usage", None)
                return CallResult(
                    output=output,
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
                retry = failure.kind in TRANSIENT_KINDS and attempt - paced <= self.retries
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


def _retry_after_s(exc: Exception) -> float | None:
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


def _classify(exc: Exception) -> _Failure:
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    name = type(exc).__name__
    text = str(getattr(exc, "message", None) or exc)
    lowered = text.lower()
    # litellm maps dropped sockets and unparsable bodies to InternalServerError (500), so the
    # message is the only way to tell them from a real 500.
    if isinstance(exc, asyncio.TimeoutError) or "Timeout" in name or status == 408:
        kind = "timeout"
    elif "connection error" in lowered or "APIConnectionError" in name or "ConnectError" in name:
        kind = "connection"
    elif "empty or invalid response" in lowered or "JSONDecodeError" in name:
        kind = "malformed"
    elif status == 429:
        kind = "rate_limit"
    elif status in (401, 403):
        kind = "auth"
    elif status is not None and 400 <= status < 500 and status != 409:
        kind = "bad_request"
    elif status is None or status == 409 or status >= 500:
        kind = "server"
    else:
        kind = "bad_request"
    if isinstance(exc, asyncio.TimeoutError):
        text = "no reply within the timeout"
    return _Failure(kind, status, text, _retry_after_s(exc) if kind == "rate_limit" else None)


_KIND_WORDS = {
    "rate_limit": "rate limit",
    "server": "server error",
    "auth": "authentication failed",
    "bad_request": "bad request",
    "timeout": "timed out",
    "connection": "connection failed",
    "malformed": "malformed reply",
}


def _describe(req: CallRequest, failure: _Failure, attempts: int, secrets: list[str]) -> str:
    provider = req.model.split("/", 1)[0] if "/" in req.model else "provider"
    status = f" {failure.status}" if failure.status is not None else ""
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    detail = failure.message.strip()
    return scrub(
        f"{provider}{status} {_KIND_WORDS.get(failure.kind, failure.kind)} for model {req.model}{tries}: {detail}",
        secrets,
    )
