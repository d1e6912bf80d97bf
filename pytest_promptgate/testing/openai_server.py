"""A loopback OpenAI-compatible chat server with injectable faults, for tests and benchmarks.

    with FakeOpenAI(latency_ms=200) as srv:
        litellm.completion(model="openai/fake-model", api_base=srv.base_url, api_key="sk-test", ...)

It is a real HTTP/1.1 server (keep-alive, one thread per connection, TCP_NODELAY so that
small replies are not held back ~40 ms by Nagle's algorithm), so a client's whole request
path, retries and error mapping are exercised. Every attribute that shapes replies can be
changed while the server runs; each request reads them afresh.

Reply text, in order: ``answers[last user content]``; the rest of a ``reply: <text>`` line in
the last user message (a literal ``\\n`` becomes a newline); else ``echo: <last user content>``.
Usage tokens are word counts.

Faults (a ``kind`` string): ``429`` (with Retry-After), ``429-bare`` (without), ``500``,
``502``, ``503`` or any other 3-digit status, ``reset`` (connection closed with an RST, no
reply), ``timeout`` (no reply for ``hang_s``), ``non-json`` (200 with an HTML body),
``no-choices`` (200 with ``choices: []``), ``empty`` (200 with empty content), ``truncated``
(Content-Length larger than the body sent). Which call faults, first rule that matches:
``fault_on`` (a substring of the last user message → kind), ``faults`` (a list cycled by call
number, ``None`` = answer normally), ``fault_every`` (every N-th call gets ``fault``),
``fault_rate`` (seeded random choice among ``fault_kinds``).

Tool calls (finish_reason ``tool_calls``, no text): ``tool_calls[substring of the last user
message] = [{"name": ..., "arguments": {...} or "raw text"}, ...]``, or ``tool_call: <name>
<JSON arguments>`` lines in the last user message. Structured output: when the request sets
``response_format`` of type ``json_object``/``json_schema`` and ``json_reply`` is not None, the
reply text is ``json.dumps(json_reply)``. ``POST /v1/embeddings`` answers deterministic
64-dimension vectors (hashed bag of lower-cased words, unit length), so texts sharing words
have a high cosine similarity; its requests are recorded and counted like chat requests.

CLI (benchmarks): ``python -m pytest_promptgate.testing.openai_server --port 8765
--latency-ms 200 --fault-every 10 --fault 429``.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import socket
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULT_KINDS = (
    "429",
    "429-bare",
    "500",
    "502",
    "503",
    "reset",
    "timeout",
    "non-json",
    "no-choices",
    "empty",
    "truncated",
)

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")
_EMBEDDING_PATHS = ("/v1/embeddings", "/embeddings")
EMBEDDING_DIMENSIONS = 64


def _check_kind(kind: str | None) -> None:
    if kind is None or kind in FAULT_KINDS or (kind.isdigit() and len(kind) == 3):
        return
    raise ValueError(
        f"unknown fault kind {kind!r}; use one of {', '.join(FAULT_KINDS)} or a 3-digit status"
    )


def _word_count(text: str) -> int:
    return len(text.split())


def _text(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # OpenAI content parts
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _last_user_content(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text(message)
    return ""


class FakeOpenAI:
    """OpenAI-compatible ``POST /v1/chat/completions`` on 127.0.0.1 with injectable faults."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency_ms: float = 0.0,
        answers: Mapping[str, str] | None = None,
        faults: Sequence[str | None] | None = None,
        fault_every: int = 0,
        fault: str = "429",
        fault_rate: float = 0.0,
        fault_kinds: Sequence[str] = ("429", "500", "503"),
        seed: int = 0,
        fault_on: Mapping[str, str] | None = None,
        retry_after: str = "1",
        hang_s: float = 30.0,
        tool_calls: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        json_reply: Any = None,
    ):
        for kind in [*(faults or ()), fault, *fault_kinds, *(fault_on or {}).values()]:
            _check_kind(kind)
        self.host = host
        self.port = port
        self.latency_ms = latency_ms
        self.answers: dict[str, str] = dict(answers or {})
        self.faults: list[str | None] = list(faults or ())
        self.fault_every = fault_every
        self.fault = fault
        self.fault_rate = fault_rate
        self.fault_kinds: list[str] = list(fault_kinds)
        self.fault_on: dict[str, str] = dict(fault_on or {})
        self.retry_after = retry_after
        self.hang_s = hang_s
        self.tool_calls: dict[str, list[Mapping[str, Any]]] = {
            k: list(v) for k, v in (tool_calls or {}).items()
        }
        self.json_reply = json_reply
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._calls = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(_Handler):
            server_state = fake

        self._stopping.clear()
        self._server = _Server((self.host, self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="FakeOpenAI",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in latency / timeout faults
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # idle keep-alive connections would keep their threads alive
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- observations ----------------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A snapshot of every request: ``{"n", "path", "headers", "body", "fault"}``."""
        with self._lock:
            return list(self._requests)

    @property
    def calls(self) -> int:
        with self._lock:
            return self._calls

    @property
    def max_in_flight(self) -> int:
        """The most requests that were being answered at the same moment."""
        with self._lock:
            return self._max_in_flight

    @property
    def open_connections(self) -> list[socket.socket]:
        """A snapshot of the accepted connections still open (keep-alive), for tests."""
        with self._lock:
            return list(self._connections)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._calls = 0
            self._max_in_flight = 0

    # -- reply policy ----------------------------------------------------------------------

    def reply_for(self, messages: Any) -> str:
        content = _last_user_content(messages)
        if content in self.answers:
            return self.answers[content]
        for line in content.splitlines():
            stripped = line.strip()
            if stripped.startswith("reply:"):
                return stripped[len("reply:") :].strip().replace("\\n", "\n")
        return f"echo: {content}"

    def tool_calls_for(self, messages: Any, number: int) -> list[dict[str, Any]]:
        """The tool calls to answer with (OpenAI wire format); [] for a text reply."""
        content = _last_user_content(messages)
        wanted: list[tuple[str, Any]] = []
        for text, calls in self.tool_calls.items():
            if text in content:
                wanted = [(str(c.get("name", "")), c.get("arguments", {})) for c in calls]
                break
        else:
            for line in content.splitlines():
                stripped = line.strip()
                if stripped.startswith("tool_call:"):
                    name, _, arguments = stripped[len("tool_call:") :].strip().partition(" ")
                    wanted.append((name, arguments.strip() or "{}"))
        return [
            {
                "id": f"call_{number}_{index}",
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": arguments
                    if isinstance(arguments, str)
                    else json.dumps(arguments, ensure_ascii=False),
                },
            }
            for index, (name, arguments) in enumerate(wanted)
        ]

    def _choose_fault(self, number: int, content: str) -> str | None:
        """Called under the lock, so that the seeded random sequence is deterministic."""
        for text, kind in self.fault_on.items():
            if text in content:
                return kind
        if self.faults:
            return self.faults[(number - 1) % len(self.faults)]
        if self.fault_every and number % self.fault_every == 0:
            return self.fault
        if self.fault_rate and self._rng.random() < self.fault_rate:
            return self._rng.choice(self.fault_kinds)
        return None

    def _begin(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, str | None]:
        content = _last_user_content(body.get("messages")) if isinstance(body, dict) else ""
        with self._lock:
            self._calls += 1
            number = self._calls
            fault = self._choose_fault(number, content)
            self._requests.append(
                {"n": number, "path": path, "headers": headers, "body": body, "fault": fault}
            )
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        return number, fault

    def _end(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _track(self, conn: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512  # benchmarks open dozens of connections at once


class _Handler(BaseHTTPRequestHandler):
    server_state: FakeOpenAI
    protocol_version = "HTTP/1.1"  # keep-alive, as real providers do
    disable_nagle_algorithm = True  # without it every reply stalls ~40 ms on loopback

    def setup(self) -> None:
        super().setup()
        self.server_state._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server_state._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: benchmarks and tests read their own output

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        else:
            self._send(
                404,
                {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}},
            )

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        if path in _EMBEDDING_PATHS:
            self._embeddings(path, raw)
            return
        if path not in _CHAT_PATHS:
            self._send(
                404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}}
            )
            return
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        state = self.server_state
        number, fault = state._begin(path, dict(self.headers.items()), body)
        try:
            self._answer(number, fault, body)
        finally:
            state._end()

    def _answer(self, number: int, fault: str | None, body: Any) -> None:
        state = self.server_state
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._send(
                400,
                {
                    "error": {
                        "message": "body must be a JSON object with messages",
                        "type": "invalid_request_error",
                    }
                },
            )
            return
        if fault == "timeout":
            state._stopping.wait(state.hang_s)
            self._drop(reset=False)
            return
        if state.latency_ms:
            state._stopping.wait(state.latency_ms / 1000.0)
        if fault == "reset":
            self._drop(reset=True)
            return
        if fault is not None and fault.isdigit():
            status = int(fault)
            headers = {"Retry-After": state.retry_after} if status == 429 else {}
            self._send(status, _error_body(status), headers)
            return
        if fault == "429-bare":
            self._send(429, _error_body(429))
            return
        if fault == "non-json":
            self._send_raw(200, b"<html><body>502 upstream hiccup</body></html>", "text/html")
            return
        model = str(body.get("model", "fake-model"))
        text = "" if fault == "empty" else state.reply_for(body["messages"])
        calls = [] if fault == "empty" else state.tool_calls_for(body["messages"], number)
        response_format = body.get("response_format")
        if (
            state.json_reply is not None
            and isinstance(response_format, dict)
            and response_format.get("type") in ("json_object", "json_schema")
        ):
            text = json.dumps(state.json_reply, ensure_ascii=False)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            message = {"role": "assistant", "content": None, "tool_calls": calls}
            text = ""
        prompt_tokens = sum(_word_count(_text(m)) for m in body["messages"])
        reply = {
            "id": f"chatcmpl-fake-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": []
            if fault == "no-choices"
            else [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if calls else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": _word_count(text),
                "total_tokens": prompt_tokens + _word_count(text),
            },
        }
        if fault == "truncated":
            payload = json.dumps(reply).encode()
            self._send_raw(
                200, payload[: len(payload) // 2], "application/json", declared_length=len(payload)
            )
            self.close_connection = True
            return
        self._send(200, reply)

    def _embeddings(self, path: str, raw: bytes) -> None:
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        state = self.server_state
        number, fault = state._begin(path, dict(self.headers.items()), body)
        try:
            texts = body.get("input") if isinstance(body, dict) else None
            if isinstance(texts, str):
                texts = [texts]
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                self._send(
                    400,
                    {
                        "error": {
                            "message": "input must be a string or a list of strings",
                            "type": "invalid_request_error",
                        }
                    },
                )
                return
            if fault is not None and fault.isdigit():
                self._send(int(fault), _error_body(int(fault)))
                return
            tokens = sum(_word_count(t) for t in texts)
            self._send(
                200,
                {
                    "object": "list",
                    "model": str(body.get("model", "fake-embedding")),
                    "data": [
                        {"object": "embedding", "index": i, "embedding": embed_text(t)}
                        for i, t in enumerate(texts)
                    ],
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                },
            )
        finally:
            state._end()

    def _drop(self, reset: bool) -> None:
        """Close without a reply; ``reset`` sends an RST (SO_LINGER 0) instead of a FIN."""
        self.close_connection = True
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            self.connection.close()
        except OSError:
            pass

    def _send(self, status: int, doc: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(doc).encode(), "application/json", headers=headers)

    def _send_raw(
        self,
        status: int,
        payload: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
        declared_length: int | None = None,
    ) -> None:
        # One sendall per reply: status line, headers and body together.
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            f"Content-Type: {content_type}",
            f"Content-Length: {declared_length if declared_length is not None else len(payload)}",
        ]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + payload)
        except OSError:
            self.close_connection = True


def embed_text(text: str) -> list[float]:
    """A deterministic unit vector for ``text``: each lower-cased word adds 1 to a dimension
    chosen by its hash. Texts sharing words point the same way; an empty text is all zeros."""
    import hashlib
    import math
    import re

    vector = [0.0] * EMBEDDING_DIMENSIONS
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.sha256(word.encode("utf-8")).digest()
        vector[int.from_bytes(digest[:4], "big") % EMBEDDING_DIMENSIONS] += 1.0
    norm = math.sqrt(sum(v * v for v in vector))
    return [round(v / norm, 6) for v in vector] if norm else vector


def _error_body(status: int) -> dict[str, Any]:
    kind = {429: "rate_limit_error", 401: "authentication_error", 403: "permission_error"}.get(
        status, "server_error"
    )
    return {"error": {"message": f"fake provider answered {status}", "type": kind, "code": status}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Loopback OpenAI-compatible chat server with injectable faults."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--fault-every", type=int, default=0, help="every N-th call gets --fault")
    parser.add_argument(
        "--fault", default="429", help=f"one of {', '.join(FAULT_KINDS)} or a status"
    )
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="seeded random fault probability"
    )
    parser.add_argument(
        "--fault-kinds", default="429,500,503", help="comma-separated kinds for --fault-rate"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retry-after", default="1", help="Retry-After header value sent with 429")
    args = parser.parse_args(argv)
    server = FakeOpenAI(
        args.host,
        args.port,
        latency_ms=args.latency_ms,
        fault_every=args.fault_every,
        fault=args.fault,
        fault_rate=args.fault_rate,
        fault_kinds=[k for k in args.fault_kinds.split(",") if k],
        seed=args.seed,
        retry_after=args.retry_after,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with server:
        print(f"FakeOpenAI listening on {server.base_url}", flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        print(
            f"FakeOpenAI served {server.calls} calls (max {server.max_in_flight} at once)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
