"""Fine-tuning readiness and total cost of ownership, from the seed's rules of thumb.

* Data: fine-tuning needs at least 100 labelled examples, ideally 500+, and for a
  classification task that holds per category ("collect at least 100 examples per category").
* Cost: training costs $500–5,000+ per run and a fine-tuned model costs 2–3x more per call;
  total cost of ownership = training + inference per call x volume x time horizon, with a
  retraining budgeted every 12 months (the "maintenance trap": each new base model version
  needs a new fine-tune).

Every assumption can be overridden in the suite's ``finetune:`` mapping; the output says
which values are defaults.

Before fine-tuning, a stronger model is the cheaper thing to try (issue 13): when the window
of a CONSIDER FINE-TUNING verdict ran on one model only, the advice names that model's
stronger sibling (``STRONGER_MODEL``) and, when a ``usage:`` is given, its price per call from
litellm's price map for the current version's average tokens.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_promptgate.model import Case, Suite

MINIMUM_EXAMPLES = 100
IDEAL_EXAMPLES = 500

DEFAULT_ASSUMPTIONS: dict[str, Any] = {
    "training_cost_usd": [500.0, 5000.0],
    "inference_multiplier": [2.0, 3.0],
    "retrain_every_months": 12,
}

# A suite is treated as classification when its targets are few distinct values.
MAX_CLASSIFICATION_LABELS = 20

# The next size up within a provider's family, keyed by the model name without its provider
# prefix and without a date or "-latest" suffix. A model not listed gets no named suggestion.
STRONGER_MODEL: dict[str, str] = {
    # OpenAI
    "gpt-3.5-turbo": "gpt-4o",
    "gpt-4o-mini": "gpt-4o",
    "gpt-4.1-nano": "gpt-4.1-mini",
    "gpt-4.1-mini": "gpt-4.1",
    "gpt-5-nano": "gpt-5-mini",
    "gpt-5-mini": "gpt-5",
    "o3-mini": "o3",
    "o4-mini": "o3",
    # Anthropic
    "claude-3-haiku": "claude-3-5-sonnet-latest",
    "claude-3-5-haiku": "claude-3-5-sonnet-latest",
    "claude-3-5-sonnet": "claude-3-7-sonnet-latest",
    "claude-haiku-4-5": "claude-sonnet-4-5",
    "claude-sonnet-4": "claude-opus-4-1",
    "claude-sonnet-4-5": "claude-opus-4-1",
    # Google
    "gemini-1.5-flash": "gemini-1.5-pro",
    "gemini-2.0-flash-lite": "gemini-2.0-flash",
    "gemini-2.0-flash": "gemini-2.5-pro",
    "gemini-2.5-flash-lite": "gemini-2.5-flash",
    "gemini-2.5-flash": "gemini-2.5-pro",
    # Mistral
    "mistral-small": "mistral-large-latest",
    "mistral-medium": "mistral-large-latest",
}
_MODEL_SUFFIX = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2}|latest)$")
TRY_MODEL_SENTENCE = "before fine-tuning, try a stronger model as the next version"


def target_output(case: Case) -> str | None:
    """The output a case wants, usable as a fine-tuning label; None when it has none.

    An explicit ``ideal`` wins; otherwise a (non-negated) ``equals``, otherwise a
    (non-negated) ``one-of`` with exactly one value.
    """
    if case.ideal is not None and str(case.ideal).strip():
        return str(case.ideal)
    if case.ideal_tool_calls:  # a tool-call target (issue 13), as one canonical label
        from pytest_promptgate.render import canonical_json

        return canonical_json(list(case.ideal_tool_calls))
    for expectation in case.expect:
        if expectation.negate:
            continue
        if expectation.type == "equals" and expectation.value is not None:
            return str(expectation.value)
    for expectation in case.expect:
        if expectation.negate or expectation.type != "one-of":
            continue
        values = expectation.value
        if isinstance(values, (list, tuple)) and len(values) == 1:
            return str(values[0])
    return None


def _label_set(suite: Suite) -> list[str]:
    """Labels announced by a multi-value ``one-of`` (e.g. the suite default) — categories that
    deserve examples even when no case targets them yet."""
    labels: list[str] = []
    for case in suite.cases:
        for expectation in case.expect:
            values = expectation.value
            if (
                expectation.type == "one-of"
                and not expectation.negate
                and isinstance(values, (list, tuple))
                and len(values) > 1
            ):
                for value in values:
                    if str(value) not in labels:
                        labels.append(str(value))
    return labels


def _status(count: int) -> str:
    if count >= IDEAL_EXAMPLES:
        return "ideal"
    if count >= MINIMUM_EXAMPLES:
        return "minimum"
    return "insufficient"


def readiness(suite: Suite) -> dict[str, Any]:
    """Labelled examples against the seed's minimum (100) and ideal (500).

    Classification suites (a multi-value ``one-of`` lists the categories, or the targets are
    at most 20 distinct values repeated across cases) are judged per label: the status is that
    of the rarest label. ``per_label`` is null for free-text suites.
    """
    targets = [
        target for target in (target_output(case) for case in suite.cases) if target is not None
    ]
    labelled = len(targets)
    announced = _label_set(suite)
    distinct = sorted(set(targets))
    is_classification = bool(announced) or (
        labelled >= 2 and len(distinct) <= min(MAX_CLASSIFICATION_LABELS, labelled / 2)
    )
    per_label: dict[str, int] | None = None
    if is_classification:
        per_label = {label: 0 for label in announced}
        for target in targets:
            per_label[target] = per_label.get(target, 0) + 1
    limiting = min(per_label.values()) if per_label else labelled
    result: dict[str, Any] = {
        "labelled": labelled,
        "unlabelled": len(suite.cases) - labelled,
        "minimum": MINIMUM_EXAMPLES,
        "ideal": IDEAL_EXAMPLES,
        "status": _status(limiting),
        "per_label": per_label,
    }
    if per_label:
        short = sorted(label for label, count in per_label.items() if count < MINIMUM_EXAMPLES)
        result["labels_below_minimum"] = short
    return result


def _as_range(value: Any, name: str) -> list[float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [float(value), float(value)]
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        low, high = sorted(float(v) for v in value)
        return [low, high]
    raise ValueError(f"finetune.{name} must be a number or [low, high], got {value!r}")


def assumptions(suite: Suite) -> tuple[dict[str, Any], list[str]]:
    """(assumptions, names of those left at their defaults)."""
    overrides = dict(suite.finetune or {})
    values: dict[str, Any] = {}
    defaults_used: list[str] = []
    for name, default in DEFAULT_ASSUMPTIONS.items():
        if name in overrides:
            if name == "retrain_every_months":
                values[name] = int(overrides[name])
            else:
                values[name] = _as_range(overrides[name], name)
        else:
            values[name] = default
            defaults_used.append(name)
    return values, defaults_used


def cost_of_ownership(suite: Suite, cost_per_call_usd: float | None) -> dict[str, Any]:
    """Prompt path vs fine-tune path over the suite's ``usage: {calls_per_month, months}``."""
    values, defaults_used = assumptions(suite)
    usage = dict(suite.usage or {})
    calls_per_month = usage.get("calls_per_month")
    months = usage.get("months", 12 if calls_per_month is not None else None)
    if calls_per_month is not None and "months" not in usage:
        defaults_used.append("months")
    training_low, training_high = values["training_cost_usd"]
    multiplier_low, multiplier_high = values["inference_multiplier"]
    retrain_every = max(1, int(values["retrain_every_months"]))
    trainings = max(1, math.ceil(months / retrain_every)) if months else 1
    training = {"low": training_low * trainings, "high": training_high * trainings}

    notes: list[str] = []
    prompt_path: float | None = None
    finetune_path: dict[str, float] | None = None
    if calls_per_month is None:
        notes.append(
            "usage is not set in the suite: add `usage: {calls_per_month: N, months: M}` "
            "to compare the two paths; only the training cost is shown"
        )
    elif cost_per_call_usd is None:
        notes.append(
            "the price of a call is unknown for this model: only the training cost is shown"
        )
    else:
        volume = float(calls_per_month) * float(months or 0)
        prompt_path = round(cost_per_call_usd * volume, 2)
        finetune_path = {
            "low": round(training["low"] + multiplier_low * prompt_path, 2),
            "high": round(training["high"] + multiplier_high * prompt_path, 2),
        }
    return {
        "calls_per_month": calls_per_month,
        "months": months,
        "cost_per_call_usd": cost_per_call_usd,
        "prompt_path_usd": prompt_path,
        "finetune_path_usd": finetune_path,
        "training_usd": training,
        "trainings": trainings,
        "assumptions": values,
        "defaults_used": defaults_used,
        "note": "; ".join(notes) or None,
    }


