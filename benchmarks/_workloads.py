"""Shared pieces of the benchmarks: the loopback server, the generated work, and measurement.

Both tools get the same work: the same prompt text per version, the same case variables, the
same deterministic expectations (contains, regex, word-count: all three exist under these
names in pytest-promptgate and in promptfoo), against the same loopback server. The server's
reply policy echoes the ``reply: <text>`` line of the last user message, so every expectation
passes and a run's verdict doubles as a correctness check.

Plain Python on purpose: nothing here imports pytest or litellm.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

try:  # the C emitter writes a 10,000-case suite in a fraction of the pure-Python time
    from yaml import CSafeDumper as _Dumper
except ImportError:  # pragma: no cover - libyaml missing
    from yaml import SafeDumper as _Dumper

API_KEY = "sk-bench"
PROMPT_ID = "bench"
MODEL = "bench"  # promptgate: openai/bench; promptfoo: openai:chat:bench

# One template per version, valid both as Jinja2 (promptgate) and Nunjucks (promptfoo).
VERSION_TEMPLATES = {
    "v1": "Summarize the ticket about {{ topic }} in one line.\nreply: Summary of {{ topic }}: item {{ n }} is fine.",
    "v2": "Give a short status line for {{ topic }}.\nreply: Summary of {{ topic }}: item {{ n }} looks good today.",
}
REGEX = r"^Summary of \S+: item \d+"
MAX_WORDS = 12  # the replies have 7 (v1) and 8 (v2) words

_TOPICS = (
    "billing",
    "refund",
    "login",
    "invoice",
    "export",
    "search",
    "upload",
    "sync",
    "alerts",
    "backup",
)


@dataclass(frozen=True)
class BenchCase:
    id: str
    topic: str
    n: int


def make_cases(count: int) -> list[BenchCase]:
    return [
        BenchCase(id=f"c{i}", topic=f"{_TOPICS[i % len(_TOPICS)]}-{i}", n=i)
        for i in range(1, count + 1)
    ]


# -- pytest-promptgate ---------------------------------------------------------------------


def promptgate_case(case: BenchCase) -> dict[str, Any]:
    return {
        "id": case.id,
        "vars": {"topic": case.topic, "n": case.n},
        "expect": [{"contains": case.topic}, {"regex": REGEX}, {"word-count": {"max": MAX_WORDS}}],
    }


def promptgate_suite(
    cases: Sequence[BenchCase], api_base: str, versions: Sequence[str] = ("v1", "v2")
) -> dict[str, Any]:
    return {
        "prompt": PROMPT_ID,
        "model": f"openai/{MODEL}",
        "params": {"api_base": api_base, "api_key": API_KEY, "temperature": 0},
        "versions": {label: {"user": VERSION_TEMPLATES[label]} for label in versions},
        "cases": [promptgate_case(case) for case in cases],
    }


def write_promptgate_suite(
    directory: Path,
    cases: Sequence[BenchCase],
    api_base: str,
    versions: Sequence[str] = ("v1", "v2"),
    cases_file: bool = False,
) -> Path:
    """``bench.promptgate.yaml`` with the cases inline, or in ``bench.cases.jsonl`` (``cases_file``)."""
    path = directory / "bench.promptgate.yaml"
    doc = promptgate_suite(cases, api_base, versions)
    if cases_file:  # how a suite of 10,000 cases is written in practice
        rows = doc.pop("cases")
        (directory / "bench.cases.jsonl").write_text(
            "".join(json.dumps(row) + "\n" for row in rows)
        )
        doc["cases_file"] = "bench.cases.jsonl"
    path.write_text(yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=200))
    return path


# The pytest plugins a clean `pip install pytest-promptgate` loads: ours, and anyio's (httpx, a
# litellm dependency, brings it). The benchmark's own environment may hold more (the test
# extra's xdist and hypothesis add ~0.4 s of start-up and per-test hooks): with autoloading off
# (PYTEST_DISABLE_PLUGIN_AUTOLOAD, see ``python_env``) they do not count against either tool.
CLEAN_INSTALL_PLUGINS = ("-p", "promptgate", "-p", "anyio")


def promptgate_command(
    python: str, suite: Path, concurrency: int, report: Path, cache: str
) -> list[str]:
    return [
        python, "-m", "pytest", suite.name, "-q", "-p", "no:cacheprovider", *CLEAN_INSTALL_PLUGINS,
        "--promptgate-concurrency", str(concurrency),
        "--promptgate-report", str(report),
        "--promptgate-cache", cache,
    ]  # fmt: skip


def one_process_flags(python: str) -> list[str]:
    """The flags that keep every model call in the pytest process: ``--promptgate-workers 0``
    while the option exists, nothing once call workers are gone. Asked of ``pytest --help``
    with the same plugins as the measured runs."""
    import tempfile

    done = subprocess.run(
        [python, "-m", "pytest", "--help", *CLEAN_INSTALL_PLUGINS],
        capture_output=True, text=True, env=python_env(os.environ), cwd=tempfile.gettempdir(),
    )  # fmt: skip
    return ["--promptgate-workers", "0"] if "--promptgate-workers" in done.stdout else []


def read_promptgate_report(path: Path) -> dict[str, Any]:
    """passed / failed / errors / cache hits of a run, from its JSON report (empty if missing)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    cases = doc.get("cases") or []
    statuses = [c.get("status") for c in cases]
    cache = (doc.get("summary") or {}).get("cache") or {}
    return {
        "passed": statuses.count("passed"),
        "failed": statuses.count("failed"),
        "errors": statuses.count("error"),
        "cache_hits": cache.get("hits"),
        "verdict": doc.get("verdict"),
        "call_workers": (doc.get("run") or {}).get("call_workers"),
    }


