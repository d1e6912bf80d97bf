"""Model-call phase of the runner against a loopback server with fixed latency.

    python benchmarks/bench_core.py                       # 200 cases, 200 ms, concurrency 8
    python benchmarks/bench_core.py --cases 2000 --concurrency 16 --rerun-cached

Starts ``pytest_promptgate.testing.openai_server`` as its own process (so the server's CPU is
not charged to the engine), then runs ``run_jobs`` in a child process and prints:
the model-call phase (first request → last result) against the ideal
``cases × latency / concurrency``, and the child's whole-process wall and CPU time (interpreter
start, litellm import, the run). With ``--rerun-cached`` a second child replays every call from
the cache that the first one filled (litellm should not even be imported).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child(args: argparse.Namespace) -> None:
    """Runs inside the measured process: build jobs, run them, print one JSON line."""
    sys.path.insert(0, str(ROOT))
    from pytest_promptgate.api import build_jobs
    from pytest_promptgate.model import Case, Suite, Version
    from pytest_promptgate.runner import RunSettings, run_jobs

    base_url = f"http://127.0.0.1:{args.port}/v1"
    cases = tuple(Case(id=f"case-{i}", vars={"i": i}, expect=()) for i in range(args.cases))
    suite = Suite(  # in memory: the loader's cost is not what this measures
        prompt="bench",
        file=ROOT / "bench.promptgate.yaml",
        versions=(Version(label="v1", kind="messages"),),
        cases=cases,
        model="openai/fake-model",
        params={"api_base": base_url, "api_key": "sk-bench", "temperature": 0},
        rendered={
            ("v1", case.id): ({"role": "user", "content": f"reply: answer {i}"},)
            for i, case in enumerate(cases)
        },
    )
    jobs = build_jobs([suite], rootdir=ROOT)
    import_s = 0.0
    if args.stub_litellm:
        stub_litellm()
    elif args.cache_mode == "write":  # uncached run: import outside the measured CPU
        from pytest_promptgate.client import import_litellm

        started = time.perf_counter()
        import_litellm()
        import_s = time.perf_counter() - started
    settings = RunSettings(
        concurrency=args.concurrency, cache_dir=Path(args.cache_dir), cache_mode=args.cache_mode
    )
    cpu_started = time.process_time()
    outcome = run_jobs(jobs, settings)
    run_cpu_s = time.process_time() - cpu_started
    print(
        json.dumps(
            {
                "model_phase_s": outcome.model_phase_s,
                "calls": outcome.calls,
                "cache_hits": outcome.cache_hits,
                "passed": sum(r.status == "passed" for r in outcome.results),
                "errors": sum(r.status == "error" for r in outcome.results),
                "litellm_imported": "litellm" in sys.modules,
                "run_cpu_ms_per_case": run_cpu_s * 1000.0 / max(1, len(jobs)),
                "import_s": import_s,
            }
        )
    )


def stub_litellm() -> None:
    """Replace the litellm call by a canned reply: what remains is the engine's own CPU
    (runner, throttle, cache, client bookkeeping) per case."""
    from types import SimpleNamespace

    from pytest_promptgate import client, litellm_setup, runner

    async def canned(self, litellm, model, messages, params):
        text = messages[-1]["content"].removeprefix("reply: ")
        message = SimpleNamespace(content=text)
        return SimpleNamespace(
            choices=[SimpleNamespace(message=message)],
            usage=SimpleNamespace(prompt_tokens=3, completion_tokens=2),
            _hidden_params={"response_cost": None},
        )

    client.ModelClient._call = canned
    stub = lambda: SimpleNamespace(  # noqa: E731
        close_litellm_async_clients=_no_op
    )
    client.import_litellm = runner.import_litellm = litellm_setup.import_litellm = stub


async def _no_op() -> None:
    return None


def measure(args: argparse.Namespace, cache_mode: str) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        "--port",
        str(args.port),
        "--cases",
        str(args.cases),
        "--concurrency",
        str(args.concurrency),
        "--cache-dir",
        args.cache_dir,
        "--cache-mode",
        cache_mode,
    ]
    if args.stub_litellm:
        command.append("--stub-litellm")
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)  # this child's own CPU and peak RSS
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"benchmark child failed with exit code {process.returncode}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["process_wall_s"] = wall
    result["process_cpu_s"] = usage.ru_utime + usage.ru_stime
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rerun-cached", action="store_true")
    parser.add_argument(
        "--fault-every", type=int, default=0, help="server: every N-th call gets --fault"
    )
    parser.add_argument("--fault", default="429")
    parser.add_argument("--retry-after", default="1", help="server: Retry-After sent with 429")
    parser.add_argument(
        "--stub-litellm",
        action="store_true",
        help="replace the litellm call by a canned reply: measures the engine's own CPU",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", default="", help=argparse.SUPPRESS)
    parser.add_argument("--cache-mode", default="write", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0

    args.port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_promptgate.testing.openai_server",
            "--port",
            str(args.port),
            "--latency-ms",
            str(args.latency_ms),
            "--fault-every",
            str(args.fault_every),
            "--fault",
            args.fault,
            "--retry-after",
            args.retry_after,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        server.stdout.readline()  # "FakeOpenAI listening on ..."
        with tempfile.TemporaryDirectory() as cache_dir:
            args.cache_dir = cache_dir
            runs = [("uncached", measure(args, "write"))]
            if args.rerun_cached:
                runs.append(("cached", measure(args, "readwrite")))
    finally:
        server.terminate()
        server.wait(timeout=10)

    ideal = args.cases * args.latency_ms / 1000.0 / args.concurrency
    faults = f", every {args.fault_every}th call answered {args.fault}" if args.fault_every else ""
    print(
        f"{args.cases} cases, {args.latency_ms:.0f} ms latency{faults}, concurrency {args.concurrency}; "
        f"ideal model-call phase {ideal:.2f} s  (load average {os.getloadavg()[0]:.1f})"
    )
    print(
        f"{'run':<9} {'phase s':>8} {'x ideal':>8} {'process s':>10} {'cpu s':>7} {'ms cpu/case':>12} "
        f"{'import s':>9} {'rss MB':>7} {'calls':>6} {'hits':>6} {'passed':>7} {'errors':>7} litellm"
    )
    for name, r in runs:
        ratio = f"{r['model_phase_s'] / ideal:.2f}" if ideal else "-"
        print(
            f"{name:<9} {r['model_phase_s']:>8.2f} {ratio:>8} {r['process_wall_s']:>10.2f} "
            f"{r['process_cpu_s']:>7.2f} {r['run_cpu_ms_per_case']:>12.3f} "
            f"{r['import_s']:>9.2f} {r['peak_rss_mb']:>7.0f} "
            f"{r['calls']:>6} {r['cache_hits']:>6} {r['passed']:>7} {r['errors']:>7} "
            f"{'imported' if r['litellm_imported'] else 'not imported'}"
        )
    print(
        "ms cpu/case: CPU of run_jobs alone per case (interpreter start and litellm import excluded;"
        " import s: wall time of importing litellm, part of process s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
