"""Provider failures: what kind each one is, what to retry, and how to say it without secrets.

``classify`` reads the exception type *and* its message, because litellm reports some
configuration errors as a 500 (a missing API key is an ``InternalServerError`` saying "Missing
credentials"). Authentication, permission, missing credentials and unknown model are
*model-fatal* (``client.ModelHealth`` then ends the remaining calls for that model at once);
bad requests and context-window errors are not retried but concern one call only; the rest is
transient and retried. Messages can contain request details: ``scrub`` removes secrets.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import re
import time
from collections.abc import Iterable
from typing import Any

from pytest_promptgate.model import CallRequest

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


def describe_failure(req: CallRequest, failure: Failure, attempts: int, secrets: list[str]) -> str:
    provider = req.model.split("/", 1)[0] if "/" in req.model else "provider"
    status = f" {failure.status}" if failure.status is not None else ""
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    detail = failure.message.strip()
    return scrub(
        f"{provider}{status} {_KIND_WORDS.get(failure.kind, failure.kind)} for model {req.model}{tries}: {detail}",
        secrets,
    )


def not_attempted(model: str, failure: Failure, attempts: int) -> str:
    """The short reason given to every call of a disabled model after the first failures."""
    what = _KIND_WORDS.get(failure.kind, failure.kind)
    started = f"stopped after {attempts} attempt(s)" if attempts else "not attempted"
    return (
        f"{started}: {what} for {model} (the model's first failed call has the provider's message)"
    )
