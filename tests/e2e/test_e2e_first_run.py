"""A newcomer's first runs (issue 15): no API key, a bad key, an errored case.

Each test drives a pytest run (pytester) against the loopback OpenAI server, which records
every request, so "no call was made" is checked where it happens: on the wire.
"""

from __future__ import annotations

import textwrap
import time

import pytest

from pytest_promptgate.testing.openai_server import FakeOpenAI

MODEL = "openai/gpt-4o-mini"
# What a frame of pytest's or pluggy's internals looks like in a traceback (the session
# header's "pluggy-1.x" is not one).
FRAMES = ("_pytest/", "_pytest.", "pluggy/", "pluggy._", "Traceback")


def suite(base_url: str, n: int, *, api_key: bool = False, expect: str = "billing") -> str:
    """A triage suite of n cases on ``MODEL`` at the fake server; no api_key param unless asked
    (the key then comes from OPENAI_API_KEY, as for a real user)."""
    key = ", api_key: sk-test-key" if api_key else ""
    cases = "\n".join(
        f"  - id: case-{i:03d}\n    vars: {{ticket: 'reply: billing {i}'}}\n"
        f"    expect: [{{contains: {expect}}}]"
        for i in range(n)
    )
    head = textwrap.dedent(
        f"""\
        prompt: triage
        model: {MODEL}
        params: {{api_base: "{base_url}"{key}, temperature: 0}}
        versions:
          v1:
            system: Classify the ticket.
            user: "{{{{ ticket }}}}"
        cases:
        """
    )
    return head + cases + "\n"


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "--promptgate-no-history", *args)


def test_a_run_without_the_key_stops_before_any_call_with_one_line(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    pytester.makefile(".promptgate.yaml", triage=suite(fake_openai.base_url, 10))
    started = time.perf_counter()
    result = run(pytester)
    elapsed = time.perf_counter() - started
    print(f"run without the key stopped after {elapsed:.2f}s (in-process pytester run)")
    assert fake_openai.calls == 0 and fake_openai.requests == []
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if MODEL in line]
    assert len(errors) == 1, result.stderr.str()
    line = errors[0]
    assert "needs OPENAI_API_KEY, which is not set" in line
    assert "triage.promptgate.yaml" in line and "--promptgate-model local/smollm2" in line
    assert "--promptgate-replay" not in line  # no cache to replay from yet
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_fully_cached_run_without_the_key_is_not_stopped(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".promptgate.yaml", triage=suite(fake_openai.base_url, 5))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-first-run-key-123")
    first = run(pytester)
    assert first.ret == 0 and fake_openai.calls == 5
    monkeypatch.delenv("OPENAI_API_KEY")
    again = run(pytester)
    assert again.ret == 0, again.stdout.str() + again.stderr.str()
    again.assert_outcomes(passed=5)
    assert fake_openai.calls == 5  # every answer came from the cache
    # One case more, not cached: now the run would call the model, and stops; the line
    # offers the replay, since a cache exists.
    pytester.makefile(".promptgate.yaml", triage=suite(fake_openai.base_url, 6))
    stopped = run(pytester)
    assert stopped.ret == pytest.ExitCode.USAGE_ERROR and fake_openai.calls == 5
    stopped.stderr.fnmatch_lines(["*needs OPENAI_API_KEY*--promptgate-replay*"])
    replayed = run(pytester, "--promptgate-replay", "-k", "not case-005")
    assert replayed.ret == 0 and fake_openai.calls == 5


def test_an_auth_failure_on_100_cases_makes_a_handful_of_requests(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    fake_openai.faults = ["401"]
    pytester.makefile(".promptgate.yaml", triage=suite(fake_openai.base_url, 100, api_key=True))
    result = run(pytester, "--promptgate-cache", "off")
    result.assert_outcomes(errors=100)
    print(f"an auth failure on 100 cases made {fake_openai.calls} request(s)")
    assert fake_openai.calls <= 5
    text = result.stdout.str()
    assert text.count(f"not attempted: authentication failed for {MODEL}") >= 95
    assert "sk-test-key" not in text


def test_an_errored_case_is_a_few_lines_without_pytest_internals(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    fake_openai.faults = ["400"]
    pytester.makefile(".promptgate.yaml", triage=suite(fake_openai.base_url, 1, api_key=True))
    result = run(pytester, "--promptgate-cache", "off")
    result.assert_outcomes(errors=1)
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "ERROR at setup of" in line)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith(("=", "_")))
    block = lines[start + 1 : end]
    assert any("ERROR triage::v1::case-000" in line for line in block), block
    assert any("bad request" in line for line in block), block
    assert 1 <= len([line for line in block if line.strip()]) <= 8, block
    assert not any(frame in result.stdout.str() for frame in FRAMES)


def test_a_suite_that_does_not_load_is_a_few_lines(pytester: pytest.Pytester) -> None:
    pytester.makefile(".promptgate.yaml", broken="prompt: triage\nversions: [\n")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    text = result.stdout.str()
    result.stdout.fnmatch_lines(["*ERROR loading*broken.promptgate.yaml*"])
    assert not any(frame in text for frame in FRAMES)
