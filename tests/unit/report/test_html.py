"""Self-contained HTML report: well-formed with hostile output, no external reference, sortable."""

from __future__ import annotations

import base64
import hashlib
import json
import re

from helpers.html_checks import check
from helpers.sample_report import hostile_report, sample_report

from pytest_promptgate.report.html import render_html


def test_sample_report_is_well_formed_and_shows_the_numbers():
    document = render_html(sample_report())
    checker = check(document)
    assert document.startswith("<!DOCTYPE html>")
    for expected in (
        "23/40 = 57.5% (37.5%–72.5%)",
        "14/20 = 70% (50%–85%)",
        "+15.0 pp vs v2 (p=0.03)",
        "1 passing, 1 failing, 1 flagged for fine-tuning, 1 inconclusive",
        "minimum 100, ideal 500",
        "promptgate export-finetune examples/extract.promptgate.yaml -o extract.jsonl",
    ):
        assert expected in document
    tags = [tag for tag, _ in checker.tags]
    assert tags.count("svg") == 3  # one chart per prompt with iterations (flaky-api has none)
    assert tags.count("polyline") == 3
    assert (
        sum(1 for tag, attrs in checker.tags if tag == "line" and attrs.get("class") == "threshold")
        == 3
    )
    headers = [attrs for tag, attrs in checker.tags if tag == "th" and attrs.get("data-key")]
    assert [h["data-key"] for h in headers][:3] == ["prompt", "version", "case"]
    rows = [
        attrs for tag, attrs in checker.tags if tag == "tr" and "case" in (attrs.get("class") or "")
    ]
    assert len(rows) == len(sample_report()["cases"])


def test_no_external_reference_and_csp_allows_only_our_script():
    document = render_html(sample_report())
    checker = check(document)
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", document))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls  # an XML namespace name, never fetched
    assert not any("src" in attrs or "href" in attrs for _, attrs in checker.tags)
    csp = next(
        attrs["content"] for tag, attrs in checker.tags if tag == "meta" and attrs.get("http-equiv")
    )
    inline = [s for s in checker.scripts if "use strict" in s]
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp


def test_hostile_output_is_escaped_everywhere():
    report = hostile_report()
    document = render_html(report)
    check(document)
    assert "<script>alert" not in document and "<img" not in document
    assert document.count("<script") == 2  # the data island and our code, nothing else
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    assert "\x1b" not in document and "\x00" not in document
    assert "@everyone" not in document
    assert len(document) < 3_000_000, "1 MB outputs are truncated per case"
    assert "more characters)" in document


def test_embedded_json_cannot_close_the_script():
    report = sample_report()
    report["prompts"][0]["prompt"] = "</script><script>alert(1)</script>"
    document = render_html(report)
    checker = check(document)
    data = next(s for s in checker.scripts if s.lstrip().startswith("{"))
    assert "</" not in data and "<" not in data
    assert json.loads(data)["prompts"][0]["prompt"] == "</script><script>alert(1)</script>"
    assert document.count("<script") == 2
