"""``promptgate github issues``: one fine-tune candidate issue per flagged prompt, kept up to date.

An issue is found again by a hidden per-prompt marker, updated on every run, commented on once
when its prompt passes again, and never closed automatically.
"""

from __future__ import annotations

import argparse
import re
import urllib.parse

from pytest_promptgate.github.api import GitHubClient, GitHubError, redact
from pytest_promptgate.github.workflow import append_summary, report_and_context, warn
from pytest_promptgate.model import CONSIDER_FINE_TUNING, FAILED, PASS
from pytest_promptgate.report.markdown import (
    GITHUB_COMMENT_LIMIT,
    advice_section,
    case_location,
    rate_chart,
    version_table,
)
from pytest_promptgate.textsafe import md_text, strip_control

DEFAULT_LABEL = "fine-tune-candidate"


def _marker_key(prompt: object) -> str:
    # Encoded so a prompt name cannot end the HTML comment ("-->") or collide by whitespace.
    return urllib.parse.quote(str(prompt), safe="-_.~/:@")


def finetune_marker(prompt: object) -> str:
    return f"<!-- pytest-promptgate:finetune:{_marker_key(prompt)} -->"


def _state_marker(state: str) -> str:
    return f"<!-- pytest-promptgate:state:{state} -->"


def finetune_issue_title(prompt: dict) -> str:
    return f"Fine-tune candidate: {strip_control(prompt.get('prompt'))}"[:250]


def finetune_issue_body(report: dict, prompt: dict) -> str:
    name = md_text(prompt.get("prompt"))
    current = next((v for v in prompt.get("versions") or [] if v.get("current")), None)
    lines = [
        finetune_marker(prompt.get("prompt")),
        _state_marker("flagged"),
        f"## Fine-tune candidate: {name}",
        "",
        f"**Status: flagged** by the run of {md_text(report.get('created_at'))}: {md_text(prompt.get('reason'))}",
        "",
        "### Evidence",
        "",
        version_table(prompt),
        "",
    ]
    chart = rate_chart(prompt)
    if chart:
        lines += [chart, ""]
    advice = advice_section(prompt, heading="###")
    if advice:
        lines += [advice, ""]
    failing = [
        c
        for c in report.get("cases") or []
        if c.get("prompt") == prompt.get("prompt")
        and c.get("status") == FAILED
        and (current is None or c.get("version") == current.get("version"))
    ]
    if failing:
        lines += [
            f"### Failing cases of {md_text(current.get('version') if current else '')} ({len(failing)})",
            "",
        ]
        for case in failing[:30]:
            reasons = "; ".join(
                f"{f.get('expectation')}: {f.get('reason')}" for f in case.get("failures") or []
            )
            lines.append(
                f"- **{md_text(case.get('case'))}** ({md_text(case_location(case))}): "
                f"{md_text(reasons, 200)}"
            )
        if len(failing) > 30:
            lines.append(f"- … and {len(failing) - 30} more in the run's report")
        lines.append("")
    lines.append(
        "<sub>Kept up to date by pytest-promptgate on every run (found again by the hidden marker); "
        "never closed automatically.</sub>"
    )
    body = "\n".join(lines)
    return body if len(body) < GITHUB_COMMENT_LIMIT else body[: GITHUB_COMMENT_LIMIT - 1]


def recovered_comment(report: dict, prompt: dict) -> str:
    return (
        f"<!-- pytest-promptgate:recovered:{_marker_key(prompt.get('prompt'))} -->\n"
        f"**Recovered:** {md_text(prompt.get('prompt'))} passes again in the run of "
        f"{md_text(report.get('created_at'))}: {md_text(prompt.get('reason'))}\n\n"
        "This issue is left open: close it if fine-tuning is no longer needed."
    )


def ensure_label(client: GitHubClient, repository: str, label: str) -> bool:
    """Create the label if missing; returns True when it was created."""
    try:
        client.request("GET", f"/repos/{repository}/labels/{urllib.parse.quote(label, safe='')}")
        return False
    except GitHubError as exc:
        if exc.status != 404:
            raise
    try:
        client.request(
            "POST",
            f"/repos/{repository}/labels",
            {
                "name": label,
                "color": "d4c5f9",
                "description": "pytest-promptgate: prompt plateaued below its threshold",
            },
        )
    except GitHubError as exc:
        if exc.status != 422:  # 422: created meanwhile by a concurrent run
            raise
    return True


