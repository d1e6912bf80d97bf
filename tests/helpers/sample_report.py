"""Realistic JSON report dicts (schema_version 1, docs/ARCHITECTURE.md) for the report tests.

``sample_report()`` holds one prompt per interesting verdict: CONSIDER FINE-TUNING with a full
``advice`` object and history iterations, FAIL with a comparison against the previous version,
PASS, and INCONCLUSIVE with provider errors. ``HOSTILE_OUTPUT`` is what a hostile model could
return; ``hostile_report()`` puts it into every untrusted field.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

HOSTILE_OUTPUT = (
    "</details></summary></td></table>\n"
    "<script>alert(1)</script>\n"
    "@everyone @octocat/team please look\n"
    "::set-output name=x::y\n"
    "::error::boom\n"
    "  ::warning file=a.py::indented\n"
    "\x1b[31mred\x1b[0m \x1b]0;title\x07 NUL:\x00:end\n"
    "```\n``` not a fence end ````\n"
    "| a | b |\n"
    "-->\n"
)
ONE_MEGABYTE = "A" * 1_000_000


def _version(version: str, model: str, passed: int, n: int, verdict: str, **extra: Any) -> dict:
    errors = extra.pop("errors", 0)
    failed = n - passed - errors
    rate = passed / (n - errors) if n - errors else None
    entry = {
        "version": version,
        "model": model,
        "content_hash": hashlib.sha256(f"{version}|{model}".encode()).hexdigest(),
        "current": True,
        "n": n,
        "passed": passed,
        "failed": failed,
        "errors": errors,
        "rate": rate,
        "ci_low": None if rate is None else max(0.0, rate - 0.2),
        "ci_high": None if rate is None else min(1.0, rate + 0.15),
        "verdict": verdict,
        "cost_usd": 0.0123,
        "tokens": {"prompt": 1200, "completion": 300, "total": 1500},
        "latency_p50_ms": 210.0,
        "latency_p95_ms": 380.0,
        "failing_cases": [],
        "flaky_cases": [],
        "samples": 1,
        "note": None,
        "comparison": None,
        "baseline": None,
    }
    entry.update(extra)
    return entry


def _case(
    prompt: str, version: str, case: str, status: str, file: str, line: int, **extra: Any
) -> dict:
    entry = {
        "prompt": prompt,
        "version": version,
        "case": case,
        "model": "openai/gpt-4o-mini",
        "file": file,
        "line": line,
        "status": status,
        "vars": {"ticket": f"ticket text for {case}"},
        "messages": [{"role": "user", "content": f"Classify: ticket text for {case}"}],
        "output": "billing" if status == "passed" else "bug",
        "failures": []
        if status != "failed"
        else [{"expectation": "equals", "reason": "expected 'billing', got 'bug'"}],
        "error": None,
        "tokens": {"prompt": 60, "completion": 3},
        "cost_usd": 0.0001,
        "latency_ms": 100.0 + (line * 37) % 400,
        "samples": 1,
        "rate": {"passed": 1.0, "failed": 0.0}.get(status),
        "cached": False,
    }
    entry.update(extra)
    return entry


ADVICE = {
    "kind": "consider-fine-tuning",
    "message": "3 iterations all below 80% and the rates plateaued: consider fine-tuning",
    "window": [
        {"version": "v1", "rate": 0.55, "ci_low": 0.4, "ci_high": 0.7, "n": 40},
        {"version": "v2", "rate": 0.6, "ci_low": 0.45, "ci_high": 0.74, "n": 40},
        {"version": "v3", "rate": 0.575, "ci_low": 0.42, "ci_high": 0.72, "n": 40},
    ],
    "plateau_p_value": 0.41,
    "noise": False,
    "failing_patterns": [
        {"case": "c7", "failed_in": 3, "of": 3},
        {"case": "c9", "failed_in": 2, "of": 3},
    ],
    "readiness": {
        "labelled": 40,
        "unlabelled": 0,
        "minimum": 100,
        "ideal": 500,
        "status": "insufficient",
        "per_label": {"billing": 12, "bug": 10, "other": 18},
    },
    "cost": {
        "calls_per_month": 100000,
        "months": 12,
        "prompt_path_usd": 240.0,
        "finetune_path_usd": {"low": 980.0, "high": 5720.0},
        "assumptions": {"training_cost_usd": [500, 5000], "inference_multiplier": [2, 3]},
        "defaults_used": ["training_cost_usd", "inference_multiplier"],
    },
    "export_command": "promptgate export-finetune examples/extract.promptgate.yaml -o extract.jsonl",
}


def sample_report() -> dict:
    """A report with four prompts: flagged, failing, passing and inconclusive."""
    extract_file = "examples/extract.promptgate.yaml"
    triage_file = "examples/triage.promptgate.yaml"
    summary_file = "examples/summary.promptgate.yaml"
    flaky_file = "examples/flaky.promptgate.yaml"
    flagged = {
        "prompt": "invoice-extract",
        "file": extract_file,
        "line": 1,
        "description": "Extract invoice fields",
        "threshold": 0.8,
        "verdict": "CONSIDER FINE-TUNING",
        "reason": "3 iterations all below 80% and the rates plateaued",
        "current_version": "v3",
        "versions": [
            _version(
                "v3",
                "openai/gpt-4o-mini",
                23,
                40,
                "CONSIDER FINE-TUNING",
                failing_cases=["c7", "c9"],
                comparison={
                    "against": "v2",
                    "delta": -0.025,
                    "fixed": ["c3"],
                    "broken": ["c9"],
                    "p_value": 1.0,
                },
            )
        ],
        "iterations": [
            {
                "version": "v1",
                "content_hash": "aaaa",
                "model": "openai/gpt-4o-mini",
                "rate": 0.55,
                "ci_low": 0.4,
                "ci_high": 0.7,
                "n": 40,
                "source": "history",
                "timestamp": "2026-11-20T10:00:00Z",
            },
            {
                "version": "v2",
                "content_hash": "bbbb",
                "model": "openai/gpt-4o-mini",
                "rate": 0.6,
                "ci_low": 0.45,
                "ci_high": 0.74,
                "n": 40,
                "source": "history",
                "timestamp": "2026-11-24T10:00:00Z",
            },
            {
                "version": "v3",
                "content_hash": "cccc",
                "model": "openai/gpt-4o-mini",
                "rate": 0.575,
                "ci_low": 0.42,
                "ci_high": 0.72,
                "n": 40,
                "source": "run",
                "timestamp": "2026-11-27T21:00:00Z",
            },
        ],
        "advice": copy.deepcopy(ADVICE),
    }
    failing = {
        "prompt": "support-triage",
        "file": triage_file,
        "line": 1,
        "description": "Route support tickets",
        "threshold": 0.8,
        "verdict": "FAIL",
        "reason": "v3 passes 14/20 (70%), below the 80% threshold",
        "current_version": "v3",
        "versions": [
            _version("v2", "openai/gpt-4o-mini", 11, 20, "FAIL", current=False),
            _version(
                "v3",
                "openai/gpt-4o-mini",
                14,
                20,
                "FAIL",
                failing_cases=["double-charge", "refund-late"],
                note="n=20: the interval is too wide to separate 70% from 80%",
                comparison={
                    "against": "v2",
                    "delta": 0.15,
                    "fixed": ["c1", "c2", "c3"],
                    "broken": [],
                    "p_value": 0.03,
                },
            ),
        ],
        "iterations": [
            {
                "version": "v2",
                "content_hash": "dddd",
                "model": "openai/gpt-4o-mini",
                "rate": 0.55,
                "ci_low": 0.34,
                "ci_high": 0.74,
                "n": 20,
                "source": "run",
                "timestamp": "2026-11-27T21:00:00Z",
            },
            {
                "version": "v3",
                "content_hash": "eeee",
                "model": "openai/gpt-4o-mini",
                "rate": 0.7,
                "ci_low": 0.48,
                "ci_high": 0.85,
                "n": 20,
                "source": "run",
                "timestamp": "2026-11-27T21:00:00Z",
            },
        ],
        "advice": None,
    }
    passing = {
        "prompt": "summary",
        "file": summary_file,
        "line": 1,
        "description": "Summaries",
        "threshold": 0.8,
        "verdict": "PASS",
        "reason": "v1 passes 19/20 (95%)",
        "current_version": "v1",
        "versions": [
            _version("v1", "openai/gpt-4o-mini", 19, 20, "PASS", failing_cases=["long-doc"])
        ],
        "iterations": [
            {
                "version": "v1",
                "content_hash": "ffff",
                "model": "openai/gpt-4o-mini",
                "rate": 0.95,
                "ci_low": 0.76,
                "ci_high": 0.99,
                "n": 20,
                "source": "run",
                "timestamp": "2026-11-27T21:00:00Z",
            },
        ],
        "advice": None,
    }
    inconclusive = {
        "prompt": "flaky-api",
        "file": flaky_file,
        "line": 1,
        "description": "",
        "threshold": 0.9,
        "verdict": "INCONCLUSIVE",
        "reason": "3 of 5 cases errored (provider failures); not enough results to decide",
        "current_version": "v1",
        "versions": [
            _version(
                "v1",
                "openai/gpt-4o-mini",
                2,
                5,
                "INCONCLUSIVE",
                errors=3,
                cost_usd=None,
                latency_p95_ms=None,
            )
        ],
        "iterations": [],
        "advice": {"kind": "inconclusive", "message": "repeat the run once the provider recovers"},
    }

    cases = []
    for index in range(40):
        case_id = f"c{index}"
        status = "failed" if case_id in ("c7", "c9") or index >= 25 else "passed"
        cases.append(_case("invoice-extract", "v3", case_id, status, extract_file, 10 + index * 3))
    for index, case_id in enumerate(
        ["double-charge", "refund-late"] + [f"t{i}" for i in range(18)]
    ):
        status = "failed" if index < 6 else "passed"
        cases.append(_case("support-triage", "v3", case_id, status, triage_file, 20 + index * 4))
        cases.append(
            _case(
                "support-triage",
                "v2",
                case_id,
                "failed" if index < 9 else "passed",
                triage_file,
                20 + index * 4,
            )
        )
    for index in range(20):
        status = "failed" if index == 0 else "passed"
        cases.append(
            _case(
                "summary",
                "v1",
                "long-doc" if index == 0 else f"s{index}",
                status,
                summary_file,
                8 + index,
            )
        )
    for index in range(5):
        if index < 3:
            cases.append(
                _case(
                    "flaky-api",
                    "v1",
                    f"f{index}",
                    "error",
                    flaky_file,
                    5 + index,
                    output=None,
                    rate=None,
                    error="rate_limit: 429 Too Many Requests after 3 attempts",
                    cost_usd=None,
                )
            )
        else:
            cases.append(_case("flaky-api", "v1", f"f{index}", "passed", flaky_file, 5 + index))

    return {
        "schema_version": 1,
        "tool": {"name": "pytest-promptgate", "version": "0.1.0"},
        "created_at": "2026-11-27T21:00:00Z",
        "verdict": "FAIL",
        "exit_status": 1,
        "settings": {
            "threshold": 0.8,
            "gate": "point",
            "concurrency": 8,
            "retries": 3,
            "strict": False,
            "finetune": "fail",
            "models": ["openai/gpt-4o-mini"],
            "cache": "readwrite",
        },
        "summary": {
            "prompts": 4,
            "passed": 1,
            "failed": 1,
            "flagged": 1,
            "inconclusive": 1,
            "rethink": 0,
            "cases": len(cases),
            "errors": 3,
            "cost_usd": 0.0492,
            "cost_known": False,
            "cache": {"hits": 10, "misses": 95, "saved_usd": 0.001},
        },
        "prompts": [flagged, failing, passing, inconclusive],
        "cases": cases,
    }


def hostile_report(output: str = HOSTILE_OUTPUT + ONE_MEGABYTE) -> dict:
    """The sample report with hostile text in every field a model or a case author controls."""
    report = sample_report()
    for case in report["cases"]:
        if case["status"] == "failed":
            case["output"] = output
            case["vars"] = {"ticket": HOSTILE_OUTPUT, "@everyone": "<img src=x onerror=alert(1)>"}
            case["failures"] = [
                {"expectation": "equals", "reason": "expected 'billing', got " + HOSTILE_OUTPUT}
            ]
        elif case["status"] == "error":
            case["error"] = HOSTILE_OUTPUT
    report["prompts"][1]["reason"] = HOSTILE_OUTPUT
    return report


def many_failures_report(cases_per_prompt: int = 200, output_chars: int = 5000) -> dict:
    """A report whose case details cannot all fit in a PR comment."""
    report = sample_report()
    for prompt in report["prompts"][:3]:
        for index in range(cases_per_prompt):
            report["cases"].append(
                _case(
                    prompt["prompt"],
                    prompt["current_version"],
                    f"bulk-{index}",
                    "failed",
                    prompt["file"],
                    100 + index,
                    output=("x" * 70 + "\n") * (output_chars // 71),
                )
            )
    return report


LONG_LABELS = {
    "v1": "v1-baseline",
    "v2": "v2-few-shot-examples",
    "v3": "v3-few-shot-with-chain-of-thought",
}


def long_label_report() -> dict:
    """The sample report with the descriptive version labels people really use (issue 15)."""
    report = sample_report()

    def rename(entry: dict) -> None:
        entry["version"] = LONG_LABELS.get(entry["version"], entry["version"])

    for prompt in report["prompts"]:
        prompt["current_version"] = LONG_LABELS.get(
            prompt["current_version"], prompt["current_version"]
        )
        for entry in prompt["versions"] + prompt["iterations"]:
            rename(entry)
        for entry in (prompt.get("advice") or {}).get("window") or []:
            rename(entry)
        for version in prompt["versions"]:
            if version.get("comparison"):
                against = version["comparison"]["against"]
                version["comparison"]["against"] = LONG_LABELS.get(against, against)
    for case in report["cases"]:
        rename(case)
    return report
