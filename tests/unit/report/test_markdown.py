"""Markdown report (job summary / PR comment), baseline comparison and `promptgate report`."""

from __future__ import annotations

import copy
import json
import re

import pytest
from helpers.sample_report import (
    HOSTILE_OUTPUT,
    hostile_report,
    many_failures_report,
    sample_report,
)

from pytest_promptgate.model import PromptgateError
from pytest_promptgate.report import cli as report_cli
from pytest_promptgate.report.baseline import apply_baseline
from pytest_promptgate.report.markdown import REPORT_MARKER, render_markdown
from pytest_promptgate.textsafe import fence, md_text, strip_control, truncate


def outside_fences(markdown: str) -> list[str]:
    """Lines that are not inside a fenced code block (CommonMark backtick fences)."""
    lines, fence_len = [], 0
    for line in markdown.splitlines():
        match = re.match(r"^(`{3,})", line)
        if fence_len:
            if match and len(match.group(1)) >= fence_len and not line.strip("`").strip():
                fence_len = 0
            continue
        if match:
            fence_len = len(match.group(1))
            continue
        lines.append(line)
    assert fence_len == 0, "a fence was left open"
    return lines


def assert_details_balanced(markdown: str) -> None:
    depth = 0
    for tag in re.findall(r"</?details>", markdown):
        depth += 1 if tag == "<details>" else -1
        assert depth >= 0, "</details> closes more than was opened"
    assert depth == 0


# ----------------------------------------------------------------------------- content


def test_headline_tables_and_marker():
    markdown = render_markdown(sample_report())
    assert markdown.startswith(REPORT_MARKER + "\n")
    assert "## Prompt gate: FAIL" in markdown
    assert "4 prompts: 1 passing, 1 failing, 1 flagged for fine-tuning, 1 inconclusive." in markdown
    row = next(
        line
        for line in markdown.splitlines()
        if line.startswith("| **v3** | openai/gpt-4o-mini | 14/20")
    )
    assert row == (
        "| **v3** | openai/gpt-4o-mini | 14/20 = 70% (50%–85%) | 80% | FAIL | — "
        "| +15.0 pp vs v2 (p=0.03) | $0.0123 | 380 ms |"
    )
    assert (
        "| **v1** | openai/gpt-4o-mini | 2/2 = 100% (80%–100%) | 90% | INCONCLUSIVE | — | — | unknown | n/a |"
        in markdown
    )
    assert "n=20: the interval is too wide to separate 70% from 80%" in markdown
    assert len(markdown) < 65000


def test_chart_only_for_two_or_more_iterations():
    markdown = render_markdown(sample_report())
    assert (
        markdown.count("xychart-beta") == 2
    )  # invoice-extract (3 iterations), support-triage (2); not summary (1)
    chart = markdown[markdown.index("```mermaid") :]
    chart = chart[: chart.index("\n```\n")]
    assert 'x-axis ["v1", "v2", "v3"]' in chart
    assert "line [55.0, 60.0, 57.5]" in chart and "line [80.0, 80.0, 80.0]" in chart


def test_advice_section_for_flagged_prompt_only():
    markdown = render_markdown(sample_report())
    assert markdown.count("#### Advice:") == 1
    advice = markdown[markdown.index("#### Advice:") : markdown.index("### support-triage")]
    assert "| v2 | 40 | 60% | 45%–74% |" in advice
    assert "Plateau test: p = 0.41" in advice
    assert "failed in 3 of 3 iterations" in advice
    assert "40 labelled examples (0 unlabelled); minimum 100, ideal 500" in advice
    assert "prompt path $240; fine-tune path $980–$5,720" in advice
    assert "training\\_cost\\_usd = 500–5000 (default)" in advice
    assert "promptgate export-finetune examples/extract.promptgate.yaml -o extract.jsonl" in advice


