"""Acceptance of issue 6 through real pytest runs: xdist, sharding + merge, cache, replay,
repeats and the cost budget.

Suites run end to end against the loopback ``fake_openai`` server; a case's reply is the text
after the ``reply:`` line of its rendered user message (version ``vK`` renders ``{{ aK }}``).
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

# hypothesis' pytest plugin imports hypothesis in every in-process run (pytester unloads it
# after each one): seconds per run for nothing these suites use.
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def suite(
    prompt: str,
    base_url: str,
    per_version: list[list[str]],
    *,
    expect: str = "[{equals: billing}]",
    params: str = "",
    header: str = "",
    with_key: bool = True,
) -> str:
    """A suite with one version per entry of ``per_version``; version vK's case i gets the
    reply ``per_version[K-1][i]``. The system text names the prompt: the cache is content
    addressed, so two suites sending identical requests would share replies."""
    key = ", api_key: sk-test-key" if with_key else ""
    versions = "\n".join(
        f"  v{k}:\n    system: Classify the ticket ({prompt}, wording {k}).\n"
        f'    user: "Ticket {{{{ ticket }}}}\\nreply: {{{{ a{k} }}}}"'
        for k in range(1, len(per_version) + 1)
    )
    cases = "\n".join(
        f"  - id: case-{i:02d}\n    vars: {{ticket: 't{i}', "
        + ", ".join(f"a{k}: {replies[i]}" for k, replies in enumerate(per_version, start=1))
        + f"}}\n    expect: {expect}"
        for i in range(len(per_version[0]))
    )
    top = textwrap.dedent(
        f"""\
        prompt: {prompt}
        model: openai/fake-model
        params: {{api_base: "{base_url}"{key}, temperature: 0{params}}}
        """
    )
    return top + header + "versions:\n" + versions + "\ncases:\n" + cases + "\n"


def run(pytester: pytest.Pytester, *args: str, history: bool = False) -> pytest.RunResult:
    return pytester.runpytest(*QUIET, *(() if history else ("--promptgate-no-history",)), *args)


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def promptgate_cli(pytester: pytest.Pytester, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest_promptgate", *args],
        cwd=pytester.path,
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )


def gate_view(report: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on how the run was split: verdicts, counts, rates and case outcomes."""
    prompts = {
        p["prompt"]: (
            p["verdict"],
            [
                (
                    v["version"],
                    v["n"],
                    v["passed"],
                    v["failed"],
                    v["errors"],
                    v["rate"],
                    v["ci_low"],
                    v["ci_high"],
                    sorted(v["failing_cases"]),
                )
                for v in p["versions"]
            ],
        )
        for p in report["prompts"]
    }
    summary = {
        k: report["summary"][k]
        for k in (
            "prompts",
            "passed",
            "failed",
            "flagged",
            "inconclusive",
            "rethink",
            "cases",
            "errors",
        )
    }
    cases = sorted((c["prompt"], c["version"], c["case"], c["status"]) for c in report["cases"])
    return {
        "verdict": report["verdict"],
        "exit_status": report["exit_status"],
        "prompts": prompts,
        "summary": summary,
        "cases": cases,
    }


# -- a suite mixing passes, failures and a provider error --------------------------------------

ALPHA = [["billing"] * 9 + ["bug"]]  # 9/10: PASS
# beta v1 6/20; v2 14/19 (FAIL) and one provider error (case-19: the server answers 400).
BETA = [
    ["billing"] * 6 + ["bug"] * 14,
    ["billing"] * 14 + ["bug"] * 5 + ["boom"],
]
# Misses fail only in the current version of a failing prompt (beta v2); alpha's (a passing
# prompt) and beta v1's (an earlier version) are tolerated.
MIXED_OUTCOMES = {"passed": 9 + 6 + 14, "failed": 5, "tolerated": 1 + 14, "errors": 1}
MIXED_CALLS = 10 + 40


@pytest.fixture
def mixed(pytester, fake_openai):
    fake_openai.fault_on = {"reply: boom": "400"}
    pytester.makefile(".promptgate.yaml", alpha=suite("alpha", fake_openai.base_url, ALPHA))
    pytester.makefile(".promptgate.yaml", beta=suite("beta", fake_openai.base_url, BETA))
    return fake_openai


def serial_baseline(pytester) -> dict[str, Any]:
    result = run(pytester, "--promptgate-cache", "off", "--promptgate-report", "serial.json")
    assert result.ret == 1
    assert result.parseoutcomes() == MIXED_OUTCOMES
    view = gate_view(read_json(pytester.path / "serial.json"))
    # The suite does mix everything, so the comparisons below are not vacuous.
    assert view["prompts"]["alpha"][0] == "PASS"
    assert view["prompts"]["beta"][0] == "FAIL"
    assert view["summary"]["errors"] == 1
    return view


