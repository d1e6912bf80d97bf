"""Where pytest-promptgate's CPU per uncached case goes: the one-process (b) run, profiled.

    python benchmarks/profile_case_cost.py                      # cpu,pyspy,yappi,probes (~6 min)
    python benchmarks/profile_case_cost.py --parts cpu,probes --runs 3
    python benchmarks/profile_case_cost.py --parts callpool     # does one process keep up?
    python benchmarks/profile_case_cost.py --parts overlap      # would an early litellm import help?

The workload is bench_vs_promptfoo.py's (b): 2 versions x 1,000 cases, 3 deterministic
expectations each, 0 ms latency, concurrency 16, every call in the pytest process, pytest with
the plugins of a clean install (``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 -p promptgate -p anyio``),
against the project's FakeOpenAI (TCP_NODELAY, one send per reply) in this process.

CPU is the process CPU time of every thread of the measured process (``os.wait4`` rusage),
never wall time: the machine is shared, and wall figures measure the neighbours. Parts:

  cpu       N plain runs (median): total CPU and its split at the session's milestones
            (start-up, collection, items loop, finish + report), read in the run with
            ``time.process_time`` by a small plugin (``_case_cost_plugin.py``).
  pyspy     one run under ``py-spy record`` (every thread, 250 Hz): samples bucketed by the
            module of the innermost frame that is not generic stdlib (``re``, ``copy``,
            ``inspect``... are charged to their caller), scaled to the median CPU of ``cpu``.
  yappi     one run with yappi's CPU clock over every thread, items loop only: own time by
            module, as a second profiler's view of the same split.
  probes    the independent measurements: ``litellm.acompletion`` alone (unpriced and with
            the price registered), the project's ``ModelClient.complete`` alone, and pytest's
            own CPU per trivial parametrized test; each in a fresh process, medians of N.
  freeze    N runs with litellm imported and ``gc.freeze()`` called after collection (an
            experiment plugin), against ``cpu``'s median: what the cyclic GC costs.
  rounds    N rounds, each: the plain run, the gc.freeze() run, then litellm alone (unpriced,
            priced), ModelClient.complete alone and pytest's trivial tests: every figure of a
            round under the same load, since on a shared machine even CPU time drifts (cache
            and hyper-thread contention). Per-round splits, then medians.
  callpool  one process at 200 ms / 1 s latency and concurrency 16/32/64: call phase vs ideal.
  overlap   time from spawn to the first request, with and without an early background import
            of litellm (an experiment plugin), medians of N.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _workloads as wl

HERE = Path(__file__).resolve().parent
LITELLM_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_OFFLINE_MODE": "true"}
ALL_PARTS = ("cpu", "pyspy", "yappi", "probes", "freeze", "rounds", "callpool", "overlap")
DEFAULT_PARTS = ("cpu", "pyspy", "yappi", "probes")
CONCURRENCY = 16
PYSPY_RATE = 250
PROBE_MODES = ("litellm", "litellm-priced", "litellm-registered-0", "litellm-zero-price", "client")


# -- running the (b) workload ---------------------------------------------------------------


class Workload:
    """A generated suite in a scratch directory, run as many times as asked."""

    def __init__(self, server: wl.TimedServer, scratch: Path, cases: int, name: str = "b"):
        self.server = server
        self.cases = cases
        self.items = 2 * cases
        self.dir = Path(tempfile.mkdtemp(prefix=f"pg-cost-{name}-", dir=scratch))
        wl.write_promptgate_suite(self.dir, wl.make_cases(cases), server.base_url, ("v1", "v2"))
        self.one_process = wl.one_process_flags(sys.executable)

    def command(self, concurrency: int = CONCURRENCY) -> list[str]:
        report = self.dir / "out.json"
        return [
            *wl.promptgate_command(
                sys.executable, self.dir / "bench.promptgate.yaml", concurrency, report, "off"
            ),
            *self.one_process,
            "-p",
            "_case_cost_plugin",
        ]

    def env(self, **extra: str) -> dict[str, str]:
        env = wl.python_env(os.environ)
        env.update(LITELLM_ENV)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p
        )
        env.update(extra)
        return env

    def run(
        self,
        latency_ms: float = 0.0,
        concurrency: int = CONCURRENCY,
        wrap: Sequence[str] = (),
        **env_extra: str,
    ) -> dict[str, Any]:
        phases = self.dir / "phases.json"
        phases.unlink(missing_ok=True)
        (self.dir / "out.json").unlink(missing_ok=True)
        self.server.configure(latency_ms)
        spawned = time.monotonic()
        measured = wl.run_measured(
            [*wrap, *self.command(concurrency)],
            self.dir,
            self.env(PG_CASE_COST_PHASES=str(phases), **env_extra),
        )
        results = wl.read_promptgate_report(self.dir / "out.json")
        if measured.returncode != 0 or results.get("passed") != self.items:
            tail = (measured.stdout[-1500:] + "\n" + measured.stderr[-1500:]).strip()
            print(f"  run in {self.dir} exited {measured.returncode}: {results}\n{tail}")
        try:
            marks = json.loads(phases.read_text())
        except (OSError, ValueError):
            marks = {"marks": {}, "early_import": {}}
        first = self.server.first_request_at
        return {
            "cpu_s": measured.cpu_s,
            "user_s": measured.user_s,
            "sys_s": measured.sys_s,
            "wall_s": measured.wall_s,
            "rss_mb": measured.max_rss_mb,
            "returncode": measured.returncode,
            "results": results,
            "calls": self.server.calls,
            "phase_s": self.server.phase_s,
            "first_request_after_s": None if first is None else first - spawned,
            "spawned_monotonic_s": spawned,
            "marks": marks["marks"],
            "early_import": marks["early_import"],
        }


def phase_split(run: dict[str, Any]) -> list[tuple[str, float]]:
    """(phase, CPU s) from a run's milestones; the last row is teardown after unconfigure."""
    marks = run["marks"]
    order = [
        ("start-up (interpreter, pytest, plugins, options)", "plugin_loaded"),
        ("collection (YAML, spec, 2 items per case)", "collection_finished"),
        ("litellm import + warm-up (moved here by PG_CASE_COST_PREIMPORT)", "litellm_ready"),
        ("litellm import + gc.freeze() (moved here by PG_CASE_COST_GC_FREEZE)", "frozen"),
        ("between collection and the items loop", "items_start"),
        ("items loop (all calls, checks, per-item pytest)", "items_end"),
        ("between the items loop and sessionfinish", "finish_start"),
        ("sessionfinish: gate, JSON report, terminal summary", "summary_end"),
        ("rest of sessionfinish", "finish_end"),
        ("up to unconfigure", "unconfigure"),
    ]
    order = sorted((o for o in order if o[1] in marks), key=lambda o: marks[o[1]]["monotonic_s"])
    rows, previous = [], 0.0
    for label, key in order:
        if key not in marks:
            continue
        now = marks[key]["cpu_s"]
        rows.append((label, now - previous))
        previous = now
    rows.append(
        (
            "pytest cleanup + interpreter teardown (after unconfigure)",
            max(0.0, run["cpu_s"] - previous),
        )
    )
    return rows


