"""The HTML report in a real headless Chromium: no console errors, the numbers shown, sorting works.

Chromium comes from Debian (`.ci/install_browser.sh`). The page has a self-test hook: opened
with `#selftest`, it clicks the latency header twice and records the row order in
`data-selftest` on <html>, which `--dump-dom` prints after the page's scripts ran.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers.sample_report import HOSTILE_OUTPUT, hostile_report, sample_report

from pytest_promptgate.report.html import render_html

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (run .ci/install_browser.sh)"
)


def load_in_chromium(page: Path, tmp_path: Path, fragment: str = "") -> tuple[str, list[str]]:
    """Returns (the DOM after scripts ran, console lines logged by the page)."""
    profile = tmp_path / "chromium-profile"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
        page.as_uri() + fragment,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    # Chromium logs every console message (errors, CSP violations, uncaught exceptions) as
    # `...:INFO:CONSOLE:<line>] "<message>", source: <url>`; our page logs nothing at all.
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    shutil.rmtree(profile, ignore_errors=True)
    return result.stdout, console


def test_report_loads_without_console_errors_and_sorts(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(render_html(sample_report()), encoding="utf-8")
    dom, console = load_in_chromium(page, tmp_path, "#selftest")

    assert console == []
    assert 'data-prompts="4"' in dom, "the page script ran"
    for shown in ("23/40 = 57.5% (37.5%–72.5%)", "14/20 = 70% (50%–85%)", "19/20 = 95% (75%–100%)"):
        assert shown in dom
    match = re.search(r'data-selftest="([^"]*)"', dom)
    assert match, "the self-test hook did not run"
    result = json.loads(html.unescape(match.group(1)))
    latencies = sorted(case["latency_ms"] for case in sample_report()["cases"])
    assert result["rows"] == len(latencies)
    assert result["ascending"] == latencies[:5]
    assert result["descending"] == latencies[::-1][:5]
    assert 'aria-sort="descending"' in dom


def test_hostile_report_runs_no_injected_script(tmp_path):
    page = tmp_path / "hostile.html"
    page.write_text(render_html(hostile_report(HOSTILE_OUTPUT + "B" * 200_000)), encoding="utf-8")
    dom, console = load_in_chromium(page, tmp_path)

    assert console == [], "an injected script or resource would show up as a console/CSP message"
    assert 'data-prompts="4"' in dom
    assert "<script>alert(1)</script>" not in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
