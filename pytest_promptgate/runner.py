"""One asyncio batch: jobs (a rendered case × model) → CaseResults.

Per sample: cache lookup → on a miss, ``ModelClient.complete`` (through the throttle: bounded
concurrency, rpm, 429 pauses) → cache put → expectations. A case's CaseResult is handed to
``on_result`` the moment its last sample is done, so an interrupted run keeps every finished
result, and every finished call is already in the cache.

The ModelClient, and so litellm, is created on the first cache miss only: a fully cached run
never imports litellm. ``run_jobs`` runs a batch at once; ``stepped.SteppedRun`` advances one
from pytest's thread, item by item.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_promptgate.cache import ResponseCache
from pytest_promptgate.callpool import CallPool, auto_workers
from pytest_promptgate.client import ModelClient
from pytest_promptgate.litellm_setup import import_litellm, warm_up
from pytest_promptgate.model import (
    CallRequest,
    CallResult,
    Case,
    CaseResult,
    Location,
    PromptgateError,
    ProviderFailure,
    SampleResult,
    UsageError,
)
from pytest_promptgate.options import (
    DEFAULT_CACHE,
    DEFAULT_CONCURRENCY,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
)
from pytest_promptgate.pricing import DEFAULT_COMPLETION_TOKENS, estimate_calls_cost
from pytest_promptgate.provider_errors import scrub
from pytest_promptgate.ratelimit import Refused, Throttle

PROGRESS_INTERVAL_S = 0.1


@dataclass(frozen=True)
class Job:
    """One case of one prompt version for one model, messages already rendered."""

    prompt: str
    version: str
    case: Case
    model: str
    messages: tuple[Mapping[str, str], ...]
    params: Mapping[str, Any]
    repeat: int
    suite_dir: Path
    rootdir: Path | None
    location: Location | None
    node_id: str
    rpm: float | None = None  # the suite's rpm for this model; settings.rpm applies otherwise


@dataclass(frozen=True)
class RunSettings:
    concurrency: int = DEFAULT_CONCURRENCY
    retries: int = DEFAULT_RETRIES
    timeout_s: float = DEFAULT_TIMEOUT_S
    cache_dir: Path | None = None  # None: no cache
    cache_mode: str = DEFAULT_CACHE
    replay: bool = False
    max_cost_usd: float | None = None
    judge_model: str | None = None
    rpm: Mapping[str, float] = field(default_factory=dict)  # model -> requests per minute
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    workers: int | None = 0  # call worker processes (callpool); None: auto; 0: in this process


@dataclass(frozen=True)
class RunOutcome:
    results: list[CaseResult]  # in job order
    calls: int  # model calls made (cache misses that reached the client)
    cache_hits: int
    cache_misses: int  # requests not served from the cache (all of them when the cache is off)
    saved_usd: float
    spent_usd: float  # known costs only; see cost_known
    model_phase_s: float  # first request → last result
    warnings: list[str]
    attempts: int = 0  # HTTP attempts including retries
    cost_known: bool = True  # False when some successful call had no known price
    call_workers: int = 0  # worker processes that made the calls (0: this process)


ResultCallback = Callable[[CaseResult], None]
ProgressCallback = Callable[[int, int, int], None]


def run_jobs(
    jobs: list[Job],
    settings: RunSettings,
    on_result: ResultCallback | None = None,
    progress: ProgressCallback | None = None,
) -> RunOutcome:
    """Run every job in one event loop. Raises PromptgateError when the budget estimate is too
    high (before any call) and KeyboardInterrupt after delivering every finished result."""
    batch = _Batch(list(jobs), settings, on_result, progress)
    batch.refuse_to_start()
    return asyncio.run(batch.run())


def estimate_cost(jobs: list[Job], cache: ResponseCache | None) -> tuple[float, int, list[str]]:
    """(estimated USD of the uncached calls, how many calls that is, warnings)."""
    return estimate_calls_cost(
        jobs,
        lambda job: sum(cache is None or not cache.contains(request) for request in _requests(job)),
    )


def _requests(job: Job) -> list[CallRequest]:
    return [
        CallRequest(
            model=job.model, messages=job.messages, params=job.params, sample=i, label=job.node_id
        )
        for i in range(max(1, job.repeat))
    ]


class _Batch:
    def __init__(
        self,
        jobs: list[Job],
        settings: RunSettings,
        on_result: ResultCallback | None,
        progress: ProgressCallback | None,
    ):
        if settings.replay and settings.cache_dir is None:
            raise UsageError(
                "--promptgate-replay needs a cache directory", hint="set --promptgate-cache-dir"
            )
        self.jobs = jobs
        self.settings = settings
        self.on_result = on_result
        self.progress = progress
        self.cache = (
            ResponseCache(settings.cache_dir, settings.cache_mode, replay=settings.replay)
            if settings.cache_dir is not None
            else None
        )
        self.warnings: list[str] = []
        self.client: ModelClient | None = None
        self.pool: CallPool | None = None
        self.pool_size = 0
        self.warming: asyncio.Future[Any] | None = None
        self.throttle: Throttle | None = None
        self.calls = 0
        self.attempts = 0
        self.cache_hits = 0
        self.cache_misses = 0  # requests not served from the cache, whatever the cache mode
        self.spent_usd = 0.0
        self.unpriced_models: set[str] = set()
        self.results: dict[int, CaseResult] = {}
        self.errors = 0
        self.first_request: float | None = None
        self.last_result: float | None = None
        self.last_progress = 0.0

    # -- before any call: credentials and budget ---------------------------------------------

    def refuse_to_start(self) -> None:
        """Raise PromptgateError, before any call, when a model that will be called lacks its
        credentials or the estimate exceeds the budget. Every way of running a batch
        (``run_jobs``, ``stepped.SteppedRun``, so the plugin and ``api.run``) comes here."""
        self.refuse_without_credentials()
        self.refuse_over_budget()

    def refuse_without_credentials(self) -> None:
        """The credentials preflight (``preflight.py``): one line per model that would be
        called without its API key. A replay, or a model whose every call is cached, needs
        none. Cheap when the keys are set: the cache is read only for a model that lacks one."""
        if self.settings.replay:
            return
        from pytest_promptgate.preflight import missing_credentials

        cache = self.cache
        problems = missing_credentials(
            self.jobs,
            self._calls_model,
            cache_exists=cache is not None
            and cache.directory.is_dir()
            and any(cache.directory.iterdir()),
        )
        if problems:
            raise PromptgateError("\n".join(problems))

    def _calls_model(self, job: Job) -> bool:
        """Whether some sample of ``job`` is not in the cache (so the model will be called)."""
        cache = self.cache
        return cache is None or not all(cache.contains(request) for request in _requests(job))

    def refuse_over_budget(self) -> None:
        budget = self.settings.max_cost_usd
        if budget is None:
            return
        estimate, uncached, warnings = estimate_cost(self.jobs, self.cache)
        self.warnings += warnings
        if any(e.type == "llm-rubric" for job in self.jobs for e in job.case.expect):
            self.warnings.append("judge (llm-rubric) calls are not in the cost estimate")
        if estimate > budget:
            raise PromptgateError(
                f"estimated cost ${estimate:.4f} exceeds --promptgate-max-cost ${budget:.4f}",
                hint=f"{uncached} uncached call(s) at up to max_tokens (default {DEFAULT_COMPLETION_TOKENS}) "
                "completion tokens each; raise the budget, set a lower max_tokens, or select fewer cases (-k)",
            )

    def _admit(self, model: str) -> Refused | None:
        """Asked by the throttle before each attempt: once spend reaches the budget, no more calls."""
        budget = self.settings.max_cost_usd
        if budget is None or self.spent_usd < budget:
            return None
        return Refused(
            "budget",
            f"budget reached: ${self.spent_usd:.4f} spent of --promptgate-max-cost ${budget:.4f}; call not made",
        )

    # -- the batch -------------------------------------------------------------------------

    async def run(self) -> RunOutcome:
        started = time.perf_counter()
        self.throttle = Throttle(self.settings.concurrency, self._rpm_by_model(), admit=self._admit)
        self._report_progress(force=True)
        try:
            waiting = []
            uncached = 0
            for index, job in enumerate(self.jobs):
                cached = self._from_cache(index, job)
                if cached is None:
                    uncached += max(1, job.repeat)
                if cached is None or cached:
                    waiting.append((index, job, cached))
            if uncached and not self.settings.replay:
                await self._start_pool(uncached)
            outcomes = await asyncio.gather(
                *(self._run_job(index, job, cached) for index, job, cached in waiting),
                return_exceptions=True,
            )
        except BaseException:  # an interrupt: the workers' calls in flight are not waited for
            if self.pool is not None:
                self.pool.kill()
            raise
        finally:
            await self._close_clients()
        for outcome in outcomes:
            # _run_job turns every failure into an error sample, so this is a bug: say so loudly.
            if isinstance(outcome, BaseException):
                raise outcome
        if self.cache is not None:
            self.warnings += self.cache.warnings
        if self.unpriced_models:
            self.warnings.append(
                "price unknown for "
                + ", ".join(sorted(self.unpriced_models))
                + ": cost reported as unknown"
            )
        first = self.first_request if self.first_request is not None else started
        last = self.last_result if self.last_result is not None else first
        return RunOutcome(
            results=[self.results[i] for i in sorted(self.results)],
            calls=self.calls,
            cache_hits=self.cache_hits,
            cache_misses=self.cache_misses,
            saved_usd=self.cache.saved_usd if self.cache else 0.0,
            spent_usd=self.spent_usd,
            model_phase_s=max(0.0, last - first),
            warnings=list(self.warnings),
            attempts=self.attempts,
            cost_known=not self.unpriced_models,
            call_workers=self.pool_size,
        )

    def _rpm_by_model(self) -> dict[str, float]:
        """settings.rpm (ini), overridden by the suites' ``rpm:`` (the strictest when suites differ)."""
        from_suites: dict[str, float] = {}
        for job in self.jobs:
            if job.rpm:
                from_suites[job.model] = min(
                    float(job.rpm), from_suites.get(job.model, float("inf"))
                )
        rpm = {m: float(r) for m, r in self.settings.rpm.items() if r}
        rpm.update(from_suites)
        return rpm

    async def _start_pool(self, uncached: int) -> None:
        """Move the model calls to worker processes when that pays (see callpool.py)."""
        requested = self.settings.workers
        workers = (
            auto_workers(uncached, self.settings.concurrency) if requested is None else requested
        )
        if workers <= 0:
            return
        why_not = self._pool_excluded()
        if why_not:
            if requested:  # asked for explicitly: say why it was not honoured
                self.warnings.append(
                    f"--promptgate-workers {requested} ignored: {why_not}; calls run in the pytest process"
                )
            return
        pool = CallPool(
            workers,
            self.settings.concurrency,
            {
                "retries": self.settings.retries,
                "timeout_s": self.settings.timeout_s,
                "backoff_base_s": self.settings.backoff_base_s,
                "backoff_max_s": self.settings.backoff_max_s,
            },
        )
        problem = await pool.start()
        if problem:
            self.warnings.append(problem)
            return
        self.pool = pool
        self.pool_size = pool.size

    def _pool_excluded(self) -> str | None:
        if os.name == "nt":  # the children read their requests from a pipe with asyncio (POSIX)
            return "call workers are not supported on Windows"
        if self.settings.max_cost_usd is not None:
            return "a budget (--promptgate-max-cost) is kept exactly by one process"
        if self._rpm_by_model():
            return "rpm limits are kept exactly by one process"
        models = {job.model for job in self.jobs} | {self.settings.judge_model or ""}
        if any(model.startswith("local/") for model in models):
            return "the bundled local model runs in the pytest process"
        return None

    async def _close_clients(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            try:
                await pool.close()
            finally:
                pool.kill()
        # litellm caches aiohttp sessions per loop; closing them here avoids "Unclosed client
        # session" noise when asyncio.run closes the loop.
        if self.client is None:
            return
        try:
            await import_litellm().close_litellm_async_clients()
        except Exception:
            pass

    async def _run_job(self, index: int, job: Job, cached: list[CallResult] | None = None) -> None:
        """``cached``: the job's calls already read from the cache (see ``_from_cache``)."""
        if job.repeat <= 1:  # the common case: no extra task per job
            samples = [await self._run_sample(job, 0, cached[0] if cached else None)]
        else:
            samples = await asyncio.gather(
                *(
                    self._run_sample(job, i, cached[i] if cached else None)
                    for i in range(job.repeat)
                )
            )
        self._deliver(index, job, samples)

    def _deliver(self, index: int, job: Job, samples: list[SampleResult]) -> None:
        result = CaseResult(
            prompt=job.prompt,
            version=job.version,
            case=job.case.id,
            model=job.model,
            messages=tuple(dict(m) for m in job.messages),
            samples=tuple(samples),
            location=job.location or job.case.location,
            vars=dict(job.case.vars),
        )
        self.results[index] = result
        self.last_result = time.perf_counter()
        if result.status == "error":
            self.errors += 1
        if self.on_result is not None:
            self.on_result(result)
        self._report_progress()

    def _from_cache(self, index: int, job: Job) -> list[CallResult] | None:
        """Finish a job whose every sample is a cache hit without entering the event loop
        (no task, no awaits: a fully cached run is bound by this loop). Returns the cached
        calls when a check turned out to be asynchronous (the job then runs as a task with
        them), and None, having counted nothing, when some sample is not cached."""
        if self.cache is None or not self.cache.reads:
            return None
        calls = self.cache.get_all(_requests(job))
        if calls is None:
            return None
        self.cache_hits += len(calls)
        samples = []
        for sample, call in enumerate(calls):
            done = self._sample_now(job, call, sample)
            if done is None:
                return calls
            samples.append(done)
        self._deliver(index, job, samples)
        return []

    def _sample_now(self, job: Job, call: CallResult, sample: int) -> SampleResult | None:
        """The sample when every check is synchronous; None when one needs awaiting."""
        from pytest_promptgate import assertions

        if not call.ok or not job.case.expect:
            return SampleResult(sample=sample, call=call)
        try:
            results, pending = assertions.start_checks(job.case.expect, self._context(job, call))
        except Exception as exc:  # a bug in an expectation must not lose the case
            return _broken_checks(call, sample, exc)
        if pending:
            assertions.discard_pending(pending)
            return None
        checks = tuple(r for r in results if r is not None)  # none is: nothing is pending
        return SampleResult(sample=sample, call=call, checks=checks, threshold=job.case.threshold)

    def _report_progress(self, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.perf_counter()
        done = len(self.results)
        if force or done == len(self.jobs) or now - self.last_progress >= PROGRESS_INTERVAL_S:
            self.last_progress = now
            self.progress(done, len(self.jobs), self.errors)

    async def _run_sample(
        self, job: Job, sample: int, cached: CallResult | None = None
    ) -> SampleResult:
        if cached is not None:
            call = cached
        else:
            request = CallRequest(
                model=job.model,
                messages=job.messages,
                params=job.params,
                sample=sample,
                label=job.node_id,
            )
            call = await self.call_model(request)
        if not call.ok or not job.case.expect:
            return SampleResult(sample=sample, call=call)
        try:
            checks = await self._check(job, call, sample)
        except asyncio.CancelledError:
            raise
        except ProviderFailure as failure:  # e.g. the llm-rubric judge could not be reached
            judge = failure.call
            return SampleResult(
                sample=sample,
                call=dataclasses.replace(
                    call,
                    output=None,
                    error=f"judge call failed: {judge.error or 'provider failure'}",
                    error_kind=judge.error_kind or "server",
                ),
            )
        except Exception as exc:  # a bug in an expectation must not lose the case
            return _broken_checks(call, sample, exc)
        return SampleResult(
            sample=sample, call=call, checks=tuple(checks), threshold=job.case.threshold
        )

    def _context(self, job: Job, call: CallResult) -> Any:
        from pytest_promptgate import assertions
        from pytest_promptgate.toolcalls import offered_tools

        return assertions.CheckContext(
            output=call.output,  # type: ignore[arg-type]  # a successful call has an output
            vars=job.case.vars,
            call=call,
            suite_dir=job.suite_dir,
            judge=self.call_model,
            judge_model=self.settings.judge_model,
            rootdir=job.rootdir,
            model=job.model,
            messages=job.messages,
            tools=offered_tools(job.params),
            params=job.params,
            cache=self.cache,
        )

    async def _check(self, job: Job, call: CallResult, sample: int) -> tuple[Any, ...]:
        from pytest_promptgate import assertions

        checks: Any = assertions.check_all(job.case.expect, self._context(job, call))
        if inspect.isawaitable(checks):
            checks = await checks
        return tuple(checks)

    async def call_model(self, request: CallRequest) -> CallResult:
        """Cache → budget → client. Also offered to expectations (llm-rubric's judge)."""
        key = self.cache.key(request) if self.cache is not None else None
        if self.cache is not None:
            cached = self.cache.get(request, key)
            if cached is not None:
                self.cache_hits += 1
                return cached
        self.cache_misses += 1
        if self.settings.replay:
            return CallResult(
                output=None,
                error=f"replay: no cached reply for {request.label or request.model} (sample {request.sample}, "
                f"model {request.model}); run once without --promptgate-replay to record it",
                error_kind="replay_miss",
                attempts=0,
            )
        if self.pool is None:  # in this process (the pool's workers warmed up before it started)
            if self.client is None:
                # Set before any await, so that concurrent first misses share one client and one
                # warm-up (import + lazy loading, before the model-call phase clock starts).
                self.client = ModelClient(
                    retries=self.settings.retries,
                    timeout_s=self.settings.timeout_s,
                    backoff_base_s=self.settings.backoff_base_s,
                    backoff_max_s=self.settings.backoff_max_s,
                )
                self.warming = asyncio.ensure_future(warm_up())
            try:
                if self.warming is not None:
                    await self.warming
            except ImportError:
                pass  # complete() below reports it as a config error for this call
        if self.first_request is None:
            self.first_request = time.perf_counter()
        self.calls += 1
        if self.pool is not None:
            return self._account(request, key, await self.pool.complete(request))
        assert self.client is not None  # made above when no pool serves the calls
        return self._account(request, key, await self.client.complete(request, self.throttle))

    def _account(self, request: CallRequest, key: str | None, result: CallResult) -> CallResult:
        self.attempts += result.attempts
        if result.cost_usd is not None:
            self.spent_usd += result.cost_usd
        elif result.ok:
            self.unpriced_models.add(request.model)
        if result.ok and self.cache is not None:
            self.cache.put(request, result, key)
        return result


def _broken_checks(call: CallResult, sample: int, exc: Exception) -> SampleResult:
    return SampleResult(
        sample=sample,
        call=dataclasses.replace(
            call,
            output=None,
            error=scrub(f"checking expectations raised {type(exc).__name__}: {exc}"),
            error_kind="config",
        ),
    )
