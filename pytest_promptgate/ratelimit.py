"""Who may send a request now: global concurrency, per-model requests per minute, 429 pauses.

The client asks ``Throttle.slot(model)`` around every attempt (not around a whole call with
its retries), so a call sleeping before a retry does not hold a concurrency slot that a fresh
call could use.

Adaptive backoff: an isolated 429 only delays its own retry (Retry-After). When 429s become
the rule for a model — at least half of its last outcomes — the provider is refusing us, and
every call to that model pauses for the Retry-After (or the backoff) instead of each caller
retrying blindly and keeping the provider saturated.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager


class Refused(Exception):
    """The throttle will not let this attempt start (e.g. the run's budget is spent)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


class TokenBucket:
    """``rpm`` requests per minute, with a burst of at most one second's worth (at least 1)."""

    def __init__(
        self,
        rpm: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        if rpm <= 0:
            raise ValueError(f"rpm must be positive, got {rpm}")
        self.rate_per_s = rpm / 60.0
        self.capacity = max(1.0, self.rate_per_s)
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = asyncio.Lock()  # waiters are served in arrival order

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(
                    self.capacity, self._tokens + (now - self._updated) * self.rate_per_s
                )
                self._updated = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await self._sleep((1.0 - self._tokens) / self.rate_per_s)


class _ModelState:
    def __init__(self, bucket: TokenBucket | None, window: int):
        self.bucket = bucket
        self.recent: deque[bool] = deque(maxlen=window)  # True = answered 429
        self.paused_until = 0.0
        self.pauses = 0


class Throttle:
    """Concurrency slots shared by all models, plus per-model rpm buckets and 429 pauses."""

    def __init__(
        self,
        concurrency: int,
        rpm: Mapping[str, float] | None = None,
        *,
        window: int = 20,
        min_outcomes: int = 4,
        pause_ratio: float = 0.5,
        admit: Callable[[str], Refused | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self._admit = admit
        self.concurrency = max(1, int(concurrency))
        self._semaphore = asyncio.Semaphore(self.concurrency)
        self._rpm = {m: float(r) for m, r in (rpm or {}).items() if r}
        self._window = window
        self._min_outcomes = min_outcomes
        self._pause_ratio = pause_ratio
        self._clock = clock
        self._sleep = sleep
        self._models: dict[str, _ModelState] = {}

    def _state(self, model: str) -> _ModelState:
        state = self._models.get(model)
        if state is None:
            rpm = self._rpm.get(model)
            bucket = TokenBucket(rpm, self._clock, self._sleep) if rpm else None
            state = self._models[model] = _ModelState(bucket, self._window)
        return state

    def pauses(self, model: str) -> int:
        """How many times calls to ``model`` were paused because of 429s."""
        return self._state(model).pauses

    async def _wait_pause(self, state: _ModelState) -> None:
        while (remaining := state.paused_until - self._clock()) > 0:
            await self._sleep(remaining)

    @asynccontextmanager
    async def slot(self, model: str) -> AsyncIterator[None]:
        state = self._state(model)
        while True:
            await self._wait_pause(state)
            if state.bucket is not None:
                await state.bucket.acquire()
            await self._semaphore.acquire()
            if state.paused_until <= self._clock():
                break
            self._semaphore.release()  # a pause began while we queued: wait it out first
        # Asked only now, with a slot in hand: a budget spent while we queued must stop us.
        refusal = self._admit(model) if self._admit is not None else None
        if refusal is not None:
            self._semaphore.release()
            raise refusal
        try:
            yield
        finally:
            self._semaphore.release()

    def note_outcome(self, model: str, rate_limited: bool, delay_s: float) -> bool:
        """Record one attempt's outcome; True when the model is now paused for ``delay_s``
        (the caller then needs no sleep of its own: ``slot`` waits the pause out)."""
        state = self._state(model)
        state.recent.append(rate_limited)
        if not rate_limited or len(state.recent) < self._min_outcomes:
            return False
        if sum(state.recent) < self._pause_ratio * len(state.recent):
            return False
        until = self._clock() + delay_s
        if until > state.paused_until:
            state.paused_until = until
            state.pauses += 1
        return True