# -- classifying frames -----------------------------------------------------------------------

_STDLIB = sysconfig.get_paths()["stdlib"].rstrip("/") + "/"
_PACKAGES = {
    "_pytest": "pytest (per-item machinery, hooks, reports)",
    "pytest": "pytest (per-item machinery, hooks, reports)",
    "pluggy": "pytest (per-item machinery, hooks, reports)",
    "iniconfig": "pytest (per-item machinery, hooks, reports)",
    "litellm": "litellm",
    "tiktoken": "litellm",
    "tokenizers": "litellm",
    "openai": "openai SDK",
    "httpx": "HTTP (aiohttp, httpx, anyio)",
    "httpcore": "HTTP (aiohttp, httpx, anyio)",
    "h11": "HTTP (aiohttp, httpx, anyio)",
    "anyio": "HTTP (aiohttp, httpx, anyio)",
    "sniffio": "HTTP (aiohttp, httpx, anyio)",
    "aiohttp": "HTTP (aiohttp, httpx, anyio)",
    "aiohappyeyeballs": "HTTP (aiohttp, httpx, anyio)",
    "yarl": "HTTP (aiohttp, httpx, anyio)",
    "multidict": "HTTP (aiohttp, httpx, anyio)",
    "frozenlist": "HTTP (aiohttp, httpx, anyio)",
    "aiosignal": "HTTP (aiohttp, httpx, anyio)",
    "propcache": "HTTP (aiohttp, httpx, anyio)",
    "certifi": "HTTP (aiohttp, httpx, anyio)",
    "idna": "HTTP (aiohttp, httpx, anyio)",
    "pydantic": "pydantic",
    "pydantic_core": "pydantic",
    "typing_extensions": "pydantic",
    "jinja2": "jinja2 / markupsafe",
    "markupsafe": "jinja2 / markupsafe",
    "yaml": "yaml",
    "jsonschema": "jsonschema",
    "referencing": "jsonschema",
    "rpds": "jsonschema",
}
_STDLIB_BUCKETS = {
    "asyncio": "asyncio (event loop, tasks, sockets)",
    "selectors": "asyncio (event loop, tasks, sockets)",
    "socket": "asyncio (event loop, tasks, sockets)",
    "ssl": "asyncio (event loop, tasks, sockets)",
    "logging": "logging",
    "json": "json",
    "concurrent": "threads (executor, locks, queues)",
    "threading": "threads (executor, locks, queues)",
    "queue": "threads (executor, locks, queues)",
    "importlib": "imports",
}


