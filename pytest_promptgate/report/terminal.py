"""The terminal summary: one row per prompt version, then what to do about the failures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_promptgate.advisor import try_model_sentence
from pytest_promptgate.model import CONSIDER_FINE_TUNING, PASS, RETHINK
from pytest_promptgate.textsafe import one_line, pct
from pytest_promptgate.toolcalls import format_tool_calls

MAX_FAILING_SHOWN = 10
MAX_TOOL_CALLS_SHOWN = 3  # per failing case
NONE_SHOWN = "—"  # a rate that does not exist yet (no case ran)


def _money(value: float | None) -> str:
    if value is None:
        return "unknown"
    return "$0" if value == 0 else f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def render_terminal(report: Mapping[str, Any]) -> str:
    from tabulate import tabulate

    rows = []
    for prompt in report["prompts"]:
        for version in prompt["versions"]:
            marker = "*" if version.get("current") else ""
            errors = f" +{version['errors']} err" if version.get("errors") else ""
            rows.append(
                [
                    prompt["prompt"],
                    f"{version['version']}{marker}",
                    version["model"],
                    f"{version['passed']}/{version['n']}{errors}",
                    pct(version["rate"], 0, missing=NONE_SHOWN),
                    f"{pct(version['ci_low'], 0, missing=NONE_SHOWN)}–{pct(version['ci_high'], 0, missing=NONE_SHOWN)}",
                    pct(prompt["threshold"], 0, missing=NONE_SHOWN),
                    version["verdict"] if not version.get("current") else prompt["verdict"],
                    _money(version.get("cost_usd")),
                    _ms(version.get("latency_p95_ms")),
                ]
            )
    headers = [
        "prompt",
        "version",
        "model",
        "passed/n",
        "rate",
        "95% interval",
        "threshold",
        "verdict",
        "cost",
        "p95 latency",
    ]
    lines = [tabulate(rows, headers=headers, tablefmt="simple"), "(* current version)"]

    cases_by_key: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for case in report.get("cases", []):
        cases_by_key.setdefault((case["prompt"], case["version"]), []).append(case)

    for prompt in report["prompts"]:
        verdict = prompt["verdict"]
        if verdict == PASS:
            continue
        lines.append("")
        lines.append(f"{prompt['prompt']}: {verdict} — {one_line(prompt.get('reason', ''), 200)}")
        current = prompt.get("current_version")
        for version in prompt["versions"]:
            if version.get("note") and version["version"] == current:
                lines.append(f"  note: {one_line(version['note'], 200)}")
        failing = [
            c for c in cases_by_key.get((prompt["prompt"], current), []) if c["status"] == "failed"
        ]
        for case in failing[:MAX_FAILING_SHOWN]:
            reason = case["failures"][0]["reason"] if case.get("failures") else ""
            expectation = case["failures"][0]["expectation"] if case.get("failures") else ""
            where = f"{case['file']}:{case['line']}" if case.get("line") else case.get("file", "")
            lines.append(f"  ✗ {case['case']} ({where}) {expectation}: {one_line(reason)}")
            for call in format_tool_calls(case.get("tool_calls"))[:MAX_TOOL_CALLS_SHOWN]:
                lines.append(f"      tool call: {one_line(call, 120)}")
        if len(failing) > MAX_FAILING_SHOWN:
            lines.append(
                f"  … and {len(failing) - MAX_FAILING_SHOWN} more failing case(s) (see the JSON/Markdown report)"
            )
        advice = prompt.get("advice")
        if advice and verdict in (CONSIDER_FINE_TUNING, RETHINK):
            lines.extend(_advice_lines(advice))
    summary = report.get("summary", {})
    cache = summary.get("cache") or {}
    run = report.get("run") or {}
    lines.append("")
    lines.append(
        f"promptgate: {report['verdict']} — {summary.get('prompts', 0)} prompt(s): "
        f"{summary.get('passed', 0)} pass, {summary.get('failed', 0)} fail, {summary.get('flagged', 0)} consider fine-tuning, "
        f"{summary.get('rethink', 0)} rethink, {summary.get('inconclusive', 0)} inconclusive; "
        f"{summary.get('cases', 0)} case(s), {summary.get('errors', 0)} error(s); cost "
        f"{_money(summary.get('cost_usd')) if summary.get('cost_known', True) else 'unknown (some prices unknown)'}"
    )
    if cache or run:
        lines.append(
            f"promptgate: {run.get('calls', 0)} model call(s) in {run.get('model_phase_s', 0):.2f}s"
            + (f" by {run['call_workers']} worker processes" if run.get("call_workers") else "")
            + "; cache "
            f"{cache.get('hits', 0)} hit(s), {cache.get('misses', 0)} miss(es), saved {_money(cache.get('saved_usd', 0.0))}"
        )
    return "\n".join(lines)


def _advice_lines(advice: Mapping[str, Any]) -> list[str]:
    lines = [f"  advice: {one_line(advice.get('message', ''), 200)}"]
    window = advice.get("window") or []
    if window:
        lines.append(
            "  evidence: "
            + ", ".join(
                f"{w['version']} {pct(w['rate'], 0, missing=NONE_SHOWN)} (n={w['n']})"
                for w in window
            )
        )
    readiness = advice.get("readiness")
    if readiness:
        lines.append(
            f"  data: {readiness.get('labelled', 0)} labelled case(s) — minimum {readiness.get('minimum', 100)}, "
            f"ideal {readiness.get('ideal', 500)}: {readiness.get('status', '?')}"
        )
    cost = advice.get("cost")
    if cost:
        finetune = cost.get("finetune_path_usd") or {}
        prompt_path = cost.get("prompt_path_usd")
        if finetune:
            lines.append(
                f"  cost: prompt path {_money(prompt_path)}, fine-tune path "
                f"{_money(finetune.get('low'))}–{_money(finetune.get('high'))}"
                + (
                    f" (defaults: {', '.join(cost.get('defaults_used', []))})"
                    if cost.get("defaults_used")
                    else ""
                )
            )
    if advice.get("export_command"):
        lines.append(f"  export: {advice['export_command']}")
    if advice.get("try_model"):  # the advice message is clipped above; this line is not
        sentence = try_model_sentence(
            advice["try_model"],
            usage_given=(cost or {}).get("calls_per_month") is not None,
            current_cost_per_call=(cost or {}).get("cost_per_call_usd"),
        )
        lines.append(f"  try first: {one_line(sentence, 300)}")
    return lines
