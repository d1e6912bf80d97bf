"""run_jobs end to end against the loopback server, plus the throttle's rules with a fake clock."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_promptgate import assertions
from pytest_promptgate.client import ModelClient
from pytest_promptgate.model import (
    CallRequest,
    CallResult,
    CaseResult,
    Expectation,
    ExpectationResult,
    PromptgateError,
    ProviderFailure,
)
from pytest_promptgate.ratelimit import Throttle, TokenBucket
from pytest_promptgate.runner import RunSettings, estimate_cost, run_jobs
from pytest_promptgate.testing.openai_server import FakeOpenAI

FAST = dict(backoff_base_s=0.01, backoff_max_s=0.05, timeout_s=5.0)


def test_concurrency_is_bounded_and_results_keep_job_order(
    fake_openai: FakeOpenAI, make_jobs: Any
) -> None:
    fake_openai.latency_ms = 100
    jobs = make_jobs(fake_openai, 24)
    outcome = run_jobs(jobs, RunSettings(concurrency=3, **FAST))
    assert fake_openai.max_in_flight <= 3
    assert [r.case for r in outcome.results] == [f"c{i}" for i in range(24)]
    assert [r.samples[0].call.output for r in outcome.results] == [f"out {i}" for i in range(24)]
    assert outcome.calls == 24 == fake_openai.calls
    assert outcome.model_phase_s > 0
    assert outcome.cost_known is False and any("price unknown" in w for w in outcome.warnings)


def test_on_result_per_case_and_progress(fake_openai: FakeOpenAI, make_jobs: Any) -> None:
    fake_openai.fault_on = {"out 3": "401"}  # one case errors for good
    delivered: list[CaseResult] = []
    progress: list[tuple[int, int, int]] = []
    outcome = run_jobs(
        make_jobs(fake_openai, 10),
        RunSettings(**FAST),
        delivered.append,
        lambda *args: progress.append(args),
    )
    assert sorted(r.case for r in delivered) == [f"c{i}" for i in range(10)]
    assert progress[0] == (0, 10, 0) and progress[-1] == (10, 10, 1)
    assert all(a[0] <= b[0] for a, b in zip(progress, progress[1:], strict=False))
    errored = [r for r in outcome.results if r.status == "error"]
    assert [r.case for r in errored] == ["c3"] and errored[0].samples[0].call.error_kind == "auth"


def test_repeat_gives_indexed_samples_each_cached(
    fake_openai: FakeOpenAI, make_jobs: Any, tmp_path: Path
) -> None:
    jobs = make_jobs(fake_openai, 4, repeat=3, temperature=0.7)
    settings = RunSettings(cache_dir=tmp_path, **FAST)
    first = run_jobs(jobs, settings)
    assert [s.sample for s in first.results[0].samples] == [0, 1, 2]
    assert fake_openai.calls == 12 and len(list(tmp_path.rglob("*.json"))) == 12
    assert (first.calls, first.cache_hits, first.cache_misses) == (12, 0, 12)
    bodies = [r["body"] for r in fake_openai.requests]
    assert all(b["temperature"] == 0.7 for b in bodies)

    second = run_jobs(jobs, settings)
    assert fake_openai.calls == 12  # nothing new reached the model
    assert (second.calls, second.cache_hits, second.cache_misses) == (0, 12, 0)
    again = second.results[0].samples[1].call
    assert again.cached and again.latency_ms == first.results[0].samples[1].call.latency_ms


def test_fully_cached_run_never_imports_litellm(
    fake_openai: FakeOpenAI, make_jobs: Any, tmp_path: Path
) -> None:
    jobs = make_jobs(fake_openai, 3)
    run_jobs(jobs, RunSettings(cache_dir=tmp_path, **FAST))
    script = f"""
import sys
from pathlib import Path
from pytest_promptgate.model import Case
from pytest_promptgate.runner import Job, RunSettings, run_jobs
jobs = [Job("p", "v1", Case(id=f"c{{i}}", vars={{"i": i}}, expect=()), "openai/fake-model",
            ({{"role": "user", "content": f"reply: out {{i}}"}},),
            {{"api_base": {fake_openai.base_url!r}, "api_key": "sk-test"}}, 1, Path("."), None, None, "n")
        for i in range(3)]
outcome = run_jobs(jobs, RunSettings(cache_dir=Path({str(tmp_path)!r})))
print(outcome.cache_hits, outcome.calls, "litellm" in sys.modules)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["3", "0", "False"]