def bucket_of(file: str) -> str | None:
    """A named bucket for a frame's file; None for generic stdlib (charged to the caller)."""
    if file.startswith("<frozen importlib") or file.startswith("<frozen zipimport"):
        return "imports"
    if "/pytest_promptgate/" in file:
        tail = file.split("/pytest_promptgate/", 1)[1].removesuffix(".py").replace("/", ".")
        return "plugin: " + tail.removesuffix(".__init__")
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in file:
            top = file.split(marker, 1)[1].split("/", 1)[0].removesuffix(".py")
            return _PACKAGES.get(top.split(".")[0], f"other package: {top}")
    if file.startswith(_STDLIB):
        top = file[len(_STDLIB) :].split("/", 1)[0].removesuffix(".py")
        return _STDLIB_BUCKETS.get(top)
    if "/benchmarks/" in file:
        return "benchmark plugin"
    return None


_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def parse_pyspy(path: Path) -> list[tuple[str, list[tuple[str, str]], int]]:
    """py-spy's raw (collapsed) output with --threads: (thread label, frames root→leaf, count)."""
    stacks = []
    for line in path.read_text().splitlines():
        body, _, count = line.rpartition(" ")
        if not body or not count.isdigit():
            continue
        parts = body.split(";")
        thread, frames = parts[0], []
        for part in parts[1:]:
            match = _FRAME.match(part)
            frames.append((match["func"], match["file"]) if match else (part, ""))
        stacks.append((thread, frames, int(count)))
    return stacks


def attribute(frames: list[tuple[str, str]]) -> tuple[str, tuple[str, str] | None]:
    """(bucket, the frame charged): the innermost frame with a named bucket."""
    for func, file in reversed(frames):
        bucket = bucket_of(file)
        if bucket is not None:
            return bucket, (func, file)
    return "stdlib (other)", frames[-1] if frames else None


def _thread_id(label: str) -> str:
    return label.split(")", 1)[0]  # "thread (1234): MainThread" -> "thread (1234"


def phase_of(main: bool, frames: list[tuple[str, str]]) -> str:
    funcs = {func.rsplit(".", 1)[-1] for func, _ in frames}
    if funcs & {"import_litellm", "warm_up"}:
        return "litellm import + warm-up"
    if not main:
        return "items loop"  # the executor threads of litellm's acompletion
    if "pytest_collection" in funcs:
        return "collection"
    if funcs & {"pytest_sessionfinish", "pytest_terminal_summary", "pytest_unconfigure"}:
        return "finish + report"
    if "pytest_runtestloop" in funcs:
        return "items loop"
    if "gc_collect_harder" in funcs:
        return "pytest cleanup (gc.collect)"
    if not frames:
        return "no Python frame (interpreter start-up / teardown)"
    return "start-up, other"


def summarize_pyspy(path: Path, total_cpu_s: float, items: int) -> dict[str, Any]:
    stacks = parse_pyspy(path)
    total = sum(count for _, _, count in stacks) or 1
    main_ids = {_thread_id(label) for label, _, _ in stacks if "MainThread" in label}
    per_case = 1000.0 * total_cpu_s / items / total  # ms per case per sample
    phases: Counter[str] = Counter()
    loop_buckets: Counter[str] = Counter()
    all_buckets: Counter[str] = Counter()
    plugin_functions: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()  # plugin functions, litellm & HTTP excluded
    threads: Counter[str] = Counter()
    for thread, frames, count in stacks:
        main = _thread_id(thread) in main_ids
        phase = phase_of(main, frames)
        bucket, frame = attribute(frames)
        phases[phase] += count
        all_buckets[bucket] += count
        threads["main thread" if main else "other threads"] += count
        if phase != "items loop":
            continue
        loop_buckets[bucket] += count
        if bucket.startswith("plugin: ") and frame is not None:
            plugin_functions[f"{bucket[8:]}.{frame[0]}"] += count
        if bucket not in ("litellm", "openai SDK", "HTTP (aiohttp, httpx, anyio)", "pydantic"):
            seen = set()
            for func, file in frames:
                if "/pytest_promptgate/" in file:
                    name = f"{bucket_of(file)[8:]}.{func}"  # type: ignore[index]
                    if name not in seen:
                        seen.add(name)
                        inclusive[name] += count

    def table(counter: Counter[str], limit: int | None = None) -> list[dict[str, Any]]:
        return [
            {"name": name, "samples": n, "share": n / total, "ms_per_case": n * per_case}
            for name, n in counter.most_common(limit)
        ]

    return {
        "samples": total,
        "sampled_s": total / PYSPY_RATE,
        "scaled_to_cpu_s": total_cpu_s,
        "phases": table(phases),
        "threads": table(threads),
        "items_loop_buckets": table(loop_buckets),
        "all_buckets": table(all_buckets),
        "plugin_functions_own": table(plugin_functions, 25),
        "plugin_functions_inclusive": table(inclusive, 25),
    }


