"""A runner batch driven in steps from pytest's own thread (a serial run's items report as
their results arrive); see ``SteppedRun``. ``runner.run_jobs`` is the all-at-once form."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Callable
from typing import Any

from pytest_promptgate.runner import Job, ResultCallback, RunOutcome, RunSettings, _Batch


async def _one_turn() -> None:
    await asyncio.sleep(0)


def _quiet_on_interrupt(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Ctrl-C lands in whichever task is running: the transports' tasks (aiohttp's) then end
    with KeyboardInterrupt or CancelledError that nobody retrieves. The run is already stopping
    and says so; asyncio's "Task exception was never retrieved" traceback would only bury that."""
    if isinstance(context.get("exception"), (KeyboardInterrupt, asyncio.CancelledError)):
        return
    loop.default_exception_handler(context)


class SteppedRun:
    """``run_jobs`` driven in steps from pytest's own thread, so that pytest reports each item
    as soon as its result is in (live progress, ``-x`` stops the calls, the reporting overlaps
    the calls' network time): ``run_until(ready)`` lets the calls progress until ``ready()``.

    No thread: a second thread compiling code (pydantic and litellm build classes at run time)
    while pytest parses source for a traceback trips CPython 3.11's "AST constructor recursion
    depth mismatch". Between steps the loop stands still and the calls in flight wait in their
    sockets; nothing runs inside a running loop, so the user's own tests may use asyncio.run.

    The credentials and budget checks run in the constructor (a refusal raises before any
    call). ``finish()`` ends the run (``cancel=True``: stop the calls still running); every
    result delivered before stays delivered, and cached."""

    def __init__(
        self, jobs: list[Job], settings: RunSettings, on_result: ResultCallback | None = None
    ):
        self._batch = _Batch(list(jobs), settings, on_result, None)
        self._batch.refuse_to_start()
        self.outcome: RunOutcome | None = None
        self.error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(_quiet_on_interrupt)
        self._task = self._loop.create_task(self._batch.run())
        self._ready: Callable[[], bool] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def run_until(self, ready: Callable[[], bool]) -> None:
        """Let the calls progress until ``ready()`` holds or the run has ended."""
        if self._closed or self._task.done():
            return
        if ready():
            # The result is in, but give the loop one turn anyway: replies that arrived while
            # pytest was reporting are read, and the next requests go out. Without it a burst of
            # ready items (a wave of replies) stalls every call in flight until pytest has
            # reported them all.
            self._loop.run_until_complete(_one_turn())
            self._collect()
            return
        self._ready, self._waiter = ready, self._loop.create_future()
        either: list[asyncio.Future[Any]] = [self._waiter, self._task]
        try:
            self._loop.run_until_complete(asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED))
        finally:
            self._ready = self._waiter = None
            self._collect()

    def wake(self) -> None:
        """Called (in the loop) when a result arrives: end the current step once it is ready."""
        if (
            self._waiter is not None
            and not self._waiter.done()
            and self._ready is not None
            and self._ready()
        ):
            self._waiter.set_result(None)

    def finish(self, cancel: bool = False) -> None:
        if self._closed:
            return
        with warnings.catch_warnings():
            # litellm leaves an inner coroutine of a cancelled call unawaited: its warning
            # would only be noise in the user's summary.
            warnings.filterwarnings(
                "ignore", message="coroutine .* was never awaited", category=RuntimeWarning
            )
            try:
                if not self._task.done():
                    if cancel:
                        self._task.cancel()
                    try:
                        self._loop.run_until_complete(self._task)
                    except BaseException:
                        pass
                self._collect()
            finally:
                self._closed = True
                _close_loop(self._loop)
                if cancel:
                    gc.collect()  # while the filter holds: the abandoned coroutines go now

    def _collect(self) -> None:
        if self._task.done() and self.outcome is None and self.error is None:
            if self._task.cancelled():
                self.error = asyncio.CancelledError()
            elif self._task.exception() is not None:
                self.error = self._task.exception()
            else:
                self.outcome = self._task.result()


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """What asyncio.run does on the way out: no task is left to die with the loop."""
    try:
        leftover = asyncio.all_tasks(loop)
        for task in leftover:
            task.cancel()
        if leftover:
            loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    except BaseException:
        pass
    finally:
        loop.close()
