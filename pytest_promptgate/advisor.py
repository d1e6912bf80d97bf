"""Fine-tuning readiness and total cost of ownership, from the seed's rules of thumb.

* Data: fine-tuning needs at least 100 labelled examples, ideally 500+, and for a
  classification task that holds per category ("collect at least 100 examples per category").
* Cost: training costs $500–5,000+ per run and a fine-tuned model costs 2–3x more per call;
  total cost of ownership = training + inference per call x volume x time horizon, with a
  retraining budgeted every 12 months (the "maintenance trap": each new base model version
  needs a new fine-tune).

Every assumption can be overridden in the suite's ``finetune:`` mapping; the output says
which values are defaults.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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
) -> dict[str, Any]:
    """The ``advice`` object of the JSON report (docs/ARCHITECTURE.md).

    Readiness, cost and the export command are filled only for ``consider-fine-tuning``:
    the other kinds advise against spending on fine-tuning for now. The plateau evidence:
    ``plateau_p_value`` (best vs first iteration), ``plateau_margin`` (δ),
    ``plateau_upper_bound`` (the largest one-sided 95% upper bound of a gain over the first
    iteration; a plateau needs it below δ) and ``cases_needed`` (when the cases were too few
    to tell a plateau from a δ gain: about how many would).
    """
    ready = cost = command = None
    if kind == "consider-fine-tuning" and suite is not None:
        ready = readiness(suite)
        cost = cost_of_ownership(suite, cost_per_call_usd)
        command = export_command(file or str(suite.file), suite.prompt)
        message = f"{message}. {finetune_summary(ready, cost)}"
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
    }
