"""`promptgate github` against a loopback fake of the GitHub REST API.

The fake (a ThreadingHTTPServer on 127.0.0.1) keeps comments, issues and labels in memory,
paginates like GitHub (per_page, page, Link rel="next" with absolute URLs), can be told to fail
chosen endpoints, and records every request with its headers and body so the tests can check
what was sent, not only what came back.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
from helpers.github_server import CANARY, REPO, FakeGitHub, clear_proxies
from helpers.sample_report import HOSTILE_OUTPUT, hostile_report, sample_report

from pytest_promptgate import github
from pytest_promptgate.report.markdown import REPORT_MARKER


@pytest.fixture
def fake(monkeypatch, tmp_path):
    clear_proxies(monkeypatch)
    with FakeGitHub() as server:
        event = tmp_path / "event.json"
        event.write_text(json.dumps({"action": "synchronize", "pull_request": {"number": 7}}))
        monkeypatch.setenv("GITHUB_API_URL", server.url)
        monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
        monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
        monkeypatch.setenv("GITHUB_TOKEN", CANARY)
        monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
        monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
        yield server


def write_report(tmp_path: Path, report: dict, name: str = "report.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(report))
    return path


def run(*argv: str) -> int:
    return github.main(["github", *map(str, argv)])


# ----------------------------------------------------------------------------- PR comment


def test_two_runs_make_one_comment_created_then_updated_past_150_others(fake, tmp_path, capsys):
    for index in range(150):
        fake.add_comment(7, f"review remark {index}", "a-reviewer")
    # Somebody quoting our marker is not us: the author must match too.
    impostor = fake.add_comment(7, f"{REPORT_MARKER}\nfake report", "mallory")
    report = write_report(tmp_path, sample_report())

    assert run("comment", "--report", report) == 0
    assert len(fake.calls("POST", rf"/repos/{REPO}/issues/7/comments")) == 1
    ours = [c for c in fake.ours(7) if c["user"]["login"] == "promptgate-bot"]
    assert len(ours) == 1 and ours[0]["body"].startswith(REPORT_MARKER)
    first_id = ours[0]["id"]

    changed = sample_report()
    changed["verdict"] = "PASS"
    assert run("comment", "--report", write_report(tmp_path, changed)) == 0

    assert len(fake.calls("POST", rf"/repos/{REPO}/issues/7/comments")) == 1, (
        "never a second comment"
    )
    patches = fake.calls("PATCH", rf"/repos/{REPO}/issues/comments/\d+")
    assert [p["path"].rsplit("/", 1)[1] for p in patches] == [str(first_id)]
    assert "Prompt gate: PASS" in ours[0]["body"]
    assert impostor["body"] == f"{REPORT_MARKER}\nfake report"
    # Our comment sits after 151 others: the second run had to follow the Link to page 2.
    pages = [r["query"].get("page") for r in fake.calls("GET", rf"/repos/{REPO}/issues/7/comments")]
    assert "2" in pages
    assert all(
        r["query"].get("per_page") == "100"
        for r in fake.calls("GET", rf"/repos/{REPO}/issues/7/comments")
    )
    assert "updated the report comment on #7" in capsys.readouterr().out


def test_installation_token_without_user_access_matches_the_actions_bot(fake, tmp_path):
    fake.user_status = 403  # GET /user is forbidden for the workflow's installation token
    existing = fake.add_comment(7, f"{REPORT_MARKER}\nold report", github.BOT_LOGIN)
    assert run("comment", "--report", write_report(tmp_path, sample_report())) == 0
    assert not fake.calls("POST", rf"/repos/{REPO}/issues/7/comments")
    assert existing["body"].startswith(REPORT_MARKER) and "Prompt gate: FAIL" in existing["body"]


def test_forbidden_comment_creation_degrades_to_summary_and_warning(
    fake, tmp_path, monkeypatch, capsys
):
    fake.failures[("POST", rf"/repos/{REPO}/issues/7/comments")] = (
        403,
        "Resource not accessible by integration",
    )
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))

    assert run("comment", "--report", write_report(tmp_path, sample_report())) == 0

    out = capsys.readouterr().out
    assert out.startswith("::warning") and "fork" in out
    assert REPORT_MARKER in summary.read_text() and "Prompt gate: FAIL" in summary.read_text()
    assert fake.ours(7) == []


def test_forbidden_comment_with_summary_already_written_adds_only_a_note(
    fake, tmp_path, monkeypatch, capsys
):
    fake.failures[("POST", rf"/repos/{REPO}/issues/7/comments")] = (
        403,
        "Resource not accessible by integration",
    )
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert (
        run("comment", "--report", write_report(tmp_path, sample_report()), "--summary-written")
        == 0
    )
    text = summary.read_text()
    assert "was not posted" in text and REPORT_MARKER not in text
    assert "::warning" in capsys.readouterr().out


def test_no_token_degrades_without_calling_github(fake, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GITHUB_TOKEN")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert run("comment", "--report", write_report(tmp_path, sample_report())) == 0
    assert fake.requests == []
    assert "::warning" in capsys.readouterr().out and REPORT_MARKER in summary.read_text()


def test_not_a_pull_request_posts_nothing(fake, tmp_path, monkeypatch, capsys):
    event = tmp_path / "push.json"
    event.write_text(json.dumps({"ref": "refs/heads/main"}))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    assert run("comment", "--report", write_report(tmp_path, sample_report())) == 0
    assert fake.requests == [] and "not a pull request" in capsys.readouterr().out


def test_markdown_file_is_used_and_marked(fake, tmp_path):
    markdown = tmp_path / "report.md"
    markdown.write_text("# custom body from the plugin\n")
    assert (
        run(
            "comment",
            "--report",
            write_report(tmp_path, sample_report()),
            "--markdown",
            markdown,
            "--pr",
            "7",
        )
        == 0
    )
    [comment] = fake.ours(7)
    assert (
        comment["body"].startswith(REPORT_MARKER)
        and "custom body from the plugin" in comment["body"]
    )


# ----------------------------------------------------------------------------- fine-tune issues


def test_flagged_prompt_yields_one_labelled_issue_updated_in_place(fake, tmp_path, capsys):
    report = sample_report()
    assert run("issues", "--report", write_report(tmp_path, report)) == 0
    assert fake.labels == {"fine-tune-candidate"}
    assert len(fake.calls("POST", rf"/repos/{REPO}/labels")) == 1, "the missing label is created"

    report["prompts"][0]["advice"]["readiness"]["labelled"] = 55
    assert run("issues", "--report", write_report(tmp_path, report)) == 0
    assert run("issues", "--report", write_report(tmp_path, report)) == 0

    assert len(fake.issues) == 1, "one issue per flagged prompt across runs"
    [issue] = fake.issues
    assert [label["name"] for label in issue["labels"]] == ["fine-tune-candidate"]
    assert issue["title"] == "Fine-tune candidate: invoice-extract"
    body = issue["body"]
    assert body.startswith("<!-- pytest-promptgate:finetune:invoice-extract -->")
    assert "55 labelled examples" in body, "updated in place with the newest evidence"
    for expected in (
        "### Evidence",
        "| v1 | 40 | 55% |",
        "failed in 3 of 3 iterations",
        "minimum 100, ideal 500",
        "fine-tune path $980–$5,720",
        "(default)",
        "promptgate export-finetune examples/extract.promptgate.yaml -o extract.jsonl",
    ):
        assert expected in body
    assert len(fake.calls("PATCH", rf"/repos/{REPO}/issues/1")) == 2
    assert len(fake.calls("POST", rf"/repos/{REPO}/labels")) == 1, "the label is created once"
    assert "opened #1 for invoice-extract" in capsys.readouterr().out


def test_issue_search_covers_closed_issues_and_pages(fake, tmp_path):
    for index in range(120):
        fake.issues.append(
            {
                "number": index + 1,
                "title": f"other {index}",
                "body": "unrelated",
                "labels": [{"name": "fine-tune-candidate"}],
                "state": "open",
                "comments": 0,
            }
        )
    fake.labels.add("fine-tune-candidate")
    fake.issues.append(
        {
            "number": 121,
            "title": "Fine-tune candidate: invoice-extract",
            "body": github.finetune_marker("invoice-extract") + "\nold",
            "state": "closed",
            "labels": [{"name": "fine-tune-candidate"}],
            "comments": 0,
        }
    )
    assert run("issues", "--report", write_report(tmp_path, sample_report())) == 0
    assert len(fake.issues) == 121, "found the closed issue on page 2 instead of opening another"
    assert fake.issues[-1]["state"] == "closed" and "### Evidence" in fake.issues[-1]["body"]
    searches = fake.calls("GET", rf"/repos/{REPO}/issues")
    assert {s["query"].get("state") for s in searches} == {"all"}
    assert {s["query"].get("page") for s in searches} >= {"2"}
    assert not fake.calls("POST", rf"/repos/{REPO}/labels"), (
        "an existing label is not created again"
    )


def test_recovered_prompt_gets_one_comment_and_stays_open(fake, tmp_path):
    flagged = sample_report()
    assert run("issues", "--report", write_report(tmp_path, flagged)) == 0
    recovered = sample_report()
    recovered["prompts"][0]["verdict"] = "PASS"
    recovered["prompts"][0]["reason"] = "v4 passes 38/40 (95%)"
    recovered["prompts"][0]["advice"] = None
    path = write_report(tmp_path, recovered, "recovered.json")
    assert run("issues", "--report", path) == 0
    assert run("issues", "--report", path) == 0  # same report again
    recovered["created_at"] = "2026-11-28T09:00:00Z"
    assert (
        run("issues", "--report", write_report(tmp_path, recovered, "later.json")) == 0
    )  # a later passing run

    comments = fake.comments.get(1, [])
    assert len(comments) == 1 and comments[0]["body"].startswith(
        "<!-- pytest-promptgate:recovered:invoice-extract"
    )
    assert "passes again" in comments[0]["body"] and "v4 passes 38/40" in comments[0]["body"]
    [issue] = fake.issues
    assert issue["state"] == "open"
    assert "**Status: recovered**" in issue["body"]

    # Flagged again later, then recovered again: that is a new recovery worth one new comment.
    assert run("issues", "--report", write_report(tmp_path, flagged, "again.json")) == 0
    assert "<!-- pytest-promptgate:state:flagged -->" in issue["body"]
    assert run("issues", "--report", path) == 0
    assert len(fake.comments[1]) == 2


def test_issues_forbidden_degrades(fake, tmp_path, monkeypatch, capsys):
    fake.failures[("GET", rf"/repos/{REPO}/labels/.+")] = (
        403,
        "Resource not accessible by integration",
    )
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert run("issues", "--report", write_report(tmp_path, sample_report())) == 0
    assert "::warning" in capsys.readouterr().out
    assert "could not open fine-tune issues" in summary.read_text()
    assert fake.issues == []


# ----------------------------------------------------------------------------- annotations and outputs


def test_annotations_escape_hostile_text_and_stop_at_ten(tmp_path, capsys):
    report = hostile_report()
    report["cases"][9]["file"] = "dir,with:odd%chars.yaml"  # c9, the second failing case
    assert run("annotate", "--report", write_report(tmp_path, report)) == 0
    lines = capsys.readouterr().out.splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    assert len(errors) == 10
    assert lines[-1].startswith("::notice") and "more failing cases" in lines[-1]
    assert all(line.startswith(("::error ", "::notice ")) for line in lines), (
        "model text never starts a line"
    )
    assert not any("\x1b" in line or "\x00" in line for line in lines)
    first = errors[0]
    assert first.startswith(
        "::error file=examples/extract.promptgate.yaml,line=31,title=promptgate%3A invoice-extract v3::"
    )
    assert (
        "%0A%3Cscript" not in first and "%0A<script>" in first
    )  # newlines escaped, data keeps ':' and '<'
    assert "file=dir%2Cwith%3Aodd%25chars.yaml" in "\n".join(errors)


def test_annotation_path_prefix(tmp_path, capsys):
    assert (
        run(
            "annotate",
            "--report",
            write_report(tmp_path, sample_report()),
            "--path-prefix",
            "services/bot",
        )
        == 0
    )
    assert (
        "::error file=services/bot/examples/extract.promptgate.yaml,line=31,"
        in capsys.readouterr().out
    )


def test_outputs_written_for_the_action(tmp_path, monkeypatch):
    output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    report = write_report(tmp_path, sample_report())
    assert run("outputs", "--report", report) == 0
    lines = output.read_text().splitlines()
    assert lines == [
        "verdict=FAIL",
        f"report-path={report.resolve()}",
        "failed-prompts=invoice-extract,support-triage,flaky-api",
    ]


def test_outputs_without_report_say_error(tmp_path, monkeypatch, capsys):
    output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    assert run("outputs", "--report", tmp_path / "missing.json") == 0
    assert "verdict=ERROR" in output.read_text()
    assert "::warning" in capsys.readouterr().out


def test_pr_number_from_event_payloads(tmp_path):
    cases = {
        "pr.json": ({"pull_request": {"number": 12}}, 12),
        "comment.json": ({"issue": {"number": 5, "pull_request": {"url": "x"}}}, 5),
        "issue.json": ({"issue": {"number": 5}}, None),
        "push.json": ({"ref": "refs/heads/main"}, None),
    }
    for name, (payload, expected) in cases.items():
        (tmp_path / name).write_text(json.dumps(payload))
        assert github.pr_number_from_event(str(tmp_path / name)) == expected
    (tmp_path / "broken.json").write_text("{not json")
    assert github.pr_number_from_event(str(tmp_path / "broken.json")) is None
    assert github.pr_number_from_event(None) is None


def test_client_refuses_to_follow_a_link_to_another_host(fake):
    client = github.GitHubClient(fake.url, CANARY)
    with pytest.raises(github.GitHubError) as excinfo:
        client.request("GET", "http://127.0.0.2:9/repos/acme/prompts/issues?page=2")
    assert "refusing to send the token" in str(excinfo.value)
    assert fake.requests == []


# ----------------------------------------------------------------------------- secrets


def test_token_never_leaks_into_output_bodies_or_errors(fake, tmp_path, monkeypatch, capsys):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    report = hostile_report(
        "please print " + CANARY + "\n" + HOSTILE_OUTPUT
    )  # even if a model echoes it
    path = write_report(tmp_path, report)
    assert run("comment", "--report", path) == 0
    assert run("issues", "--report", path) == 0
    assert run("annotate", "--report", path) == 0
    # An error message that quotes the token (as a misbehaving proxy might) is redacted.
    fake.failures[("PATCH", rf"/repos/{REPO}/issues/comments/\d+")] = (
        500,
        f"bad credentials {CANARY}",
    )
    assert run("comment", "--report", path) == 0
    captured = capsys.readouterr()

    assert "::warning" in captured.out and "***" in captured.out
    assert fake.requests, "the fake saw the traffic"
    for request in fake.requests:
        assert request["headers"].get("Authorization") == f"Bearer {CANARY}"
        others = {k: v for k, v in request["headers"].items() if k != "Authorization"}
        assert CANARY not in json.dumps(others) + request["path"] + json.dumps(request["query"])
        assert CANARY.encode() not in request["body"]
    assert CANARY not in captured.out + captured.err
    assert CANARY not in summary.read_text()
    assert CANARY not in repr(github.GitHubClient(fake.url, CANARY))


def test_untrusted_report_text_cannot_break_the_issue_body(fake, tmp_path):
    report = copy.deepcopy(sample_report())
    report["prompts"][0]["reason"] = HOSTILE_OUTPUT
    assert run("issues", "--report", write_report(tmp_path, report)) == 0
    body = fake.issues[0]["body"]
    assert "<script" not in body and "@everyone" not in body
    assert not any(line.startswith("::") for line in body.splitlines())


def test_the_package_keeps_its_names_and_both_entry_points(tmp_path, monkeypatch, capsys):
    """The split into one module per subject keeps ``pytest_promptgate.github``'s names, the
    ``promptgate github`` command (``cli.py`` lists the package) and ``python -m``."""
    import subprocess
    import sys

    from pytest_promptgate.cli import main as promptgate

    assert [name for name in github.__all__ if not hasattr(github, name)] == []
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    missing = str(tmp_path / "missing.json")
    assert promptgate(["github", "outputs", "--report", missing]) == 0
    assert "verdict=ERROR" in capsys.readouterr().out
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_promptgate.github",
            "github",
            "outputs",
            "--report",
            missing,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert result.returncode == 0 and "verdict=ERROR" in result.stdout, result.stderr
