"""Fine-tuning readiness (labelled cases, per label) and total cost of ownership."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_promptgate.advisor import (
    build_advice,
    cost_of_ownership,
    readiness,
    stronger_model,
    target_output,
)
from pytest_promptgate.litellm_setup import import_litellm
from pytest_promptgate.model import Case, Expectation, Suite


def case(case_id: str, *expect: Expectation, ideal: str | None = None) -> Case:
    return Case(id=case_id, vars={}, expect=tuple(expect), ideal=ideal)


def suite(cases: list[Case], **fields: object) -> Suite:
    return Suite(
        prompt="p", file=Path("/repo/p.promptgate.yaml"), versions=(), cases=tuple(cases), **fields
    )  # type: ignore[arg-type]


def test_target_output_prefers_ideal_then_equals_then_single_one_of():
    assert target_output(case("a", Expectation("equals", "bug"), ideal="billing")) == "billing"
    assert (
        target_output(case("b", Expectation("contains", "x"), Expectation("equals", "bug")))
        == "bug"
    )
    assert target_output(case("c", Expectation("one-of", ["feature"]))) == "feature"
    assert target_output(case("d", Expectation("one-of", ["bug", "feature"]))) is None
    assert target_output(case("e", Expectation("equals", "bug", negate=True))) is None
    assert target_output(case("f", Expectation("contains", "refund"))) is None


def test_readiness_counts_labels_per_category_for_classification():
    labels = ["billing"] * 120 + ["bug"] * 101 + ["feature"] * 30
    default = Expectation("one-of", ["billing", "bug", "feature", "account"])
    cases = [case(f"c{i}", default, Expectation("equals", label)) for i, label in enumerate(labels)]
    cases.append(case("free", Expectation("contains", "x")))
    ready = readiness(suite(cases))
    assert ready["labelled"] == 251 and ready["unlabelled"] == 1
    assert ready["per_label"] == {"billing": 120, "bug": 101, "feature": 30, "account": 0}
    # The rarest label decides: "collect at least 100 examples per category".
    assert ready["status"] == "insufficient"
    assert ready["labels_below_minimum"] == ["account", "feature"]


@pytest.mark.parametrize(
    ("count", "status"), [(99, "insufficient"), (100, "minimum"), (500, "ideal")]
)
def test_readiness_thresholds_for_free_text_targets(count, status):
    cases = [case(f"c{i}", ideal=f"summary number {i}") for i in range(count)]
    ready = readiness(suite(cases))
    assert ready["status"] == status
    assert ready["per_label"] is None


def test_cost_of_ownership_with_defaults():
    cost = cost_of_ownership(suite([], usage={"calls_per_month": 100_000, "months": 12}), 0.0002)
    assert cost["prompt_path_usd"] == pytest.approx(240.0)
    assert cost["finetune_path_usd"] == {"low": pytest.approx(980.0), "high": pytest.approx(5720.0)}
    assert cost["defaults_used"] == [
        "training_cost_usd",
        "inference_multiplier",
        "retrain_every_months",
    ]
    assert cost["assumptions"]["training_cost_usd"] == [500.0, 5000.0]


def test_cost_overrides_and_annual_retraining():
    overrides = {"training_cost_usd": 1000, "inference_multiplier": [1.5, 2]}
    cost = cost_of_ownership(
        suite([], usage={"calls_per_month": 10_000, "months": 24}, finetune=overrides), 0.001
    )
    # 24 months = 2 trainings (retrained every 12 months by default)
    assert cost["trainings"] == 2
    assert cost["prompt_path_usd"] == pytest.approx(240.0)
    assert cost["finetune_path_usd"] == {
        "low": pytest.approx(2360.0),
        "high": pytest.approx(2480.0),
    }
    assert cost["defaults_used"] == ["retrain_every_months"]


def test_missing_usage_still_shows_the_training_cost():
    cost = cost_of_ownership(suite([]), 0.001)
    assert cost["prompt_path_usd"] is None and cost["finetune_path_usd"] is None
    assert cost["training_usd"] == {"low": 500.0, "high": 5000.0}
    assert "usage is not set" in cost["note"]


def test_bad_override_is_reported():
    with pytest.raises(ValueError, match="training_cost_usd"):
        cost_of_ownership(suite([], finetune={"training_cost_usd": "lots"}), 0.001)


def test_advice_fills_readiness_and_cost_only_for_fine_tuning():
    s = suite([case("a", Expectation("equals", "x"))])
    iterate = build_advice(kind="iterate", message="iterate", suite=s)
    assert (
        iterate["readiness"] is None
        and iterate["cost"] is None
        and iterate["export_command"] is None
    )
    advice = build_advice(
        kind="consider-fine-tuning",
        message="consider fine-tuning",
        suite=s,
        file="p.promptgate.yaml",
        cost_per_call_usd=0.001,
    )
    assert advice["readiness"]["labelled"] == 1
    assert advice["cost"]["training_usd"]["low"] == 500.0
    assert advice["export_command"] == "promptgate export-finetune p.promptgate.yaml -o p.jsonl"
    assert "1 labelled cases" in advice["message"]


def test_advice_carries_the_plateau_evidence():
    advice = build_advice(
        kind="iterate",
        message="too few cases to tell a plateau from a 15-point gain: about 180 cases would",
        plateau_p_value=0.5,
        plateau_margin=0.15,
        plateau_upper_bound=0.31,
        cases_needed=180,
    )
    assert (advice["plateau_margin"], advice["plateau_upper_bound"]) == (0.15, 0.31)
    assert advice["cases_needed"] == 180
    bare = build_advice(kind="rethink", message="rethink")
    assert bare["plateau_margin"] is None and bare["cases_needed"] is None


@pytest.mark.parametrize(
    ("model", "stronger"),
    [
        ("openai/gpt-4o-mini", "openai/gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o"),
        ("anthropic/claude-3-5-haiku-20241022", "anthropic/claude-3-5-sonnet-latest"),
        ("gemini/gemini-2.5-flash", "gemini/gemini-2.5-pro"),
        ("openai/gpt-4o", None),  # the top of its family: no named model
        ("local/qwen2.5-0.5b-instruct", None),
        ("", None),
    ],
)
def test_stronger_model_is_the_next_size_up_in_the_family(model, stronger):
    assert stronger_model(model) == stronger


def fine_tuning_advice(window_models: list[str], **fields: object) -> dict:
    return build_advice(
        kind="consider-fine-tuning",
        message="consider fine-tuning",
        suite=suite([case("a", Expectation("equals", "x"))], **fields),
        file="p.promptgate.yaml",
        cost_per_call_usd=0.0002,
        current_model=window_models[-1],
        window_models=window_models,
        tokens_per_call=(1000.0, 100.0),
    )


def try_line(advice: dict) -> str:
    (_, line) = advice["message"].split("Before fine-tuning, try a stronger model")
    return line


def test_a_window_on_one_model_suggests_a_stronger_one_priced_from_litellm():
    advice = fine_tuning_advice(["openai/gpt-4o-mini"] * 3, usage={"calls_per_month": 100_000})
    prices = import_litellm().model_cost["gpt-4o"]
    per_call = prices["input_cost_per_token"] * 1000 + prices["output_cost_per_token"] * 100
    assert advice["try_model"] == {
        "model": "openai/gpt-4o",
        "cost_per_call_usd": pytest.approx(per_call),
        "monthly_usd": pytest.approx(per_call * 100_000),
    }
    line = try_line(advice)
    assert line.startswith(" as the next version: openai/gpt-4o (about $")
    assert "per call against $0.00020 now" in line
    assert f"${per_call * 100_000:,.2f} a month" in line


def test_a_window_that_tried_two_models_gets_no_suggestion():
    advice = fine_tuning_advice(
        ["openai/gpt-4o-mini", "openai/gpt-4o", "openai/gpt-4o"],
        usage={"calls_per_month": 100_000},
    )
    assert advice["try_model"] is None
    assert "stronger model" not in advice["message"]
    # an unknown model ("", an old history record) is not "another model"
    assert fine_tuning_advice(["", "openai/gpt-4o-mini"])["try_model"] is not None


def test_an_unknown_price_is_said_never_printed_as_zero(monkeypatch):
    costs = import_litellm().model_cost
    monkeypatch.delitem(costs, "gpt-4o", raising=False)
    monkeypatch.delitem(costs, "openai/gpt-4o", raising=False)
    advice = fine_tuning_advice(["openai/gpt-4o-mini"] * 3, usage={"calls_per_month": 100_000})
    assert advice["try_model"] == {
        "model": "openai/gpt-4o",
        "cost_per_call_usd": None,
        "monthly_usd": None,
    }
    line = try_line(advice)
    assert "$" not in line and "price per call is unknown" in line


def test_no_usage_or_no_known_sibling_gives_the_sentence_without_a_price():
    unpriced = fine_tuning_advice(["openai/gpt-4o-mini"] * 3)  # no usage: no price looked up
    assert unpriced["try_model"]["model"] == "openai/gpt-4o"
    assert unpriced["try_model"]["cost_per_call_usd"] is None
    assert try_line(unpriced) == " as the next version: openai/gpt-4o"
    unknown = fine_tuning_advice(["local/tiny"] * 3, usage={"calls_per_month": 10})
    assert unknown["try_model"] == {"model": None, "cost_per_call_usd": None, "monthly_usd": None}
    assert "$" not in try_line(unknown)
    assert build_advice(kind="iterate", message="iterate")["try_model"] is None