def test_assumptions_from_the_suite_are_not_called_defaults():
    report = sample_report()
    report["prompts"][0]["advice"]["cost"]["defaults_used"] = ["inference_multiplier"]
    markdown = render_markdown(report)
    assert "training\\_cost\\_usd = 500–5000 (from the suite)" in markdown
    assert "inference\\_multiplier = 2–3 (default)" in markdown


def test_failing_cases_are_collapsed_with_input_output_and_reason():
    markdown = render_markdown(sample_report())
    assert_details_balanced(markdown)
    assert "<summary>Failing cases of invoice-extract (17)</summary>" in markdown
    block = markdown[markdown.index("**double-charge** · v3") :]
    block = block[: block.index("**refund-late**")]
    assert "examples/triage.promptgate.yaml:20" in block
    assert "- **equals**: expected 'billing', got 'bug'" in block
    assert '{"ticket": "ticket text for double-charge"}' in block
    assert "Output:\n```text\nbug\n```" in block
    assert (
        "rate\\_limit: 429 Too Many Requests after 3 attempts" not in markdown
    )  # errors are fenced, not prose
    assert "Error:\n```\nrate_limit: 429 Too Many Requests after 3 attempts\n```" in markdown


# ----------------------------------------------------------------------------- hostile output and size


def test_hostile_output_keeps_the_document_well_formed():
    markdown = render_markdown(hostile_report())
    assert len(markdown) < 65536
    assert_details_balanced(markdown)
    prose = outside_fences(markdown)
    assert_details_balanced("\n".join(prose))
    assert "<script" not in markdown and "<img" not in markdown
    assert "@everyone" not in markdown and "@octocat" not in markdown
    assert "@\u200beveryone" in markdown
    assert not any(line.lstrip().startswith("::") for line in markdown.splitlines())
    assert "\x1b" not in markdown and "\x00" not in markdown
    assert "more characters)" in markdown, "says the 1 MB output was cut"
    # The hostile ``` lines stayed inside their fence: none of that text leaked into prose.
    assert not any(line.startswith("``` not a fence end") or line == "| a | b |" for line in prose)
    assert any("not a fence end" in line for line in markdown.splitlines() if line not in prose)
    assert "-->" not in "\n".join(prose).replace(REPORT_MARKER, "")


def test_hostile_text_in_table_cells_cannot_add_columns():
    report = sample_report()
    report["prompts"][1]["versions"][1]["model"] = "evil | extra | cells <b>bold</b> @everyone"
    markdown = render_markdown(report)
    row = next(line for line in markdown.splitlines() if "evil" in line)
    assert len(re.findall(r"(?<!\\)\|", row)) == 10  # 9 columns
    assert "&lt;b&gt;" in row and "@\u200beveryone" in row


def test_too_many_failures_are_trimmed_and_say_so():
    report = many_failures_report()
    markdown = render_markdown(report)
    assert len(markdown) < 65000
    assert "Trimmed to fit GitHub's 65,536-character limit" in markdown
    shown = re.search(r"showing (\d+) of (\d+) failing cases", markdown)
    assert shown and int(shown.group(1)) < int(shown.group(2))
    assert_details_balanced(markdown)
    outside_fences(markdown)  # every fence closed
    # Tables and advice survive trimming: they matter more than case details.
    assert "#### Advice:" in markdown and "| **v3** | openai/gpt-4o-mini | 14/20" in markdown


def test_small_limit_drops_whole_prompts_and_stays_under_it():
    markdown = render_markdown(sample_report(), limit=3000)
    assert len(markdown) < 3000
    assert markdown.startswith(REPORT_MARKER)
    assert "prompts are not shown" in markdown
    outside_fences(markdown)


def test_escape_helpers():
    assert strip_control("a\x1b[31mb\x1b[0m\x00c\x07d\r\ne") == "abcd\ne"
    assert truncate("x" * 1500, 1000) == "x" * 1000 + "… (500 more characters)"
    assert md_text("a|b <i> @team\nnext") == "a\\|b &lt;i&gt; @\u200bteam next"
    block = fence("has ```` inside")
    assert block.startswith("`````\n") and block.endswith("\n`````")
    assert fence("</details>") == "```\n<\u200b/details>\n```"


