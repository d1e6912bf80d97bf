"""`promptgate merge`: combine the JSON reports of shards (a CI matrix) into one verdict.

Each shard ran ``pytest --promptgate-shard I/N --promptgate-report shard-I.json``. The merged
report is gated again over all cases with the same engine (evaluate.py), so the verdict is the
one a single run would have reached.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_promptgate.evaluate import EvaluatedCase, evaluate
from pytest_promptgate.model import (
    ERROR,
    PASSED,
    CallResult,
    CaseResult,
    ExpectationResult,
    Location,
    PromptgateError,
    SampleResult,
    call_extras_from_dict,
)
from pytest_promptgate.options import DEFAULT_FINETUNE, DEFAULT_GATE, Options


def case_from_entry(entry: Mapping[str, Any]) -> CaseResult:
    """Rebuild a CaseResult from a report's `cases[]` entry (enough for stats and the gate)."""
    samples_n = max(int(entry.get("samples") or 1), 1)
    tokens = entry.get("tokens") or {}
    cost = entry.get("cost_usd")
    call_kwargs: dict[str, Any] = {
        "prompt_tokens": (tokens.get("prompt") or 0) // samples_n,
        "completion_tokens": (tokens.get("completion") or 0) // samples_n,
        "cost_usd": None if cost is None else cost / samples_n,
        "latency_ms": entry.get("latency_ms") or 0.0,
        "cached": bool(entry.get("cached")),
        **call_extras_from_dict(entry),  # tool calls, finish reason, structured (issue 13)
    }
    if entry["status"] == ERROR:
        call = CallResult(
            output=None, error=entry.get("error") or "error", error_kind=entry.get("error_kind")
        )
        samples: tuple[SampleResult, ...] = (SampleResult(0, call),)
    else:
        rate = entry.get("rate")
        passing = samples_n if entry["status"] == PASSED else round((rate or 0.0) * samples_n)
        failures = tuple(
            ExpectationResult(f["expectation"], False, f.get("reason", ""))
            for f in entry.get("failures") or []
        ) or (ExpectationResult("recorded", False, "failed in the shard"),)
        samples = tuple(
            SampleResult(
                index,
                CallResult(output=entry.get("output"), **call_kwargs),
                (ExpectationResult("recorded", True),) if index < passing else failures,
            )
            for index in range(samples_n)
        )
    location = (
        Location(entry["file"], entry["line"]) if entry.get("file") and entry.get("line") else None
    )
    return CaseResult(
        prompt=entry["prompt"],
        version=entry["version"],
        case=entry["case"],
        model=entry["model"],
        messages=tuple(entry.get("messages") or ()),
        samples=samples,
        location=location,
        vars=entry.get("vars") or {},
    )


def merge_reports(reports: Sequence[Mapping[str, Any]], rootdir: Path) -> dict[str, Any]:
    from pytest_promptgate.api import gate_settings, load_suite

    if not reports:
        raise PromptgateError("no report to merge", hint="pass the JSON reports of every shard")
    first_settings = reports[0].get("settings", {})
    seen: dict[tuple[str, str, str], EvaluatedCase] = {}
    suites = {}
    calls = hits = misses = 0
    saved = 0.0
    for report in reports:
        hashes = {
            (p["prompt"], v["version"]): (p["file"], v["content_hash"])
            for p in report["prompts"]
            for v in p["versions"]
        }
        run = report.get("run") or {}
        cache = report.get("summary", {}).get("cache") or {}
        calls += int(run.get("calls") or 0)
        hits += int(cache.get("hits") or 0)
        misses += int(cache.get("misses") or 0)
        saved += float(cache.get("saved_usd") or 0.0)
        for entry in report["cases"]:
            suite_file, content_hash = hashes[(entry["prompt"], entry["version"])]
            key = (entry["prompt"], entry["version"], entry["case"])
            if key in seen:
                raise PromptgateError(
                    f"case {'::'.join(key)} appears in more than one report",
                    hint="merge the reports of distinct shards (--promptgate-shard I/N) of one run",
                )
            seen[key] = EvaluatedCase(suite_file, content_hash, case_from_entry(entry))
            if suite_file not in suites:
                suites[suite_file] = load_suite(rootdir / suite_file, rootdir)
    threshold_cli = (
        first_settings.get("threshold") if first_settings.get("threshold_source") == "cli" else None
    )
    settings = gate_settings(
        Options(
            threshold=threshold_cli,
            gate=first_settings.get("gate", DEFAULT_GATE),
            finetune=first_settings.get("finetune", DEFAULT_FINETUNE),
            strict=bool(first_settings.get("strict")),
        )
    )
    evaluation = evaluate(
        list(seen.values()),
        suites,
        settings,
        report_settings={**first_settings, "shard": f"merged from {len(reports)} report(s)"},
        cache={"hits": hits, "misses": misses, "saved_usd": round(saved, 8)},
        run={"calls": calls, "merged_from": len(reports)},
    )
    return evaluation.report


def _command(args: argparse.Namespace) -> int:
    from pytest_promptgate.report.json_report import read_report, write_json_atomic
    from pytest_promptgate.report.terminal import render_terminal

    reports = [read_report(Path(p)) for p in args.reports]
    merged = merge_reports(reports, Path(args.rootdir))
    write_json_atomic(Path(args.output), merged)
    if args.markdown:
        from pytest_promptgate.report.json_report import write_text_atomic
        from pytest_promptgate.report.markdown import render_markdown

        write_text_atomic(Path(args.markdown), render_markdown(merged))
    print(render_terminal(merged))
    return merged["exit_status"]


def add_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "merge",
        help="merge shard reports into one report and verdict",
        description="Merge the JSON reports of --promptgate-shard runs; exits 1 when the merged gate fails.",
    )
    parser.add_argument("reports", nargs="+", help="JSON reports written by --promptgate-report")
    parser.add_argument("-o", "--output", required=True, help="merged JSON report to write")
    parser.add_argument("--markdown", help="also write the merged Markdown report here")
    parser.add_argument(
        "--rootdir", default=".", help="the repository root the suite paths are relative to"
    )
    parser.set_defaults(func=_command)
