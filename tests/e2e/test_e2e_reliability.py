"""End-to-end reliability: Ctrl-C halfway, mixed provider faults, damaged state on disk.

Each test drives a real pytest run (pytester, or a child ``python -m pytest`` where a real
signal is needed) against the loopback OpenAI server, and checks what a user would see: the
exit status, the terminal, the JSON report, the cache and history files.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_promptgate.history import make_record
from pytest_promptgate.testing.openai_server import FakeOpenAI


def numbered_suite(
    base_url: str, n: int, *, expect: str = "{not-contains: zzz-never}", prompt: str = "bulk"
) -> str:
    """A suite of n cases; case i asks the fake model to reply ``ok i`` (its content is unique)."""
    cases = "\n".join(
        f"  - id: c{i:03d}\n    vars: {{n: {i}}}\n    expect: [{expect}]" for i in range(n)
    )
    return (
        textwrap.dedent(
            f"""\
        prompt: {prompt}
        model: openai/fake-model
        params: {{api_base: "{base_url}", api_key: sk-test-key, temperature: 0}}
        versions:
          v1:
            user: "reply: ok {{{{ n }}}}"
        cases:
        """
        )
        + cases
        + "\n"
    )


def cache_entries(root: Path) -> list[Path]:
    directory = root / ".promptgate" / "cache"
    return (
        sorted(p for p in directory.rglob("*.json") if not p.name.startswith("."))
        if directory.exists()
        else []
    )


def snapshot(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


# -- interruption ---------------------------------------------------------------------------------
INTERRUPT_CASES = 200


def _wait_for_calls(
    server: FakeOpenAI, proc: subprocess.Popen, count: int, limit_s: float = 120.0
) -> None:
    deadline = time.monotonic() + limit_s
    while server.calls < count:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"pytest ended before {count} calls (rc {proc.returncode}):\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"only {server.calls} of {count} calls after {limit_s}s")
        time.sleep(0.02)


HANG_GUARD_S = 120


def _default_sigint() -> None:
    """In the child before exec: SIGINT back to its default, whatever the parent set."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _settled_calls(server: FakeOpenAI) -> int:
    """The server's call count once no request of a finished client is still being read."""
    count = server.calls
    while True:
        time.sleep(0.3)
        if server.calls == count:
            return count
        count = server.calls


def test_sigint_halfway_stops_promptly_keeps_finished_calls_and_leaves_files_whole(
    pytester, fake_openai
):
    fake_openai.latency_ms = 100
    pytester.makefile(
        ".promptgate.yaml", bulk=numbered_suite(fake_openai.base_url, INTERRUPT_CASES)
    )
    # Files from an earlier, complete run: an interrupted run must not half-write (or rewrite) them.
    report = pytester.path / "report.json"
    history = pytester.path / ".promptgate" / "history.jsonl"
    report.write_text('{"schema_version": 1, "previous": true}\n')
    history.parent.mkdir(parents=True)
    earlier = make_record(
        prompt="bulk",
        version="v0",
        content_hash="e" * 64,
        model="openai/fake-model",
        case_ids=["c000"],
        n=1,
        passed=1,
        failed=0,
        errors=0,
        rate=1.0,
        ci_low=0.2,
        ci_high=1.0,
        failing_cases=[],
        cost_usd=None,
        git_commit=None,
    )
    history.write_text(json.dumps(earlier) + "\n")
    before = {path: snapshot(path) for path in (report, history)}

    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "--promptgate-concurrency",
        "4",
        "--promptgate-report",
        str(report),
        "--promptgate-markdown",
        "report.md",
        "--promptgate-html",
        "report.html",
    ]
    proc = subprocess.Popen(
        command,
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # A child inherits an ignored SIGINT (nohup, a background job, some CI runners), and
        # Python then installs no KeyboardInterrupt handler: give it the default disposition.
        preexec_fn=_default_sigint,
    )
    # Generous bounds: they only guard against a hang, and a loaded machine is slow to start.
    _wait_for_calls(fake_openai, proc, int(INTERRUPT_CASES * 0.4), limit_s=300.0)
    proc.send_signal(signal.SIGINT)
    calls_at_signal = fake_openai.calls
    try:
        out, err = proc.communicate(timeout=HANG_GUARD_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"pytest did not stop within {HANG_GUARD_S} s of SIGINT:\n{out}\n{err}")
    calls_when_stopped = _settled_calls(fake_openai)

    # Stopped promptly with pytest's status: the batch is cancelled, not run to the end (no
    # wall-clock bound beyond the hang guard: the call count says it without timing).
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out + err
    # No new call after the signal, beyond those already on their way (1 s of calls at most).
    assert calls_when_stopped <= calls_at_signal + 40, (calls_at_signal, calls_when_stopped)
    assert "Traceback" not in out + err, out + err
    assert "damaged history line" not in out

    # It says what finished: the promptgate summary of the finished cases.
    match = re.search(r"promptgate: interrupted after (\d+) finished case\(s\)", out)
    assert match, out
    finished = int(match.group(1))
    assert 0 < finished < INTERRUPT_CASES
    assert re.search(rf"bulk\s+v1\*?\s+openai/fake-model\s+\d+/{finished}\b", out), out
    calls_line = re.search(r"promptgate: (\d+) model call\(s\)", out)
    assert calls_line and int(calls_line.group(1)) >= finished, (
        out
    )  # the counters survive the interrupt

    # Every finished case's call is in the cache (in-flight calls may be too, never fewer).
    cached = len(cache_entries(pytester.path))
    assert finished <= cached <= calls_when_stopped

    # Report and history: untouched (an interrupted run writes none of them), never partial.
    for path, content in before.items():
        assert snapshot(path) == content, f"{path.name} was rewritten by an interrupted run"
    assert (
        not (pytester.path / "report.md").exists() and not (pytester.path / "report.html").exists()
    )
    leftovers = [p.name for p in pytester.path.rglob("*.tmp")]
    assert leftovers == [], leftovers

    # The rerun calls the model only for what the cache does not hold, and completes.
    fake_openai.reset()
    fake_openai.latency_ms = 0
    rerun = pytester.runpytest(*command[3:])
    assert rerun.ret == 0, rerun.stdout.str()
    assert fake_openai.calls == INTERRUPT_CASES - cached
    written = json.loads(report.read_text())
    assert written["summary"]["cases"] == INTERRUPT_CASES
    assert written["summary"]["cache"]["hits"] == cached
    records = [json.loads(line) for line in history.read_text().splitlines()]
    assert records[0] == earlier and records[-1]["n"] == INTERRUPT_CASES