def export_command(file: str, prompt: str) -> str:
    return f"promptgate export-finetune {file} -o {prompt}.jsonl"


def _sentence_end(text: str) -> str:
    """``text`` ending in exactly one full stop, so appended sentences never read "points.."."""
    return text if text.endswith((".", "!", "?")) else f"{text}."


def finetune_summary(ready: Mapping[str, Any], cost: Mapping[str, Any]) -> str:
    """One sentence about data and money, appended to the advice message."""
    parts = [
        f"{ready['labelled']} labelled cases (minimum {ready['minimum']}, ideal {ready['ideal']}): "
        f"{ready['status']}"
    ]
    if ready.get("labels_below_minimum"):
        parts.append("labels below the minimum: " + ", ".join(ready["labels_below_minimum"]))
    if cost.get("prompt_path_usd") is not None and cost.get("finetune_path_usd"):
        ft = cost["finetune_path_usd"]
        parts.append(
            f"over {cost['months']} months the prompt path costs ${cost['prompt_path_usd']:,.2f}, "
            f"fine-tuning ${ft['low']:,.0f}–${ft['high']:,.0f}"
        )
    else:
        training = cost["training_usd"]
        parts.append(f"training alone costs ${training['low']:,.0f}–${training['high']:,.0f}")
    return "; ".join(parts)


