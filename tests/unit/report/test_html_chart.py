"""The HTML report's rate charts, read back from the SVG: whole labels, threshold, intervals."""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
from helpers.sample_report import LONG_LABELS, long_label_report, sample_report

from pytest_promptgate.report import html as html_report
from pytest_promptgate.report.html import LABEL_LINE_CHARS, render_html, wrap_label

SVG = "{http://www.w3.org/2000/svg}"
TEMPLATES = Path(html_report.__file__).parent / "templates"


def charts(document: str) -> dict[str, ElementTree.Element]:
    """Each chart's SVG element, by the prompt of its section."""
    found = {}
    for section in re.findall(r'<section class="prompt".*?</section>', document, re.S):
        prompt = re.search(r'data-prompt="([^"]*)"', section).group(1)
        svg = re.search(r"<svg.*?</svg>", section, re.S)
        if svg:
            found[prompt] = ElementTree.fromstring(svg.group(0))
    return found


def axis(svg: ElementTree.Element):
    """rate -> y, from the chart's own 0% and 100% grid lines."""
    grid = {
        float(line.get("data-rate")): float(line.get("y1"))
        for line in svg.iter(f"{SVG}line")
        if line.get("class") == "grid"
    }
    assert grid[0.0] > grid[1.0], "0% is drawn below 100%"
    return lambda rate: grid[0.0] + (grid[1.0] - grid[0.0]) * rate


def version_labels(svg: ElementTree.Element) -> list[list[str]]:
    return [
        [tspan.text or "" for tspan in text.iter(f"{SVG}tspan")]
        for text in svg.iter(f"{SVG}text")
        if text.get("class") == "version"
    ]


def test_long_version_labels_appear_whole_wrapped_in_lines_that_fit_their_column():
    svg = charts(render_html(long_label_report()))["invoice-extract"]
    labels = version_labels(svg)
    assert ["".join(lines) for lines in labels] == list(LONG_LABELS.values())
    longest = labels[-1]
    assert len(longest) > 1, "the 33-character label wraps"
    assert all(len(line) <= LABEL_LINE_CHARS for lines in labels for line in lines)
    assert "…" not in "".join("".join(lines) for lines in labels)
    # The lines of one label stack downwards; the chart is tall enough to hold them.
    tspans = [t for t in svg.iter(f"{SVG}tspan")][-len(longest) :]
    assert [float(t.get("dy")) for t in tspans][1:] == [html_report.LINE_HEIGHT] * (
        len(longest) - 1
    )
    label_top = float(
        next(t for t in svg.iter(f"{SVG}text") if t.get("class") == "version").get("y")
    )
    assert label_top + (len(longest) - 1) * html_report.LINE_HEIGHT < float(svg.get("height"))


def test_version_columns_do_not_overlap_and_the_chart_grows_with_the_history():
    report = long_label_report()
    prompt = report["prompts"][0]
    base = prompt["iterations"][0]
    prompt["iterations"] = [
        {**base, "version": f"v{i}-iteration-with-a-long-name", "rate": 0.5 + i / 100}
        for i in range(12)
    ]
    svg = charts(render_html(report))["invoice-extract"]
    xs = [float(c.get("cx")) for c in svg.iter(f"{SVG}circle")]
    gaps = {round(b - a, 1) for a, b in zip(xs, xs[1:])}
    assert gaps == {float(html_report.COLUMN_WIDTH)}
    assert float(svg.get("width")) >= xs[-1] + html_report.COLUMN_WIDTH / 2
    assert svg.get("viewBox") == f"0 0 {svg.get('width')} {svg.get('height')}"


