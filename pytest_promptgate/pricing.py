"""What one reply cost, and teaching litellm once that a model has no price.

For a model missing from litellm's price map, litellm searches the map again on every call
(12 model-info lookups and ~1,150 regex searches, ~0.8 ms of CPU per call) and still finds
nothing. After the first reply of such a model we register it with price 0, so litellm finds
it at once. That 0 is ours, not a price: every model registered here stays *unpriced* for the
plugin (cost None, never $0), which ``reply_cost`` and ``estimate_calls_cost`` (the budget
estimate) check first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pytest_promptgate.litellm_setup import import_litellm

# Completion length assumed by the budget estimate when params set no max_tokens.
DEFAULT_COMPLETION_TOKENS = 256

# Models registered with price 0 by ``register_unpriced``: their cost is unknown.
_registered_unpriced: set[str] = set()
# Models whose registration failed: the lookup is not retried either.
_unpriced_models: set[str] = set()
_lock = threading.Lock()


def is_unpriced(model: str) -> bool:
    """True when this process found ``model`` has no price (and perhaps registered it at 0)."""
    return model in _registered_unpriced or model in _unpriced_models


def reply_cost(litellm: Any, model: str, params: Mapping[str, Any], response: Any) -> float | None:
    """USD cost of one reply, None when the price is unknown (never a made-up 0)."""
    if model.startswith("local/"):
        return 0.0
    per_call_prices = "input_cost_per_token" in params or "output_cost_per_token" in params
    if is_unpriced(model) and not per_call_prices:  # before response_cost: it may be our 0
        return None
    hidden = getattr(response, "_hidden_params", None) or {}
    if "response_cost" in hidden:  # litellm already priced it; None means it could not
        cost = hidden["response_cost"]
        if cost is not None:
            return float(cost)
    else:
        try:
            return float(litellm.completion_cost(completion_response=response, model=model))
        except Exception:
            pass
    if not per_call_prices:
        register_unpriced(litellm, model, params)
    return None


def register_unpriced(litellm: Any, model: str, params: Mapping[str, Any]) -> None:
    """Register ``model`` with price 0, once (registering clears litellm's lookup caches)."""
    with _lock:
        if is_unpriced(model):
            return
        provider = params.get("custom_llm_provider") or _provider(litellm, model)
        if not provider:
            _unpriced_models.add(model)
            return
        try:
            litellm.register_model(
                {
                    model: {
                        "litellm_provider": provider,
                        "mode": "chat",
                        "input_cost_per_token": 0,
                        "output_cost_per_token": 0,
                    }
                }
            )
        except Exception:  # litellm refused: the model stays unpriced, searched on every call
            _unpriced_models.add(model)
            return
        _registered_unpriced.add(model)


def _provider(litellm: Any, model: str) -> str | None:
    try:
        return str(litellm.get_llm_provider(model)[1])
    except Exception:
        prefix, _, rest = model.partition("/")
        return prefix if rest else None


def estimate_calls_cost(
    jobs: Iterable[Any], uncached_calls: Callable[[Any], int]
) -> tuple[float, int, list[str]]:
    """(estimated USD of the uncached calls, how many calls that is, warnings) for runner
    jobs (``model``, ``messages``, ``params``); ``uncached_calls(job)``: its calls not cached.
    Completions are assumed to reach max_tokens (default DEFAULT_COMPLETION_TOKENS)."""
    uncached_by_job = [(job, uncached_calls(job)) for job in jobs]
    uncached = sum(count for _, count in uncached_by_job)
    priced = [
        (job, count)
        for job, count in uncached_by_job
        if count and not job.model.startswith("local/")
    ]
    if not priced:
        return 0.0, uncached, []
    litellm = import_litellm()
    total = 0.0
    unpriced: dict[str, int] = {}
    for job, count in priced:
        prompt_tokens = _count_tokens(litellm, job.model, job.messages)
        params = job.params
        completion_tokens = int(
            params.get("max_tokens")
            or params.get("max_completion_tokens")
            or DEFAULT_COMPLETION_TOKENS
        )
        if "input_cost_per_token" in params or "output_cost_per_token" in params:
            per_call = prompt_tokens * float(params.get("input_cost_per_token") or 0.0)
            per_call += completion_tokens * float(params.get("output_cost_per_token") or 0.0)
        elif is_unpriced(job.model):  # registered at price 0 by us: its price is unknown
            unpriced[job.model] = unpriced.get(job.model, 0) + count
            continue
        else:
            try:
                prompt_usd, completion_usd = litellm.cost_per_token(
                    model=job.model,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                )
            except Exception:
                unpriced[job.model] = unpriced.get(job.model, 0) + count
                continue
            per_call = float(prompt_usd) + float(completion_usd)
        total += per_call * count
    warnings = [
        f"price of {model} is unknown: its {count} call(s) are not in the cost estimate"
        for model, count in sorted(unpriced.items())
    ]
    return total, uncached, warnings


def _count_tokens(litellm: Any, model: str, messages: Iterable[Mapping[str, Any]]) -> int:
    messages = list(messages)
    try:
        return int(litellm.token_counter(model=model, messages=[dict(m) for m in messages]))
    except Exception:  # no tokenizer for this model: ~4 characters per token
        return sum(len(str(m.get("content") or "")) for m in messages) // 4 + 4 * len(messages)
