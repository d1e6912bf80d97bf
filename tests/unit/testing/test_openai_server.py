"""The loopback OpenAI server: reply policy, request recording, and every fault kind observable
with a plain HTTP client (no litellm here, so these tests are fast)."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
from typing import Any

import pytest

from pytest_promptgate.testing import openai_server
from pytest_promptgate.testing.openai_server import FAULT_KINDS, FakeOpenAI


def post(
    server: FakeOpenAI, content: str, path: str = "/v1/chat/completions", timeout: float = 5.0
):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    body = json.dumps(
        {
            "model": "fake-model",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": content},
            ],
        }
    )
    conn.request(
        "POST",
        path,
        body=body,
        headers={"Content-Type": "application/json", "Authorization": "Bearer sk-x"},
    )
    response = conn.getresponse()
    return response, response.read(), conn


def reply_json(server: FakeOpenAI, content: str, **kwargs: Any) -> dict:
    response, raw, conn = post(server, content, **kwargs)
    conn.close()
    assert response.status == 200, raw
    return json.loads(raw)


def test_reply_policy_answers_then_reply_line_then_echo(fake_openai: FakeOpenAI) -> None:
    fake_openai.answers = {"what queue?": "billing"}
    assert reply_json(fake_openai, "what queue?")["choices"][0]["message"]["content"] == "billing"
    doc = reply_json(fake_openai, "Ticket: x\nreply: line one\\nline two")
    assert doc["choices"][0]["message"]["content"] == "line one\nline two"
    doc = reply_json(fake_openai, "hello there", path="/chat/completions")
    assert doc["choices"][0]["message"]["content"] == "echo: hello there"
    # usage is word counts: "be brief" + "hello there" = 4, "echo: hello there" = 3
    assert doc["usage"] == {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}


def test_records_every_request(fake_openai: FakeOpenAI) -> None:
    reply_json(fake_openai, "one")
    reply_json(fake_openai, "two", path="/chat/completions")
    assert fake_openai.calls == 2
    first, second = fake_openai.requests
    assert (first["n"], first["path"], second["path"]) == (
        1,
        "/v1/chat/completions",
        "/chat/completions",
    )
    assert first["body"]["messages"][-1]["content"] == "one"
    assert first["headers"]["Authorization"] == "Bearer sk-x"
    fake_openai.reset()
    assert fake_openai.calls == 0 and fake_openai.requests == []


def test_unknown_path_is_404_and_not_counted(fake_openai: FakeOpenAI) -> None:
    response, _, conn = post(fake_openai, "x", path="/v1/audio/speech")  # embeddings exist now
    conn.close()
    assert response.status == 404
    assert fake_openai.calls == 0


@pytest.mark.parametrize("status", ["500", "502", "503", "401", "400"])
def test_status_faults(fake_openai: FakeOpenAI, status: str) -> None:
    fake_openai.faults = [status]
    response, raw, conn = post(fake_openai, "x")
    conn.close()
    assert response.status == int(status)
    assert json.loads(raw)["error"]["message"]
    assert response.getheader("Retry-After") is None


def test_429_with_and_without_retry_after(fake_openai: FakeOpenAI) -> None:
    fake_openai.faults = ["429", "429-bare"]
    fake_openai.retry_after = "7"
    response, _, conn = post(fake_openai, "x")
    conn.close()
    assert (response.status, response.getheader("Retry-After")) == (429, "7")
    response, _, conn = post(fake_openai, "x")
    conn.close()
    assert (response.status, response.getheader("Retry-After")) == (429, None)


def test_reset_closes_without_reply(fake_openai: FakeOpenAI) -> None:
    fake_openai.faults = ["reset"]
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
        post(fake_openai, "x")


def test_timeout_never_replies_within_the_client_timeout(fake_openai: FakeOpenAI) -> None:
    fake_openai.faults = ["timeout"]
    fake_openai.hang_s = 10.0  # stop() wakes the handler, so the test does not wait this long
    with pytest.raises(socket.timeout):
        post(fake_openai, "x", timeout=0.3)


@pytest.mark.parametrize(
    "fault, check",
    [
        ("non-json", lambda raw: pytest.raises(ValueError, json.loads, raw)),
        (
            "no-choices",
            lambda raw: json.loads(raw)["choices"] == [] or pytest.fail("choices present"),
        ),
        (
            "empty",
            lambda raw: (
                json.loads(raw)["choices"][0]["message"]["content"] == "" or pytest.fail("content")
            ),
        ),
    ],
)
def test_malformed_200_bodies(fake_openai: FakeOpenAI, fault: str, check: Any) -> None:
    fake_openai.faults = [fault]
    response, raw, conn = post(fake_openai, "reply: something")
    conn.close()
    assert response.status == 200
    check(raw)


def test_truncated_body_is_shorter_than_its_content_length(fake_openai: FakeOpenAI) -> None:
    fake_openai.faults = ["truncated"]
    with pytest.raises(http.client.IncompleteRead):
        post(fake_openai, "reply: a long enough answer to cut in half")


def test_fault_selection_rules(fake_openai: FakeOpenAI) -> None:
    fake_openai.faults = ["500", None, None]
    statuses = [post(fake_openai, "x")[0].status for _ in range(6)]
    assert statuses == [500, 200, 200, 500, 200, 200]

    fake_openai.faults = []
    fake_openai.reset()
    fake_openai.fault_every, fake_openai.fault = 3, "503"
    statuses = [post(fake_openai, "x")[0].status for _ in range(6)]
    assert statuses == [200, 200, 503, 200, 200, 503]

    fake_openai.fault_on = {"poison": "502"}  # per-content rule wins over the others
    assert post(fake_openai, "a poison pill")[0].status == 502


def test_seeded_random_faults_are_reproducible() -> None:
    def sequence() -> list[str | None]:
        with FakeOpenAI(fault_rate=0.3, fault_kinds=["500", "429"], seed=42) as server:
            for _ in range(40):
                post(server, "x")[2].close()
            return [r["fault"] for r in server.requests]

    first, second = sequence(), sequence()
    assert first == second
    assert 3 <= sum(f is not None for f in first) <= 25
    assert set(first) <= {None, "500", "429"}


def test_unknown_fault_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        FakeOpenAI(faults=["418-teapot"])
    assert "truncated" in FAULT_KINDS


def test_serves_many_connections_at_once() -> None:
    # Each reply waits 300 ms; a server that answered one at a time would never overlap them.
    with FakeOpenAI(latency_ms=300) as server:
        threads = [threading.Thread(target=lambda: post(server, "x")[2].close()) for _ in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert server.calls == 32
        assert server.max_in_flight >= 16


def test_accepted_connections_set_tcp_nodelay(fake_openai: FakeOpenAI) -> None:
    # Without TCP_NODELAY a small reply can wait ~40 ms for the client's delayed ACK (Nagle),
    # and every benchmark figure would carry that stall.
    response, _, conn = post(fake_openai, "x")  # keep-alive: the connection stays open
    try:
        assert response.status == 200
        (accepted,) = fake_openai.open_connections
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        conn.close()


def test_each_reply_is_one_write(fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    # Status line, headers and body in one send: split writes are what Nagle holds back.
    writes: list[bytes] = []
    setup = openai_server._Handler.setup

    class CountingWriter:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def write(self, data: bytes) -> int:
            writes.append(bytes(data))
            return self.inner.write(data)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    def counting_setup(handler: Any) -> None:
        setup(handler)
        handler.wfile = CountingWriter(handler.wfile)

    monkeypatch.setattr(openai_server._Handler, "setup", counting_setup)
    for fault in (None, "429"):
        writes.clear()
        fake_openai.faults = [fault]
        response, raw, conn = post(fake_openai, "x")
        conn.close()
        assert len(writes) == 1
        assert writes[0].startswith(f"HTTP/1.1 {response.status} ".encode())
        assert writes[0].endswith(raw)


def test_cli_serves_until_terminated() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_promptgate.testing.openai_server",
            "--port",
            "0",
            "--fault-every",
            "2",
            "--fault",
            "500",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("FakeOpenAI listening on http://127.0.0.1:")
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        server = FakeOpenAI(port=port)  # only used for its host/port in post()
        assert [post(server, "x")[0].status for _ in range(2)] == [200, 500]
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert "served 2 calls" in output