def summarize_yappi(path: Path, loop_cpu_s: float, items: int) -> dict[str, Any]:
    doc = json.loads(path.read_text())
    own: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    for stat in doc["functions"]:
        bucket = bucket_of(stat["module"]) or (
            "stdlib: " + Path(stat["module"]).stem
            if stat["module"].startswith(_STDLIB)
            else "other"
        )
        own[bucket] += stat["tsub"]
        if bucket.startswith("plugin: "):
            ours[f"{bucket[8:]}.{stat['name']} (x{stat['ncall']})"] += stat["tsub"]
    total = sum(own.values()) or 1.0
    scale = 1000.0 * loop_cpu_s / items / total

    def table(counter: Counter[str], limit: int | None = None) -> list[dict[str, Any]]:
        return [
            {"name": name, "profiled_s": s, "share": s / total, "ms_per_case": s * scale}
            for name, s in counter.most_common(limit)
        ]

    threads = sorted(doc["threads"], key=lambda t: -t["ttot"])
    return {
        "profiled_cpu_s": total,
        "scaled_to_loop_cpu_s": loop_cpu_s,
        "buckets": table(own),
        "plugin_functions_own": table(ours, 20),
        "threads": [{"name": t["name"], "cpu_s": t["ttot"]} for t in threads[:3]]
        + [{"name": f"{len(threads) - 3} more", "cpu_s": sum(t["ttot"] for t in threads[3:])}],
    }


# -- probes: litellm, the client, pytest, each alone ----------------------------------------

_PROBE = r"""
import asyncio, json, os, resource, sys, time
mode, calls, concurrency, api_base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime
c0 = cpu()
from pytest_promptgate.client import import_litellm
litellm = import_litellm()
if mode == "litellm-priced":
    litellm.register_model({"openai/bench": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
                                             "litellm_provider": "openai", "mode": "chat"}})
if mode == "litellm-registered-0":  # an unpriced model registered once with price 0
    litellm.register_model({"openai/bench": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0,
                                             "litellm_provider": "openai", "mode": "chat"}})
extra = {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0} if mode == "litellm-zero-price" else {}
c1 = cpu()
template = "Summarize the ticket about topic-{i} in one line.\nreply: Summary of topic-{i}: item {i} is fine."
def messages(i):
    return [{"role": "user", "content": template.format(i=i)}]
async def main():
    if mode.startswith("litellm"):
        gate = asyncio.Semaphore(concurrency)
        async def one(i):
            async with gate:
                r = await litellm.acompletion(model="openai/bench", api_base=api_base, api_key="sk-bench",
                    messages=messages(i), temperature=0, max_retries=0, timeout=60, **extra)
                return r._hidden_params.get("response_cost")
    else:
        from pytest_promptgate.client import ModelClient
        from pytest_promptgate.model import CallRequest
        from pytest_promptgate.ratelimit import Throttle
        client, throttle = ModelClient(retries=3, timeout_s=60), Throttle(concurrency)
        params = {"api_base": api_base, "api_key": "sk-bench", "temperature": 0}
        async def one(i):
            r = await client.complete(CallRequest(model="openai/bench", messages=tuple(messages(i)),
                                                  params=params, sample=0, label=f"c{i}"), throttle)
            if not r.ok:
                raise RuntimeError(r.error)
            return r.cost_usd
    return await asyncio.gather(*(one(i) for i in range(calls)), return_exceptions=True)
out = asyncio.run(main())
c2 = cpu()
errors = [repr(o) for o in out if isinstance(o, BaseException)]
priced = sum(1 for o in out if isinstance(o, float))
print(json.dumps({"mode": mode, "import_cpu_s": c1 - c0, "calls_cpu_s": c2 - c1, "calls": calls,
                  "errors": len(errors), "first_error": errors[:1], "priced_replies": priced}))
"""