# -- promptfoo -----------------------------------------------------------------------------


def promptfoo_config(
    cases: Sequence[BenchCase], api_base: str, versions: Sequence[str] = ("v1", "v2")
) -> dict[str, Any]:
    return {
        "description": "promptgate benchmark",
        "prompts": [
            {"id": label, "label": label, "raw": VERSION_TEMPLATES[label]} for label in versions
        ],
        "providers": [
            {
                "id": f"openai:chat:{MODEL}",
                "config": {"apiBaseUrl": api_base, "apiKey": API_KEY, "temperature": 0},
            }
        ],
        "tests": [
            {
                "description": case.id,
                "vars": {"topic": case.topic, "n": case.n},
                "assert": [
                    {"type": "contains", "value": case.topic},
                    {"type": "regex", "value": REGEX},
                    {"type": "word-count", "value": {"max": MAX_WORDS}},
                ],
            }
            for case in cases
        ],
    }


def write_promptfoo_config(
    directory: Path,
    cases: Sequence[BenchCase],
    api_base: str,
    versions: Sequence[str] = ("v1", "v2"),
) -> Path:
    path = directory / "promptfooconfig.yaml"
    path.write_text(
        yaml.dump(
            promptfoo_config(cases, api_base, versions), Dumper=_Dumper, sort_keys=False, width=200
        )
    )
    return path


def promptfoo_command(binary: Path, config: Path, concurrency: int) -> list[str]:
    # The installed bin directly rather than `npx promptfoo`: npx would add a second Node
    # process (~0.3 s, ~50 MB) that is not promptfoo's own cost.
    return [
        str(binary),
        "eval",
        "-c",
        config.name,
        "--no-write",
        "-j",
        str(concurrency),
        "--no-progress-bar",
    ]


def promptfoo_env(base: Mapping[str, str], state_dir: Path, cache: bool) -> dict[str, str]:
    """promptfoo's switches for a quiet, local, comparable run; its state stays in ``state_dir``."""
    env = dict(base)
    env.update(
        PROMPTFOO_DISABLE_TELEMETRY="1",
        PROMPTFOO_DISABLE_UPDATE="1",
        # Without these two it sometimes exits 1 after a complete run (issue 6).
        PROMPTFOO_DISABLE_ERROR_LOG="1",
        PROMPTFOO_DISABLE_DEBUG_LOG="1",
        PROMPTFOO_CONFIG_DIR=str(state_dir),
        PROMPTFOO_CACHE_PATH=str(state_dir / "cache"),
        PROMPTFOO_CACHE_ENABLED="true" if cache else "false",
        NO_COLOR="1",
        FORCE_COLOR="0",
    )
    return env


def read_promptfoo_summary(stdout: str) -> dict[str, Any]:
    """passed / failed / errors from promptfoo's closing "Results:" block (empty if not found)."""
    text = _ANSI.sub("", stdout)
    tail = text[text.rfind("Results:") :] if "Results:" in text else ""
    found: dict[str, Any] = {}
    for count, word in re.findall(r"([\d,]+) (passed|failed|errors?)\b", tail):  # "2,000 passed"
        found.setdefault(
            {"passed": "passed", "failed": "failed"}.get(word, "errors"),
            int(count.replace(",", "")),
        )
    return found


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


# -- the loopback server -------------------------------------------------------------------


