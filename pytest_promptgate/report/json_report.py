"""The JSON report: assembled from evaluated prompts and case results, written atomically.

The schema is documented in README.md ("JSON report") and docs/ARCHITECTURE.md. Every other
report (terminal, Markdown, HTML, GitHub) renders from this document, so that
`promptgate report REPORT.json` can re-render any of them later.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_promptgate.atomic import write_atomic
from pytest_promptgate.model import (
    CONSIDER_FINE_TUNING,
    ERROR,
    FAIL,
    INCONCLUSIVE,
    PASS,
    RETHINK,
    SCHEMA_VERSION,
    CallResult,
    CaseResult,
    PromptgateError,
    call_extras_to_dict,
)
from pytest_promptgate.textsafe import truncate

# Outputs longer than this are cut in the JSON report (the cache keeps the full text).
MAX_OUTPUT_CHARS = 20_000


def _tool_version() -> str:
    try:
        from importlib.metadata import version

        return version("pytest-promptgate")
    except Exception:  # not installed (running from a checkout)
        return "0.0.0+unknown"


def case_entry(result: CaseResult, *, file: str | None = None) -> dict[str, Any]:
    """The `cases[]` entry of one CaseResult."""
    samples = result.samples
    first = samples[0] if samples else None
    failures: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for sample in samples:
        for check in sample.checks:
            if not check.passed and (check.expectation, check.reason) not in seen:
                seen.add((check.expectation, check.reason))
                failures.append({"expectation": check.expectation, "reason": check.reason})
    errors = [s.call.error for s in samples if s.call.error]
    # The output shown is the first failing sample's (the interesting one), else the first.
    shown = next((s for s in samples if s.status != "passed"), first)
    prompt_tokens = [s.call.prompt_tokens for s in samples if s.call.prompt_tokens is not None]
    completion_tokens = [
        s.call.completion_tokens for s in samples if s.call.completion_tokens is not None
    ]
    costs = [s.call.cost_usd for s in samples if s.call.ok]
    latencies = [s.call.latency_ms for s in samples if s.call.ok]
    location = result.location
    entry = {
        "prompt": result.prompt,
        "version": result.version,
        "case": result.case,
        "model": result.model,
        "file": location.file if location else file,
        "line": location.line if location else None,
        "status": result.status,
        "vars": dict(result.vars),
        "messages": [_shown_message(m) for m in result.messages],
        "output": (
            truncate(shown.call.output, MAX_OUTPUT_CHARS, newline=True)
            if shown and shown.call.output is not None
            else None
        ),
        "failures": failures,
        "error": errors[0] if errors else None,
        "error_kind": next((s.call.error_kind for s in samples if s.call.error_kind), None),
        "tokens": {"prompt": sum(prompt_tokens), "completion": sum(completion_tokens)},
        "cost_usd": None
        if any(c is None for c in costs)
        else round(sum(c or 0.0 for c in costs), 8),
        "latency_ms": round(sum(latencies) / len(latencies), 2) if latencies else None,
        "samples": len(samples),
        "rate": result.rate,
        "flaky": result.flaky,
        "cached": bool(samples) and all(s.call.cached for s in samples),
    }
    if shown is not None:
        entry.update(reply_extras(shown.call))
    return entry


# An inline image (a base64 data: URL) is cut to this many characters in a report's messages.
MAX_DATA_URL_CHARS = 120


def _shown_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A prompt message as a report shows it: inline images cut (a 1 MB photo repeated in
    every case would swamp the report; the cache key holds the whole image)."""
    shown = dict(message)
    content = shown.get("content")
    if isinstance(content, list):
        parts = []
        for part in content:
            url = part.get("image_url", {}).get("url") if isinstance(part, Mapping) else None
            if isinstance(url, str) and url.startswith("data:"):
                part = {
                    **part,
                    "image_url": {**part["image_url"], "url": truncate(url, MAX_DATA_URL_CHARS)},
                }
            parts.append(part)
        shown["content"] = parts
    return shown


