"""GitHub-flavoured Markdown report: the job summary and the body of the sticky PR comment.

Input is the JSON report dict (docs/ARCHITECTURE.md). Everything a model or a case author wrote
goes through pytest_promptgate.textsafe. The document always fits in ``limit`` characters (GitHub rejects
comments of 65,536 or more): case details are trimmed first, and the document says so.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pytest_promptgate.model import CONSIDER_FINE_TUNING, FAIL, PASS, RETHINK
from pytest_promptgate.textsafe import fence, md_text, pct
from pytest_promptgate.toolcalls import format_tool_calls

REPORT_MARKER = "<!-- pytest-promptgate:report -->"
GITHUB_COMMENT_LIMIT = 65536
OUTPUT_CHARS = 1000

# (failing cases shown per prompt, characters kept per output/vars block), tried in order
# until the document fits. The last level shows no case details at all.
_DETAIL_LEVELS = ((25, OUTPUT_CHARS), (10, 500), (5, 300), (3, 150), (1, 100), (0, 0))
_FAILING_STATUSES = ("failed", "error")


# ----------------------------------------------------------------------------- formatting


def fmt_rate(entry: dict) -> str:
    """``14/20 = 70% (48–85%)``: counts, point rate and the 95% interval."""
    rate = entry.get("rate")
    if rate is None:
        return "n/a"
    text = pct(rate)
    passed, n, errors = entry.get("passed"), entry.get("n"), entry.get("errors") or 0
    if passed is not None and n is not None:
        text = f"{passed}/{n - errors} = {text}"
    if entry.get("ci_low") is not None and entry.get("ci_high") is not None:
        text += f" ({pct(entry['ci_low'])}–{pct(entry['ci_high'])})"
    return text


def fmt_delta(delta: float | None) -> str:
    if delta is None:
        return "n/a"
    points = delta * 100
    return f"{points:+.1f} pp"


def fmt_usd(value: float | None) -> str:
    if value is None:
        return "unknown"
    if value == 0:
        return "$0"
    if abs(value) >= 100:
        return f"${value:,.0f}"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    return f"${value:.4f}"


def fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} ms"


def fmt_p(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "<0.001" if value < 0.001 else f"{value:.3g}"


def baseline_text(version: dict) -> str:
    base = version.get("baseline")
    if not base:
        return "—"
    text = f"{fmt_delta(base.get('delta'))} (was {pct(base.get('rate'))})"
    fixed, broken = base.get("fixed") or [], base.get("broken") or []
    if fixed or broken:
        text += f", {len(fixed)} fixed, {len(broken)} broken"
    return text


def comparison_text(version: dict) -> str:
    comp = version.get("comparison")
    if not comp:
        return "—"
    return (
        f"{fmt_delta(comp.get('delta'))} vs {comp.get('against')} (p={fmt_p(comp.get('p_value'))})"
    )


def overall_counts(report: dict) -> dict[str, int]:
    """Prompt counts by verdict, from ``summary`` when present, else counted."""
    summary = report.get("summary") or {}
    prompts = report.get("prompts") or []
    counted = {
        "prompts": len(prompts),
        "passed": sum(p.get("verdict") == PASS for p in prompts),
        "failed": sum(p.get("verdict") == FAIL for p in prompts),
        "flagged": sum(p.get("verdict") == CONSIDER_FINE_TUNING for p in prompts),
        "inconclusive": sum(p.get("verdict") == "INCONCLUSIVE" for p in prompts),
        "rethink": sum(p.get("verdict") == RETHINK for p in prompts),
    }
    return {key: int(summary.get(key, value) or 0) for key, value in counted.items()}


def failing_cases(report: dict, prompt: str | None) -> list[dict]:
    """Failed and errored cases of one prompt, current version first, in report order."""
    entry: dict = next((p for p in report.get("prompts") or [] if p.get("prompt") == prompt), {})
    current = entry.get("current_version")
    cases = [
        c
        for c in report.get("cases") or []
        if c.get("prompt") == prompt and c.get("status") in _FAILING_STATUSES
    ]
    return sorted(cases, key=lambda c: c.get("version") != current)


def case_location(case: dict) -> str:
    """``file:line`` of a case, ``file`` alone when the line is unknown, else empty."""
    if not case.get("file"):
        return ""
    return f"{case['file']}:{case['line']}" if case.get("line") else str(case["file"])


def _label(text: Any) -> str:
    """A prompt/version name as a Mermaid label: no quotes or brackets that end the syntax."""
    return re.sub(r"[^A-Za-z0-9 ._+:/-]", "_", str(text))[:40] or "_"


# ----------------------------------------------------------------------------- sections


def headline(report: dict) -> str:
    counts = overall_counts(report)
    summary = report.get("summary") or {}
    verdict = md_text(report.get("verdict") or "UNKNOWN")
    parts = [
        f"{counts['passed']} passing",
        f"{counts['failed']} failing",
        f"{counts['flagged']} flagged for fine-tuning",
    ]
    if counts["inconclusive"]:
        parts.append(f"{counts['inconclusive']} inconclusive")
    if counts["rethink"]:
        parts.append(f"{counts['rethink']} to rethink")
    lines = [f"## Prompt gate: {verdict}", ""]
    lines.append(f"**{verdict}** · {counts['prompts']} prompts: " + ", ".join(parts) + ".")
    details = []
    if "cases" in summary:
        details.append(f"{summary['cases']} cases, {summary.get('errors', 0)} errors")
    if "cost_usd" in summary:
        cost = fmt_usd(summary.get("cost_usd"))
        if summary.get("cost_known") is False:
            cost += " (some prices unknown)"
        details.append(f"cost {cost}")
    cache = summary.get("cache") or {}
    if cache.get("hits"):
        details.append(f"cache {cache['hits']} hits, saved {fmt_usd(cache.get('saved_usd'))}")
    threshold = (report.get("settings") or {}).get("threshold")
    if threshold is not None:
        details.append(f"default threshold {pct(threshold)}")
    if details:
        lines.append("")
        lines.append(" · ".join(details))
    return "\n".join(lines)


def version_table(prompt: dict) -> str:
    threshold = prompt.get("threshold")
    rows = [
        "| version | model | pass rate (95% CI) | threshold | verdict | vs baseline | vs previous | cost | p95 latency |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for version in prompt.get("versions") or []:
        name = md_text(version.get("version"))
        if version.get("current"):
            name = f"**{name}**"
        cells = [
            name,
            md_text(version.get("model")),
            fmt_rate(version),
            pct(threshold),
            md_text(version.get("verdict")),
            md_text(baseline_text(version)),
            md_text(comparison_text(version)),
            fmt_usd(version.get("cost_usd")),
            fmt_ms(version.get("latency_p95_ms")),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    notes = [
        f"- {md_text(v.get('version'))}: {md_text(v['note'])}"
        for v in prompt.get("versions") or []
        if v.get("note")
    ]
    notes += [  # promptfoo's `metric`s, when the suite names any
        f"- {md_text(v.get('version'))} metrics: "
        + ", ".join(
            f"{md_text(name)} {m.get('passed')}/{m.get('n')} ({pct(m.get('rate'))})"
            for name, m in v["metrics"].items()
        )
        for v in prompt.get("versions") or []
        if v.get("metrics")
    ]
    return "\n".join(rows + ([""] + notes if notes else []))


def rate_chart(prompt: dict) -> str:
    """Mermaid line chart of the rate per iteration with the threshold as a flat second line."""
    points = [it for it in prompt.get("iterations") or [] if it.get("rate") is not None]
    threshold = prompt.get("threshold")
    if len(points) < 2 or threshold is None:
        return ""
    labels = ", ".join(f'"{_label(it.get("version"))}"' for it in points)
    rates = ", ".join(f"{it['rate'] * 100:.1f}" for it in points)
    limit_line = ", ".join(f"{threshold * 100:.1f}" for _ in points)
    return "\n".join(
        [
            "```mermaid",
            "xychart-beta",
            f'    title "{_label(prompt.get("prompt"))}: pass rate by version (threshold {threshold * 100:.0f}%)"',
            f"    x-axis [{labels}]",
            '    y-axis "pass rate (%)" 0 --> 100',
            f"    line [{rates}]",
            f"    line [{limit_line}]",
            "```",
        ]
    )


def advice_section(prompt: dict, heading: str = "####") -> str:
    """Evidence, readiness, cost and export command for CONSIDER FINE-TUNING / RETHINK."""
    advice = prompt.get("advice") or {}
    if not advice:
        return ""
    lines = [f"{heading} Advice: {md_text(advice.get('kind', ''))}", ""]
    if advice.get("message"):
        lines += [md_text(advice["message"]), ""]
    window = advice.get("window") or []
    if window:
        lines += [
            f"Evidence window ({len(window)} iterations):",
            "",
            "| version | n | pass rate | 95% CI |",
            "|---|---|---|---|",
        ]
        for item in window:
            lines.append(
                f"| {md_text(item.get('version'))} | {item.get('n', 'n/a')} | {pct(item.get('rate'))} "
                f"| {pct(item.get('ci_low'))}–{pct(item.get('ci_high'))} |"
            )
        lines.append("")
    if advice.get("plateau_p_value") is not None:
        lines.append(
            f"- Plateau test: p = {fmt_p(advice['plateau_p_value'])} (no significant improvement across the window)."
        )
    if advice.get("noise"):
        lines.append(
            "- Different cases fail in each iteration: this looks like noise. Repeat the cases (`repeat:`) before deciding."
        )
    for pattern in advice.get("failing_patterns") or []:
        lines.append(
            f"- Case **{md_text(pattern.get('case'))}** failed in {pattern.get('failed_in')} of {pattern.get('of')} iterations."
        )
    readiness = advice.get("readiness")
    if readiness:
        labels = ", ".join(
            f"{md_text(k)}: {v}" for k, v in (readiness.get("per_label") or {}).items()
        )
        lines.append(
            f"- Dataset readiness: **{md_text(readiness.get('status'))}**: {readiness.get('labelled', 0)} labelled examples "
            f"({readiness.get('unlabelled', 0)} unlabelled); minimum {readiness.get('minimum', 100)}, "
            f"ideal {readiness.get('ideal', 500)}." + (f" Per label: {labels}." if labels else "")
        )
    cost = advice.get("cost")
    if cost:
        lines.append(f"- {md_text(cost_scope(cost))}: " + cost_text(cost))
    if advice.get("export_command"):
        lines += [
            "",
            "Export the labelled cases for fine-tuning:",
            "",
            fence(advice["export_command"], "sh"),
        ]
    return "\n".join(lines).rstrip()


def cost_scope(cost: dict) -> str:
    """What the cost estimate covers; a suite without `usage:` gets the training cost only."""
    months, calls = cost.get("months"), cost.get("calls_per_month")
    if months is None or calls is None:
        note = cost.get("note")
        return f"Cost ({note})" if note else "Cost (no `usage:` in the suite: training cost only)"
    return f"Cost over {months} months at {calls:,} calls/month"


def cost_text(cost: dict) -> str:
    prompt_path = cost.get("prompt_path_usd")
    finetune = cost.get("finetune_path_usd") or {}
    text = f"prompt path {fmt_usd(prompt_path) if prompt_path is not None else 'unknown (model price unknown)'}"
    if finetune:
        text += f"; fine-tune path {fmt_usd(finetune.get('low'))}–{fmt_usd(finetune.get('high'))}"
    text += "."
    defaults = set(cost.get("defaults_used") or [])
    assumptions = []
    for name, value in (cost.get("assumptions") or {}).items():
        shown = "–".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
        source = "default" if name in defaults else "from the suite"
        assumptions.append(f"{md_text(name)} = {md_text(shown)} ({source})")
    if assumptions:
        text += " Assumptions: " + "; ".join(assumptions) + "."
    if defaults:
        text += " Set `usage:` and `finetune:` in the suite to replace the defaults."
    return text


def case_details(report: dict, prompt: dict, max_cases: int, chars: int) -> tuple[str, int, int]:
    """Collapsed failing cases; returns (markdown, cases shown, cases in total)."""
    cases = failing_cases(report, prompt.get("prompt"))
    if not cases or max_cases <= 0:
        return "", 0, len(cases)
    shown = cases[:max_cases]
    lines = [
        "<details>",
        f"<summary>Failing cases of {md_text(prompt.get('prompt'))} ({len(cases)})</summary>",
        "",
    ]
    for case in shown:
        where = case_location(case)
        lines.append(
            f"**{md_text(case.get('case'))}** · {md_text(case.get('version'))} · {md_text(case.get('model'))} · "
            f"{md_text(case.get('status'))}" + (f" · {md_text(where)}" if where else "")
        )
        lines.append("")
        for failure in case.get("failures") or []:
            lines.append(
                f"- **{md_text(failure.get('expectation'))}**: {md_text(failure.get('reason'), chars)}"
            )
        if case.get("failures"):
            lines.append("")
        if case.get("vars"):
            lines += ["Input vars:", fence(_json(case["vars"]), "json", chars), ""]
        if case.get("error"):
            lines += ["Error:", fence(case["error"], "", chars), ""]
        if case.get("output") is not None and (case["output"] or not case.get("tool_calls")):
            lines += ["Output:", fence(case["output"], "text", chars), ""]
        if case.get("tool_calls"):
            calls = "\n".join(format_tool_calls(case["tool_calls"]))
            lines += ["Tool calls:", fence(calls, "text", chars), ""]
    if len(cases) > len(shown):
        lines += [
            f"_{len(cases) - len(shown)} more failing cases are in the JSON and HTML reports._",
            "",
        ]
    lines.append("</details>")
    return "\n".join(lines), len(shown), len(cases)


def _json(value: Any) -> str:
    compact = json.dumps(value, ensure_ascii=False, default=str)
    return (
        compact
        if len(compact) <= 100
        else json.dumps(value, ensure_ascii=False, indent=2, default=str)
    )


def prompt_section(report: dict, prompt: dict, max_cases: int, chars: int) -> tuple[str, int, int]:
    name = md_text(prompt.get("prompt"))
    parts = [f"### {name}: {md_text(prompt.get('verdict'))}", ""]
    if prompt.get("reason"):
        parts += [md_text(prompt["reason"]), ""]
    parts += [version_table(prompt), ""]
    chart = rate_chart(prompt)
    if chart:
        parts += [chart, ""]
    if prompt.get("verdict") in (CONSIDER_FINE_TUNING, RETHINK):
        advice = advice_section(prompt)
        if advice:
            parts += [advice, ""]
    details, shown, total = case_details(report, prompt, max_cases, chars)
    if details:
        parts += [details, ""]
    return "\n".join(parts), shown, total


# ----------------------------------------------------------------------------- document


def render_markdown(report: dict, limit: int = 65000) -> str:
    """The whole report as Markdown, starting with the sticky-comment marker, < ``limit`` chars."""
    for level, (max_cases, chars) in enumerate(_DETAIL_LEVELS):
        document = _document(report, max_cases, chars, trimmed=level > 0, max_prompts=None)
        if len(document) < limit:
            return document
    # Even without case details too long (hundreds of prompts): drop whole prompt sections.
    prompts = report.get("prompts") or []
    low, high = 0, len(prompts)
    while low < high:
        middle = (low + high + 1) // 2
        if len(_document(report, 0, 0, trimmed=True, max_prompts=middle)) < limit:
            low = middle
        else:
            high = middle - 1
    document = _document(report, 0, 0, trimmed=True, max_prompts=low)
    return document if len(document) < limit else document[: limit - 1]


def _document(
    report: dict, max_cases: int, chars: int, trimmed: bool, max_prompts: int | None
) -> str:
    prompts = report.get("prompts") or []
    shown_prompts = prompts if max_prompts is None else prompts[:max_prompts]
    sections, shown_cases, total_cases = [], 0, 0
    for prompt in shown_prompts:
        text, shown, total = prompt_section(report, prompt, max_cases, chars)
        sections.append(text)
        shown_cases += shown
        total_cases += total
    parts = [REPORT_MARKER, headline(report), ""]
    if trimmed:
        note = (
            f"> Trimmed to fit GitHub's 65,536-character limit: showing {shown_cases} of {total_cases} failing "
            f"cases" + (f", outputs cut to {chars:,} characters" if chars else "") + "."
        )
        if max_prompts is not None and max_prompts < len(prompts):
            note += f" {len(prompts) - max_prompts} of {len(prompts)} prompts are not shown."
        parts += [note + " The JSON and HTML reports have everything.", ""]
    parts += sections
    parts.append(_footer(report))
    return "\n".join(parts).rstrip() + "\n"


def _footer(report: dict) -> str:
    tool = report.get("tool") or {}
    created = md_text(report.get("created_at") or "")
    return f"<sub>{md_text(tool.get('name', 'pytest-promptgate'))} {md_text(tool.get('version', ''))} · {created}</sub>"
