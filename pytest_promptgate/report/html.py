"""One self-contained HTML report: inline CSS, inline JS, inline SVG charts, no URL at all.

The page is opened from CI artifacts on machines without network access and may contain hostile
model output, so every untrusted string goes through ``html_text`` and a Content-Security-Policy
allows only our own script (by hash): even a missed escape could not load or run anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from pytest_promptgate.model import CONSIDER_FINE_TUNING, RETHINK
from pytest_promptgate.report.escape import html_text, json_for_script
from pytest_promptgate.report.markdown import (
    baseline_text,
    case_location,
    comparison_text,
    cost_scope,
    cost_text,
    fmt_ms,
    fmt_p,
    fmt_pct,
    fmt_rate,
    fmt_usd,
    overall_counts,
)

HTML_OUTPUT_CHARS = 4000

_CSS = """
:root { --pass: #1a7f37; --fail: #cf222e; --warn: #9a6700; --muted: #57606a; --line: #d0d7de; }
body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1f2328; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid var(--line); padding-bottom: .3rem; }
table { border-collapse: collapse; margin: .6rem 0; }
table.wide { width: 100%; }
th, td { border: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
th.sortable { cursor: pointer; user-select: none; }
th.sortable::after { content: " \\2195"; color: var(--muted); }
th[aria-sort="ascending"]::after { content: " \\2191"; }
th[aria-sort="descending"]::after { content: " \\2193"; }
pre { white-space: pre-wrap; word-break: break-all; background: #f6f8fa; padding: .5rem; margin: .3rem 0;
      max-height: 24rem; overflow: auto; }
.verdict { font-weight: 700; padding: .05rem .4rem; border-radius: 4px; color: #fff; background: var(--muted); }
.verdict-PASS, .status-passed { background: var(--pass); }
.verdict-FAIL, .status-failed { background: var(--fail); }
.verdict-CONSIDER-FINE-TUNING, .verdict-RETHINK, .verdict-INCONCLUSIVE, .status-error { background: var(--warn); }
.status { color: #fff; padding: 0 .3rem; border-radius: 3px; }
.muted { color: var(--muted); }
.chart { margin: .5rem 0; }
.chart .rate { fill: none; stroke: #0969da; stroke-width: 2; }
.chart .threshold { stroke: var(--fail); stroke-dasharray: 4 3; }
.chart text { font-size: 10px; fill: var(--muted); }
code { background: #f6f8fa; padding: 0 .2rem; }
"""

# Sorting: numbers sort by data-sort (missing values last), text by locale. The self-test hook
# (URL ending in #selftest) exercises the sort in a headless browser and records the result
# in a data attribute, so a test can read it from the dumped DOM.
_JS = """
(function () {
  "use strict";
  function sortValue(cell, numeric) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) { raw = cell.textContent.trim(); }
    if (!numeric) { return raw.toLowerCase(); }
    var value = parseFloat(raw);
    return isNaN(value) ? null : value;
  }
  function sortTable(table, column) {
    var header = table.tHead.rows[0].cells[column];
    var numeric = header.getAttribute("data-type") === "number";
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = sortValue(a.cells[column], numeric), y = sortValue(b.cells[column], numeric);
      if (x === y) { return 0; }
      if (x === null) { return 1; }
      if (y === null) { return -1; }
      return (x < y ? -1 : 1) * (ascending ? 1 : -1);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
      th.classList.add("sortable");
      th.addEventListener("click", function () { sortTable(table, column); });
    });
  });
  var summary = JSON.parse(document.getElementById("promptgate-data").textContent);
  document.documentElement.setAttribute("data-prompts", String(summary.prompts.length));
  if (window.location.hash === "#selftest") {
    var table = document.getElementById("cases");
    var header = table.querySelector("th[data-key=latency]");
    header.click();
    var ascending = Array.prototype.map.call(table.tBodies[0].rows, function (row) {
      return sortValue(row.cells[header.cellIndex], true);
    });
    header.click();
    var descending = Array.prototype.map.call(table.tBodies[0].rows, function (row) {
      return sortValue(row.cells[header.cellIndex], true);
    });
    document.documentElement.setAttribute("data-selftest", JSON.stringify({
      ascending: ascending.slice(0, 5), descending: descending.slice(0, 5), rows: ascending.length
    }));
  }
})();
"""


def render_html(report: dict) -> str:
    """The whole report as one HTML document with no external reference."""
    verdict = str(report.get("verdict") or "UNKNOWN")
    script_hash = base64.b64encode(hashlib.sha256(_JS.encode("utf-8")).digest()).decode("ascii")
    csp = f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{script_hash}'"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Prompt gate: {html_text(verdict)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        _header(report),
    ]
    for prompt in report.get("prompts") or []:
        parts.append(_prompt_section(prompt))
    parts.append(_case_table(report))
    parts.append(_footer(report))
    parts.append(
        f'<script type="application/json" id="promptgate-data">{json_for_script(_summary_json(report))}</script>'
    )
    parts.append(f"<script>{_JS}</script>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _verdict_badge(verdict: Any) -> str:
    css = str(verdict or "").replace(" ", "-")
    return f'<span class="verdict verdict-{html_text(css)}">{html_text(verdict)}</span>'


def _header(report: dict) -> str:
    counts = overall_counts(report)
    summary = report.get("summary") or {}
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
    facts = []
    if "cases" in summary:
        facts.append(f"{summary['cases']} cases, {summary.get('errors', 0)} errors")
    if "cost_usd" in summary:
        facts.append(
            "cost "
            + fmt_usd(summary.get("cost_usd"))
            + (" (some prices unknown)" if summary.get("cost_known") is False else "")
        )
    return (
        f"<header><h1>Prompt gate: {_verdict_badge(report.get('verdict'))}</h1>"
        f'<p id="counts">{html_text(", ".join(items))}</p>'
        f'<p class="muted">{html_text(" · ".join(facts))}</p></header>'
    )


def _prompt_section(prompt: dict) -> str:
    name = prompt.get("prompt")
    rows = []
    for version in prompt.get("versions") or []:
        label = html_text(version.get("version"))
        if version.get("current"):
            label = f"<strong>{label}</strong>"
        rows.append(
            "<tr>"
            f"<td>{label}</td><td>{html_text(version.get('model'))}</td>"
            f'<td class="rate" data-sort="{version.get("rate") if version.get("rate") is not None else ""}">'
            f"{html_text(fmt_rate(version))}</td>"
            f"<td>{html_text(fmt_pct(prompt.get('threshold')))}</td>"
            f"<td>{_verdict_badge(version.get('verdict'))}</td>"
            f"<td>{html_text(baseline_text(version))}</td>"
            f"<td>{html_text(comparison_text(version))}</td>"
            f"<td>{html_text(fmt_usd(version.get('cost_usd')))}</td>"
            f"<td>{html_text(fmt_ms(version.get('latency_p95_ms')))}</td>"
            "</tr>"
        )
    notes = "".join(
        f"<li>{html_text(v.get('version'))}: {html_text(v['note'])}</li>"
        for v in prompt.get("versions") or []
        if v.get("note")
    )
    parts = [
        f'<section class="prompt" data-prompt="{html_text(name)}">',
        f"<h2>{html_text(name)} {_verdict_badge(prompt.get('verdict'))}</h2>",
        f"<p>{html_text(prompt.get('reason') or '')}</p>",
        "<table><thead><tr><th>version</th><th>model</th><th>pass rate (95% CI)</th><th>threshold</th><th>verdict</th>"
        "<th>vs baseline</th><th>vs previous</th><th>cost</th><th>p95 latency</th></tr></thead>",
        "<tbody>" + "".join(rows) + "</tbody></table>",
    ]
    if notes:
        parts.append(f"<ul>{notes}</ul>")
    parts.append(rate_svg(prompt))
    if prompt.get("verdict") in (CONSIDER_FINE_TUNING, RETHINK) and prompt.get("advice"):
        parts.append(_advice(prompt["advice"]))
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def rate_svg(prompt: dict, width: int = 360, height: int = 160) -> str:
    """Inline SVG: rate per iteration as a line with points, threshold as a dashed line."""
    points = [it for it in prompt.get("iterations") or [] if it.get("rate") is not None]
    threshold = prompt.get("threshold")
    if not points:
        return ""
    left, right, top, bottom = 36, 12, 10, 28
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(index: int) -> float:
        return left + (plot_w / 2 if len(points) == 1 else plot_w * index / (len(points) - 1))

    def y(rate: float) -> float:
        return top + plot_h * (1 - max(0.0, min(1.0, rate)))

    shapes = [
        f'<line x1="{left}" y1="{y(0):.1f}" x2="{left + plot_w}" y2="{y(0):.1f}" stroke="#d0d7de"/>',
        f'<text x="2" y="{y(1) + 4:.1f}">100%</text><text x="14" y="{y(0) + 4:.1f}">0%</text>',
    ]
    if threshold is not None:
        shapes.append(
            f'<line class="threshold" x1="{left}" y1="{y(threshold):.1f}" x2="{left + plot_w}" '
            f'y2="{y(threshold):.1f}"><title>threshold {fmt_pct(threshold)}</title></line>'
            f'<text x="{left + plot_w}" y="{y(threshold) - 3:.1f}" text-anchor="end">'
            f"threshold {fmt_pct(threshold)}</text>"
        )
    coords = " ".join(f"{x(i):.1f},{y(it['rate']):.1f}" for i, it in enumerate(points))
    shapes.append(f'<polyline class="rate" points="{coords}"/>')
    for i, it in enumerate(points):
        label = html_text(it.get("version"), 12)
        shapes.append(
            f'<circle cx="{x(i):.1f}" cy="{y(it["rate"]):.1f}" r="3.5" fill="#0969da">'
            f"<title>{label}: {fmt_pct(it['rate'])} (n={html_text(it.get('n'))})</title></circle>"
            f'<text x="{x(i):.1f}" y="{height - 8}" text-anchor="middle">{label}</text>'
        )
    title = html_text(f"{prompt.get('prompt')}: pass rate by version")
    return (
        f'<svg class="chart" role="img" aria-label="{title}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"><title>{title}</title>'
        + "".join(shapes)
        + "</svg>"
    )


def _advice(advice: dict) -> str:
    parts = [f"<h3>Advice: {html_text(advice.get('kind'))}</h3>"]
    if advice.get("message"):
        parts.append(f"<p>{html_text(advice['message'])}</p>")
    window = advice.get("window") or []
    if window:
        rows = "".join(
            f"<tr><td>{html_text(w.get('version'))}</td><td>{html_text(w.get('n'))}</td><td>{fmt_pct(w.get('rate'))}</td>"
            f"<td>{fmt_pct(w.get('ci_low'))}–{fmt_pct(w.get('ci_high'))}</td></tr>"
            for w in window
        )
        parts.append(
            "<table><thead><tr><th>version</th><th>n</th><th>pass rate</th><th>95% CI</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    items = []
    if advice.get("plateau_p_value") is not None:
        items.append(f"Plateau test: p = {fmt_p(advice['plateau_p_value'])}.")
    if advice.get("noise"):
        items.append("Different cases fail in each iteration: repeat the cases before deciding.")
    for pattern in advice.get("failing_patterns") or []:
        items.append(
            f"Case {html_text(pattern.get('case'))} failed in {html_text(pattern.get('failed_in'))} "
            f"of {html_text(pattern.get('of'))} iterations."
        )
    readiness = advice.get("readiness")
    if readiness:
        items.append(
            f"Dataset readiness: <strong>{html_text(readiness.get('status'))}</strong>: "
            f"{html_text(readiness.get('labelled', 0))} labelled examples (minimum {html_text(readiness.get('minimum', 100))}, "
            f"ideal {html_text(readiness.get('ideal', 500))})."
        )
    if advice.get("cost"):
        cost = advice["cost"]
        # cost_text produces Markdown-escaped text; strip the escapes for HTML.
        text = cost_text(cost).replace("\\_", "_").replace("`", "")
        items.append(f"{html_text(cost_scope(cost))}: {html_text(text)}")
    if items:
        parts.append("<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>")
    if advice.get("export_command"):
        parts.append(
            f"<p>Export the labelled cases:</p><pre><code>{html_text(advice['export_command'])}</code></pre>"
        )
    return "\n".join(parts)


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


def _case_table(report: dict) -> str:
    header = "".join(
        f'<th data-key="{key}" data-type="{kind}" scope="col">{html_text(title)}</th>'
        for key, title, kind in _CASE_COLUMNS
    )
    rows = [_case_row(case) for case in report.get("cases") or []]
    return (
        f'<h2>Cases ({len(rows)})</h2><p class="muted">Click a column header to sort.</p>'
        f'<table id="cases" class="sortable wide"><thead><tr>{header}</tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
    )


def _num(value: Any) -> str:
    return "" if value is None else html_text(value)


def _case_row(case: dict) -> str:
    status = str(case.get("status") or "")
    where = case_location(case)
    failures = "".join(
        f"<li><strong>{html_text(f.get('expectation'))}</strong>: {html_text(f.get('reason'), HTML_OUTPUT_CHARS)}</li>"
        for f in case.get("failures") or []
    )
    detail = [f'<span class="muted">{html_text(where)}</span>' if where else ""]
    if failures:
        detail.append(f"<ul>{failures}</ul>")
    if case.get("error"):
        detail.append(f"<pre>{html_text(case['error'], HTML_OUTPUT_CHARS)}</pre>")
    if case.get("output") is not None or case.get("vars"):
        vars_text = json.dumps(case.get("vars") or {}, ensure_ascii=False, indent=2, default=str)
        detail.append(
            "<details><summary>input and output</summary>"
            f"<pre>{html_text(vars_text, HTML_OUTPUT_CHARS)}</pre>"
            f"<pre>{html_text(case.get('output') or '', HTML_OUTPUT_CHARS)}</pre></details>"
        )
    rate = case.get("rate")
    return (
        f'<tr class="case status-row-{html_text(status)}">'
        f"<td>{html_text(case.get('prompt'))}</td><td>{html_text(case.get('version'))}</td>"
        f"<td>{html_text(case.get('case'))}</td><td>{html_text(case.get('model'))}</td>"
        f'<td><span class="status status-{html_text(status)}">{html_text(status)}</span></td>'
        f'<td data-sort="{_num(rate)}">{html_text(fmt_pct(rate)) if rate is not None else "n/a"}</td>'
        f'<td data-sort="{_num(case.get("latency_ms"))}">{html_text(fmt_ms(case.get("latency_ms")))}</td>'
        f'<td data-sort="{_num(case.get("cost_usd"))}">{html_text(fmt_usd(case.get("cost_usd")))}</td>'
        f"<td>{''.join(detail)}</td>"
        "</tr>"
    )


def _footer(report: dict) -> str:
    tool = report.get("tool") or {}
    return (
        f'<footer class="muted"><p>{html_text(tool.get("name", "pytest-promptgate"))} '
        f"{html_text(tool.get('version', ''))} · {html_text(report.get('created_at') or '')}</p></footer>"
    )


def _summary_json(report: dict) -> str:
    """A small machine-readable summary for the page's script (and for anyone scraping the file)."""
    summary = {
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
    return json.dumps(summary, ensure_ascii=False)