def run_probe(server: wl.TimedServer, mode: str, calls: int) -> dict[str, Any]:
    server.configure(0.0)
    env = dict(wl.python_env(os.environ), **LITELLM_ENV)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode, str(calls), str(CONCURRENCY), server.base_url],
        capture_output=True, text=True, env=env, timeout=900, cwd=HERE.parent,
    )  # fmt: skip
    if done.returncode != 0:
        print(f"  probe {mode} failed: {done.stderr[-1500:]}", file=sys.stderr)
        return {}
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    probe["cpu_ms_per_call"] = 1000.0 * probe["calls_cpu_s"] / calls
    return probe


def pytest_trivial_cpu(scratch: Path, tests: int) -> float:
    """CPU of a clean-plugins pytest run of ``tests`` trivial parametrized tests."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"pg-trivial-{tests}-", dir=scratch))
    (run_dir / "test_many.py").write_text(
        f"import pytest\n\n@pytest.mark.parametrize('i', range({tests}))\ndef test_many(i):\n    assert i >= 0\n"
    )
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *wl.CLEAN_INSTALL_PLUGINS]  # fmt: skip
    return wl.run_measured(command, run_dir, wl.python_env(os.environ)).cpu_s


# -- main -------------------------------------------------------------------------------------


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda r: r["cpu_s"])[len(runs) // 2]


def _print_rows(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n{title}")
    width = max((len(a) for a, _ in rows), default=10)
    for a, b in rows:
        print(f"  {a:<{width}}  {b}")


def part_cpu(work: Workload, runs: int) -> dict[str, Any]:
    samples = [work.run() for _ in range(runs)]
    median = _median_run(samples)
    cpu = [s["cpu_s"] for s in samples]
    print(
        f"  (b) one process, {work.items} cases: CPU {', '.join(f'{c:.2f}' for c in cpu)} s -> median "
        f"{median['cpu_s']:.2f} s = {1000 * median['cpu_s'] / work.items:.2f} ms per case "
        f"(user {median['user_s']:.2f} s, sys {median['sys_s']:.2f} s)"
    )
    rows = [
        (label, f"{s:6.2f} s  {1000 * s / work.items:5.2f} ms/case")
        for label, s in phase_split(median)
    ]
    _print_rows("CPU by phase (the median run, time.process_time at each milestone):", rows)
    return {"runs": samples, "median": median, "phases": phase_split(median)}


def part_pyspy(work: Workload, total_cpu_s: float) -> dict[str, Any]:
    binary = shutil.which("py-spy")
    if binary is None:
        print("  py-spy not installed: pip install py-spy")
        return {}
    out = work.dir / "pyspy.txt"
    wrap = [binary, "record", "-o", str(out), "-f", "raw", "-r", str(PYSPY_RATE), "--threads",
            "--full-filenames", "--nolineno", "--gil", "--"]  # fmt: skip
    run = work.run(wrap=wrap)
    summary = summarize_pyspy(out, total_cpu_s, work.items)
    summary["run"] = {k: run[k] for k in ("cpu_s", "wall_s", "results")}
    print(
        f"  py-spy: {summary['samples']} samples = {summary['sampled_s']:.1f} s of active threads "
        f"(the profiled run used {run['cpu_s']:.1f} s CPU incl. py-spy); shares scaled to {total_cpu_s:.2f} s"
    )
    for key, title in (
        ("phases", "py-spy: phases"),
        ("threads", "py-spy: threads"),
        ("items_loop_buckets", "py-spy: items loop by bucket (ms per case)"),
        ("plugin_functions_own", "py-spy: plugin functions, own time (items loop)"),
        ("plugin_functions_inclusive", "py-spy: plugin functions, inclusive, litellm/HTTP/pydantic excluded"),
    ):  # fmt: skip
        _print_rows(
            title,
            [(r["name"], f"{r['ms_per_case']:6.3f} ms/case  {100 * r['share']:5.1f}%") for r in summary[key]],
        )  # fmt: skip
    return summary


def part_yappi(work: Workload, loop_cpu_s: float) -> dict[str, Any]:
    """yappi over the items loop, litellm imported before it (its CPU measured unprofiled):
    the shares are scaled to the plain run's loop CPU minus that import."""
    try:
        import yappi  # noqa: F401
    except ImportError:
        print("  yappi not installed: pip install yappi")
        return {}
    out = work.dir / "yappi.json"
    run = work.run(PG_CASE_COST_YAPPI=str(out), PG_CASE_COST_PREIMPORT="1")
    marks = run["marks"]
    import_cpu = marks["litellm_ready"]["cpu_s"] - marks["collection_finished"]["cpu_s"]
    per_case_loop = loop_cpu_s - import_cpu
    summary = summarize_yappi(out, per_case_loop, work.items)
    summary["run"] = {k: run[k] for k in ("cpu_s", "wall_s", "results")}
    summary["litellm_import_warm_up_cpu_s"] = import_cpu
    summary["loop_without_import_cpu_s"] = per_case_loop
    print(
        f"  yappi: litellm import + warm-up {import_cpu:.2f} s CPU (unprofiled, before the loop); "
        f"{summary['profiled_cpu_s']:.1f} s CPU profiled in the items loop (overhead included); "
        f"shares scaled to the plain run's loop minus the import: {per_case_loop:.2f} s = "
        f"{1000 * per_case_loop / work.items:.2f} ms per case"
    )
    _print_rows(
        "yappi: items loop by bucket, own time (ms per case)",
        [(r["name"], f"{r['ms_per_case']:6.3f} ms/case  {100 * r['share']:5.1f}%") for r in summary["buckets"][:24]],
    )  # fmt: skip
    _print_rows(
        "yappi: plugin functions, own time",
        [(r["name"], f"{r['ms_per_case']:6.3f} ms/case") for r in summary["plugin_functions_own"]],
    )  # fmt: skip
    _print_rows("yappi: threads", [(t["name"], f"{t['cpu_s']:.2f} s") for t in summary["threads"]])
    return summary