# ----------------------------------------------------------------------------- baseline


def test_baseline_sets_delta_and_flipped_cases():
    report, baseline = sample_report(), sample_report()
    base_version = baseline["prompts"][1]["versions"][1]
    base_version["rate"] = 0.6
    for case in baseline["cases"]:
        if case["prompt"] == "support-triage" and case["version"] == "v3":
            if case["case"] == "double-charge":
                case["status"] = "passed"  # passed before, fails now: broken
            if case["case"] == "t10":
                case["status"] = "failed"  # failed before, passes now: fixed
    apply_baseline(report, baseline)
    entry = report["prompts"][1]["versions"][1]["baseline"]
    assert entry == {
        "rate": 0.6,
        "delta": pytest.approx(0.1),
        "fixed": ["t10"],
        "broken": ["double-charge"],
    }
    assert "+10.0 pp (was 60%), 1 fixed, 1 broken" in render_markdown(report)


def test_baseline_skips_versions_it_does_not_have():
    report, baseline = sample_report(), sample_report()
    baseline["prompts"] = [p for p in baseline["prompts"] if p["prompt"] != "summary"]
    apply_baseline(report, baseline)
    summary = next(p for p in report["prompts"] if p["prompt"] == "summary")
    assert summary["versions"][0]["baseline"] is None
    assert report["prompts"][0]["versions"][0]["baseline"]["delta"] == 0


def test_baseline_from_a_newer_schema_is_refused():
    newer = sample_report()
    newer["schema_version"] = 2
    with pytest.raises(PromptgateError, match="schema_version 2, newer than"):
        apply_baseline(sample_report(), newer)
    with pytest.raises(PromptgateError, match="not a promptgate JSON report"):
        apply_baseline(sample_report(), {"prompts": []})


# ----------------------------------------------------------------------------- promptgate report


def test_report_command_renders_every_format(tmp_path, capsys):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(sample_report()))
    for fmt, expected in (
        ("markdown", REPORT_MARKER),
        ("html", "<!DOCTYPE html>"),
        ("json", '"schema_version": 1'),
    ):
        out = tmp_path / f"out.{fmt}"
        assert report_cli.main(["report", str(path), "--format", fmt, "-o", str(out)]) == 0
        assert expected in out.read_text()
    assert report_cli.main(["report", str(path)]) == 0
    assert "invoice-extract" in capsys.readouterr().out


def test_report_command_with_baseline_and_stop_commands(tmp_path, capsys, monkeypatch):
    path, base = tmp_path / "report.json", tmp_path / "base.json"
    path.write_text(json.dumps(hostile_report(HOSTILE_OUTPUT)))
    baseline = sample_report()
    baseline["prompts"][1]["versions"][1]["rate"] = 0.5
    base.write_text(json.dumps(baseline))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert (
        report_cli.main(["report", str(path), "--format", "markdown", "--baseline", str(base)]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    token = lines[0].removeprefix("::stop-commands::")
    assert lines[0].startswith("::stop-commands::") and len(token) >= 32
    assert lines[-1] == f"::{token}::"
    assert "+20.0 pp (was 50%)" in "\n".join(lines)


def test_report_command_errors_are_one_line(tmp_path, capsys):
    assert report_cli.main(["report", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("promptgate: error:") and "Traceback" not in err
    newer = copy.deepcopy(sample_report())
    newer["schema_version"] = 99
    (tmp_path / "new.json").write_text(json.dumps(newer))
    assert report_cli.main(["report", str(tmp_path / "new.json")]) == 2
    assert "99" in capsys.readouterr().err


def test_case_without_a_line_shows_the_file_alone():
    report = sample_report()
    case = next(c for c in report["cases"] if c["case"] == "double-charge" and c["version"] == "v3")
    case["line"] = None
    markdown = render_markdown(report)
    assert "failed · examples/triage.promptgate.yaml\n" in markdown
    assert ":None" not in markdown