def stronger_model(model: str | None) -> str | None:
    """The next size up of ``model`` in its family (``STRONGER_MODEL``), keeping its provider
    prefix (``openai/gpt-4o-mini`` → ``openai/gpt-4o``); None when the model is not listed."""
    if not model:
        return None
    prefix, _, name = model.rpartition("/")
    base = _MODEL_SUFFIX.sub("", name.strip().lower())
    stronger = STRONGER_MODEL.get(base)
    if stronger is None:
        return None
    return f"{prefix}/{stronger}" if prefix else stronger


def price_per_call(model: str, prompt_tokens: float, completion_tokens: float) -> float | None:
    """The price of one call of ``model`` for these tokens, from litellm's price map; None when
    the map does not know the model (or prices it at 0) or the tokens are unknown."""
    if prompt_tokens + completion_tokens <= 0:
        return None
    from pytest_promptgate.litellm_setup import import_litellm

    costs = import_litellm().model_cost
    entry = costs.get(model) or costs.get(model.rpartition("/")[2])
    if not isinstance(entry, Mapping):
        return None
    input_price = entry.get("input_cost_per_token")
    output_price = entry.get("output_cost_per_token")
    if not isinstance(input_price, (int, float)) or not isinstance(output_price, (int, float)):
        return None
    price = float(input_price) * prompt_tokens + float(output_price) * completion_tokens
    return price if price > 0 else None


def try_stronger_model(
    suite: Suite,
    *,
    current_model: str | None,
    window_models: Sequence[str],
    tokens_per_call: tuple[float, float] | None,
) -> dict[str, Any] | None:
    """The ``try_model`` object of the advice, or None when the window already tried another
    model (two distinct models among ``window_models``; an unknown model, "", does not count).

    ``model`` is the stronger sibling of ``current_model`` (None when none is listed);
    ``cost_per_call_usd`` and ``monthly_usd`` are filled only when the suite gives a
    ``usage:`` and litellm's price map knows the model (litellm is imported only then).
    ``tokens_per_call`` is the current version's average (prompt, completion) tokens.
    """
    if len({model for model in window_models if model}) > 1:
        return None
    model = stronger_model(current_model)
    calls_per_month = dict(suite.usage or {}).get("calls_per_month")
    cost_per_call = monthly = None
    if model is not None and calls_per_month is not None and tokens_per_call is not None:
        cost_per_call = price_per_call(model, *tokens_per_call)
        if cost_per_call is not None:
            monthly = round(cost_per_call * float(calls_per_month), 6)
            cost_per_call = round(cost_per_call, 12)
    return {
        "model": model,
        "cost_per_call_usd": cost_per_call,
        "monthly_usd": monthly,
    }


