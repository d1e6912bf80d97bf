"""Acceptance of issue 4 through real pytest runs: iterations, history and the fine-tuning advisor.

Every suite here runs end to end (pytester → plugin → runner → litellm → the loopback
``fake_openai`` server → gate → reports). The server answers each case with the text after the
``reply:`` line of the rendered user message, so a version's replies are chosen per case by a
version-specific variable: version ``vK`` renders ``reply: {{ aK }}``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

N_CASES = 40
EXPECTED = "billing"


def replies_failing(failing: range | set[int], n: int = N_CASES) -> list[str]:
    """Replies for n cases: ``bug`` (a miss) for the case numbers in ``failing``, else the target."""
    return ["bug" if i in failing else EXPECTED for i in range(n)]


def multi_version_suite(base_url: str, per_version: list[list[str]], *, extra: str = "") -> str:
    """A suite with one version per entry of ``per_version``; version vK's case i gets the reply
    ``per_version[K-1][i]``. Each version has its own system text, so its own content hash."""
    n = len(per_version[0])
    versions = "\n".join(
        f"  v{k}:\n"
        f"    system: Classify the ticket (wording {k}).\n"
        f'    user: "Ticket {{{{ ticket }}}}\\nreply: {{{{ a{k} }}}}"'
        for k in range(1, len(per_version) + 1)
    )
    cases = "\n".join(
        f"  - id: case-{i:02d}\n"
        f"    vars: {{ticket: 't{i}', "
        + ", ".join(f"a{k}: {replies[i]}" for k, replies in enumerate(per_version, start=1))
        + f"}}\n    expect: [{{equals: {EXPECTED}}}]"
        for i in range(n)
    )
    header = textwrap.dedent(
        f"""\
        prompt: triage
        model: openai/fake-model
        params: {{api_base: "{base_url}", api_key: sk-test-key, temperature: 0,
                  input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}}
        usage: {{calls_per_month: 10000, months: 12}}
        """
    )
    return header + extra + "versions:\n" + versions + "\ncases:\n" + cases + "\n"


def single_version_suite(base_url: str, wording: str, replies: list[str]) -> str:
    return multi_version_suite(base_url, [replies]).replace("(wording 1)", f"({wording})")


# hypothesis' pytest plugin imports hypothesis in every in-process run (pytester unloads it
# after each one): ~5 s of a 7 s run on a busy machine, for nothing these suites use.
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*QUIET, "--promptgate-cache", "off", *args)


def report_of(pytester: pytest.Pytester, name: str = "report.json") -> dict:
    return json.loads((pytester.path / name).read_text())


def only_prompt(report: dict) -> dict:
    assert len(report["prompts"]) == 1
    return report["prompts"][0]


# v1 and v3 miss the same 16 cases (60%), v2 misses 15 of them (62.5%): a plateau, systematic.
PLATEAU = [replies_failing(range(16)), replies_failing(range(15)), replies_failing(range(16))]


def test_plateau_over_three_versions_advises_fine_tuning_with_evidence(pytester, fake_openai):
    # A real model name (served by the loopback server) so the advice can name a stronger one.
    suite = multi_version_suite(fake_openai.base_url, PLATEAU)
    pytester.makefile(
        ".promptgate.yaml", triage=suite.replace("openai/fake-model", "openai/gpt-4o-mini")
    )
    result = run(pytester, "--promptgate-report", "report.json", "--promptgate-no-history")

    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*triage*v3*24/40*60%*CONSIDER FINE-TUNING*",
            "triage: CONSIDER FINE-TUNING*rates plateaued*",
            "*evidence: v1 60% (n=40), v2 62% (n=40), v3 60% (n=40)",
            "*data: 40 labelled case(s)*minimum 100, ideal 500: insufficient",
            "*cost: prompt path $*, fine-tune path $*(defaults: *training_cost_usd*",
            "*export: promptgate export-finetune triage.promptgate.yaml -o *.jsonl",
            "*try first: Before fine-tuning, try a stronger model as the next version: "
            "openai/gpt-4o (about $* per call against $* now, $* a month at the suite's usage)",
        ]
    )
    assert fake_openai.calls == 3 * N_CASES
    report = report_of(pytester)
    assert report["verdict"] == "CONSIDER FINE-TUNING"
    assert report["exit_status"] == 1
    prompt = only_prompt(report)
    assert prompt["verdict"] == "CONSIDER FINE-TUNING"
    assert [it["version"] for it in prompt["iterations"]] == ["v1", "v2", "v3"]
    assert all(it["source"] == "run" for it in prompt["iterations"])
    assert [v["passed"] for v in prompt["versions"]] == [24, 25, 24]

    advice = prompt["advice"]
    assert advice["kind"] == "consider-fine-tuning"
    assert [w["version"] for w in advice["window"]] == ["v1", "v2", "v3"]
    assert [w["n"] for w in advice["window"]] == [40, 40, 40]
    assert advice["plateau_p_value"] >= 0.05
    assert advice["noise"] is False
    readiness = advice["readiness"]
    assert (readiness["labelled"], readiness["minimum"], readiness["ideal"]) == (40, 100, 500)
    assert readiness["status"] == "insufficient"
    cost = advice["cost"]
    assert (cost["calls_per_month"], cost["months"]) == (10000, 12)
    # Priced through params, so the prompt path is measured cost per call × volume.
    assert cost["prompt_path_usd"] is not None and cost["prompt_path_usd"] > 0
    assert cost["finetune_path_usd"]["low"] < cost["finetune_path_usd"]["high"]
    assert set(cost["defaults_used"]) >= {"training_cost_usd", "inference_multiplier"}
    assert advice["export_command"].startswith("promptgate export-finetune ")
    assert "triage.promptgate.yaml" in advice["export_command"]
    # Cases that fail in every iteration are the systematic pattern.
    patterns = {p["case"]: (p["failed_in"], p["of"]) for p in advice["failing_patterns"]}
    assert patterns["case-00"] == (3, 3)
    # Every iteration ran on gpt-4o-mini: try gpt-4o first, priced from litellm's price map.
    try_model = advice["try_model"]
    assert try_model["model"] == "openai/gpt-4o"
    assert try_model["cost_per_call_usd"] > 0
    assert try_model["monthly_usd"] == pytest.approx(try_model["cost_per_call_usd"] * 10000)
    assert "try a stronger model as the next version: openai/gpt-4o (about $" in advice["message"]


def test_finetune_flag_keeps_verdict_and_evidence_but_exits_0(pytester, fake_openai):
    pytester.makefile(".promptgate.yaml", triage=multi_version_suite(fake_openai.base_url, PLATEAU))
    result = run(
        pytester,
        "--promptgate-report",
        "report.json",
        "--promptgate-no-history",
        "--promptgate-finetune=flag",
    )

    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*triage*v3*CONSIDER FINE-TUNING*"])
    report = report_of(pytester)
    assert report["exit_status"] == 0
    assert report["settings"]["finetune"] == "flag"
    prompt = only_prompt(report)
    assert prompt["verdict"] == "CONSIDER FINE-TUNING"
    assert prompt["advice"]["kind"] == "consider-fine-tuning"
    advice = prompt["advice"]
    assert [w["version"] for w in advice["window"]] == ["v1", "v2", "v3"]
    assert advice["readiness"]["labelled"] == 40
    assert advice["cost"]["prompt_path_usd"] > 0
    assert advice["export_command"].startswith("promptgate export-finetune ")
    assert "flagged" in advice["message"]
    assert report["summary"]["flagged"] == 1


def test_finetune_flag_from_ini_twin(pytester, fake_openai):
    pytester.makefile(".promptgate.yaml", triage=multi_version_suite(fake_openai.base_url, PLATEAU))
    pytester.makeini("[pytest]\npromptgate_finetune = flag\n")
    result = run(pytester, "--promptgate-no-history")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*CONSIDER FINE-TUNING*"])


@pytest.mark.parametrize(
    "extra, args, verdict",
    [
        ("", (), "FAIL"),  # two iterations are fewer than the default K = 3
        ("finetune_after: 2\n", (), "CONSIDER FINE-TUNING"),
        ("", ("--promptgate-finetune-after", "2"), "CONSIDER FINE-TUNING"),
    ],
)
def test_finetune_after_sets_the_window(pytester, fake_openai, extra, args, verdict):
    text = multi_version_suite(fake_openai.base_url, PLATEAU[:2], extra=extra)
    pytester.makefile(".promptgate.yaml", triage=text)
    result = run(pytester, "--promptgate-report", "report.json", "--promptgate-no-history", *args)
    assert result.ret == 1
    prompt = only_prompt(report_of(pytester))
    assert prompt["verdict"] == verdict
    assert len(prompt["advice"]["window"]) == 2


def test_clearly_improving_third_version_fails_without_fine_tuning_advice(pytester, fake_openai):
    # v1 = v2 = 60%; v3 fixes 7 of the 16 misses and breaks none: 77.5%, still below 80%,
    # and McNemar on v1 → v3 (7 fixed, 0 broken) gives p = 2 / 2**7 ≈ 0.016.
    improving = [
        replies_failing(range(16)),
        replies_failing(range(16)),
        replies_failing(range(7, 16)),
    ]
    pytester.makefile(
        ".promptgate.yaml", triage=multi_version_suite(fake_openai.base_url, improving)
    )
    result = run(pytester, "--promptgate-report", "report.json", "--promptgate-no-history")

    assert result.ret == 1
    result.stdout.fnmatch_lines(["*triage*v3*31/40*FAIL*"])
    assert "CONSIDER FINE-TUNING" not in result.stdout.str()
    prompt = only_prompt(report_of(pytester))
    assert prompt["verdict"] == "FAIL"
    assert prompt["advice"]["kind"] == "iterate"
    assert prompt["advice"]["readiness"] is None
    assert prompt["advice"]["plateau_p_value"] == pytest.approx(2 / 2**7, rel=1e-6)
    comparison = next(v for v in prompt["versions"] if v["version"] == "v3")["comparison"]
    assert comparison["against"] == "v2"
    assert sorted(comparison["fixed"]) == [f"case-{i:02d}" for i in range(7)]
    assert comparison["broken"] == []
    assert comparison["p_value"] < 0.05


def history_command(
    pytester: pytest.Pytester, history: Path, *extra: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest_promptgate", "history", "--history", str(history), *extra],
        cwd=pytester.path,
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )


def test_iterations_are_recognized_across_runs_from_history(pytester, fake_openai):
    history = pytester.path / ".promptgate" / "history.jsonl"
    edits = [
        ("first wording", replies_failing(range(16))),
        ("second wording", replies_failing(range(15))),
        ("third wording", replies_failing(range(16))),
    ]
    verdicts = []
    for wording, replies in edits:
        # The same file, its only version rewritten in place: only history knows the earlier ones.
        pytester.makefile(
            ".promptgate.yaml", triage=single_version_suite(fake_openai.base_url, wording, replies)
        )
        result = run(pytester, "--promptgate-report", "report.json")
        prompt = only_prompt(report_of(pytester))
        verdicts.append((result.ret, prompt["verdict"]))

    assert verdicts == [(1, "FAIL"), (1, "FAIL"), (1, "CONSIDER FINE-TUNING")]
    result.stdout.fnmatch_lines(["*triage*v1*CONSIDER FINE-TUNING*"])
    assert [it["source"] for it in prompt["iterations"]] == ["history", "history", "run"]
    assert len({it["content_hash"] for it in prompt["iterations"]}) == 3
    assert [w["n"] for w in prompt["advice"]["window"]] == [40, 40, 40]

    records = [json.loads(line) for line in history.read_text().splitlines()]
    assert len(records) == 3
    assert len({r["content_hash"] for r in records}) == 3

    listing = history_command(pytester, history)
    assert listing.returncode == 0, listing.stderr
    rows = [line for line in listing.stdout.splitlines() if line.startswith("triage")]
    assert len(rows) == 3, listing.stdout
    assert [row.split()[1] for row in rows] == ["1", "2", "3"]  # the iteration column
    assert "24/40" in rows[0] and "25/40" in rows[1] and "24/40" in rows[2]


def test_a_damaged_history_line_is_reported_and_skipped_never_fatal(pytester, fake_openai):
    history = pytester.path / ".promptgate" / "history.jsonl"
    for wording in ("first wording", "second wording"):
        pytester.makefile(
            ".promptgate.yaml",
            triage=single_version_suite(fake_openai.base_url, wording, replies_failing(range(16))),
        )
        run(pytester)
    # What a run killed in the middle of a write could leave: half a record, no newline.
    intact = history.read_text()
    history.write_text(intact + '{"prompt": "triage", "version": "v1", "content_ha')

    pytester.makefile(
        ".promptgate.yaml",
        triage=single_version_suite(
            fake_openai.base_url, "third wording", replies_failing(range(16))
        ),
    )
    result = run(pytester, "--promptgate-report", "report.json")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*history.jsonl:3: damaged history line skipped*"])
    assert "Traceback" not in result.stdout.str()
    # Both intact iterations still count: the third run reaches the advice.
    assert only_prompt(report_of(pytester))["verdict"] == "CONSIDER FINE-TUNING"

    listing = history_command(pytester, history)
    assert listing.returncode == 0, listing.stderr
    assert "damaged" in listing.stdout
    assert len([line for line in listing.stdout.splitlines() if line.startswith("triage")]) == 3


def test_rerunning_an_unchanged_version_is_not_a_new_iteration(pytester, fake_openai):
    text = single_version_suite(fake_openai.base_url, "only wording", replies_failing(range(16)))
    pytester.makefile(".promptgate.yaml", triage=text)
    for _ in range(3):
        result = run(pytester, "--promptgate-report", "report.json")
    assert result.ret == 1
    prompt = only_prompt(report_of(pytester))
    assert prompt["verdict"] == "FAIL"
    assert len(prompt["iterations"]) == 1


def test_five_percent_rate_is_rethink(pytester, fake_openai):
    replies = replies_failing(range(1, 20), n=20)  # 1 of 20 passes
    pytester.makefile(
        ".promptgate.yaml", triage=multi_version_suite(fake_openai.base_url, [replies])
    )
    result = run(pytester, "--promptgate-report", "report.json", "--promptgate-no-history")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*triage*v1*1/20*5%*RETHINK*"])
    report = report_of(pytester)
    assert report["verdict"] == "RETHINK"
    prompt = only_prompt(report)
    assert prompt["verdict"] == "RETHINK"
    assert prompt["advice"]["kind"] == "rethink"
    assert report["summary"]["rethink"] == 1


@pytest.mark.parametrize(
    "passing, gate, verdict, exit_status",
    [
        # 17/20 = 85%, 95% Wilson interval ≈ 64–95%
        (17, "point", "PASS", 0),
        (17, "lower", "FAIL", 1),  # the lower bound 64% does not clear 80%
        (17, "upper", "PASS", 0),
        # 15/20 = 75%, interval ≈ 53–89%
        (15, "point", "FAIL", 1),
        (15, "lower", "FAIL", 1),
        (15, "upper", "PASS", 0),  # fails only when even the upper bound is below 80%
        # 10/20 = 50%, interval ≈ 30–70%: even the upper bound is below
        (10, "upper", "FAIL", 1),
    ],
)
def test_gate_modes_move_the_verdict_around_the_threshold(
    pytester, fake_openai, passing, gate, verdict, exit_status
):
    replies = replies_failing(range(passing, 20), n=20)
    pytester.makefile(
        ".promptgate.yaml", triage=multi_version_suite(fake_openai.base_url, [replies])
    )
    result = run(
        pytester,
        "--promptgate-report",
        "report.json",
        "--promptgate-no-history",
        "--promptgate-gate",
        gate,
    )
    assert result.ret == exit_status, result.stdout.str()
    report = report_of(pytester)
    assert report["settings"]["gate"] == gate
    prompt = only_prompt(report)
    assert prompt["verdict"] == verdict
    version = prompt["versions"][0]
    assert version["passed"] == passing
    if gate == "lower" and verdict == "FAIL" and passing == 17:
        assert version["ci_low"] < 0.8 <= version["rate"]
        assert "lower bound" in prompt["reason"]
    if gate == "upper" and verdict == "PASS" and passing == 15:
        assert version["rate"] < 0.8 <= version["ci_high"]


# Issue 12: 20 cases, 60% -> 65% -> 70% (nested misses). The old rule read McNemar p = 0.5 as a
# plateau; the data cannot bound the gain below 15 points, so the verdict is FAIL with the
# number of cases that would tell.
SMALL_GAIN = [
    replies_failing(range(8), 20),
    replies_failing(range(7), 20),
    replies_failing(range(6), 20),
]


def test_a_small_suite_is_told_how_many_cases_would_tell_a_plateau(pytester, fake_openai):
    pytester.makefile(
        ".promptgate.yaml", triage=multi_version_suite(fake_openai.base_url, SMALL_GAIN)
    )
    result = run(pytester, "--promptgate-report", "report.json", "--promptgate-no-history")
    assert result.ret == 1
    assert "CONSIDER FINE-TUNING" not in result.stdout.str()
    prompt = only_prompt(report_of(pytester))
    assert prompt["verdict"] == "FAIL"
    advice = prompt["advice"]
    assert advice["readiness"] is None and advice["export_command"] is None
    needed = advice["cases_needed"]
    assert isinstance(needed, int) and needed > 20
    assert advice["plateau_margin"] == 0.15 and advice["plateau_upper_bound"] >= 0.15
    assert (
        f"too few cases to tell a plateau from a 15-point gain: about {needed} cases would"
        in advice["message"]
    )


@pytest.mark.parametrize(
    "extra, args, ini",
    [
        ("plateau_margin: 0.4\n", (), None),
        ("", ("--promptgate-plateau-margin", "40%"), None),
        ("", (), "[pytest]\npromptgate_plateau_margin = 0.4\n"),
        ("plateau_margin: 0.1\n", ("--promptgate-plateau-margin", "0.4"), None),  # CLI wins
    ],
)
def test_the_plateau_margin_comes_from_suite_cli_or_ini(pytester, fake_openai, extra, args, ini):
    text = multi_version_suite(fake_openai.base_url, SMALL_GAIN, extra=extra)
    pytester.makefile(".promptgate.yaml", triage=text)
    if ini:
        pytester.makeini(ini)
    result = run(pytester, "--promptgate-report", "report.json", "--promptgate-no-history", *args)
    assert result.ret == 1, result.stdout.str()
    prompt = only_prompt(report_of(pytester))
    assert prompt["verdict"] == "CONSIDER FINE-TUNING"
    assert prompt["advice"]["plateau_margin"] == 0.4


def test_a_bad_plateau_margin_is_a_usage_error(pytester, fake_openai):
    pytester.makefile(
        ".promptgate.yaml", triage=multi_version_suite(fake_openai.base_url, SMALL_GAIN)
    )
    result = run(pytester, "--promptgate-plateau-margin", "15")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert "0.15" in result.stderr.str()  # did you mean 0.15?
