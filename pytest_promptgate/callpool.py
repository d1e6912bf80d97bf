"""Model calls in worker processes, for the rare run whose call rate one process cannot make.

One process makes some 250 calls/s before its CPU saturates (issue 16's profile: ~3.5-4 ms of
CPU per uncached case on an idle core, litellm ~2.8 of it; ~145/s on a busy 2-core VM), and a
run needs ``concurrency / latency`` calls/s: 80/s at concurrency 16 and 200 ms, 64/s at 64
and 1 s. Only high concurrency against sub-second replies (320/s at 64 and 200 ms) outruns
one process. A child costs a litellm import (~2-3 s of CPU and of wall before its first
call) and ~200 MB, so ``auto`` starts none below AUTO_MIN_CONCURRENCY. A CallPool spreads
the calls over N child processes, each with its own event loop, ModelClient and Throttle
(its share of the concurrency); the parent keeps the cache, the checks, the counters and
pytest.

Only the parent reads and writes the cache, so a child never sees a hit; a child that dies
turns each of its unanswered calls into an *error* (never a pass, never a prompt failure).

Wire format, both ways: a 4-byte big-endian length, then a pickle (the parent and its own
children only). Parent → child: the settings dict first, then ``("call", id, CallRequest)``
frames, and ``("close",)``. Child → parent: ``("ready", pid)`` once litellm is imported and
warmed up, then ``("result", id, CallResult)``.

    python -m pytest_promptgate.callpool    # a child; started by CallPool, not by hand
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pickle
import struct
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

from pytest_promptgate.client import PACED_RETRIES, scrub
from pytest_promptgate.model import CallRequest, CallResult

# Fewer uncached calls than this run in-process: a child's start (importing litellm, ~2-3 s
# of CPU and ~200 MB) only pays for itself when the call phase is long.
AUTO_MIN_CALLS = 200
# One process makes ~250 calls/s (idle core; issue 16). Replies take 0.2-5 s, so below this
# concurrency (< 240 calls/s even at 200 ms) one process keeps up and workers would only cost
# an import and memory each (measured: 2 workers at concurrency 16 used more CPU than one
# process and ~2x its memory).
AUTO_MIN_CONCURRENCY = 48
CONCURRENCY_PER_WORKER = 32  # one process per ~32 calls in flight at the fastest replies
MAX_AUTO_WORKERS = 4
READY_TIMEOUT_S = 120.0  # importing litellm on a loaded runner can take a while
_HEADER = struct.Struct(">I")


def auto_workers(uncached_calls: int, concurrency: int, cpu_count: int | None = None) -> int:
    """How many children ``--promptgate-workers auto`` starts: none for a short call phase, a
    concurrency one process keeps up with, or a single CPU; otherwise one per
    CONCURRENCY_PER_WORKER calls in flight, at most one per CPU and MAX_AUTO_WORKERS."""
    cpus = (
        cpu_count
        if cpu_count is not None
        else (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1
        )
    )
    if cpus < 2 or uncached_calls < AUTO_MIN_CALLS or concurrency < AUTO_MIN_CONCURRENCY:
        return 0
    return min(cpus, MAX_AUTO_WORKERS, -(-concurrency // CONCURRENCY_PER_WORKER))


def split_concurrency(concurrency: int, workers: int) -> list[int]:
    """Each child's share of the concurrency; the shares add up to it exactly."""
    workers = max(1, min(workers, concurrency))
    base, extra = divmod(concurrency, workers)
    return [base + (1 if i < extra else 0) for i in range(workers)]


def _frame(message: Any) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


async def _read_frame(reader: asyncio.StreamReader) -> Any:
    header = await reader.readexactly(_HEADER.size)
    (length,) = _HEADER.unpack(header)
    return pickle.loads(await reader.readexactly(length))


# -- the parent's side -----------------------------------------------------------------------


