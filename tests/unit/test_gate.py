"""Verdicts per prompt: PASS / FAIL / CONSIDER FINE-TUNING / RETHINK / INCONCLUSIVE."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_promptgate.gate import (
    Iteration,
    VersionRun,
    decide,
    evaluate_prompt,
    history_records,
    overall,
)
from pytest_promptgate.history import append_records, load_records
from pytest_promptgate.model import (
    CONSIDER_FINE_TUNING,
    FAIL,
    INCONCLUSIVE,
    PASS,
    RETHINK,
    CallResult,
    Case,
    CaseResult,
    Expectation,
    ExpectationResult,
    Location,
    MessageTemplate,
    SampleResult,
    Suite,
    Version,
)
from pytest_promptgate.stats import two_proportion_p

VERSION_KEYS = {
    "version",
    "model",
    "content_hash",
    "current",
    "n",
    "passed",
    "failed",
    "errors",
    "rate",
    "ci_low",
    "ci_high",
    "verdict",
    "cost_usd",
    "tokens",
    "latency_p50_ms",
    "latency_p95_ms",
    "failing_cases",
    "flaky_cases",
    "error_cases",
    "samples",
    "effective_n",
    "note",
    "comparison",
    "baseline",
}
PROMPT_KEYS = {
    "prompt",
    "file",
    "line",
    "description",
    "threshold",
    "verdict",
    "reason",
    "current_version",
    "versions",
    "iterations",
    "advice",
}
ADVICE_KEYS = {
    "kind",
    "message",
    "window",
    "plateau_p_value",
    "plateau_margin",
    "plateau_upper_bound",
    "cases_needed",
    "noise",
    "failing_patterns",
    "readiness",
    "cost",
    "export_command",
    "try_model",
}
LABELS = ("billing", "bug", "feature", "account")


def make_suite(n_cases: int = 40, labels: tuple[str, ...] = ("v1",), **fields: object) -> Suite:
    cases = tuple(
        Case(
            id=f"c{i:02d}",
            vars={"ticket": f"ticket {i}"},
            expect=(Expectation("equals", LABELS[i % 4]),),
            location=Location("triage.promptgate.yaml", 20 + i),
        )
        for i in range(n_cases)
    )
    versions = tuple(
        Version(label=label, kind="messages", messages=(MessageTemplate("user", "{{ ticket }}"),))
        for label in labels
    )
    return Suite(
        prompt="triage",
        file=Path("/repo/triage.promptgate.yaml"),
        versions=versions,
        cases=cases,
        description="Route tickets",
        location=Location("triage.promptgate.yaml", 1),
        **fields,  # type: ignore[arg-type]
    )


def result(
    case_id: str, outcome: bool | None, version: str, cost: float | None = 0.001
) -> CaseResult:
    if outcome is None:
        samples = (SampleResult(0, CallResult(output=None, error="HTTP 500", error_kind="server")),)
    else:
        call = CallResult(
            output="billing", prompt_tokens=50, completion_tokens=1, cost_usd=cost, latency_ms=200.0
        )
        samples = (SampleResult(0, call, (ExpectationResult("equals", outcome),)),)
    return CaseResult(
        prompt="triage", version=version, case=case_id, model="m", messages=(), samples=samples
    )


def run(
    label: str,
    failing: set[int],
    n_cases: int = 40,
    errors: frozenset[int] | set[int] = frozenset(),
    content_hash: str | None = None,
    cost: float | None = 0.001,
) -> VersionRun:
    results = tuple(
        result(f"c{i:02d}", None if i in errors else i not in failing, label, cost)
        for i in range(n_cases)
    )
    return VersionRun(
        label=label, model="m", content_hash=content_hash or f"hash-{label}", results=results
    )


def evaluate(suite: Suite, versions: list[VersionRun], **options: object) -> dict:
    options.setdefault("threshold", 0.8)
    return evaluate_prompt(suite=suite, file="triage.promptgate.yaml", versions=versions, **options)  # type: ignore[arg-type]


# --- the done-when scenarios ---------------------------------------------------------------


def test_three_plateaued_versions_below_threshold_advise_fine_tuning():
    suite = make_suite(labels=("v1", "v2", "v3"), usage={"calls_per_month": 100_000, "months": 12})
    versions = [run("v1", set(range(12))), run("v2", set(range(11))), run("v3", set(range(10)))]
    entry = evaluate(suite, versions)

    assert set(entry) == PROMPT_KEYS
    assert entry["verdict"] == CONSIDER_FINE_TUNING
    assert entry["current_version"] == "v3"
    advice = entry["advice"]
    assert set(advice) == ADVICE_KEYS
    assert advice["kind"] == "consider-fine-tuning"
    assert [w["version"] for w in advice["window"]] == ["v1", "v2", "v3"]
    assert [w["rate"] for w in advice["window"]] == [0.7, 0.725, 0.75]
    assert advice["plateau_p_value"] == pytest.approx(0.5)  # McNemar: 2 fixed, 0 broken
    assert advice["noise"] is False
    assert advice["failing_patterns"][0] == {"case": "c00", "failed_in": 3, "of": 3}
    assert advice["readiness"]["labelled"] == 40
    assert advice["readiness"]["status"] == "insufficient"
    assert advice["readiness"]["per_label"] == {
        "billing": 10,
        "bug": 10,
        "feature": 10,
        "account": 10,
    }
    cost = advice["cost"]
    assert cost["prompt_path_usd"] == pytest.approx(1200.0)  # $0.001 x 100k x 12
    assert cost["finetune_path_usd"] == {
        "low": pytest.approx(2900.0),
        "high": pytest.approx(8600.0),
    }
    assert "training_cost_usd" in cost["defaults_used"]
    assert (
        advice["export_command"]
        == "promptgate export-finetune triage.promptgate.yaml -o triage.jsonl"
    )
    assert "plateaued" in entry["reason"]
    assert [it["source"] for it in entry["iterations"]] == ["run", "run", "run"]


def test_a_clearly_improving_third_version_keeps_iterating():
    suite = make_suite(labels=("v1", "v2", "v3"))
    versions = [run("v1", set(range(20))), run("v2", set(range(19))), run("v3", set(range(9)))]
    entry = evaluate(suite, versions)

    assert entry["verdict"] == FAIL
    advice = entry["advice"]
    assert advice["kind"] == "iterate"
    assert advice["readiness"] is None and advice["cost"] is None
    assert advice["plateau_p_value"] < 0.05  # McNemar: 11 fixed, 0 broken
    assert "still improving" in advice["message"]
    current = entry["versions"][-1]
    assert current["comparison"]["against"] == "v2"
    assert current["comparison"]["fixed"] == [f"c{i:02d}" for i in range(9, 19)]
    assert current["comparison"]["broken"] == []
    assert current["comparison"]["p_value"] == pytest.approx(0.001953125)  # 2 / 2**10


def test_iterations_are_recognized_from_history_alone(tmp_path):
    """One-version suite edited three times; each run knows the earlier ones from history."""
    history_path = tmp_path / ".promptgate" / "history.jsonl"
    failing_by_edit = [set(range(12)), set(range(11)), set(range(10))]
    verdicts = []
    for edit, failing in enumerate(failing_by_edit, start=1):
        suite = make_suite(labels=(f"hash{edit}",))
        versions = [run(f"hash{edit}", failing, content_hash=f"content-{edit}")]
        history, warnings = load_records(history_path)
        assert warnings == []
        entry = evaluate(suite, versions, history=history)
        verdicts.append(entry["verdict"])
        case_ids = {v.label: [r.case for r in v.results] for v in versions}
        append_records(history_path, history_records(entry, case_ids, git_commit=None))

    assert verdicts == [FAIL, FAIL, CONSIDER_FINE_TUNING]
    assert [it["source"] for it in entry["iterations"]] == ["history", "history", "run"]
    assert [it["version"] for it in entry["iterations"]] == ["hash1", "hash2", "hash3"]
    assert entry["advice"]["plateau_p_value"] == pytest.approx(0.5)  # paired through case ids


def test_five_percent_is_rethink():
    entry = evaluate(make_suite(n_cases=20), [run("v1", set(range(19)), n_cases=20)])
    assert entry["verdict"] == RETHINK
    assert entry["advice"]["kind"] == "rethink"
    assert "90%" in entry["advice"]["message"]


def test_more_than_ten_percent_errors_is_inconclusive():
    entry = evaluate(make_suite(n_cases=20), [run("v1", set(), n_cases=20, errors={0, 1, 2})])
    assert entry["verdict"] == INCONCLUSIVE
    assert "3 of 20" in entry["reason"]
    assert entry["versions"][0]["errors"] == 3 and entry["versions"][0]["n"] == 17


def test_ten_percent_errors_is_still_conclusive():
    entry = evaluate(make_suite(n_cases=20), [run("v1", set(), n_cases=20, errors={0, 1})])
    assert entry["verdict"] == PASS


def test_nothing_evaluated_is_inconclusive():
    entry = evaluate(make_suite(n_cases=0), [run("v1", set(), n_cases=0)])
    assert entry["verdict"] == INCONCLUSIVE
    assert "no case evaluated" in entry["reason"]
    assert entry["versions"][0]["rate"] is None


def test_17_of_20_passes_and_15_of_20_fails():
    passing = evaluate(make_suite(n_cases=20), [run("v1", {0, 1, 2}, n_cases=20)])
    assert passing["verdict"] == PASS and passing["advice"] is None
    assert passing["reason"] == "v1 passes 17/20 (85%), at or above the 80% threshold"
    assert passing["versions"][0]["failing_cases"] == ["c00", "c01", "c02"]

    failing = evaluate(make_suite(n_cases=20), [run("v1", {0, 1, 2, 3, 4}, n_cases=20)])
    assert failing["verdict"] == FAIL
    assert failing["reason"] == "v1 passes 15/20 (75%), below the 80% threshold"
    assert failing["advice"]["kind"] == "iterate"
    assert "c00, c01, c02, c03, c04" in failing["advice"]["message"]
    version = failing["versions"][0]
    assert set(version) == VERSION_KEYS
    assert version["baseline"] is None and version["comparison"] is None
    assert version["note"].startswith("n=20: the 95% interval")


def test_gate_lower_needs_the_lower_bound_above_threshold():
    entry = evaluate(make_suite(n_cases=20), [run("v1", {0, 1, 2}, n_cases=20)], gate="lower")
    assert entry["verdict"] == FAIL
    assert "lower bound of its 95% interval (64%)" in entry["reason"]
    assert entry["versions"][0]["verdict"] == FAIL


def test_gate_upper_fails_only_when_the_upper_bound_is_below():
    lenient = evaluate(make_suite(n_cases=20), [run("v1", set(range(5)), n_cases=20)], gate="upper")
    assert lenient["verdict"] == PASS  # 15/20: interval up to 89%
    strict = evaluate(make_suite(n_cases=20), [run("v1", set(range(10)), n_cases=20)], gate="upper")
    assert strict["verdict"] == FAIL  # 10/20: interval up to 71%


def test_different_cases_failing_each_iteration_looks_like_noise():
    suite = make_suite(labels=("v1", "v2", "v3"))
    versions = [
        run("v1", set(range(0, 12))),
        run("v2", set(range(12, 24))),
        run("v3", set(range(24, 36))),
    ]
    entry = evaluate(suite, versions)
    assert entry["verdict"] == FAIL
    assert entry["advice"]["noise"] is True
    assert "repeat" in entry["advice"]["message"]


def test_changed_case_set_is_not_a_comparable_window():
    suite = make_suite(labels=("v3",))
    history = [
        {
            "schema": 1,
            "prompt": "triage",
            "version": f"v{k}",
            "content_hash": f"old{k}",
            "model": "m",
            "case_set_hash": "other",
            "case_ids": [f"x{i}" for i in range(40)],
            "n": 40,
            "passed": 28,
            "failed": 12,
            "errors": 0,
            "rate": 0.7,
            "ci_low": 0.55,
            "ci_high": 0.82,
            "failing_cases": [f"x{i}" for i in range(12)],
            "timestamp": f"2026-11-2{k}T10:00:00Z",
        }
        for k in (1, 2)
    ]
    entry = evaluate(suite, [run("v3", set(range(12)))], history=history)
    assert entry["verdict"] == FAIL
    assert "case set changed" in entry["advice"]["message"]


def test_unpaired_history_uses_a_two_proportion_test():
    suite = make_suite(labels=("v3",))
    history = [
        {
            "schema": 1,
            "prompt": "triage",
            "version": f"v{k}",
            "content_hash": f"old{k}",
            "model": "m",
            "case_set_hash": None,
            "n": 40,
            "passed": 20,
            "failed": 20,
            "errors": 0,
            "rate": 0.5,
            "ci_low": 0.35,
            "ci_high": 0.65,
            "failing_cases": [f"c{i:02d}" for i in range(20)],
            "timestamp": f"2026-11-2{k}T10:00:00Z",
        }
        for k in (1, 2)
    ]
    entry = evaluate(suite, [run("v3", set(range(9)))], history=history)
    assert entry["verdict"] == FAIL  # 50% -> 77.5%: p = 0.01 on independent proportions
    assert entry["advice"]["plateau_p_value"] < 0.05
    assert "two-proportion" in entry["advice"]["message"]


def test_history_of_other_prompts_and_inconclusive_runs_is_ignored():
    suite = make_suite(labels=("v1",))
    history = [
        {
            "schema": 1,
            "prompt": "other",
            "version": "x",
            "content_hash": "o1",
            "rate": 0.5,
            "n": 40,
            "errors": 0,
            "timestamp": "2026-11-20T10:00:00Z",
        },
        {
            "schema": 1,
            "prompt": "triage",
            "version": "broken",
            "content_hash": "e1",
            "rate": 0.5,
            "n": 10,
            "errors": 30,
            "timestamp": "2026-11-21T10:00:00Z",
        },
    ]
    entry = evaluate(suite, [run("v1", set(range(12)))], history=history)
    assert [it["version"] for it in entry["iterations"]] == ["v1"]


def test_comparison_lists_fixed_and_broken_cases():
    suite = make_suite(n_cases=20, labels=("v1", "v2"))
    entry = evaluate(suite, [run("v1", {0, 1, 2, 3}, n_cases=20), run("v2", {3, 4}, n_cases=20)])
    comparison = entry["versions"][1]["comparison"]
    assert comparison["fixed"] == ["c00", "c01", "c02"]
    assert comparison["broken"] == ["c04"]
    assert comparison["delta"] == pytest.approx(0.1)
    assert comparison["p_value"] == pytest.approx(0.625)  # 2 * 5/16
    assert [v["current"] for v in entry["versions"]] == [False, True]


def test_unknown_price_leaves_prompt_path_cost_unknown():
    suite = make_suite(labels=("v1", "v2", "v3"), usage={"calls_per_month": 1000, "months": 6})
    versions = [run(label, set(range(12)), cost=None) for label in ("v1", "v2", "v3")]
    entry = evaluate(suite, versions)
    assert entry["verdict"] == CONSIDER_FINE_TUNING
    assert entry["advice"]["cost"]["prompt_path_usd"] is None
    assert entry["versions"][-1]["cost_usd"] is None


def test_bad_gate_mode_is_rejected():
    with pytest.raises(ValueError, match="gate mode"):
        evaluate(make_suite(), [run("v1", set())], gate="median")


# --- overall ---------------------------------------------------------------------------------


def test_overall_exit_status_and_finetune_flag():
    passing, flagged = {"verdict": PASS}, {"verdict": CONSIDER_FINE_TUNING}
    assert overall([passing], "fail") == (PASS, 0)
    assert overall([passing, flagged], "fail") == (CONSIDER_FINE_TUNING, 1)
    assert overall([passing, flagged], "flag") == (PASS, 0)
    assert overall([flagged, {"verdict": FAIL}], "flag") == (FAIL, 1)
    assert overall([{"verdict": FAIL}, {"verdict": RETHINK}], "fail") == (RETHINK, 1)
    assert overall([{"verdict": RETHINK}, {"verdict": INCONCLUSIVE}], "fail") == (INCONCLUSIVE, 1)
    assert overall([], "fail") == (INCONCLUSIVE, 1)


def test_history_records_carry_the_measurements():
    suite = make_suite(n_cases=20)
    versions = [run("v1", {0, 1, 2, 3, 4}, n_cases=20)]
    entry = evaluate(suite, versions)
    records = history_records(entry, {"v1": [r.case for r in versions[0].results]}, "abc123")
    assert len(records) == 1
    rec = records[0]
    assert (rec["prompt"], rec["version"], rec["content_hash"], rec["n"], rec["passed"]) == (
        "triage",
        "v1",
        "hash-v1",
        20,
        15,
    )
    assert rec["rate"] == 0.75 and rec["git_commit"] == "abc123" and rec["schema"] == 1
    assert rec["failing_cases"] == ["c00", "c01", "c02", "c03", "c04"]
    assert rec["timestamp"].endswith("Z")


def test_repeated_samples_report_flaky_cases_and_case_rates():
    def repeated(case_id: str, outcomes: tuple[bool, ...]) -> CaseResult:
        samples = tuple(
            SampleResult(
                i,
                CallResult(output="x", cost_usd=0.0, latency_ms=10.0),
                (ExpectationResult("equals", ok),),
            )
            for i, ok in enumerate(outcomes)
        )
        return CaseResult(
            prompt="triage", version="v1", case=case_id, model="m", messages=(), samples=samples
        )

    results = [repeated(f"c{i:02d}", (True, True, True)) for i in range(16)]
    results += [
        repeated("c16", (True, False, True)),
        repeated("c17", (False, False, False)),
        repeated("c18", (False, False, False)),
        repeated("c19", (True, True, False)),
    ]
    entry = evaluate(make_suite(n_cases=20), [VersionRun("v1", "m", "h", tuple(results))])
    version = entry["versions"][0]
    assert version["samples"] == 3
    assert version["flaky_cases"] == ["c16", "c19"]
    assert version["rate"] == pytest.approx((16 + 2 / 3 + 2 / 3) / 20)
    assert entry["verdict"] == PASS
    assert "× 3 samples" in entry["reason"]


# --- issue 12: a plateau needs positive evidence ----------------------------------------------


def test_a_small_unproven_gain_is_too_few_cases_not_a_plateau():
    # 20 cases, 60% -> 65% -> 70%: McNemar p = 0.5 used to read as a plateau (fine-tuning
    # advised); the gain's upper bound is far above 15 points, so the data cannot tell.
    suite = make_suite(n_cases=20, labels=("v1", "v2", "v3"))
    versions = [
        run("v1", set(range(8)), n_cases=20),
        run("v2", set(range(7)), n_cases=20),
        run("v3", set(range(6)), n_cases=20),
    ]
    entry = evaluate(suite, versions)
    assert entry["verdict"] == FAIL
    advice = entry["advice"]
    assert advice["kind"] == "iterate" and advice["readiness"] is None
    needed = advice["cases_needed"]
    assert needed is not None and needed > 20
    assert advice["plateau_margin"] == 0.15
    assert advice["plateau_upper_bound"] >= 0.15
    assert advice["plateau_p_value"] == pytest.approx(0.5)
    assert advice["message"].startswith(
        f"too few cases to tell a plateau from a 15-point gain: about {needed} cases would"
    )


def test_the_cases_it_names_would_show_the_plateau():
    # The same proportions (60% / 65% / 70%, nested failures) on 5x the cases: a plateau once
    # there are as many cases as the advice named.
    small = evaluate(
        make_suite(n_cases=20, labels=("v1", "v2", "v3")),
        [run("v1", set(range(8)), 20), run("v2", set(range(7)), 20), run("v3", set(range(6)), 20)],
    )
    needed = small["advice"]["cases_needed"]
    n = 20 * -(-needed // 20)  # the same proportions need a multiple of 20
    scale = n // 20
    large = evaluate(
        make_suite(n_cases=n, labels=("v1", "v2", "v3")),
        [
            run("v1", set(range(8 * scale)), n),
            run("v2", set(range(7 * scale)), n),
            run("v3", set(range(6 * scale)), n),
        ],
    )
    assert large["verdict"] == CONSIDER_FINE_TUNING
    assert large["advice"]["plateau_upper_bound"] < 0.15


def test_a_significant_gain_below_the_margin_is_still_a_plateau():
    # 400 cases, 65% -> 72.5%: significant (McNemar p < 1e-8) but surely below 15 points.
    suite = make_suite(n_cases=400, labels=("v1", "v2", "v3"))
    versions = [
        run("v1", set(range(140)), 400),
        run("v2", set(range(125)), 400),
        run("v3", set(range(110)), 400),
    ]
    entry = evaluate(suite, versions)
    assert entry["verdict"] == CONSIDER_FINE_TUNING
    assert entry["advice"]["plateau_p_value"] < 1e-8
    assert entry["advice"]["plateau_upper_bound"] < 0.15


def test_the_plateau_margin_is_a_setting():
    suite = make_suite(n_cases=20, labels=("v1", "v2", "v3"))
    versions = [
        run("v1", set(range(8)), 20),
        run("v2", set(range(7)), 20),
        run("v3", set(range(6)), 20),
    ]
    assert evaluate(suite, versions)["verdict"] == FAIL
    lenient = evaluate(suite, versions, plateau_margin=0.40)
    assert lenient["verdict"] == CONSIDER_FINE_TUNING
    assert "below 40" in lenient["reason"]
    with pytest.raises(ValueError, match="plateau margin"):
        evaluate(suite, versions, plateau_margin=15)


def test_the_advice_explains_the_plateau_test():
    suite = make_suite(labels=("v1", "v2", "v3"))
    versions = [run("v1", set(range(12))), run("v2", set(range(11))), run("v3", set(range(10)))]
    message = evaluate(suite, versions)["advice"]["message"]
    assert "only when the data shows that no version of the window beat the first by 15" in message
    assert "upper end of a 95% confidence range" in message
    # The sentences the advisor appends (data, cost, a stronger model) join with one full stop.
    assert ".." not in message


def test_errored_cases_in_history_are_not_paired_as_passes(tmp_path):
    # Issue 12: K = 2, 40 cases, 4 errors in v1. v2 fixes 8 cases and fails the 4 that errored.
    # In one run McNemar pairs 36 cases: 8 fixed, 0 broken, p = 0.0078 (improving, FAIL).
    # Split over two runs, the history record did not say which cases errored, so they paired
    # as passes that v2 broke: 8 fixed, 4 broken, p = 0.39, and fine-tuning was advised.
    errors = {36, 37, 38, 39}
    v1 = run("v1", set(range(14)), errors=errors, content_hash="h1")
    v2 = run("v2", set(range(8, 14)) | errors, content_hash="h2")
    one_run = evaluate(make_suite(labels=("v1", "v2")), [v1, v2], finetune_after=2)
    assert one_run["verdict"] == FAIL
    assert one_run["advice"]["plateau_p_value"] == pytest.approx(2 / 2**8)

    history_path = tmp_path / "history.jsonl"
    first = evaluate(make_suite(labels=("v1",)), [v1], finetune_after=2)
    append_records(history_path, history_records(first, {"v1": [r.case for r in v1.results]}, None))
    history, _ = load_records(history_path)
    assert history[0]["error_cases"] == ["c36", "c37", "c38", "c39"]
    second = evaluate(make_suite(labels=("v2",)), [v2], history=history, finetune_after=2)
    assert [it["source"] for it in second["iterations"]] == ["history", "run"]
    assert second["verdict"] == FAIL
    assert second["advice"]["plateau_p_value"] == pytest.approx(2 / 2**8)


def test_history_records_keep_the_effective_n_of_repeated_samples():
    def repeated(case_id: str, outcomes: tuple[bool, ...]) -> CaseResult:
        samples = tuple(
            SampleResult(i, CallResult(output="x"), (ExpectationResult("equals", ok),))
            for i, ok in enumerate(outcomes)
        )
        return CaseResult(
            prompt="triage", version="v1", case=case_id, model="m", messages=(), samples=samples
        )

    # Flaky cases (2 of 3 samples pass) look independent: worth more than one sample each.
    results = tuple(repeated(f"c{i:02d}", (True, True, i % 2 == 0)) for i in range(40))
    entry = evaluate(make_suite(), [VersionRun("v1", "m", "h1", results)])
    version = entry["versions"][0]
    assert version["effective_n"] > 40
    records = history_records(entry, {"v1": [r.case for r in results]}, None)
    assert records[0]["effective_n"] == pytest.approx(version["effective_n"])
    assert records[0]["n"] == 40


def test_unpaired_history_compares_on_the_recorded_effective_n():
    # A record without case ids, from a `repeat: 3` run worth 120 samples: the two-proportion
    # test weighs it as 120, not as its 40 cases.
    suite = make_suite(labels=("v3",))
    record = {
        "schema": 1,
        "prompt": "triage",
        "model": "m",
        "case_set_hash": None,
        "n": 40,
        "passed": 20,
        "failed": 20,
        "errors": 0,
        "rate": 0.6,
        "ci_low": 0.5,
        "ci_high": 0.7,
        "effective_n": 120.0,
        "failing_cases": [f"c{i:02d}" for i in range(16)],
    }
    history = [
        dict(record, version=f"v{k}", content_hash=f"old{k}", timestamp=f"2026-11-2{k}T10:00:00Z")
        for k in (1, 2)
    ]
    entry = evaluate(suite, [run("v3", set(range(14)))], history=history)
    assert entry["advice"]["plateau_p_value"] == pytest.approx(
        two_proportion_p(0.6, 120.0, 26 / 40, 40.0)
    )


def test_a_passing_iteration_within_noise_is_not_a_regression():
    # A plateau around 78%: v2 cleared 80% by one case. The drop to v3 (McNemar p = 1) is noise,
    # not a regression (19.7% of such histories were told "the prompt regressed").
    suite = make_suite(labels=("v1", "v2", "v3"))
    versions = [run("v1", set(range(9))), run("v2", set(range(8))), run("v3", set(range(9)))]
    entry = evaluate(suite, versions)
    assert "regressed" not in entry["advice"]["message"]
    assert entry["verdict"] == CONSIDER_FINE_TUNING


def test_a_significant_drop_from_a_passing_iteration_is_a_regression():
    suite = make_suite(labels=("v1", "v2", "v3"))
    versions = [run("v1", {0, 1}), run("v2", set(range(10))), run("v3", set(range(10)))]
    entry = evaluate(suite, versions)  # v1 95% -> v3 75%: 8 broken, 0 fixed, p = 0.0078
    assert entry["verdict"] == FAIL
    assert "the prompt regressed" in entry["advice"]["message"]
    assert "v1, p=0.0078" in entry["advice"]["message"]


def test_decide_is_the_verdict_on_plain_iterations():
    first = Iteration.measured("v1", passing=[f"c{i}" for i in range(30)], failing=["x"] * 0)
    assert decide([first], threshold=0.8).verdict == PASS
    failing = Iteration.measured(
        "v1", passing=[f"c{i}" for i in range(12)], failing=[f"c{i}" for i in range(12, 20)]
    )
    decision = decide([failing], threshold=0.8)
    assert (decision.verdict, decision.finding) == (FAIL, "too-few-iterations")


def test_the_gate_still_offers_every_name_its_callers_import() -> None:
    """``gate`` is the front of ``verdicts``, ``iterations`` and ``gate_report``: the names that
    ``evaluate.py``, the tests and benchmarks/bench_verdicts.py import from it stay there."""
    from pytest_promptgate import gate, iterations, verdicts

    assert [name for name in gate.__all__ if not hasattr(gate, name)] == []
    assert gate.decide is verdicts.decide and gate.Iteration is verdicts.Iteration
    assert gate.VersionRun is iterations.VersionRun and gate.RETHINK_BELOW == 0.10