@pytest.mark.parametrize("workers", ["2", "0"])
def test_xdist_gives_the_serial_verdicts_counts_and_report(pytester, mixed, workers):
    serial = serial_baseline(pytester)
    assert mixed.calls == MIXED_CALLS

    # This run also records the cache and the history, from workers and controller.
    result = run(pytester, "-n", workers, "--promptgate-report", "xdist.json", history=True)
    assert result.ret == 1
    outcomes = result.parseoutcomes()
    if workers == "0":
        assert outcomes == MIXED_OUTCOMES
    else:
        # A worker sees only its own items, so it cannot know a prompt's gate when its item
        # finishes: every miss is reported as `miss` there and the controller gates the run.
        misses = MIXED_OUTCOMES["failed"] + MIXED_OUTCOMES["tolerated"]
        assert outcomes == {"passed": MIXED_OUTCOMES["passed"], "miss": misses, "errors": 1}
    assert mixed.calls == 2 * MIXED_CALLS  # each case called once more, not once per worker
    report = read_json(pytester.path / "xdist.json")
    assert gate_view(report) == serial
    result.stdout.fnmatch_lines(["*alpha*v1*9/10*PASS*", "*beta*v2*14/19*FAIL*"])
    # The workers' cache counters reach the controller's summary.
    assert report["summary"]["cache"] == {"hits": 0, "misses": MIXED_CALLS, "saved_usd": 0.0}
    # History is written once, by the controller: one record per (prompt, version, model).
    records = [
        json.loads(line)
        for line in (pytester.path / ".promptgate" / "history.jsonl").read_text().splitlines()
    ]
    assert sorted((r["prompt"], r["version"]) for r in records) == [
        ("alpha", "v1"),
        ("beta", "v1"),
        ("beta", "v2"),
    ]

    # What the workers wrote to the cache serves a serial rerun: only the errored case, which
    # is never cached, is called again.
    rerun = run(pytester, "--promptgate-report", "rerun.json")
    assert rerun.ret == 1
    assert mixed.calls == 2 * MIXED_CALLS + 1
    rerun_report = read_json(pytester.path / "rerun.json")
    assert rerun_report["summary"]["cache"]["hits"] == MIXED_CALLS - 1
    assert gate_view(rerun_report) == serial


def test_shards_split_the_cases_and_merge_to_the_serial_verdict(pytester, mixed):
    serial = serial_baseline(pytester)
    for index in (1, 2):
        run(
            pytester,
            "--promptgate-cache",
            "off",
            "--promptgate-shard",
            f"{index}/2",
            "--promptgate-report",
            f"shard-{index}.json",
        )
    shards = [read_json(pytester.path / f"shard-{index}.json") for index in (1, 2)]
    assert mixed.calls == 2 * MIXED_CALLS  # the shards together call each case once

    case_sets = [
        {(c["prompt"], c["version"], c["case"]) for c in shard["cases"]} for shard in shards
    ]
    assert case_sets[0] and case_sets[1]
    assert not case_sets[0] & case_sets[1]  # each case in exactly one shard
    assert case_sets[0] | case_sets[1] == {(p, v, c) for p, v, c, _ in serial["cases"]}
    for cases in case_sets:  # every version of a case lands in the same shard (paired comparisons)
        beta_ids = {c for p, _, c in cases if p == "beta"}
        assert {(c, v) for p, v, c in cases if p == "beta"} == {
            (c, v) for c in beta_ids for v in ("v1", "v2")
        }

    merged = promptgate_cli(pytester, "merge", "shard-1.json", "shard-2.json", "-o", "merged.json")
    assert merged.returncode == 1, merged.stdout + merged.stderr  # the merged verdict is FAIL
    assert gate_view(read_json(pytester.path / "merged.json")) == serial


# -- cache -----------------------------------------------------------------------------------------

PRICED = ", input_cost_per_token: 0.001, output_cost_per_token: 0.002"