@dataclass
class _Worker:
    process: asyncio.subprocess.Process
    concurrency: int
    stderr: Any  # a temporary file: the child's last words, shown if it dies
    pending: dict[int, asyncio.Future[CallResult]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None
    alive: bool = True


class CallPool:
    """``await start()``, then ``await complete(request)`` from any number of tasks, then
    ``await close()`` (also safe after a failed start or an interrupt)."""

    def __init__(
        self,
        workers: int,
        concurrency: int,
        settings: dict[str, Any],
        answer_bound_s: float | None = None,
    ):
        self.shares = split_concurrency(concurrency, workers)
        self.settings = dict(settings)
        self._bound_s = answer_bound_s
        self.workers: list[_Worker] = []
        self._ids = itertools.count(1)

    @property
    def size(self) -> int:
        return len(self.shares)

    async def start(self) -> str | None:
        """Start every child and wait until each has litellm loaded. Returns None, or why the
        pool could not start (the caller then calls in-process)."""
        for share in self.shares:
            stderr = tempfile.TemporaryFile()
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "pytest_promptgate.callpool",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr,
            )  # fmt: skip
            worker = _Worker(process=process, concurrency=share, stderr=stderr)
            self.workers.append(worker)
            assert process.stdin is not None
            process.stdin.write(_frame({**self.settings, "concurrency": share}))
        try:
            await asyncio.wait_for(
                asyncio.gather(*(self._await_ready(w) for w in self.workers)), READY_TIMEOUT_S
            )
        except (
            asyncio.TimeoutError,
            asyncio.IncompleteReadError,
            ConnectionError,
            pickle.UnpicklingError,
        ) as exc:
            reason = self._last_words() or f"{type(exc).__name__}"
            await self.close()
            return f"call workers did not start ({reason}); calling in-process"
        for worker in self.workers:
            worker.reader = asyncio.ensure_future(self._read_results(worker))
        return None

    async def _await_ready(self, worker: _Worker) -> None:
        assert worker.process.stdout is not None
        message = await _read_frame(worker.process.stdout)
        if not (isinstance(message, tuple) and message and message[0] == "ready"):
            raise ConnectionError(f"unexpected first message {message!r:.80}")

    async def complete(self, request: CallRequest) -> CallResult:
        alive = [w for w in self.workers if w.alive]
        if not alive:
            return _worker_lost("every call worker has exited")
        worker = min(alive, key=lambda w: len(w.pending) / w.concurrency)
        call_id = next(self._ids)
        future: asyncio.Future[CallResult] = asyncio.get_running_loop().create_future()
        worker.pending[call_id] = future
        assert worker.process.stdin is not None
        try:
            worker.process.stdin.write(_frame(("call", call_id, request)))
            await worker.process.stdin.drain()
        except (ConnectionError, RuntimeError):
            self._lose(worker)
        bound_s = self._answer_bound_s()
        try:
            return await asyncio.wait_for(asyncio.shield(future), bound_s)
        except asyncio.TimeoutError:
            # The child's own timeouts and retry limits end every call well before this: a
            # child that is alive but silent this long is stuck. Never wait forever.
            worker.pending.pop(call_id, None)
            return _worker_lost(f"the call worker did not answer within {bound_s:.0f} s")

    def _answer_bound_s(self) -> float:
        """A generous ceiling on one call inside a child: every attempt timing out, every
        backoff at its maximum, the Retry-After waits included, plus a minute."""
        if self._bound_s is not None:
            return self._bound_s
        attempts = int(self.settings.get("retries", 3)) + 1 + PACED_RETRIES
        return (
            attempts
            * (
                float(self.settings.get("timeout_s", 60.0)) * 1.5
                + 1.0
                + float(self.settings.get("backoff_max_s", 30.0))
            )
            + 60.0
        )

    async def _read_results(self, worker: _Worker) -> None:
        assert worker.process.stdout is not None
        try:
            while True:
                message = await _read_frame(worker.process.stdout)
                if isinstance(message, tuple) and len(message) == 3 and message[0] == "result":
                    future = worker.pending.pop(message[1], None)
                    if future is not None and not future.done():
                        future.set_result(message[2])
        except (asyncio.IncompleteReadError, ConnectionError, pickle.UnpicklingError, EOFError):
            pass
        self._lose(worker)

    def _lose(self, worker: _Worker) -> None:
        """The child is gone: every call it still owed becomes an error naming why."""
        worker.alive = False
        if not worker.pending:
            return
        words = self._last_words(worker)
        status = worker.process.returncode
        lost = _worker_lost(
            "the call worker process exited before answering"
            + (f" (exit status {status})" if status is not None else "")
            + (f": {words}" if words else "")
        )
        for future in worker.pending.values():
            if not future.done():
                future.set_result(lost)  # CallResult is frozen: one shared value is safe
        worker.pending.clear()

    def _last_words(self, worker: _Worker | None = None) -> str:
        for candidate in [worker] if worker else self.workers:
            try:
                candidate.stderr.seek(0)
                text = candidate.stderr.read()[-2000:].decode("utf-8", "replace").strip()
            except (OSError, ValueError):
                continue
            if text:
                last = text.splitlines()[-1]
                return scrub(last[:300])
        return ""

    async def close(self) -> None:
        for worker in self.workers:
            stdin = worker.process.stdin
            if worker.alive and stdin is not None and not stdin.is_closing():
                try:
                    stdin.write(_frame(("close",)))
                    stdin.close()
                except (ConnectionError, RuntimeError):
                    pass
        for worker in self.workers:
            try:
                await asyncio.wait_for(worker.process.wait(), 10.0)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                _kill(worker.process)
            if worker.reader is not None:
                worker.reader.cancel()
            worker.alive = False
            worker.stderr.close()

    def kill(self) -> None:
        """Synchronous last resort (an interrupt): no child outlives the run."""
        for worker in self.workers:
            _kill(worker.process)


