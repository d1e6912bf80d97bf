"""End-to-end: what a hostile model replies cannot break the terminal, the reports or the Actions log.

The fake model answers with HTML that closes our markup, a script, mass mentions, GitHub
workflow commands, ANSI escape sequences, a NUL byte, and (for one case) 1 MB of text. A
real pytest run writes every report; each is then parsed the way its consumer parses it.
"""

from __future__ import annotations

import json
import re
import sys
from xml.etree import ElementTree

import pytest
from helpers.html_checks import check
from helpers.sample_report import HOSTILE_OUTPUT as HOSTILE

from pytest_promptgate.report.json_report import MAX_OUTPUT_CHARS as CUT

HUGE = "<script>alert(1)</script>\x1b[2J@everyone\n::error::huge\n" + "A" * 1_000_000

SUITE = """\
prompt: hostile
model: openai/fake-model
params: {api_base: "BASE", api_key: sk-test-key, temperature: 0}
user: "{{ ticket }}"
cases:
  - {id: fine, vars: {ticket: "reply: billing"}, expect: [{equals: billing}]}
  - {id: hostile, vars: {ticket: hostile}, expect: [{equals: billing}]}
  - {id: huge, vars: {ticket: huge}, expect: [{equals: billing}]}
"""


@pytest.fixture
def hostile_run(pytester, fake_openai):
    fake_openai.answers = {"hostile": HOSTILE, "huge": HUGE}
    pytester.makefile(".promptgate.yaml", hostile=SUITE.replace("BASE", fake_openai.base_url))
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--promptgate-no-history",
        "--junitxml",
        "junit.xml",
        "--promptgate-report",
        "report.json",
        "--promptgate-markdown",
        "report.md",
        "--promptgate-html",
        "report.html",
    )
    assert result.ret == 1, result.stdout.str()[-3000:]
    return pytester, result


def test_terminal_shows_no_escape_sequence_or_nul_and_stays_short(hostile_run):
    _, result = hostile_run
    terminal = result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*FAILED hostile::*::hostile*", "*output:*"])
    assert "\x1b" not in terminal and "\x9b" not in terminal
    assert "\x00" not in terminal and "\x07" not in terminal
    assert len(terminal) < 100_000, "1 MB of output was printed whole"


def test_markdown_stays_well_formed_and_inert(hostile_run):
    pytester, _ = hostile_run
    markdown = (pytester.path / "report.md").read_text(encoding="utf-8")
    assert "boom" in markdown, "the hostile output is shown (escaped), not dropped"
    assert len(markdown) < 65_536
    assert markdown.count("<details") == markdown.count("</details>") > 0
    assert "<script" not in markdown.lower()
    assert "@everyone" not in markdown and "@octocat" not in markdown
    assert not [line for line in markdown.splitlines() if line.lstrip().startswith("::")]
    assert "\x1b" not in markdown and "\x00" not in markdown


def test_html_parses_with_balanced_tags_and_no_injected_script(hostile_run):
    pytester, _ = hostile_run
    html = (pytester.path / "report.html").read_text(encoding="utf-8")
    checker = check(html)  # every element closes in order (asserted inside)
    assert "<script>alert" not in html.lower()
    assert not any("alert(1)" in script for script in checker.scripts), "model text ran as script"
    assert "\x1b" not in html and "\x00" not in html


def test_junit_xml_and_json_report_parse(hostile_run):
    pytester, _ = hostile_run
    tree = ElementTree.parse(pytester.path / "junit.xml")
    names = {case.get("name") for case in tree.iter("testcase")}
    assert names == {"fine", "hostile", "huge"}
    report = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))
    cases = {c["case"]: c for c in report["cases"]}
    assert cases["hostile"]["output"] == HOSTILE  # the record keeps the exact text
    assert cases["huge"]["status"] == "failed" and len(cases["huge"]["output"]) < 100_000
    assert cases["huge"]["output"].endswith(f"\n… ({len(HUGE) - CUT:,} more characters)")


def test_json_report_counts_the_cut_characters_truly_under_xdist(pytester, fake_openai):
    """A worker cuts the 1 MB output before sending it; the controller must not cut it again."""
    fake_openai.answers = {"huge": HUGE}
    pytester.makefile(".promptgate.yaml", hostile=SUITE.replace("BASE", fake_openai.base_url))
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-n", "2", "--promptgate-no-history",
        "--promptgate-report", "report.json",
    )  # fmt: skip
    assert result.ret == 1, result.stdout.str()[-3000:]
    report = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))
    huge = next(c for c in report["cases"] if c["case"] == "huge")
    assert huge["output"].startswith(HUGE[:CUT])
    assert huge["output"][CUT:] in (
        f"\n… ({len(HUGE) - CUT:,} more characters)",
        f"\n… ({len(HUGE) - CUT} more characters cut)",  # the worker's note, kept as is
    )


TOKEN_LINE = re.compile(r"^::[0-9a-f]{16,}::$")


def test_annotations_and_report_command_inject_no_workflow_command(hostile_run, monkeypatch):
    pytester, _ = hostile_run
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    annotate = pytester.run(
        sys.executable, "-m", "pytest_promptgate", "github", "annotate", "--report", "report.json"
    )
    assert annotate.ret == 0
    lines = annotate.stdout.lines
    assert any(line.startswith("::error file=hostile.promptgate.yaml") for line in lines)
    assert all(
        line.startswith(("::error file=", "::notice title=promptgate::")) for line in lines if line
    ), lines

    shown = pytester.run(sys.executable, "-m", "pytest_promptgate", "report", "report.json")
    assert shown.ret == 0
    commands = [line for line in shown.stdout.lines if line.lstrip().startswith("::")]
    assert commands and commands[0].startswith("::stop-commands::")
    token = commands[0].removeprefix("::stop-commands::")
    assert commands[1:] == [f"::{token}::"], commands
    for output in (annotate, shown):
        text = output.stdout.str()
        assert "\x1b" not in text and "\x00" not in text