def _usd(value: float) -> str:
    """A positive price readable at any size: $1,234.50, $0.42, $0.0031, $0.000038."""
    if value >= 1:
        return f"${value:,.2f}"
    decimals = max(2, 1 - math.floor(math.log10(value)))
    return f"${value:.{decimals}f}"


def try_model_sentence(
    try_model: Mapping[str, Any], *, usage_given: bool, current_cost_per_call: float | None
) -> str:
    """The advice line about a stronger model; a price only when one is known, and "unknown"
    when a ``usage:`` asked for one that litellm's price map does not have."""
    head = TRY_MODEL_SENTENCE[0].upper() + TRY_MODEL_SENTENCE[1:]
    model = try_model.get("model")
    if not model:
        return f"{head} (a version under versions: may set its own model)"
    sentence = f"{head}: {model}"
    cost, monthly = try_model.get("cost_per_call_usd"), try_model.get("monthly_usd")
    if cost:
        details = [f"about {_usd(cost)} per call"]
        if current_cost_per_call:
            details[0] += f" against {_usd(current_cost_per_call)} now"
        if monthly:
            details.append(f"{_usd(monthly)} a month at the suite's usage")
        sentence += f" ({', '.join(details)})"
    elif usage_given:
        sentence += (
            " (its price per call is unknown: not in litellm's price map, or no tokens counted)"
        )
    return sentence


def build_advice(
    *,
    kind: str,
    message: str,
    window: list[dict[str, Any]] | None = None,
    plateau_p_value: float | None = None,
    plateau_margin: float | None = None,
    plateau_upper_bound: float | None = None,
    cases_needed: int | None = None,
    noise: bool = False,
    failing_patterns: list[dict[str, Any]] | None = None,
    suite: Suite | None = None,
    file: str | None = None,
    cost_per_call_usd: float | None = None,
    current_model: str | None = None,
    window_models: Sequence[str] = (),
    tokens_per_call: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """The ``advice`` object of the JSON report (docs/ARCHITECTURE.md).

    Readiness, cost and the export command are filled only for ``consider-fine-tuning``:
    the other kinds advise against spending on fine-tuning for now. The plateau evidence:
    ``plateau_p_value`` (best vs first iteration), ``plateau_margin`` (δ),
    ``plateau_upper_bound`` (the largest one-sided 95% upper bound of a gain over the first
    iteration; a plateau needs it below δ) and ``cases_needed`` (when the cases were too few
    to tell a plateau from a δ gain: about how many would). ``try_model`` (fine-tuning advice
    only): the stronger model to try first (``try_stronger_model``, from ``current_model``,
    the models of the window and the current version's average tokens per call), or None.
    """
    ready = cost = command = try_model = None
    if kind == "consider-fine-tuning" and suite is not None:
        ready = readiness(suite)
        cost = cost_of_ownership(suite, cost_per_call_usd)
        command = export_command(file or str(suite.file), suite.prompt)
        message = f"{_sentence_end(message)} {finetune_summary(ready, cost)}"
        found = try_stronger_model(
            suite,
            current_model=current_model,
            window_models=window_models,
            tokens_per_call=tokens_per_call,
        )
        if found is not None:
            sentence = try_model_sentence(
                found,
                usage_given=cost["calls_per_month"] is not None,
                current_cost_per_call=cost_per_call_usd,
            )
            message = f"{_sentence_end(message)} {sentence}"
            try_model = found
    return {
        "kind": kind,
        "message": message,
        "window": window or [],
        "plateau_p_value": plateau_p_value,
        "plateau_margin": plateau_margin,
        "plateau_upper_bound": plateau_upper_bound,
        "cases_needed": cases_needed,
        "noise": noise,
        "failing_patterns": failing_patterns or [],
        "readiness": ready,
        "cost": cost,
        "export_command": command,
        "try_model": try_model,
    }
