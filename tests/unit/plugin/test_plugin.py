"""End-to-end: suite files run by pytest (pytester) against the loopback OpenAI server."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest


def suite_text(
    base_url: str,
    replies: list[str],
    *,
    expected: str = "billing",
    threshold: str = "",
    extra: str = "",
) -> str:
    """A triage suite whose case i gets the model reply replies[i] from the fake server."""
    cases = "\n".join(
        f"  - id: case-{i:02d}\n    vars: {{ticket: 'reply: {reply}'}}\n    expect: [{{equals: {expected}}}]"
        for i, reply in enumerate(replies)
    )
    return (
        textwrap.dedent(
            f"""\
        prompt: triage
        model: openai/fake-model
        params: {{api_base: "{base_url}", api_key: sk-test-key, temperature: 0}}
        {threshold}
        versions:
          v1:
            system: Classify the ticket as billing, bug, feature or account.
            user: "{{{{ ticket }}}}"
        {extra}
        cases:
        """
        )
        + cases
        + "\n"
    )


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "--promptgate-cache", "off", *args)


def report_of(pytester: pytest.Pytester, name: str = "report.json") -> dict:
    return json.loads((pytester.path / name).read_text())


def test_17_of_20_passing_exits_0_and_lists_the_three_misses(pytester, fake_openai):
    replies = ["billing"] * 17 + ["bug", "feature", "account"]
    pytester.makefile(".promptgate.yaml", triage=suite_text(fake_openai.base_url, replies))
    result = run(pytester, "--promptgate-report", "report.json")
    assert result.ret == 0, result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 17
    assert outcomes["tolerated"] == 3
    result.stdout.fnmatch_lines(["*triage*v1*17/20*85%*PASS*"])
    report = report_of(pytester)
    assert report["verdict"] == "PASS"
    version = report["prompts"][0]["versions"][0]
    assert (version["n"], version["passed"], version["failed"]) == (20, 17, 3)
    assert version["ci_low"] < 0.85 < version["ci_high"]
    misses = sorted(c["case"] for c in report["cases"] if c["status"] == "failed")
    assert misses == ["case-17", "case-18", "case-19"]


def test_15_of_20_exits_1_with_fail_in_table_and_report(pytester, fake_openai):
    replies = ["billing"] * 15 + ["bug"] * 5
    pytester.makefile(".promptgate.yaml", triage=suite_text(fake_openai.base_url, replies))
    result = run(pytester, "--promptgate-report", "report.json", "--promptgate-no-history")
    assert result.ret == 1
    result.assert_outcomes(passed=15, failed=5)
    result.stdout.fnmatch_lines(["*triage*v1*15/20*75%*FAIL*", "*case-15*equals*"])
    report = report_of(pytester)
    assert report["verdict"] == "FAIL"
    assert report["prompts"][0]["verdict"] == "FAIL"
    assert report["exit_status"] == 1
    failing = [c for c in report["cases"] if c["status"] == "failed"]
    assert len(failing) == 5 and failing[0]["failures"][0]["expectation"] == "equals"
    assert failing[0]["output"] == "bug"


def test_failure_shows_expectation_and_output_and_vv_the_rendered_prompt(pytester, fake_openai):
    pytester.makefile(".promptgate.yaml", triage=suite_text(fake_openai.base_url, ["bug"]))
    result = run(pytester, "--promptgate-no-history")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*FAILED triage::v1::case-00*", "*✗ equals*", '*output: "bug"*'])
    assert "rendered prompt:" not in result.stdout.str()
    verbose = run(pytester, "--promptgate-no-history", "-vv")
    verbose.stdout.fnmatch_lines(
        ['*output: "bug"*', "*rendered prompt:*", "*?system? *Classify the ticket*"]
    )


def test_node_ids_are_file_prompt_version_case(pytester, fake_openai):
    pytester.makefile(
        ".promptgate.yaml", triage=suite_text(fake_openai.base_url, ["billing", "bug"])
    )
    result = run(pytester, "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "triage.promptgate.yaml::triage::v1::case-00",
            "triage.promptgate.yaml::triage::v1::case-01",
        ]
    )
    assert fake_openai.calls == 0  # collecting makes no model call


def test_k_selection_and_node_id_selection(pytester, fake_openai):
    pytester.makefile(".promptgate.yaml", triage=suite_text(fake_openai.base_url, ["billing"] * 4))
    result = run(pytester, "-k", "case-01 or case-02", "--promptgate-no-history")
    result.assert_outcomes(passed=2, deselected=2)
    assert fake_openai.calls == 2
    result = run(pytester, "triage.promptgate.yaml::triage::v1::case-03", "--promptgate-no-history")
    result.assert_outcomes(passed=1)


def test_items_report_while_the_calls_are_still_running(pytester, fake_openai):
    """A serial run streams: the first item's verdict is reported before the last call of the
    batch has even been sent (an ordering, read from two logs; no duration is asserted)."""
    fake_openai.latency_ms = 50
    events: list[tuple[str, str]] = []
    original = fake_openai.reply_for

    def reply_for(messages):
        events.append(("call", messages[-1]["content"]))
        return original(messages)

    fake_openai.reply_for = reply_for
    pytester.makefile(".promptgate.yaml", triage=suite_text(fake_openai.base_url, ["billing"] * 30))
    pytester.makeconftest(
        "def pytest_runtest_logreport(report):\n"
        "    if report.when == 'call':\n"
        "        EVENTS.append(('report', report.nodeid))\n"
    )
    import builtins

    builtins.EVENTS = events  # the conftest's module globals fall back to builtins
    try:
        result = run(pytester, "--promptgate-concurrency", "2", "--promptgate-no-history")
    finally:
        del builtins.EVENTS
    result.assert_outcomes(passed=30)
    kinds = [kind for kind, _ in events]
    assert kinds.count("call") == 30 and kinds.count("report") == 30
    first_report = kinds.index("report")
    assert "call" in kinds[first_report:], "every call was made before the first item reported"


def test_x_with_strict_cancels_the_calls_it_no_longer_needs(pytester, fake_openai):
    fake_openai.latency_ms = 100
    replies = ["billing", "bug"] + ["billing"] * 58
    pytester.makefile(".promptgate.yaml", triage=suite_text(fake_openai.base_url, replies))
    result = run(
        pytester, "-x", "--promptgate-strict", "--promptgate-concurrency", "2",
        "--promptgate-no-history", "--promptgate-report", "r.json",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 1 and outcomes["passed"] == 1
    assert fake_openai.calls < 30, fake_openai.calls  # far from all 60: the rest were cancelled
    result.stdout.fnmatch_lines(["*the model calls still running were cancelled*"])
    assert not (pytester.path / "r.json").exists()  # a partial run writes no report


def test_tags_become_markers(pytester, fake_openai):
    text = suite_text(fake_openai.base_url, ["billing", "billing"]).replace(
        "expect: [{equals: billing}]", "expect: [{equals: billing}]\n    tags: [payments]", 1
    )
    pytester.makefile(".promptgate.yaml", triage=text)
    result = run(pytester, "-m", "payments", "--strict-markers", "--promptgate-no-history")
    result.assert_outcomes(passed=1, deselected=1)


def test_x_stops_at_first_failure_and_lf_reruns_failures(pytester, fake_openai):
    pytester.makefile(
        ".promptgate.yaml",
        triage=suite_text(fake_openai.base_url, ["billing", "bug", "bug", "billing"]),
    )
    result = pytester.runpytest("--promptgate-cache", "off", "--promptgate-no-history", "-x")
    assert result.ret == 1
    assert result.parseoutcomes()["failed"] == 1
    result = pytester.runpytest("--promptgate-cache", "off", "--promptgate-no-history")
    result.assert_outcomes(passed=2, failed=2)
    result = pytester.runpytest("--promptgate-cache", "off", "--promptgate-no-history", "--lf")
    result.assert_outcomes(failed=2, deselected=2)


def test_junitxml_names_cases(pytester, fake_openai):
    pytester.makefile(
        ".promptgate.yaml", triage=suite_text(fake_openai.base_url, ["billing", "bug"])
    )
    run(pytester, "--junitxml", "junit.xml", "--promptgate-no-history")
    xml = (pytester.path / "junit.xml").read_text()
    assert 'name="case-00"' in xml and 'name="case-01"' in xml
    assert "<failure" in xml


def test_provider_failing_every_call_is_an_error_never_a_pass(pytester, fake_openai):
    fake_openai.faults = ["500"]
    pytester.makefile(".promptgate.yaml", triage=suite_text(fake_openai.base_url, ["billing"] * 3))
    result = run(
        pytester,
        "--promptgate-retries",
        "1",
        "--promptgate-report",
        "report.json",
        "--promptgate-no-history",
    )
    assert result.ret != 0
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*ERROR triage::v1::case-0*", "*provider server error*"])
    report = report_of(pytester)
    version = report["prompts"][0]["versions"][0]
    assert version["passed"] == 0 and version["errors"] == 3
    assert report["prompts"][0]["verdict"] == "INCONCLUSIVE"
    assert "sk-test-key" not in result.stdout.str()


def test_more_than_ten_percent_errors_is_inconclusive(pytester, fake_openai):
    fake_openai.fault_on = {"reply: boom": "400"}
    replies = ["billing"] * 8 + ["boom"] * 2
    pytester.makefile(".promptgate.yaml", triage=suite_text(fake_openai.base_url, replies))
    result = run(pytester, "--promptgate-report", "report.json", "--promptgate-no-history")
    assert result.ret == 1
    result.assert_outcomes(passed=8, errors=2)
    assert report_of(pytester)["prompts"][0]["verdict"] == "INCONCLUSIVE"


def test_strict_fails_every_miss(pytester, fake_openai):
    replies = ["billing"] * 19 + ["bug"]
    pytester.makefile(".promptgate.yaml", triage=suite_text(fake_openai.base_url, replies))
    assert run(pytester, "--promptgate-no-history").ret == 0
    result = run(pytester, "--promptgate-strict", "--promptgate-no-history")
    assert result.ret == 1
    result.assert_outcomes(passed=19, failed=1)


def test_threshold_cli_beats_suite_and_suite_beats_ini(pytester, fake_openai):
    replies = ["billing"] * 7 + ["bug"] * 3  # 70%
    pytester.makefile(
        ".promptgate.yaml",
        triage=suite_text(fake_openai.base_url, replies, threshold="threshold: 0.6"),
    )
    pytester.makeini("[pytest]\npromptgate_threshold = 0.9\n")
    assert run(pytester, "--promptgate-no-history").ret == 0  # suite 0.6 beats ini 0.9
    assert run(pytester, "--promptgate-no-history", "--promptgate-threshold", "0.75").ret == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--promptgate-threshold", "80"], "*--promptgate-threshold*did you mean 0.8*"),
        (["--promptgate-concurrency", "0"], "*--promptgate-concurrency: expected at least 1*"),
        (
            ["--promptgate-cache", "sometimes"],
            "*--promptgate-cache: expected one of off, read, write, readwrite*",
        ),
        (
            ["--promptgate-gate", "middle"],
            "*--promptgate-gate: expected one of point, lower, upper*",
        ),
        (["--promptgate-shard", "3/2"], "*--promptgate-shard*"),
    ],
)
def test_bad_options_are_rejected_with_a_message(pytester, args, message):
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


# The suite and line on the first line, the problem on the next (explain.explain_load_error).
BAD_SUITES = {
    "broken-yaml": ("prompt: x\nversions: [\n", ["*ERROR loading bad.promptgate.yaml:*"]),
    "unknown-key": (
        "prompt: x\nmodel: openai/m\nuser: hi\ncases:\n  - id: a\n    expcet: [{equals: a}]\n",
        ["*ERROR loading bad.promptgate.yaml:6", "  *expcet*did you mean*expect*"],
    ),
    "wrong-type": (
        "prompt: x\nmodel: openai/m\nthreshold: high\nuser: hi\ncases: []\n",
        ["*ERROR loading bad.promptgate.yaml:3", "  *threshold*"],
    ),
    "missing-prompt": (
        "model: openai/m\nuser: hi\ncases: []\n",
        ["*ERROR loading bad.promptgate.yaml:1", "  *prompt*"],
    ),
    "unknown-expectation": (
        "prompt: x\nmodel: openai/m\nuser: hi\ncases:\n  - id: a\n    expect: [{contians: a}]\n",
        ["*ERROR loading bad.promptgate.yaml:6", "  *contians*did you mean*contains*"],
    ),
    "missing-variable": (
        "prompt: x\nmodel: openai/m\nuser: '{{ ticket }}'\ncases:\n  - id: a\n    vars: {other: 1}\n    expect: [{equals: a}]\n",
        ["*ERROR loading bad.promptgate.yaml:5", "  *ticket*"],
    ),
    "missing-cases-file": (
        "prompt: x\nmodel: openai/m\nuser: hi\ncases_file: nowhere.jsonl\n",
        ["*ERROR loading bad.promptgate.yaml:4", "  *nowhere.jsonl*"],
    ),
    "duplicate-case": (
        "prompt: x\nmodel: openai/m\nuser: hi\ncases:\n  - id: a\n    expect: [{equals: a}]\n  - id: a\n    expect: [{equals: a}]\n",
        ["*ERROR loading bad.promptgate.yaml:7", "  *duplicate*"],
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_SUITES))
def test_bad_suites_give_one_readable_message_and_fail(pytester, name):
    text, patterns = BAD_SUITES[name]
    pytester.makefile(".promptgate.yaml", bad=text)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret not in (0, 5)
    output = result.stdout.str()
    result.stdout.fnmatch_lines(patterns)
    assert "Traceback" not in output
    assert 'File "' not in output  # no Python frames


def test_duplicate_prompt_ids_across_files(pytester, fake_openai):
    text = suite_text(fake_openai.base_url, ["billing"])
    pytester.makefile(".promptgate.yaml", a=text, b=text)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret not in (0, 5)
    result.stdout.fnmatch_lines(["*prompt id `triage` is already used by*"])


def test_a_suite_with_no_case_fails_loudly(pytester):
    pytester.makefile(".promptgate.yaml", empty="prompt: x\nmodel: openai/m\nuser: hi\ncases: []\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*1 suite(s) collected but they define no case*"])


def test_report_header_names_model_concurrency_and_threshold(pytester, fake_openai):
    pytester.makefile(".promptgate.yaml", triage=suite_text(fake_openai.base_url, ["billing"]))
    result = run(pytester, "--promptgate-concurrency", "5", "--promptgate-no-history")
    result.stdout.fnmatch_lines(
        [
            "promptgate: model per suite, threshold per suite (default 0.8)*concurrency 5*",
            "promptgate: 1 suite(s), 1 case(s)*models: openai/fake-model",
        ]
    )


def test_disabling_the_plugin_ignores_suites(pytester, fake_openai):
    pytester.makefile(".promptgate.yaml", triage=suite_text(fake_openai.base_url, ["billing"]))
    result = pytester.runpytest("-p", "no:promptgate")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_no_suites_means_no_engine_import(pytester):
    pytester.makepyfile("def test_a():\n    assert True\n")
    code = textwrap.dedent(
        """
        import sys, pytest
        rc = pytest.main(["-q", "-p", "no:cacheprovider"])
        engine = ("litellm", "jinja2", "yaml", "pytest_promptgate.api", "pytest_promptgate.runner",
                  "pytest_promptgate.spec", "pytest_promptgate.plugin.collect", "pytest_promptgate.plugin.calls")
        heavy = [m for m in engine if m in sys.modules]
        print("HEAVY:", heavy)
        sys.exit(rc)
        """
    )
    pytester.makepyfile(run_me=code)
    result = pytester.run(sys.executable, "run_me.py")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["HEAVY: []"])


def test_a_local_model_that_cannot_run_is_one_line_before_any_call(pytester):
    pytester.makefile(
        ".promptgate.yaml",
        local="prompt: x\nmodel: local/models/missing.gguf\nuser: hi\ncases:\n  - id: a\n    expect: [{equals: a}]\n",
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--promptgate-no-history")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert "missing.gguf" in errors[0] and errors[1:] == [
        "  hint: local/<path> takes a .gguf file; the bundled model is local/smollm2"
    ]
    assert "no case was evaluated" not in result.stdout.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_python_prompt_builder_runs_once_per_case(pytester, fake_openai):
    # The loader renders every (version, case) to validate it and the run reuses those messages:
    # the repository's builder code is not called a second time for the model call.
    pytester.makepyfile(
        counted_builder="""
        from pathlib import Path

        def build(ticket):
            with open(Path(__file__).with_name("calls.txt"), "a") as log:
                log.write(ticket + "\\n")
            return "reply: " + ticket
        """
    )
    pytester.makefile(
        ".promptgate.yaml",
        built=(
            f'prompt: built\nmodel: openai/fake-model\nparams: {{api_base: "{fake_openai.base_url}", api_key: sk-test}}\n'
            "python: counted_builder:build\ncases:\n"
            "  - {id: a, vars: {ticket: billing}, expect: [{equals: billing}]}\n"
            "  - {id: b, vars: {ticket: bug}, expect: [{equals: bug}]}\n"
        ),
    )
    result = run(pytester, "--promptgate-no-history")
    result.assert_outcomes(passed=2)
    assert sorted((pytester.path / "calls.txt").read_text().split()) == ["billing", "bug"]
