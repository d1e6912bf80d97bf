"""One self-contained HTML report: inline CSS, inline JS, inline SVG charts, no URL at all.

The page is ``templates/report.html.j2``, rendered with autoescaping on: a value printed by the
template is escaped by construction, and the environment's ``finalize`` hook first removes
control characters, neutralizes @mentions and workflow commands (``textsafe.clean``). The page is
opened from CI artifacts on machines without network access and may contain hostile model
output, so a Content-Security-Policy also allows only our own script (by hash): even a missed
escape could not load or run anything.

This module only computes what a template should not: the chart geometry and the script hash.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from pytest_promptgate.model import CONSIDER_FINE_TUNING, RETHINK
from pytest_promptgate.report.markdown import (
    baseline_text,
    case_location,
    comparison_text,
    cost_scope,
    cost_text,
    fmt_ms,
    fmt_p,
    fmt_rate,
    fmt_usd,
    overall_counts,
)
from pytest_promptgate.textsafe import clean, pct
from pytest_promptgate.toolcalls import format_tool_calls

HTML_OUTPUT_CHARS = 4000

_CASE_COLUMNS = (
    ("prompt", "prompt", "text"),
    ("version", "version", "text"),
    ("case", "case", "text"),
    ("model", "model", "text"),
    ("status", "status", "text"),
    ("rate", "rate", "number"),
    ("latency", "latency (ms)", "number"),
    ("cost", "cost (USD)", "number"),
    ("details", "failed expectations / output", "text"),
)

# Chart layout, in SVG pixels. A version label wraps at LABEL_LINE_CHARS characters per line
# (preferably after - _ . / or a space) and shows whole up to LABEL_MAX_LINES lines; a longer
# one ends in "…" and its tooltip holds it whole.
COLUMN_WIDTH = 110
LABEL_LINE_CHARS = 14
LABEL_MAX_LINES = 6
LINE_HEIGHT = 12
_PLOT_LEFT, _PLOT_TOP, _PLOT_HEIGHT, _RIGHT_MARGIN, _MIN_WIDTH = 44, 14, 160, 92, 420
_LABEL_PIECE_RE = re.compile(r"[^-_./ ]*[-_./ ]?")


# ----------------------------------------------------------------------------- chart geometry


@dataclass(frozen=True)
class Tick:
    rate: float
    y: float
    label: str


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    label: str
    label_lines: tuple[str, ...]
    rate_text: str
    n: Any
    current: bool
    low_y: float | None = None
    high_y: float | None = None
    interval_text: str = ""


@dataclass(frozen=True)
class RateChart:
    """Everything the template needs to draw one prompt's pass rate by version."""

    title: str
    width: int
    height: int
    plot_left: int
    plot_right: int
    label_top: int
    line_height: int
    ticks: tuple[Tick, ...]
    points: tuple[ChartPoint, ...]
    threshold_y: float | None
    threshold_text: str


def wrap_label(
    label: str, width: int = LABEL_LINE_CHARS, max_lines: int = LABEL_MAX_LINES
) -> tuple[str, ...]:
    """Lines of at most ``width`` characters whose concatenation is ``label`` (when it fits)."""
    lines: list[str] = []
    line = ""
    for piece in _LABEL_PIECE_RE.findall(label):
        while len(piece) > width:  # a run with no break point: split it hard
            if line:
                lines.append(line)
                line = ""
            lines.append(piece[:width])
            piece = piece[width:]
        if len(line) + len(piece) > width:
            lines.append(line)
            line = ""
        line += piece
    if line or not lines:
        lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: width - 1] + "…"
    return tuple(lines)


def rate_chart(prompt: Mapping[str, Any]) -> RateChart | None:
    """The chart of a prompt's iterations (history and this run), or None without rates."""
    iterations = [it for it in prompt.get("iterations") or [] if it.get("rate") is not None]
    if not iterations:
        return None
    threshold = prompt.get("threshold")
    plot_width = max(COLUMN_WIDTH * len(iterations), _MIN_WIDTH - _PLOT_LEFT - _RIGHT_MARGIN)
    column = plot_width / len(iterations)

    def y(rate: float) -> float:
        return _PLOT_TOP + _PLOT_HEIGHT * (1 - max(0.0, min(1.0, float(rate))))

    current = prompt.get("current_version")
    points = []
    for index, it in enumerate(iterations):
        label = clean(it.get("version"))
        low, high = it.get("ci_low"), it.get("ci_high")
        has_interval = low is not None and high is not None
        points.append(
            ChartPoint(
                x=_PLOT_LEFT + column * (index + 0.5),
                y=y(it["rate"]),
                label=label,
                label_lines=wrap_label(label),
                rate_text=pct(it["rate"]),
                n=it.get("n"),
                current=it.get("source") == "run" and it.get("version") == current,
                low_y=y(low) if has_interval else None,
                high_y=y(high) if has_interval else None,
                interval_text=f"{pct(low)}–{pct(high)}" if has_interval else "",
            )
        )
    label_top = _PLOT_TOP + _PLOT_HEIGHT + 18
    lines = max(len(point.label_lines) for point in points)
    return RateChart(
        title=f"{clean(prompt.get('prompt'))}: pass rate by version",
        width=_PLOT_LEFT + int(plot_width) + _RIGHT_MARGIN,
        height=label_top + (lines - 1) * LINE_HEIGHT + 10,
        plot_left=_PLOT_LEFT,
        plot_right=_PLOT_LEFT + int(plot_width),
        label_top=label_top,
        line_height=LINE_HEIGHT,
        ticks=tuple(Tick(rate, y(rate), pct(rate)) for rate in (0, 0.25, 0.5, 0.75, 1)),
        points=tuple(points),
        threshold_y=None if threshold is None else y(threshold),
        threshold_text="" if threshold is None else f"threshold {pct(threshold)}",
    )