def test_second_run_is_served_from_cache_with_its_recorded_latency(pytester, fake_openai):
    fake_openai.latency_ms = 200
    # `not-latency: 150` passes only when the recorded latency (>= 200 ms) is kept: a cache hit
    # timed afresh would take ~0 ms and fail it. `latency: 60000` must keep passing too.
    text = suite(
        "cached",
        fake_openai.base_url,
        [["billing"] * 4 + ["bug"]],
        params=PRICED,
        expect="[{equals: billing}, {not-latency: 150}, {latency: 60000}]",
    )
    pytester.makefile(".promptgate.yaml", cached=text)

    first = run(pytester, "--promptgate-report", "first.json")
    assert first.parseoutcomes() == {"passed": 4, "tolerated": 1}
    assert fake_openai.calls == 5
    first_report = read_json(pytester.path / "first.json")
    assert first_report["summary"]["cache"]["misses"] == 5
    assert (pytester.path / ".promptgate" / "cache").is_dir()

    second = run(pytester, "--promptgate-report", "second.json")
    assert second.parseoutcomes() == {"passed": 4, "tolerated": 1}
    assert fake_openai.calls == 5  # zero calls
    second_report = read_json(pytester.path / "second.json")
    cache = second_report["summary"]["cache"]
    assert (cache["hits"], cache["misses"]) == (5, 0)
    assert cache["saved_usd"] == pytest.approx(first_report["summary"]["cost_usd"], rel=1e-6)
    assert cache["saved_usd"] > 0
    latencies = {c["case"]: c["latency_ms"] for c in first_report["cases"]}
    for case in second_report["cases"]:
        assert case["cached"] is True
        assert case["latency_ms"] == pytest.approx(latencies[case["case"]])
        assert case["latency_ms"] >= 200
    assert gate_view(second_report) == gate_view(first_report)

    third = run(pytester, "--promptgate-cache", "off", "--promptgate-report", "third.json")
    assert third.parseoutcomes() == {"passed": 4, "tolerated": 1}
    assert fake_openai.calls == 10  # off: every case is called again
    assert read_json(pytester.path / "third.json")["summary"]["cache"]["hits"] == 0


def test_replay_passes_with_the_server_stopped_and_no_key(pytester, fake_openai, monkeypatch):
    # The suite carries no api_key: the recording run reads it from the environment.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-recording-only-key")
    replies = [["billing"] * 3]
    pytester.makefile(
        ".promptgate.yaml",
        recorded=suite("recorded", fake_openai.base_url, replies, with_key=False),
    )
    recording = run(pytester)
    recording.assert_outcomes(passed=3)
    assert fake_openai.calls == 3

    fake_openai.stop()
    monkeypatch.delenv("OPENAI_API_KEY")
    replay = run(pytester, "--promptgate-replay", "--promptgate-report", "replay.json")
    assert replay.ret == 0, replay.stdout.str()
    replay.assert_outcomes(passed=3)
    replay.stdout.fnmatch_lines(["*cache replay*"])
    report = read_json(pytester.path / "replay.json")
    assert report["verdict"] == "PASS"
    assert report["summary"]["cache"]["hits"] == 3

    # A case added after the recording is a replay miss: an error naming the case, never a pass.
    text = suite("recorded", fake_openai.base_url, [["billing"] * 4], with_key=False)
    pytester.makefile(".promptgate.yaml", recorded=text)
    replay = run(pytester, "--promptgate-replay", "--promptgate-report", "replay.json")
    assert replay.ret != 0
    replay.assert_outcomes(passed=3, errors=1)
    replay.stdout.fnmatch_lines(["*replay: no cached reply for *case-03*"])
    added = next(
        c for c in read_json(pytester.path / "replay.json")["cases"] if c["case"] == "case-03"
    )
    assert added["status"] == "error"
    assert "case-03" in added["error"]


# -- repeats ---------------------------------------------------------------------------------------


def vary_replies(server, wrong_call: dict[str, int]) -> None:
    """Make the server's reply to identical requests vary: the n-th call (0-based) carrying the
    user content ``content`` answers ``bug`` when ``wrong_call[content] == n``. The request body
    holds no sample index, so this is how a flaky model is simulated."""
    lock = threading.Lock()
    seen: collections.Counter[str] = collections.Counter()
    original = server.reply_for

    def reply_for(messages):
        content = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        with lock:
            number = seen[content]
            seen[content] += 1
        return "bug" if wrong_call.get(content) == number else original(messages)

    server.reply_for = reply_for  # an instance attribute: the handler calls state.reply_for(...)