def test_replay_miss_is_an_error_naming_the_case(
    fake_openai: FakeOpenAI, make_jobs: Any, tmp_path: Path
) -> None:
    outcome = run_jobs(
        make_jobs(fake_openai, 2), RunSettings(cache_dir=tmp_path, replay=True, **FAST)
    )
    assert fake_openai.calls == 0 and outcome.calls == 0
    for result in outcome.results:
        call = result.samples[0].call
        assert result.status == "error" and call.error_kind == "replay_miss"
        assert f"::{result.case}" in call.error and call.output is None
    assert list(tmp_path.rglob("*.json")) == []  # replay never records


def test_budget_refuses_before_any_call(fake_openai: FakeOpenAI, make_jobs: Any) -> None:
    jobs = make_jobs(
        fake_openai, 5, input_cost_per_token=0.01, output_cost_per_token=0.01, max_tokens=100
    )
    with pytest.raises(
        PromptgateError, match=r"estimated cost \$\d+\.\d+ exceeds --promptgate-max-cost \$0\.5000"
    ) as info:
        run_jobs(jobs, RunSettings(max_cost_usd=0.5, **FAST))
    assert info.value.hint and "5 uncached" in info.value.hint
    assert fake_openai.calls == 0


def test_budget_estimate_says_when_a_price_is_unknown(
    fake_openai: FakeOpenAI, make_jobs: Any
) -> None:
    outcome = run_jobs(make_jobs(fake_openai, 2), RunSettings(max_cost_usd=1.0, **FAST))
    assert any("price of openai/fake-model is unknown" in w for w in outcome.warnings)
    assert all(r.status == "passed" for r in outcome.results)


def test_budget_reached_mid_run_stops_calls(fake_openai: FakeOpenAI, make_jobs: Any) -> None:
    # max_tokens=1 makes the estimate low; the server ignores it and answers 20 words, so the
    # real spend overtakes the budget part-way through.
    jobs = make_jobs(
        fake_openai,
        12,
        content="reply: " + "word " * 20,
        max_tokens=1,
        input_cost_per_token=0.001,
        output_cost_per_token=0.001,
    )
    estimate, _, _ = estimate_cost(jobs, None)
    outcome = run_jobs(jobs, RunSettings(concurrency=1, max_cost_usd=estimate * 1.1, **FAST))
    kinds = [r.samples[0].call.error_kind for r in outcome.results]
    assert "budget" in kinds and kinds[0] is None
    assert fake_openai.calls == kinds.count(None) < 12
    assert all(
        r.status == "error" for r in outcome.results if r.samples[0].call.error_kind == "budget"
    )
    assert outcome.spent_usd >= estimate * 1.1


def with_checks(monkeypatch: pytest.MonkeyPatch, check: Any) -> list[Any]:
    """Replace the checks; the runner's real CheckContext is what they see."""
    seen: list[Any] = []

    async def check_all(expectations: Any, ctx: Any) -> tuple[ExpectationResult, ...]:
        seen.append(ctx)
        return check(ctx)

    monkeypatch.setattr(assertions, "check_all", check_all, raising=False)
    return seen


EXPECT = (Expectation(type="equals", value="out 1"),)