# -- mixed faults -----------------------------------------------------------------------------------
FAULT_CASES = 300
FAULT_KINDS = ("429", "500", "503", "reset", "non-json", "empty", "truncated")


def test_mixed_faults_end_every_case_once_and_no_fault_counts_as_a_pass(pytester):
    # 10% of requests fault at random (fixed seed); three cases fault on every attempt, so that
    # errors are certain whatever the timing. `not-contains` passes on any text, even an empty
    # one, so only the fault handling can keep a faulty reply from passing.
    doomed = {"ok 297": "truncated", "ok 298": "empty", "ok 299": "503"}
    server = FakeOpenAI(
        fault_rate=0.1, fault_kinds=FAULT_KINDS, seed=7, retry_after="0", fault_on=doomed
    )
    with server:
        pytester.makefile(".promptgate.yaml", bulk=numbered_suite(server.base_url, FAULT_CASES))
        result = pytester.runpytest(
            "-p",
            "no:cacheprovider",
            "--promptgate-cache",
            "off",
            "--promptgate-no-history",
            "--promptgate-retries",
            "3",
            "--promptgate-concurrency",
            "16",
            "--promptgate-timeout",
            "10",
            "--promptgate-report",
            "report.json",
        )
        requests = server.requests
    report = json.loads((pytester.path / "report.json").read_text())
    cases = report["cases"]

    ids = [c["case"] for c in cases]
    assert len(ids) == FAULT_CASES and len(set(ids)) == FAULT_CASES
    assert {c["status"] for c in cases} <= {"passed", "failed", "error"}

    # What the server did to the last request of each case decides what the case must be.
    last_fault: dict[str, str | None] = {}
    for request in requests:
        content = request["body"]["messages"][-1]["content"]
        last_fault[f"c{int(content.split()[-1]):03d}"] = request["fault"]
    assert set(last_fault) == set(ids)
    assert sum(r["fault"] is not None for r in requests) > 30, "the seed produced too few faults"
    wrong = {
        c["case"]: (last_fault[c["case"]], c["status"])
        for c in cases
        if (c["status"] == "error") != (last_fault[c["case"]] is not None)
    }
    assert wrong == {}, f"case status disagrees with the server's last reply: {wrong}"

    errors = sum(c["status"] == "error" for c in cases)
    passed = sum(c["status"] == "passed" for c in cases)
    assert errors > 0 and passed + errors == FAULT_CASES
    outcomes = result.parseoutcomes()
    assert (
        outcomes.get("passed", 0) == passed
        and outcomes.get("errors", outcomes.get("error", 0)) == errors
    )
    version = report["prompts"][0]["versions"][0]
    assert (version["passed"], version["failed"], version["errors"]) == (passed, 0, errors)
    assert report["summary"]["errors"] == errors


# -- damaged state ----------------------------------------------------------------------------------
def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "--promptgate-report", "report.json", *args)


def _verdict(pytester: pytest.Pytester) -> tuple[str, int, int]:
    report = json.loads((pytester.path / "report.json").read_text())
    version = report["prompts"][0]["versions"][0]
    return report["verdict"], version["passed"], version["n"]


def _mixed_suite(base_url: str) -> str:
    """Four cases pass, one misses: 80% passes the default threshold."""
    return numbered_suite(base_url, 5, expect="{not-contains: ok 4}")


