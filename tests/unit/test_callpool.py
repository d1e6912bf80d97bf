"""CallPool: model calls in worker processes (see pytest_promptgate/callpool.py)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from pytest_promptgate.callpool import (
    AUTO_MIN_CALLS,
    AUTO_MIN_CONCURRENCY,
    CallPool,
    auto_workers,
    split_concurrency,
)
from pytest_promptgate.model import CallRequest
from pytest_promptgate.testing.openai_server import FakeOpenAI

SETTINGS = {"retries": 1, "timeout_s": 30.0, "backoff_base_s": 0.05, "backoff_max_s": 0.2}


def request(server: FakeOpenAI, text: str) -> CallRequest:
    return CallRequest(
        model="openai/fake-model",
        messages=({"role": "user", "content": f"reply: {text}"},),
        params={"api_base": server.base_url, "api_key": "sk-pool-secret", "temperature": 0},
        label=text,
    )


@pytest.mark.parametrize(
    ("calls", "concurrency", "cpus", "expected"),
    [
        (AUTO_MIN_CALLS - 1, 64, 8, 0),  # a short call phase: not worth a child's start
        (AUTO_MIN_CALLS, 64, 1, 0),  # one CPU
        (10_000, AUTO_MIN_CONCURRENCY - 1, 8, 0),  # one process keeps up (issue 16)
        (10_000, 16, 8, 0),  # the benchmark's concurrency: one process
        (AUTO_MIN_CALLS, 64, 8, 2),  # one per 32 in flight, not one per CPU
        (10_000, 128, 2, 2),  # at most one per CPU
        (10_000, 256, 16, 4),  # and at most 4
    ],
)
def test_auto_workers(calls, concurrency, cpus, expected):
    assert auto_workers(calls, concurrency, cpu_count=cpus) == expected


@pytest.mark.parametrize(
    ("concurrency", "workers", "shares"),
    [(16, 2, [8, 8]), (7, 2, [4, 3]), (3, 4, [1, 1, 1]), (1, 2, [1])],
)
def test_split_concurrency_adds_up(concurrency, workers, shares):
    assert split_concurrency(concurrency, workers) == shares
    assert sum(shares) == concurrency


def test_pool_answers_every_call_from_its_workers(fake_openai):
    async def go():
        pool = CallPool(2, 4, SETTINGS)
        assert await pool.start() is None
        try:
            results = await asyncio.gather(
                *(pool.complete(request(fake_openai, f"out {i}")) for i in range(12))
            )
        finally:
            await pool.close()
        return pool, results

    pool, results = asyncio.run(go())
    assert [r.output for r in results] == [f"out {i}" for i in range(12)]
    assert all(r.ok and r.attempts == 1 and r.latency_ms > 0 for r in results)
    assert fake_openai.calls == 12
    assert {w.process.returncode for w in pool.workers} == {0}  # closed cleanly, none left behind


def test_a_worker_that_dies_turns_its_calls_into_errors_never_passes(fake_openai):
    fake_openai.latency_ms = 3000  # the calls are still in flight when the worker is killed

    async def go():
        pool = CallPool(1, 4, SETTINGS)
        assert await pool.start() is None
        try:
            calls = [
                asyncio.ensure_future(pool.complete(request(fake_openai, f"slow {i}")))
                for i in range(3)
            ]
            await asyncio.sleep(0.5)
            os.kill(pool.workers[0].process.pid, signal.SIGKILL)
            results = await asyncio.wait_for(asyncio.gather(*calls), 20)
            after = await pool.complete(request(fake_openai, "late"))  # no worker left
        finally:
            await pool.close()
        return results, after

    results, after = asyncio.run(go())
    for result in [*results, after]:
        assert not result.ok and result.output is None
        assert result.error_kind == "server"
        assert "sk-pool-secret" not in (result.error or "")
    assert all("call worker process exited" in r.error for r in results)
    assert "every call worker has exited" in after.error


def test_a_worker_that_stops_answering_is_an_error_after_the_bound(fake_openai):
    async def go():
        pool = CallPool(1, 2, SETTINGS, answer_bound_s=2.0)
        assert await pool.start() is None
        pid = pool.workers[0].process.pid
        os.kill(pid, signal.SIGSTOP)  # alive, holding its pipe, answering nothing
        try:
            result = await pool.complete(request(fake_openai, "never"))
        finally:
            os.kill(pid, signal.SIGKILL)
            await pool.close()
        return result

    result = asyncio.run(go())
    assert not result.ok and result.error_kind == "server"
    assert "did not answer within 2 s" in result.error