def part_probes(
    server: wl.TimedServer, scratch: Path, calls: int, runs: int, modes: Sequence[str] = PROBE_MODES
) -> dict[str, Any]:
    """Each probe mode ``runs`` times, interleaved (round-robin), medians."""
    found: dict[str, Any] = {}
    collected: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _ in range(runs):
        for mode in modes:
            probe = run_probe(server, mode, calls)
            if probe:
                collected[mode].append(probe)
    for mode, probes in collected.items():
        found[mode] = {
            "cpu_ms_per_call": statistics.median(p["cpu_ms_per_call"] for p in probes),
            "import_cpu_s": statistics.median(p["import_cpu_s"] for p in probes),
            "samples_ms": [round(p["cpu_ms_per_call"], 3) for p in probes],
            "errors": sum(p["errors"] for p in probes),
            "priced_replies": probes[0]["priced_replies"],
        }
    one = statistics.median(pytest_trivial_cpu(scratch, 1) for _ in range(runs))
    many = statistics.median(pytest_trivial_cpu(scratch, calls) for _ in range(runs))
    found["pytest"] = {
        "one_test_cpu_s": one,
        "many_tests_cpu_s": many,
        "tests": calls,
        "cpu_ms_per_test": 1000.0 * (many - one) / (calls - 1),
    }
    rows = [
        (
            {
                "litellm": "litellm.acompletion, unpriced model",
                "litellm-priced": "litellm.acompletion, price registered",
                "litellm-zero-price": "litellm.acompletion, per-call price 0",
                "litellm-registered-0": "litellm.acompletion, registered once with price 0",
                "client": "ModelClient.complete + Throttle (unpriced)",
            }[mode],  # fmt: skip
            f"{f['cpu_ms_per_call']:.2f} ms CPU per call (runs {f['samples_ms']}), import {f['import_cpu_s']:.2f} s, "
            f"priced replies {f['priced_replies']}/{calls}, errors {f['errors']}",
        )
        for mode, f in found.items()
        if mode != "pytest"
    ]
    p = found["pytest"]
    rows.append(
        (
            "pytest, trivial parametrized test",
            f"{p['cpu_ms_per_test']:.2f} ms CPU per test ({calls} tests {many:.2f} s, 1 test {one:.2f} s)",
        )
    )
    _print_rows(
        f"independent measurements ({calls} calls, concurrency {CONCURRENCY}, medians of {runs}):",
        rows,
    )
    return found


def part_freeze(work: Workload, runs: int, baseline: dict[str, Any] | None) -> dict[str, Any]:
    samples = [work.run(PG_CASE_COST_GC_FREEZE="1") for _ in range(runs)]
    median = _median_run(samples)
    found = {"runs": samples, "median": median, "phases": phase_split(median)}
    cpus = [r["cpu_s"] for r in samples]
    line = (
        f"  gc.freeze() after collection: CPU {', '.join(f'{r:.2f}' for r in cpus)} s -> median "
        f"{median['cpu_s']:.2f} s = {1000 * median['cpu_s'] / work.items:.2f} ms per case"
    )
    if baseline:
        saved = baseline["cpu_s"] - median["cpu_s"]
        line += f"; {saved:+.2f} s = {1000 * saved / work.items:+.2f} ms per case saved"
    print(line)
    _print_rows(
        "CPU by phase with gc.freeze() (median run):",
        [
            (label, f"{s:6.2f} s  {1000 * s / work.items:5.2f} ms/case")
            for label, s in found["phases"]
        ],
    )
    return found


