"""ModelClient through litellm's real request path against the loopback server: retries,
Retry-After, error mapping, cost, scrubbing."""

from __future__ import annotations

import asyncio
import email.utils
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_promptgate import client as client_module
from pytest_promptgate.client import ModelClient, ModelHealth, unknown_params
from pytest_promptgate.model import CallRequest, CallResult, Case
from pytest_promptgate.pricing import is_unpriced
from pytest_promptgate.provider_errors import classify, parse_retry_after, scrub
from pytest_promptgate.testing.openai_server import FakeOpenAI


class RecordingSleep:
    """Stands in for asyncio.sleep: records the waits the client asks for, waits ~nothing."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


def request(server: FakeOpenAI, content: str = "reply: fine", **params: object) -> CallRequest:
    return CallRequest(
        model="openai/fake-model",
        messages=({"role": "user", "content": content},),
        params={"api_base": server.base_url, "api_key": "sk-test", **params},
    )


def complete(client: ModelClient, req: CallRequest) -> CallResult:
    return asyncio.run(client.complete(req))


def fast_client(sleep: RecordingSleep | None = None, **kwargs: object) -> ModelClient:
    kwargs = {"retries": 3, "timeout_s": 5.0, "backoff_base_s": 0.2, "backoff_max_s": 2.0, **kwargs}
    return ModelClient(**kwargs, sleep=sleep or RecordingSleep())  # type: ignore[arg-type]


def test_success_carries_output_tokens_latency_and_unknown_cost(fake_openai: FakeOpenAI) -> None:
    result = complete(fast_client(), request(fake_openai, "reply: billing queue"))
    assert result.ok and result.output == "billing queue"
    assert (result.prompt_tokens, result.completion_tokens) == (3, 2)
    assert result.cost_usd is None  # fake-model has no price: unknown, never 0
    assert result.latency_ms > 0 and result.attempts == 1 and not result.cached
    body = fake_openai.requests[0]["body"]
    assert body["model"] == "fake-model" and "max_retries" not in body and "timeout" not in body


def test_cost_from_per_call_prices(fake_openai: FakeOpenAI) -> None:
    result = complete(
        fast_client(),
        request(fake_openai, "reply: a b", input_cost_per_token=0.01, output_cost_per_token=0.1),
    )
    assert result.cost_usd == pytest.approx(3 * 0.01 + 2 * 0.1)  # "reply: a b" is 3 words


def test_an_unpriced_model_stays_unpriced_after_litellm_learns_it_at_price_0(
    fake_openai: FakeOpenAI,
) -> None:
    model = "openai/fake-unpriced-model"
    first = complete(fast_client(), replace(request(fake_openai, "reply: one"), model=model))
    assert first.ok and first.cost_usd is None
    assert is_unpriced(model)  # registered once with litellm at price 0 ...
    assert model in client_module.import_litellm().model_cost
    second = complete(fast_client(), replace(request(fake_openai, "reply: two"), model=model))
    assert second.ok and second.cost_usd is None  # ... but never reported as $0


def test_a_priced_model_still_reports_its_cost(fake_openai: FakeOpenAI) -> None:
    priced = replace(request(fake_openai, "reply: a b"), model="openai/gpt-4o-mini")
    result = complete(fast_client(), priced)
    assert result.ok and result.cost_usd is not None and result.cost_usd > 0
    assert not is_unpriced("openai/gpt-4o-mini")


def test_the_estimate_counts_a_registered_unpriced_model_as_unpriced(
    fake_openai: FakeOpenAI,
) -> None:
    from pytest_promptgate.runner import Job, estimate_cost

    model = "openai/fake-estimate-model"
    assert complete(fast_client(), replace(request(fake_openai, "reply: x"), model=model)).ok
    case = Case(id="c1", vars={}, expect=())
    messages = ({"role": "user", "content": "hi"},)
    job = Job("p", "v1", case, model, messages, {}, 1, Path("."), None, None, "suite::c1")
    estimate, uncached, warnings = estimate_cost([job], None)
    assert (estimate, uncached) == (0.0, 1)
    assert warnings == [f"price of {model} is unknown: its 1 call(s) are not in the cost estimate"]


def test_429_with_retry_after_waits_that_long_then_succeeds(fake_openai: FakeOpenAI) -> None:
    fake_openai.faults = ["429", None]
    fake_openai.retry_after = "1.5"
    sleep = RecordingSleep()
    result = complete(fast_client(sleep), request(fake_openai))
    assert result.ok and result.output == "fine" and result.attempts == 2
    assert sleep.delays == [1.5]
    assert fake_openai.calls == 2


def test_429s_with_retry_after_do_not_use_up_the_retry_budget(fake_openai: FakeOpenAI) -> None:
    # Five paced 429s in a row, with retries=3: the provider said when to come back each time,
    # so the call keeps waiting and is answered instead of being lost.
    fake_openai.faults = ["429"] * 5 + [None]
    fake_openai.retry_after = "0.1"
    sleep = RecordingSleep()
    result = complete(fast_client(sleep, retries=3), request(fake_openai))
    assert result.ok and result.attempts == 6
    assert sleep.delays == [0.1] * 5


def test_paced_429s_are_bounded_and_retries_0_means_none(fake_openai: FakeOpenAI) -> None:
    fake_openai.faults = ["429"]
    fake_openai.retry_after = "0"
    result = complete(fast_client(retries=3), request(fake_openai))
    assert not result.ok and result.error_kind == "rate_limit"
    assert result.attempts == client_module.PACED_RETRIES + 1
    fake_openai.reset()
    fake_openai.faults = ["429"]
    result = complete(fast_client(retries=0), request(fake_openai))
    assert not result.ok and result.attempts == 1


def test_retry_after_is_capped(fake_openai: FakeOpenAI) -> None:
    fake_openai.faults = ["429", None]
    fake_openai.retry_after = "3600"
    sleep = RecordingSleep()
    assert complete(fast_client(sleep, backoff_max_s=2.0), request(fake_openai)).ok
    assert sleep.delays == [2.0]


def test_429_without_retry_after_backs_off_exponentially(fake_openai: FakeOpenAI) -> None:
    fake_openai.faults = ["429-bare", "429-bare", "429-bare", None]
    sleep = RecordingSleep()
    result = complete(fast_client(sleep, backoff_base_s=0.2), request(fake_openai))
    assert result.ok and result.attempts == 4
    # equal jitter: each wait lies in [ceiling/2, ceiling] with ceilings 0.2, 0.4, 0.8
    for delay, ceiling in zip(sleep.delays, (0.2, 0.4, 0.8), strict=True):
        assert ceiling / 2 <= delay <= ceiling


@pytest.mark.parametrize("status", ["500", "502", "503"])
def test_server_errors_are_retried_then_reported(fake_openai: FakeOpenAI, status: str) -> None:
    fake_openai.faults = [status]
    result = complete(fast_client(retries=2), request(fake_openai))
    assert result.output is None and not result.ok
    assert result.error_kind == "server" and result.attempts == 3
    assert fake_openai.calls == 3
    assert (
        status in result.error and "openai/fake-model" in result.error and "openai" in result.error
    )


@pytest.mark.parametrize(
    "status, kind",
    [("401", "auth"), ("403", "permission"), ("400", "bad_request"), ("404", "model_not_found")],
)
def test_configuration_errors_fail_at_once(fake_openai: FakeOpenAI, status: str, kind: str) -> None:
    fake_openai.faults = [status]
    sleep = RecordingSleep()
    result = complete(fast_client(sleep), request(fake_openai))
    assert (result.output, result.error_kind, result.attempts) == (None, kind, 1)
    assert fake_openai.calls == 1 and sleep.delays == []


TRANSIENT = [
    ("reset", "connection"),
    ("truncated", "connection"),
    ("non-json", "malformed"),
    ("no-choices", "malformed"),
    ("empty", "malformed"),
    ("429-bare", "rate_limit"),
    ("503", "server"),
]


@pytest.mark.parametrize("fault, kind", TRANSIENT)
def test_transient_fault_then_success(fake_openai: FakeOpenAI, fault: str, kind: str) -> None:
    fake_openai.faults = [fault, None]
    result = complete(fast_client(), request(fake_openai, "reply: recovered"))
    assert result.ok and result.output == "recovered" and result.attempts == 2


@pytest.mark.parametrize("fault, kind", TRANSIENT)
def test_persistent_fault_is_an_error_never_an_output(
    fake_openai: FakeOpenAI, fault: str, kind: str
) -> None:
    fake_openai.faults = [fault]
    result = complete(fast_client(retries=1), request(fake_openai))
    assert result.output is None and result.error and result.error_kind == kind
    assert result.attempts == 2 and fake_openai.calls == 2


def test_read_timeout_is_retried_then_reported(fake_openai: FakeOpenAI) -> None:
    fake_openai.hang_s = 10.0
    fake_openai.faults = ["timeout", None]
    assert complete(fast_client(timeout_s=1.0), request(fake_openai)).ok
    fake_openai.faults = ["timeout"]
    result = complete(fast_client(timeout_s=1.0, retries=1), request(fake_openai))
    assert (result.output, result.error_kind, result.attempts) == (None, "timeout", 2)


def test_error_messages_are_scrubbed(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "canary-d41d8cd98f00b204"
    monkeypatch.setenv("FAKE_PROVIDER_API_KEY", canary)
    fake_openai.faults = ["401"]
    # a key that reaches the message through the model name is still removed
    req = CallRequest(
        model=f"openai/fake-{canary}",
        messages=({"role": "user", "content": "x"},),
        params={"api_base": fake_openai.base_url, "api_key": "sk-param-secret-123"},
    )
    result = complete(fast_client(), req)
    assert result.error_kind == "auth"
    assert canary not in result.error and "[redacted]" in result.error


def test_local_model_without_provider_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pytest_promptgate.local", None)  # import fails
    monkeypatch.setattr("pytest_promptgate.client._local_registered", False)
    result = complete(
        fast_client(), CallRequest("local/smollm2", ({"role": "user", "content": "x"},))
    )
    assert (result.output, result.error_kind, result.attempts) == (None, "config", 0)
    assert "local" in result.error


def test_scrub_removes_env_secrets_bearer_sk_and_given_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-123456789")
    monkeypatch.setenv("SHORT_KEY", "abc")  # under 6 characters: too common to scrub
    monkeypatch.setenv("NOT_A_SECRET_NAME", "visible-value")
    text = (
        "token tok-123456789, header Authorization: Bearer abc.def-ghi, key sk-proj-ABCdef123456, "
        "param p4ssw0rd-xyz, abc, visible-value"
    )
    cleaned = scrub(text, secrets=["p4ssw0rd-xyz"])
    for secret in ("tok-123456789", "abc.def-ghi", "sk-proj-ABCdef123456", "p4ssw0rd-xyz"):
        assert secret not in cleaned
    assert "visible-value" in cleaned and "Bearer [redacted]" in cleaned


def test_parse_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.25") == 0.25
    now = time.time()
    assert parse_retry_after(
        email.utils.formatdate(now + 30, usegmt=True), now=now
    ) == pytest.approx(30, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_unknown_params_flags_typos_and_reserved_names() -> None:
    assert unknown_params({"temperature": 0, "max_tokens": 5, "api_base": "x", "seed": 1}) == []
    assert unknown_params({"temprature": 0, "timeout": 3, "top_p": 1}) == ["temprature", "timeout"]


# -- failures that cannot heal ---------------------------------------------------------------


def run_many(client: ModelClient, requests: list[CallRequest]) -> list[CallResult]:
    async def main() -> list[CallResult]:
        return list(await asyncio.gather(*(client.complete(r) for r in requests)))

    return asyncio.run(main())


def many(server: FakeOpenAI, count: int, **params: object) -> list[CallRequest]:
    return [
        CallRequest(
            model="openai/fake-model",
            messages=({"role": "user", "content": f"reply: out {i}"},),
            params={"api_base": server.base_url, "api_key": "sk-test", **params},
        )
        for i in range(count)
    ]


def test_auth_failure_on_100_calls_makes_a_handful_of_requests(fake_openai: FakeOpenAI) -> None:
    fake_openai.faults = ["401"]
    client = fast_client()
    results = run_many(client, many(fake_openai, 100))
    assert fake_openai.calls <= ModelHealth.CONFIRMATIONS  # not 100, nor 400 with retries
    assert all(r.error_kind == "auth" and r.output is None for r in results)
    not_attempted = [r for r in results if r.error.startswith("not attempted")]
    assert len(not_attempted) == 100 - fake_openai.calls
    assert all(r.attempts == 0 for r in not_attempted)
    assert not_attempted[0].error.startswith(
        "not attempted: authentication failed for openai/fake-model"
    )
    # the provider's own message is kept once per model, for the run's report
    assert list(client.health.disabled()) == ["openai/fake-model"]
    assert "fake provider answered 401" in client.health.disabled()["openai/fake-model"]


def test_missing_api_key_is_not_retried_and_sends_nothing(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # litellm reports a missing key as InternalServerError (500): the message decides.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    sleep = RecordingSleep()
    reqs = [
        CallRequest(
            model="openai/fake-model",
            messages=({"role": "user", "content": f"case {i}"},),
            params={"api_base": fake_openai.base_url},
        )
        for i in range(30)
    ]
    client = fast_client(sleep)
    results = run_many(client, reqs)
    assert fake_openai.calls == 0 and sleep.delays == []
    assert all(r.error_kind == "credentials" and r.attempts <= 1 for r in results)
    assert "OPENAI_API_KEY" in results[0].error
    assert sum(r.error.startswith("not attempted: missing credentials") for r in results) == 28


def test_one_case_with_an_auth_error_does_not_disable_an_answering_model(
    fake_openai: FakeOpenAI,
) -> None:
    # The first call in flight is the one that fails: the second is let through (one
    # failure is not proof) and answers, so every other call goes ahead as usual.
    fake_openai.fault_on = {"out 0": "401"}
    client = fast_client()
    results = run_many(client, many(fake_openai, 20))
    assert [r.error_kind for r in results] == ["auth"] + [None] * 19
    assert fake_openai.calls == 20 and client.health.disabled() == {}


def test_unproven_model_sends_one_attempt_at_a_time_then_opens(fake_openai: FakeOpenAI) -> None:
    fake_openai.latency_ms = 50
    results = run_many(fast_client(), many(fake_openai, 12))
    assert all(r.ok for r in results)
    assert 1 < fake_openai.max_in_flight  # once the first answered, the rest ran concurrently


def test_a_transient_failure_is_still_retried_after_the_first_answer(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.faults = [None, "503", None]
    client = fast_client()
    first, second = (complete(client, r) for r in many(fake_openai, 2))
    assert first.ok and second.ok and second.attempts == 2


def test_bad_request_and_context_window_concern_one_call_only(fake_openai: FakeOpenAI) -> None:
    fake_openai.fault_on = {"out 0": "400", "out 1": "400"}
    client = fast_client()
    results = run_many(client, many(fake_openai, 6))
    assert [r.error_kind for r in results[:2]] == ["bad_request", "bad_request"]
    assert all(r.ok for r in results[2:]) and fake_openai.calls == 6


class FakeLitellmError(Exception):
    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class ContextWindowExceededError(FakeLitellmError):
    pass


class NotFoundError(FakeLitellmError):
    pass


@pytest.mark.parametrize(
    "exc, kind",
    [
        (
            FakeLitellmError(
                "OpenAIException - Missing credentials. Please pass an `api_key`", 500
            ),
            "credentials",
        ),
        (FakeLitellmError("Missing Anthropic API Key - A call is being made", 401), "credentials"),
        (FakeLitellmError("Incorrect API key provided: sk-abc", 401), "auth"),
        (FakeLitellmError("You do not have access to this project", 403), "permission"),
        (NotFoundError("The model `gpt-9` does not exist", 404), "model_not_found"),
        (
            FakeLitellmError("LLM Provider NOT provided. You passed model=gpt4o", 400),
            "model_not_found",
        ),
        (ContextWindowExceededError("too long", 400), "context_window"),
        (
            FakeLitellmError("This model's maximum context length is 8192 tokens", 400),
            "context_window",
        ),
        (FakeLitellmError("Invalid value for temperature", 400), "bad_request"),
        (FakeLitellmError("Internal error", 500), "server"),
        (FakeLitellmError("Rate limit reached", 429), "rate_limit"),
        (FakeLitellmError("Connection error.", 500), "connection"),
        (asyncio.TimeoutError(), "timeout"),
    ],
)
def test_classify_reads_type_status_and_message(exc: BaseException, kind: str) -> None:
    failure = classify(exc)
    assert failure.kind == kind
    assert failure.transient == (kind in {"server", "rate_limit", "connection", "timeout"})
    assert failure.model_fatal == (kind in {"credentials", "auth", "permission", "model_not_found"})
