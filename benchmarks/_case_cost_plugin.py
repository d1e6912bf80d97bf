"""A pytest plugin for ``profile_case_cost.py`` (``-p _case_cost_plugin``, benchmarks/ on PYTHONPATH).

Switched by environment variables, each naming an output file or a flag:

- ``PG_CASE_COST_PHASES``: process CPU (``time.process_time``: every thread) and monotonic
  wall time at the session's milestones: plugin loaded (≈ start-up done), collection
  finished, items loop start/end, sessionfinish start/end, terminal summary end. No per-item
  hook, so the run's own cost is unchanged.
- ``PG_CASE_COST_YAPPI``: yappi with CPU clocks over every thread, from the items loop start to
  its end (the per-case part of the run), written as JSON function and thread stats.
- ``PG_CASE_COST_EARLY_IMPORT=1``: an experiment, not a feature: start importing litellm in a
  background thread as soon as collection reaches the first suite file.
- ``PG_CASE_COST_PREIMPORT=1``: import litellm and make the client's warm-up call right after
  collection, marked ``litellm_ready``, so that the items loop (and yappi) holds only the
  per-case work; the import's CPU is the difference between the two marks.
- ``PG_CASE_COST_GC_FREEZE=1``: an experiment: after collection, import litellm and
  ``gc.freeze()`` (its ~370,000 objects and the collected items leave the collector's
  generations, so no later full collection, pytest's cleanup one included, walks them).

Nothing here is imported by the plugin or the tests.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import pytest

_PHASES = os.environ.get("PG_CASE_COST_PHASES")
_YAPPI = os.environ.get("PG_CASE_COST_YAPPI")
_EARLY = os.environ.get("PG_CASE_COST_EARLY_IMPORT") == "1"
_FREEZE = os.environ.get("PG_CASE_COST_GC_FREEZE") == "1"
_PREIMPORT = os.environ.get("PG_CASE_COST_PREIMPORT") == "1"

_marks: dict[str, tuple[float, float]] = {}
_early_thread: threading.Thread | None = None
_early_done: dict[str, float] = {}


def _mark(name: str) -> None:
    _marks[name] = (time.process_time(), time.monotonic())


_mark("plugin_loaded")


def pytest_collectstart(collector: Any) -> None:
    global _early_thread
    if not _EARLY or _early_thread is not None or type(collector).__name__ != "PromptFile":
        return

    def load() -> None:
        started = time.monotonic()
        from pytest_promptgate.client import import_litellm

        import_litellm()
        _early_done["import_wall_s"] = time.monotonic() - started
        _early_done["done_at"] = time.monotonic()

    _mark("early_import_start")
    _early_thread = threading.Thread(target=load, name="early-litellm-import", daemon=True)
    _early_thread.start()


def pytest_collection_finish(session: pytest.Session) -> None:
    _mark("collection_finished")
    if _PREIMPORT:
        import asyncio

        from pytest_promptgate.client import warm_up

        asyncio.run(warm_up())
        _mark("litellm_ready")
    if _FREEZE:
        import gc

        from pytest_promptgate.client import import_litellm

        import_litellm()
        gc.freeze()
        _mark("frozen")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session):
    _mark("items_start")
    profiler = None
    if _YAPPI:
        import yappi

        yappi.set_clock_type("cpu")
        yappi.start(builtins=False, profile_threads=True)
        profiler = yappi
    yield
    if profiler is not None:
        profiler.stop()
        _dump_yappi(profiler, _YAPPI)
    _mark("items_end")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session):
    _mark("finish_start")
    yield
    _mark("finish_end")


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_terminal_summary(terminalreporter: Any):
    yield
    _mark("summary_end")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if not _PHASES:
        return
    _mark("unconfigure")
    document = {
        "marks": {name: {"cpu_s": c, "monotonic_s": w} for name, (c, w) in _marks.items()},
        "early_import": dict(_early_done),
    }
    with open(_PHASES, "w") as out:
        json.dump(document, out)


def _dump_yappi(yappi: Any, path: str) -> None:
    functions = [
        {
            "module": stat.module,
            "name": stat.name,
            "lineno": stat.lineno,
            "ncall": stat.ncall,
            "tsub": stat.tsub,
            "ttot": stat.ttot,
        }
        for stat in yappi.get_func_stats()
    ]
    threads = [
        {"name": stat.name, "id": stat.id, "ttot": stat.ttot, "sched": stat.sched_count}
        for stat in yappi.get_thread_stats()
    ]
    with open(path, "w") as out:
        json.dump({"functions": functions, "threads": threads}, out)