def part_rounds(
    work: Workload, server: wl.TimedServer, scratch: Path, rounds: int
) -> dict[str, Any]:
    found: list[dict[str, Any]] = []
    one_test = None
    for number in range(1, rounds + 1):
        plain = work.run()
        frozen = work.run(PG_CASE_COST_GC_FREEZE="1")
        probes = {
            m: run_probe(server, m, work.items) for m in ("litellm", "litellm-priced", "client")
        }
        if one_test is None:
            one_test = pytest_trivial_cpu(scratch, 1)
        many = pytest_trivial_cpu(scratch, work.items)
        lit = probes["litellm"]
        per_test = 1000.0 * (many - one_test) / (work.items - 1)
        row = {
            "plain_ms": 1000.0 * plain["cpu_s"] / work.items,
            "freeze_ms": 1000.0 * frozen["cpu_s"] / work.items,
            "litellm_ms": lit.get("cpu_ms_per_call"),
            "litellm_priced_ms": probes["litellm-priced"].get("cpu_ms_per_call"),
            "client_ms": probes["client"].get("cpu_ms_per_call"),
            "import_ms": 1000.0 * lit.get("import_cpu_s", 0.0) / work.items,
            "pytest_per_test_ms": per_test,
            "pytest_startup_ms": 1000.0 * one_test / work.items,
            "plain_phases": phase_split(plain),
            "freeze_phases": phase_split(frozen),
        }
        # What is left of the plain run once litellm's calls and import, pytest's start-up and
        # per-test cost are taken out: the plugin, the GC, the stepped loop, the teardown.
        row["rest_ms"] = (
            row["plain_ms"]
            - row["litellm_ms"]
            - row["import_ms"]
            - per_test
            - row["pytest_startup_ms"]
        )
        row["rest_freeze_ms"] = (
            row["freeze_ms"]
            - row["litellm_ms"]
            - row["import_ms"]
            - per_test
            - row["pytest_startup_ms"]
        )
        found.append(row)
        print(
            f"  round {number}: (b) {row['plain_ms']:.2f} ms/case, with gc.freeze() {row['freeze_ms']:.2f}; "
            f"litellm alone {row['litellm_ms']:.2f} (priced {row['litellm_priced_ms']:.2f}), ModelClient "
            f"{row['client_ms']:.2f} ms/call, import {row['import_ms']:.2f} ms/case; pytest "
            f"{per_test:.2f} ms/test + start-up {row['pytest_startup_ms']:.2f} ms/case; rest "
            f"{row['rest_ms']:.2f} (with freeze {row['rest_freeze_ms']:.2f}) ms/case",
            flush=True,
        )
    keys = [k for k in found[0] if k.endswith("_ms")]
    medians = {k: statistics.median(r[k] for r in found) for k in keys}
    _print_rows(
        f"medians of {rounds} rounds (ms per case or per call):",
        [(k, f"{v:.2f}") for k, v in medians.items()],
    )
    return {"rounds": found, "medians": medians}


def part_callpool(work: Workload) -> dict[str, Any]:
    points = [(200.0, 16), (200.0, 32), (200.0, 64), (1000.0, 64)]
    rows, found = [], []
    for latency, concurrency in points:
        run = work.run(latency_ms=latency, concurrency=concurrency)
        ideal = work.items * latency / 1000.0 / concurrency
        needed = concurrency / (latency / 1000.0)
        phase = run["phase_s"] or float("nan")
        found.append({"latency_ms": latency, "concurrency": concurrency, "ideal_s": ideal,
                      "calls_per_s_needed": needed, "phase_s": phase, "cpu_s": run["cpu_s"],
                      "wall_s": run["wall_s"], "results": run["results"]})  # fmt: skip
        rows.append(
            (
                f"{latency:.0f} ms, concurrency {concurrency}",
                f"needs {needed:5.0f} calls/s; call phase {phase:5.1f} s = {phase / ideal:.2f} x ideal "
                f"{ideal:.1f} s; wall {run['wall_s']:.1f} s; CPU {run['cpu_s']:.1f} s",
            )
        )
    _print_rows("one process against provider latency (2,000 cases):", rows)
    return {"points": found}