def test_expectations_decide_pass_or_fail(
    fake_openai: FakeOpenAI, make_jobs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = with_checks(
        monkeypatch, lambda ctx: (ExpectationResult("equals", ctx.output == "out 1", "why"),)
    )
    outcome = run_jobs(
        make_jobs(fake_openai, 3, expect=EXPECT), RunSettings(judge_model="openai/judge", **FAST)
    )
    assert [r.status for r in outcome.results] == ["failed", "passed", "failed"]
    assert {c.judge_model for c in seen} == {"openai/judge"} and {c.vars["i"] for c in seen} == {
        0,
        1,
        2,
    }


def test_provider_failure_in_a_check_is_an_error(
    fake_openai: FakeOpenAI, make_jobs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def judge_down(ctx: Any) -> Any:
        raise ProviderFailure(CallResult(output=None, error="judge 503", error_kind="server"))

    with_checks(monkeypatch, judge_down)
    result = run_jobs(make_jobs(fake_openai, 1, expect=EXPECT), RunSettings(**FAST)).results[0]
    call = result.samples[0].call
    assert result.status == "error" and call.error_kind == "server" and "judge 503" in call.error


def test_a_crashing_check_is_an_error_not_a_lost_case(
    fake_openai: FakeOpenAI, make_jobs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_checks(monkeypatch, lambda ctx: 1 / 0)
    outcome = run_jobs(make_jobs(fake_openai, 2, expect=EXPECT), RunSettings(**FAST))
    assert [r.samples[0].call.error_kind for r in outcome.results] == ["config", "config"]
    assert "ZeroDivisionError" in outcome.results[0].samples[0].call.error


# litellm creates a request coroutine it never awaits when cancelled at the wrong moment.
@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
def test_interrupt_delivers_finished_results_and_caches_them(
    fake_openai: FakeOpenAI, make_jobs: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Under nohup, a background job or some CI runners SIGINT is inherited as ignored: give
    # this test Python's handler, so that raising the signal is a KeyboardInterrupt.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    fake_openai.latency_ms = 100
    delivered: list[CaseResult] = []

    def on_result(result: CaseResult) -> None:
        delivered.append(result)
        if len(delivered) == 3:
            signal.raise_signal(signal.SIGINT)  # what Ctrl-C does

    with pytest.raises(KeyboardInterrupt):
        run_jobs(
            make_jobs(fake_openai, 40),
            RunSettings(concurrency=2, cache_dir=tmp_path, **FAST),
            on_result,
        )
    assert 3 <= len(delivered) < 40
    assert fake_openai.calls < 40  # pending calls were cancelled, not run to the end
    cached = {json.loads(p.read_text())["output"] for p in tmp_path.rglob("*.json")}
    assert {r.samples[0].call.output for r in delivered} <= cached


# -- throttle rules (fake clock: no real waiting) ----------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_token_bucket_spaces_requests_at_the_rpm() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rpm=30, clock=clock, sleep=clock.sleep)  # one every 2 s, burst 1

    async def take(n: int) -> None:
        for _ in range(n):
            await bucket.acquire()

    asyncio.run(take(4))
    assert clock.sleeps == pytest.approx([2.0, 2.0, 2.0])


def test_isolated_429s_do_not_pause_but_a_refusing_provider_does() -> None:
    clock = FakeClock()
    throttle = Throttle(concurrency=4, clock=clock, sleep=clock.sleep)
    model = "openai/x"
    outcomes = ([False] * 9 + [True]) * 4  # 10% of calls answered 429
    assert not any(throttle.note_outcome(model, limited, 1.0) for limited in outcomes)
    assert throttle.pauses(model) == 0
    paused = [throttle.note_outcome(model, True, 2.0) for _ in range(12)]
    assert paused[-1] and throttle.pauses(model) >= 1

    async def enter() -> None:
        async with throttle.slot(model):
            pass

    asyncio.run(enter())
    assert clock.sleeps and clock.now >= 2.0  # the slot waited the pause out


def test_client_leaves_the_wait_to_a_paused_throttle(fake_openai: FakeOpenAI) -> None:
    fake_openai.faults = ["429", None]
    fake_openai.retry_after = "0.2"
    sleeps: list[float] = []

    async def recording_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def run() -> tuple[CallResult, int]:
        throttle = Throttle(concurrency=2, min_outcomes=1)
        req = CallRequest(
            "openai/fake-model",
            ({"role": "user", "content": "reply: ok"},),
            {"api_base": fake_openai.base_url, "api_key": "sk-test"},
        )
        result = await ModelClient(sleep=recording_sleep).complete(req, throttle)
        return result, throttle.pauses("openai/fake-model")

    result, pauses = asyncio.run(run())
    assert result.ok and result.attempts == 2 and pauses == 1
    assert sleeps == []  # the throttle's pause did the waiting, for every caller of the model


def test_rpm_from_settings_and_suites(make_jobs: Any, fake_openai: FakeOpenAI) -> None:
    from dataclasses import replace

    from pytest_promptgate.runner import _Batch

    jobs = make_jobs(fake_openai, 3)
    jobs = [
        replace(jobs[0], rpm=120),
        replace(jobs[1], rpm=60),
        replace(jobs[2], model="openai/other"),
    ]
    batch = _Batch(
        jobs, RunSettings(rpm={"openai/fake-model": 1000, "openai/other": 30}), None, None
    )
    assert batch._rpm_by_model() == {"openai/fake-model": 60.0, "openai/other": 30.0}


def test_real_expectations_through_assertions_module(
    fake_openai: FakeOpenAI, make_jobs: Any
) -> None:
    expect = (Expectation(type="equals", value="out 1"), Expectation(type="contains", value="out"))
    outcome = run_jobs(make_jobs(fake_openai, 3, expect=expect), RunSettings(**FAST))
    assert [r.status for r in outcome.results] == ["failed", "passed", "failed"]
    failed = outcome.results[0].samples[0].checks
    assert [(c.expectation, c.passed) for c in failed] == [("equals", False), ("contains", True)]