def test_repeat_samples_each_case_and_lists_flaky_cases(pytester, fake_openai):
    vary_replies(fake_openai, {"Ticket t0\nreply: billing": 1})  # case-00's second call misses
    pytester.makefile(
        ".promptgate.yaml",
        flaky=suite("flaky", fake_openai.base_url, [["billing"] * 3], header="repeat: 3\n"),
    )
    first = run(pytester, "--promptgate-report", "first.json")
    assert fake_openai.calls == 3 * 3
    bodies = [json.dumps(r["body"]["messages"]) for r in fake_openai.requests]
    assert all(count == 3 for count in collections.Counter(bodies).values())  # 3 calls per case

    def check(report: dict[str, Any]) -> None:
        version = report["prompts"][0]["versions"][0]
        assert version["samples"] == 3
        assert version["flaky_cases"] == ["case-00"]
        by_case = {c["case"]: c for c in report["cases"]}
        assert by_case["case-00"]["samples"] == 3
        assert by_case["case-00"]["rate"] == pytest.approx(2 / 3)
        assert by_case["case-01"]["rate"] == 1.0

    check(read_json(pytester.path / "first.json"))
    # The case's rate counts: (2/3 + 1 + 1) / 3 ≈ 89% clears the 80% threshold.
    assert first.ret == 0, first.stdout.str()
    version = read_json(pytester.path / "first.json")["prompts"][0]["versions"][0]
    assert version["rate"] == pytest.approx(8 / 9, abs=1e-3)

    # Each sample index has its own cache entry: a second run replays all three samples
    # (one of which missed) without any call; one shared entry would make the case stable.
    run(pytester, "--promptgate-report", "second.json")
    assert fake_openai.calls == 9
    second = read_json(pytester.path / "second.json")
    assert second["summary"]["cache"]["hits"] == 9
    check(second)


# -- budget ----------------------------------------------------------------------------------------


def test_max_cost_refuses_to_start_over_budget_and_makes_no_call(pytester, fake_openai):
    text = suite("priced", fake_openai.base_url, [["billing"] * 5], params=PRICED)
    pytester.makefile(".promptgate.yaml", priced=text)
    result = run(pytester, "--promptgate-cache", "off", "--promptgate-max-cost", "0.000001")
    assert result.ret not in (0, 5)
    output = result.stdout.str() + result.stderr.str()
    assert "exceeds --promptgate-max-cost $0.0000" in output
    assert "Traceback" not in output
    assert fake_openai.calls == 0

    within = run(pytester, "--promptgate-cache", "off", "--promptgate-max-cost", "100")
    within.assert_outcomes(passed=5)
    assert fake_openai.calls == 5


# -- call worker processes -------------------------------------------------------------------------


def test_call_workers_give_the_serial_verdicts_counts_and_report(pytester, mixed):
    serial = serial_baseline(pytester)
    assert (
        read_json(pytester.path / "serial.json")["run"]["call_workers"] == 0
    )  # 50 calls: auto stays in-process

    result = run(
        pytester,
        "--promptgate-cache",
        "off",
        "--promptgate-workers",
        "2",
        "--promptgate-report",
        "pool.json",
    )
    assert result.ret == 1
    assert (
        result.parseoutcomes() == MIXED_OUTCOMES
    )  # the items still decide FAILED/TOLERATED locally
    assert mixed.calls == 2 * MIXED_CALLS
    report = read_json(pytester.path / "pool.json")
    assert report["run"]["call_workers"] == 2  # the calls really went through the pool
    assert report["run"]["calls"] == MIXED_CALLS
    assert gate_view(report) == serial
    result.stdout.fnmatch_lines(["*model call(s) in *s by 2 worker processes*"])
    # The provider error (a 400) is still an error, with the scrubbed message, not a failure.
    boom = next(c for c in report["cases"] if c["status"] == "error")
    assert "400" in boom["error"] and "sk-test-key" not in result.stdout.str()


def test_call_workers_wait_out_429s_and_lose_nothing(pytester, fake_openai):
    fake_openai.fault_every = 4
    fake_openai.fault = "429"
    fake_openai.retry_after = 0.05
    pytester.makefile(
        ".promptgate.yaml", paced=suite("paced", fake_openai.base_url, [["billing"] * 24])
    )
    result = run(
        pytester,
        "--promptgate-cache",
        "off",
        "--promptgate-workers",
        "2",
        "--promptgate-report",
        "paced.json",
    )
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=24)
    report = read_json(pytester.path / "paced.json")
    assert report["run"]["call_workers"] == 2
    assert fake_openai.calls > 24  # the 429s were answered by retries, inside the workers


def test_explicit_call_workers_with_a_budget_say_why_they_are_not_used(pytester, fake_openai):
    text = suite("budgeted", fake_openai.base_url, [["billing"] * 3], params=PRICED)
    pytester.makefile(".promptgate.yaml", budgeted=text)
    result = run(
        pytester,
        "--promptgate-workers",
        "2",
        "--promptgate-max-cost",
        "5",
        "--promptgate-report",
        "b.json",
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*--promptgate-workers 2 ignored: a budget*"])
    assert read_json(pytester.path / "b.json")["run"]["call_workers"] == 0


def test_bad_workers_value_is_a_usage_error(pytester):
    pytester.makefile(
        ".promptgate.yaml", any="prompt: p\nmodel: openai/x\nuser: hi\ncases: [{id: a}]\n"
    )
    result = run(pytester, "--promptgate-workers", "many")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--promptgate-workers: expected auto or a whole number >= 0*"])