def test_corrupted_cache_entry_is_warned_about_and_refetched_with_the_same_verdict(
    pytester, fake_openai
):
    pytester.makefile(".promptgate.yaml", bulk=_mixed_suite(fake_openai.base_url))
    first = _run(pytester, "--promptgate-no-history")
    assert first.ret == 0
    verdict = _verdict(pytester)
    entries = cache_entries(pytester.path)
    assert len(entries) == 5 and fake_openai.calls == 5
    entries[2].write_bytes(b'{"schema": 1, "output": "billi\x00\xff garbage')

    fake_openai.reset()
    second = _run(pytester, "--promptgate-no-history")
    assert second.ret == 0, second.stdout.str()
    second.stdout.fnmatch_lines([f"*damaged cache entry*{entries[2].name}*treated as a miss*"])
    assert fake_openai.calls == 1
    assert _verdict(pytester) == verdict
    assert json.loads(entries[2].read_text())["schema"] == 1  # rewritten whole
    assert "Traceback" not in second.stdout.str() + second.stderr.str()


def test_truncated_history_line_is_skipped_with_a_warning(pytester, fake_openai):
    pytester.makefile(".promptgate.yaml", bulk=_mixed_suite(fake_openai.base_url))
    assert _run(pytester).ret == 0
    history = pytester.path / ".promptgate" / "history.jsonl"
    good = history.read_text().splitlines()
    assert len(good) == 1
    # A record of another iteration, cut by a full disk: were it read, it would be an iteration.
    other = json.loads(good[0]) | {"version": "v0", "content_hash": "f" * 64, "rate": 0.1}
    with history.open("a") as handle:
        handle.write(json.dumps(other)[:-40])

    result = _run(pytester)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*history.jsonl:2: damaged history line skipped*"])
    report = json.loads((pytester.path / "report.json").read_text())
    entry = report["prompts"][0]
    assert entry["verdict"] == "PASS" and entry["advice"] is None
    assert [i["version"] for i in entry["iterations"]] == ["v1"]
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_baseline_of_a_newer_schema_is_refused_clearly_and_changes_no_verdict(
    pytester, fake_openai
):
    pytester.makefile(".promptgate.yaml", bulk=_mixed_suite(fake_openai.base_url))
    plain = _run(pytester, "--promptgate-no-history")
    verdict = _verdict(pytester)
    future = pytester.path / "future.json"
    future.write_text(
        json.dumps({"schema_version": 999, "verdict": "FAIL", "prompts": [], "cases": []})
    )

    result = _run(pytester, "--promptgate-no-history", "--promptgate-baseline", str(future))
    assert result.ret == plain.ret == 0
    result.stdout.fnmatch_lines(["*baseline ignored*future.json*schema 999*newer*"])
    assert _verdict(pytester) == verdict
    report = json.loads((pytester.path / "report.json").read_text())
    assert report["prompts"][0]["versions"][0]["baseline"] is None
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_report_command_refuses_a_newer_schema_with_one_message_and_exit_2(pytester):
    future = pytester.path / "future.json"
    future.write_text(
        json.dumps({"schema_version": 999, "verdict": "PASS", "prompts": [], "cases": []})
    )
    result = pytester.run(sys.executable, "-m", "pytest_promptgate", "report", str(future))
    assert result.ret == 2
    assert result.stdout.str() == ""
    message = [line for line in result.stderr.lines if line.strip()]
    assert "Traceback" not in result.stderr.str()
    assert re.match(
        r"promptgate: error: .*future\.json uses report schema 999, newer than", message[0]
    ), message
    assert len(message) <= 2 and all(line.startswith("  hint:") for line in message[1:]), message


# -- a flagged prompt whose suite has no `usage:` ------------------------------------------------------
def test_flagged_prompt_without_usage_still_writes_every_report(pytester, fake_openai):
    """Three versions stuck at 50% are flagged for fine-tuning; with no `usage:` the cost
    comparison is unknown, which every renderer must show as unknown, not crash on."""
    cases = "\n".join(
        f'  - {{id: c{i}, vars: {{ticket: "reply: {"billing" if i % 2 else "bug"}"}}, expect: [{{equals: billing}}]}}'
        for i in range(10)
    )
    versions = "\n".join(
        f'  v{n}:\n    system: "attempt {n}"\n    user: "{{{{ ticket }}}}"' for n in (1, 2, 3)
    )
    pytester.makefile(
        ".promptgate.yaml",
        plateau=f'prompt: plateau\nmodel: openai/fake-model\nparams: {{api_base: "{fake_openai.base_url}", '
        f"api_key: sk-test-key}}\nversions:\n{versions}\ncases:\n{cases}\n",
    )
    result = _run(
        pytester,
        "--promptgate-no-history",
        "--promptgate-markdown",
        "report.md",
        "--promptgate-html",
        "report.html",
    )
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output and "Traceback" not in output, output[-3000:]
    assert result.ret == 1
    report = json.loads((pytester.path / "report.json").read_text())
    assert report["prompts"][0]["verdict"] == "CONSIDER FINE-TUNING"
    assert "consider fine-tuning" in (pytester.path / "report.md").read_text().lower()
    assert (pytester.path / "report.html").read_text().rstrip().endswith("</html>")