def part_overlap(work: Workload, runs: int) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for label, env in (("import at the first call (today)", {}), ("early import in a thread", {"PG_CASE_COST_EARLY_IMPORT": "1"})):  # fmt: skip
        samples = [work.run(**env) for _ in range(runs)]
        firsts = [s["first_request_after_s"] for s in samples if s["first_request_after_s"]]

        def since_spawn(sample: dict[str, Any], key: str) -> float | None:
            mark = sample["marks"].get(key)
            return None if mark is None else mark["monotonic_s"] - sample["spawned_monotonic_s"]

        found[label] = {
            "first_request_s": statistics.median(firsts) if firsts else None,
            "collection_finished_s": statistics.median(
                v for s in samples if (v := since_spawn(s, "collection_finished")) is not None
            ),
            "collection_cpu_s": statistics.median(
                s["marks"]["collection_finished"]["cpu_s"] - s["marks"]["plugin_loaded"]["cpu_s"]
                for s in samples
                if "collection_finished" in s["marks"]
            ),
            "items_start_s": statistics.median(
                v for s in samples if (v := since_spawn(s, "items_start")) is not None
            ),
            "wall_s": statistics.median(s["wall_s"] for s in samples),
            "cpu_s": statistics.median(s["cpu_s"] for s in samples),
            "early_import_wall_s": [s["early_import"].get("import_wall_s") for s in samples],
        }
    _print_rows(
        f"time from spawn (wall, medians of {runs}; on a shared machine wall is noisy):",
        [
            (
                label,
                f"collection done {f['collection_finished_s']:.2f} s (its CPU {f['collection_cpu_s']:.2f} s), "
                f"items loop starts {f['items_start_s']:.2f} s, first request {f['first_request_s']:.2f} s, "
                f"run {f['wall_s']:.1f} s wall / {f['cpu_s']:.1f} s CPU",
            )
            for label, f in found.items()
        ],
    )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--parts", default=",".join(DEFAULT_PARTS), help=f"from {','.join(ALL_PARTS)}"
    )
    parser.add_argument("--cases", type=int, default=1000, help="cases per version (default 1000)")
    parser.add_argument("--runs", type=int, default=3, help="repeats for medians (default 3)")
    parser.add_argument(
        "--probe-modes",
        default=",".join(PROBE_MODES),
        help=f"probes to run in part probes, from {','.join(PROBE_MODES)}",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    parser.add_argument("--keep", action="store_true", help="keep the run directories")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(ALL_PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")

    scratch = Path(tempfile.mkdtemp(prefix="promptgate-case-cost-"))
    server = wl.start_server()
    found: dict[str, Any] = {"cases": 2 * args.cases, "load_before": os.getloadavg()[0]}
    try:
        work = Workload(server, scratch, args.cases)
        print(
            f"(b): {work.items} cases in {work.dir}; flags {' '.join(work.one_process) or '(no workers option)'}"
        )
        work.run()  # warm-up: bytecode caches, page cache
        total_cpu = loop_cpu = None
        if "cpu" in parts or "pyspy" in parts or "yappi" in parts:
            found["cpu"] = part_cpu(work, args.runs if "cpu" in parts else 1)
            median = found["cpu"]["median"]
            total_cpu = median["cpu_s"]
            marks = median["marks"]
            if "items_start" in marks and "items_end" in marks:
                loop_cpu = marks["items_end"]["cpu_s"] - marks["items_start"]["cpu_s"]
        if "pyspy" in parts and total_cpu:
            found["pyspy"] = part_pyspy(work, total_cpu)
        if "yappi" in parts and loop_cpu:
            found["yappi"] = part_yappi(work, loop_cpu)
        if "freeze" in parts:
            found["freeze"] = part_freeze(
                work, args.runs, found.get("cpu", {}).get("median") if "cpu" in found else None
            )
        if "probes" in parts:
            modes = [m.strip() for m in args.probe_modes.split(",") if m.strip()]
            found["probes"] = part_probes(server, scratch, work.items, args.runs, modes)
        if "rounds" in parts:
            found["rounds"] = part_rounds(work, server, scratch, args.runs)
        if "callpool" in parts:
            found["callpool"] = part_callpool(work)
        if "overlap" in parts:
            found["overlap"] = part_overlap(work, args.runs)
    finally:
        server.stop()
        found["load_after"] = os.getloadavg()[0]
        if args.json:
            args.json.write_text(json.dumps(found, indent=2, default=str))
        if args.keep:
            print(f"run directories kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"\nload average {found['load_before']:.1f} before, {found['load_after']:.1f} after "
        f"({os.cpu_count()} CPUs): CPU times are the measure; wall times include the neighbours."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