def find_finetune_issues(client: GitHubClient, repository: str, label: str) -> dict[str, dict]:
    """Open and closed issues with our label, by prompt marker (the oldest wins)."""
    found: dict[str, dict] = {}
    pattern = re.compile(r"<!-- pytest-promptgate:finetune:(\S+) -->")
    for issue in client.paginate(f"/repos/{repository}/issues", {"state": "all", "labels": label}):
        if issue.get("pull_request"):
            continue
        match = pattern.search(issue.get("body") or "")
        if match:
            existing = found.get(match.group(1))
            if existing is None or issue.get("number", 0) < existing.get("number", 0):
                found[match.group(1)] = issue
    return found


def sync_finetune_issues(
    client: GitHubClient, repository: str, report: dict, label: str
) -> list[str]:
    """Create/update one issue per flagged prompt; comment once when a flagged prompt recovers."""
    prompts = report.get("prompts") or []
    flagged = [p for p in prompts if p.get("verdict") == CONSIDER_FINE_TUNING]
    passing = [p for p in prompts if p.get("verdict") == PASS]
    if not flagged and not passing:
        return []
    actions: list[str] = []
    if flagged and ensure_label(client, repository, label):
        actions.append(f"created label {label}")
    existing = find_finetune_issues(client, repository, label)
    for prompt in flagged:
        issue = existing.get(_marker_key(prompt.get("prompt")))
        payload = {
            "title": finetune_issue_title(prompt),
            "body": finetune_issue_body(report, prompt),
        }
        if issue is None:
            created, _ = client.request(
                "POST", f"/repos/{repository}/issues", dict(payload, labels=[label])
            )
            actions.append(f"opened #{(created or {}).get('number')} for {prompt.get('prompt')}")
        else:
            client.request("PATCH", f"/repos/{repository}/issues/{issue['number']}", payload)
            actions.append(f"updated #{issue['number']} for {prompt.get('prompt')}")
    for prompt in passing:
        issue = existing.get(_marker_key(prompt.get("prompt")))
        body = (issue or {}).get("body") or ""
        if issue is None or _state_marker("recovered") in body:
            continue  # never flagged, or the recovery was already announced
        client.request(
            "POST",
            f"/repos/{repository}/issues/{issue['number']}/comments",
            {"body": recovered_comment(report, prompt)},
        )
        new_body = body.replace(_state_marker("flagged"), _state_marker("recovered"))
        if _state_marker("recovered") not in new_body:
            new_body = _state_marker("recovered") + "\n" + new_body
        status_line = (
            f"**Status: recovered** in the run of {md_text(report.get('created_at'))}: "
            f"{md_text(prompt.get('reason'))}"
        )
        new_body = re.sub(
            r"^\*\*Status: flagged\*\*.*$",
            lambda _, line=status_line: line,
            new_body,
            count=1,
            flags=re.MULTILINE,
        )
        client.request("PATCH", f"/repos/{repository}/issues/{issue['number']}", {"body": new_body})
        actions.append(f"commented on #{issue['number']}: {prompt.get('prompt')} recovered")
    return actions


def run_issues(args: argparse.Namespace) -> int:
    report, context = report_and_context(args)
    flagged = [p for p in report.get("prompts") or [] if p.get("verdict") == CONSIDER_FINE_TUNING]
    if not context.token or not context.repository:
        missing = f"no GitHub token in ${args.token_env}" if not context.token else "no repository"
        if flagged:
            append_summary(
                context, f"> promptgate could not open fine-tune issues: {md_text(missing)}."
            )
        warn(f"promptgate: fine-tune issues not synced: {missing}", context.token)
        return 0
    client = GitHubClient(context.api_url, context.token)
    try:
        actions = sync_finetune_issues(client, context.repository, report, args.label)
    except GitHubError as exc:
        if flagged:
            append_summary(
                context, f"> promptgate could not open fine-tune issues: {md_text(exc.message)}."
            )
        warn(f"promptgate: fine-tune issues not synced: {exc.message}", context.token)
        return 0
    for action in actions:
        print(redact(f"promptgate: {strip_control(action)}", context.token))
    return 0