# ----------------------------------------------------------------------------- rendering


def _finalize(value: Any) -> Any:
    """Every printed value: ours (Markup) as is, nothing for None, text cleaned, then escaped."""
    if value is None:
        return ""
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    return clean(value)


def _cost_text_plain(cost: dict) -> str:
    # cost_text produces Markdown-escaped text; the template escapes for HTML instead.
    return cost_text(cost).replace("\\_", "_").replace("`", "")


@functools.cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("pytest_promptgate.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        # Escaped here, once, so finalize does not clean 4,000 characters a second time.
        cut=lambda text, limit: escape(clean(text, limit)),
        pct=pct,
        coord=lambda value: f"{value:.1f}",
        sort_key=lambda value: "" if value is None else value,
        pretty_json=lambda value: json.dumps(value, ensure_ascii=False, indent=2, default=str),
        fmt_rate=fmt_rate,
        fmt_usd=fmt_usd,
        fmt_ms=fmt_ms,
        fmt_p=fmt_p,
        baseline_text=baseline_text,
        comparison_text=comparison_text,
        case_location=case_location,
        cost_scope=cost_scope,
        cost_text=_cost_text_plain,
        tool_calls=lambda calls: "\n".join(format_tool_calls(calls)),
    )
    return env


@functools.cache
def _script() -> tuple[Markup, str]:
    """Our one script (a static file of this package) and its CSP hash."""
    loader = _environment().loader
    assert loader is not None
    source = loader.get_source(_environment(), "report.js")[0]
    digest = base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii")
    # Markup: the script is our own file, never model output; escaping would break it.
    return Markup(source), digest


def render_html(report: dict) -> str:
    """The whole report as one HTML document with no external reference."""
    script, digest = _script()
    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{digest}'"
    )
    prompts: Sequence[dict] = report.get("prompts") or []
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            report=report,
            verdict=str(report.get("verdict") or "UNKNOWN"),
            counts_text=_counts_text(report),
            facts_text=_facts_text(report),
            prompts=[(prompt, rate_chart(prompt)) for prompt in prompts],
            advised_verdicts=(CONSIDER_FINE_TUNING, RETHINK),
            case_columns=_CASE_COLUMNS,
            output_chars=HTML_OUTPUT_CHARS,
            summary=_summary(report),
            csp=csp,
            script=script,
        )
    )


def _counts_text(report: dict) -> str:
    counts = overall_counts(report)
    items = [
        f"{counts['prompts']} prompts",
        f"{counts['passed']} passing",
        f"{counts['failed']} failing",
        f"{counts['flagged']} flagged for fine-tuning",
    ]
    if counts["inconclusive"]:
        items.append(f"{counts['inconclusive']} inconclusive")
    if counts["rethink"]:
        items.append(f"{counts['rethink']} to rethink")
    return ", ".join(items)


def _facts_text(report: dict) -> str:
    summary = report.get("summary") or {}
    facts = []
    if "cases" in summary:
        facts.append(f"{summary['cases']} cases, {summary.get('errors', 0)} errors")
    if "cost_usd" in summary:
        unknown = " (some prices unknown)" if summary.get("cost_known") is False else ""
        facts.append(f"cost {fmt_usd(summary.get('cost_usd'))}{unknown}")
    return " · ".join(facts)


def _summary(report: dict) -> dict[str, Any]:
    """A small machine-readable summary for the page's script (and for anyone scraping the file)."""
    return {
        "verdict": report.get("verdict"),
        "prompts": [
            {
                "prompt": p.get("prompt"),
                "verdict": p.get("verdict"),
                "rates": [v.get("rate") for v in p.get("versions") or []],
            }
            for p in report.get("prompts") or []
        ],
    }