def reply_extras(call: CallResult) -> dict[str, Any]:
    """The optional `tool_calls`, `finish_reason` and `structured` of a case entry (schema 1,
    added by issue 13): each present only when the shown reply has it (older readers ignore
    them). Long argument texts are cut like outputs."""
    extras = call_extras_to_dict(call)
    for item in extras.get("tool_calls", []):
        item["raw_arguments"] = truncate(item["raw_arguments"], MAX_OUTPUT_CHARS, newline=True)
        if len(json.dumps(item["arguments"], ensure_ascii=False)) > MAX_OUTPUT_CHARS:
            item["arguments"] = None  # too big to repeat; the raw text (cut) stays
    if "structured" in extras and len(json.dumps(extras["structured"])) > MAX_OUTPUT_CHARS:
        del extras["structured"]  # the output text holds it (cut)
    return extras


def summarize(
    prompts: Sequence[Mapping[str, Any]],
    cases: Sequence[Mapping[str, Any]],
    cache: Mapping[str, Any],
) -> dict[str, Any]:
    verdicts = [p["verdict"] for p in prompts]
    costs = [c["cost_usd"] for c in cases if c["status"] != ERROR]
    return {
        "prompts": len(prompts),
        "passed": verdicts.count(PASS),
        "failed": verdicts.count(FAIL),
        "flagged": verdicts.count(CONSIDER_FINE_TUNING),
        "inconclusive": verdicts.count(INCONCLUSIVE),
        "rethink": verdicts.count(RETHINK),
        "cases": len(cases),
        "errors": sum(1 for c in cases if c["status"] == ERROR),
        "cost_usd": round(sum(c for c in costs if c is not None), 8),
        "cost_known": all(c is not None for c in costs),
        "cache": dict(cache),
    }


def build_report(
    *,
    prompts: Sequence[Mapping[str, Any]],
    cases: Sequence[Mapping[str, Any]],
    verdict: str,
    exit_status: int,
    settings: Mapping[str, Any],
    cache: Mapping[str, Any] | None = None,
    run: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "pytest-promptgate", "version": _tool_version()},
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "verdict": verdict,
        "exit_status": exit_status,
        "settings": dict(settings),
        "summary": summarize(prompts, cases, cache or {"hits": 0, "misses": 0, "saved_usd": 0.0}),
        "run": dict(run or {}),
        "prompts": [dict(p) for p in prompts],
        "cases": [dict(c) for c in cases],
    }


def write_text_atomic(path: Path, text: str) -> None:
    """Write a whole report or nothing: a killed run never leaves half a file."""
    write_atomic(path, text)


def write_json_atomic(path: Path, document: Mapping[str, Any]) -> None:
    write_text_atomic(path, dumps_report(document))


def dumps_report(document: Mapping[str, Any]) -> str:
    """The report as indented JSON with one line per case: as readable as ``indent=2`` and
    diff-friendly, and the bulk (the cases) goes through json's C encoder, which ``indent``
    turns off (2,000 cases: ~0.05 s instead of ~0.3 s)."""
    cases = document.get("cases")
    if not isinstance(cases, list) or not cases:
        return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    placeholder = f"\x00cases-{secrets.token_hex(8)}\x00"
    head = json.dumps(
        {**document, "cases": placeholder}, indent=2, ensure_ascii=False, allow_nan=False
    )
    rows = ",\n    ".join(json.dumps(case, ensure_ascii=False, allow_nan=False) for case in cases)
    return head.replace(json.dumps(placeholder), "[\n    " + rows + "\n  ]", 1) + "\n"


def read_report(path: Path) -> dict[str, Any]:
    """Read a report written by this or an older version; refuse a newer schema clearly."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PromptgateError(
            f"report file {path} does not exist", hint="pass the path given to --promptgate-report"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PromptgateError(
            f"{path} is not a readable JSON report: {exc}",
            hint="re-run pytest with --promptgate-report to produce it",
        ) from None
    if (
        not isinstance(document, dict)
        or "schema_version" not in document
        or "prompts" not in document
    ):
        raise PromptgateError(
            f"{path} is not a pytest-promptgate report (no schema_version/prompts)",
            hint="pass the file written by --promptgate-report",
        )
    schema = document.get("schema_version")
    if not isinstance(schema, int) or schema > SCHEMA_VERSION:
        raise PromptgateError(
            f"{path} uses report schema {schema!r}, newer than this version understands ({SCHEMA_VERSION})",
            hint="upgrade pytest-promptgate to read it",
        )
    return document