def start_server(latency_ms: float = 0.0) -> TimedServer:
    """The project's FakeOpenAI, with first-request / last-reply timestamps for phase timing."""
    server = TimedServer(latency_ms=latency_ms, retry_after="1")
    return server.start()


def _fake_openai_class() -> type:
    from pytest_promptgate.testing.openai_server import FakeOpenAI

    return FakeOpenAI


class TimedServer(_fake_openai_class()):  # type: ignore[misc]
    """FakeOpenAI plus the model-call phase: first request in, last reply out (monotonic s).

    It hooks FakeOpenAI's per-request ``_begin``/``_end``, the one place every request passes.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase_lock = threading.Lock()
        self.first_request_at: float | None = None
        self.last_reply_at: float | None = None
        self.faults_sent = 0

    def _begin(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, str | None]:
        now = time.monotonic()
        number, fault = super()._begin(path, headers, body)
        with self._phase_lock:
            if self.first_request_at is None:
                self.first_request_at = now
            if fault is not None:
                self.faults_sent += 1
        return number, fault

    def _end(self) -> None:
        super()._end()
        with self._phase_lock:
            self.last_reply_at = time.monotonic()

    def configure(self, latency_ms: float, fault_every: int = 0, fault: str = "429") -> None:
        """New reply policy and zeroed counters for the next run (attributes are read per request)."""
        self.latency_ms = latency_ms
        self.fault_every = fault_every
        self.fault = fault
        self.reset()
        with self._phase_lock:
            self.first_request_at = None
            self.last_reply_at = None
            self.faults_sent = 0

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._requests.clear()  # 10,000 stored bodies are the benchmark's memory, not the tool's

    @property
    def phase_s(self) -> float | None:
        if self.first_request_at is None or self.last_reply_at is None:
            return None
        return self.last_reply_at - self.first_request_at


# -- measurement ---------------------------------------------------------------------------

PYCACHE_DIR = Path.home() / ".cache" / "promptgate-bench" / "pycache"


def python_env(base: Mapping[str, str]) -> dict[str, str]:
    """The environment of a measured Python child, with bytecode caching as users have it.

    A ``PYTHONDONTWRITEBYTECODE`` inherited from the caller would make every run recompile the
    plugin and redo pytest's assertion rewriting of it (~1 s); the caches go to a prefix
    directory instead, so that the checkout gets no ``__pycache__`` folders.
    """
    env = {
        k: v
        for k, v in base.items()
        if k not in ("PYTEST_ADDOPTS", "PYTHONDONTWRITEBYTECODE", "PYTEST_PLUGINS")
    }
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE_DIR)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = (
        "1"  # pytest commands name their plugins (CLEAN_INSTALL_PLUGINS)
    )
    return env


@dataclass(frozen=True)
class Measured:
    wall_s: float
    user_s: float
    sys_s: float
    max_rss_mb: float  # the largest single process of the tree (ru_maxrss semantics)
    returncode: int
    stdout: str
    stderr: str
    tree_rss_mb: float = 0.0  # the largest sum over the whole process tree, sampled every 0.1 s

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


def run_measured(
    command: Sequence[str], cwd: Path, env: Mapping[str, str], timeout_s: float = 1800.0
) -> Measured:
    """Run a command to completion; wall time plus the rusage of it and its reaped descendants.

    ``os.wait4`` gives this child's own rusage (user+sys summed over every descendant it
    waited for), so the benchmark's in-process server threads are not charged to the tool.
    ``ru_maxrss`` is the peak of the single largest process in that tree, not a sum.
    """
    out_path, err_path = cwd / ".bench-stdout", cwd / ".bench-stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command), cwd=cwd, env=dict(env), stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
        deadline = started + timeout_s
        tree_rss_kb, next_sample = 0, started
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() >= next_sample:
                tree_rss_kb = max(tree_rss_kb, _tree_rss_kb(process.pid))
                next_sample = time.perf_counter() + 0.1
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # wait4 reaped it; tell Popen
    return Measured(
        wall_s=wall,
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        max_rss_mb=usage.ru_maxrss / 1024.0,
        returncode=process.returncode,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
        tree_rss_mb=max(tree_rss_kb / 1024.0, usage.ru_maxrss / 1024.0),
    )


def _tree_rss_kb(root: int) -> int:
    """Resident memory of ``root`` and all its descendants now, from /proc (0 elsewhere)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
        except OSError:
            continue
        parents[int(entry)] = int(fields.get("PPid", "0").strip() or 0)
        rss[int(entry)] = int((fields.get("VmRSS", "0 kB").split() or ["0"])[0])
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(rss.get(pid, 0) for pid in tree)