def test_threshold_line_is_drawn_at_the_threshold():
    report = sample_report()
    report["prompts"][1]["threshold"] = 0.65
    for prompt in report["prompts"]:
        svg = charts(render_html(report)).get(prompt["prompt"])
        if svg is None:
            continue
        y = axis(svg)
        (line,) = [ln for ln in svg.iter(f"{SVG}line") if ln.get("class") == "threshold"]
        assert (
            float(line.get("y1"))
            == float(line.get("y2"))
            == pytest.approx(y(prompt["threshold"]), abs=0.051)
        )
        label = next(t for t in svg.iter(f"{SVG}text") if t.get("class") == "threshold-label")
        expected = f"threshold {round(prompt['threshold'] * 100)}%"
        assert label.text == expected, "the label names the threshold"


def test_each_version_shows_its_rate_and_95_percent_interval_at_the_right_height():
    report = sample_report()
    svg = charts(render_html(report))["invoice-extract"]
    y = axis(svg)
    iterations = report["prompts"][0]["iterations"]
    circles = list(svg.iter(f"{SVG}circle"))
    intervals = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "interval"]
    assert len(circles) == len(intervals) == len(iterations)
    for it, circle, interval in zip(iterations, circles, intervals):
        assert float(circle.get("cy")) == pytest.approx(y(it["rate"]), abs=0.051)
        whisker = next(ln for ln in interval.iter(f"{SVG}line") if ln.get("class") == "whisker")
        assert whisker.get("x1") == whisker.get("x2") == circle.get("cx")
        assert float(whisker.get("y1")) == pytest.approx(y(it["ci_high"]), abs=0.051)
        assert float(whisker.get("y2")) == pytest.approx(y(it["ci_low"]), abs=0.051)
        caps = [ln for ln in interval.iter(f"{SVG}line") if ln.get("class") == "cap"]
        assert sorted(float(c.get("y1")) for c in caps) == sorted(
            [float(whisker.get("y1")), float(whisker.get("y2"))]
        )
        assert "95% interval" in interval.find(f"{SVG}title").text
    polyline = next(svg.iter(f"{SVG}polyline"))
    assert polyline.get("points") == " ".join(f"{c.get('cx')},{c.get('cy')}" for c in circles)


def test_a_version_without_an_interval_draws_no_whisker():
    report = sample_report()
    iteration = report["prompts"][0]["iterations"][0]
    iteration["ci_low"] = iteration["ci_high"] = None
    svg = charts(render_html(report))["invoice-extract"]
    intervals = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "interval"]
    assert len(intervals) == len(report["prompts"][0]["iterations"]) - 1


def test_hostile_version_label_is_escaped_in_the_chart():
    report = sample_report()
    report["prompts"][0]["iterations"][0]["version"] = "<script>alert(1)</script>@everyone"
    document = render_html(report)
    assert "<script>alert" not in document and "@everyone" not in document
    svg = charts(document)["invoice-extract"]  # still parses as XML
    assert "".join(version_labels(svg)[0]) == "<script>alert(1)</script>@\u200beveryone"


@pytest.mark.parametrize(
    ("label", "lines"),
    [
        ("v1", ("v1",)),
        ("v3-few-shot-with-chain-of-thought", ("v3-few-shot-", "with-chain-of-", "thought")),
        ("a" * 30, ("a" * 14, "a" * 14, "aa")),
        ("prompt v2.1 final", ("prompt v2.1 ", "final")),
        ("", ("",)),
    ],
)
def test_wrap_label_keeps_every_character(label, lines):
    assert wrap_label(label) == lines
    assert "".join(lines) == label


def test_a_label_longer_than_the_chart_allows_ends_in_an_ellipsis():
    lines = wrap_label("x" * 200)
    assert len(lines) == html_report.LABEL_MAX_LINES
    assert lines[-1].endswith("…") and all(len(line) <= LABEL_LINE_CHARS for line in lines)


def test_template_is_autoescaped_and_never_marks_text_safe():
    source = (TEMPLATES / "report.html.j2").read_text(encoding="utf-8")
    source = re.sub(r"\{#.*?#\}", "", source, flags=re.S)  # its comment names the rule
    assert "|safe" not in source.replace(" ", "") and "Markup" not in source
    assert "autoescape false" not in source
    environment = html_report._environment()
    assert environment.autoescape is True