def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        try:
            process.kill()
        except ProcessLookupError:
            pass


def _worker_lost(why: str) -> CallResult:
    """A call the workers could not answer: an error (never a pass, never a prompt failure)."""
    return CallResult(output=None, error=why, error_kind="server", attempts=0)


# -- the child's side ------------------------------------------------------------------------


async def _serve(
    settings: dict[str, Any], out: asyncio.WriteTransport, reader: asyncio.StreamReader
) -> None:
    from pytest_promptgate.client import ModelClient, import_litellm, warm_up
    from pytest_promptgate.ratelimit import Throttle

    await warm_up()
    client = ModelClient(
        retries=settings.get("retries", 3),
        timeout_s=settings.get("timeout_s", 60.0),
        backoff_base_s=settings.get("backoff_base_s", 0.5),
        backoff_max_s=settings.get("backoff_max_s", 30.0),
    )
    throttle = Throttle(settings.get("concurrency", 8))
    out.write(_frame(("ready", os.getpid())))
    running: set[asyncio.Task[None]] = set()

    async def answer(call_id: int, request: CallRequest) -> None:
        try:
            result = await client.complete(request, throttle)
        except Exception as exc:
            result = CallResult(
                output=None,
                error=scrub(f"call worker: {type(exc).__name__}: {exc}"),
                error_kind="config",
                attempts=0,
            )
        out.write(_frame(("result", call_id, result)))

    try:
        while True:
            try:
                message = await _read_frame(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break  # the parent is gone or done
            if not isinstance(message, tuple) or not message or message[0] == "close":
                break
            task = asyncio.ensure_future(answer(message[1], message[2]))
            running.add(task)
            task.add_done_callback(running.discard)
        if running:
            await asyncio.gather(*running)
    finally:
        try:
            await import_litellm().close_litellm_async_clients()
        except Exception:
            pass


async def _child_main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    # The protocol owns fd 1; anything a library prints goes to stderr instead.
    out_file = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, out_file)
    settings = await _read_frame(reader)
    try:
        await _serve(settings, transport, reader)
    finally:
        while transport.get_write_buffer_size() and not transport.is_closing():
            await asyncio.sleep(0.005)  # every answer out before the pipe closes
        transport.close()


if __name__ == "__main__":
    try:
        asyncio.run(_child_main())
    except KeyboardInterrupt:  # the terminal's Ctrl-C reaches the whole process group
        os._exit(130)
    # Every answer is out and litellm's sessions are closed: skip the interpreter's teardown
    # of ~3,000 modules (about a second the parent would otherwise wait for).
    sys.stderr.flush()
    os._exit(0)
