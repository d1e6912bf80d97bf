"""``promptgate github comment``: the one sticky report comment on a pull request.

Found again by ``REPORT_MARKER`` and its author (``token_login``) and edited in place. A
missing token, a read-only fork token or an API failure never changes the verdict: the report
goes to the job summary with a ``::warning::`` and the command exits 0.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pytest_promptgate.github.api import (
    PERMISSION_STATUSES,
    GitHubClient,
    GitHubError,
    redact,
    token_login,
)
from pytest_promptgate.github.workflow import (
    Context,
    append_summary,
    pr_number_from_event,
    report_and_context,
    warn,
)
from pytest_promptgate.report.markdown import GITHUB_COMMENT_LIMIT, REPORT_MARKER, render_markdown
from pytest_promptgate.textsafe import md_text


def upsert_comment(client: GitHubClient, repository: str, pr: int, body: str) -> tuple[str, dict]:
    """PATCH our marked comment if the PR has one by us, else POST; returns (action, comment)."""
    author = token_login(client)
    for comment in client.paginate(f"/repos/{repository}/issues/{pr}/comments"):
        if (
            REPORT_MARKER in (comment.get("body") or "")
            and (comment.get("user") or {}).get("login") == author
        ):
            updated, _ = client.request(
                "PATCH", f"/repos/{repository}/issues/comments/{comment['id']}", {"body": body}
            )
            return "updated", updated or comment
    created, _ = client.request("POST", f"/repos/{repository}/issues/{pr}/comments", {"body": body})
    return "created", created or {}


def comment_body(report: dict, markdown_path: Path | None) -> str:
    body = None
    if markdown_path is not None:
        try:
            body = markdown_path.read_text(encoding="utf-8")
        except OSError:
            body = None
    if body is None or len(body) >= GITHUB_COMMENT_LIMIT:
        body = render_markdown(report)
    if REPORT_MARKER not in body:
        body = f"{REPORT_MARKER}\n{body}"
    return body


def run_comment(args: argparse.Namespace) -> int:
    report, context = report_and_context(args)
    body = comment_body(report, args.markdown)
    pr = args.pr or pr_number_from_event(os.environ.get("GITHUB_EVENT_PATH"))
    if not pr:
        print(
            "promptgate: not a pull request (no --pr, no pull_request in GITHUB_EVENT_PATH): no comment posted"
        )
        return 0
    if not context.token:
        return _degrade_comment(
            context, body, f"no GitHub token in ${args.token_env}", args.summary_written
        )
    if not context.repository:
        return _degrade_comment(
            context, body, "no repository (set --repo or GITHUB_REPOSITORY)", args.summary_written
        )
    client = GitHubClient(context.api_url, context.token)
    try:
        action, comment = upsert_comment(client, context.repository, int(pr), body)
    except GitHubError as exc:
        if exc.status in PERMISSION_STATUSES:
            reason = (
                f"the token cannot write to pull request #{pr} ({exc.message}); "
                "a pull request from a fork gets a read-only token"
            )
        else:
            reason = f"GitHub API error ({exc.message})"
        return _degrade_comment(context, body, reason, args.summary_written)
    print(
        redact(
            f"promptgate: {action} the report comment on #{pr}: {comment.get('html_url', '')}".rstrip(
                ": "
            ),
            context.token,
        )
    )
    return 0


def _degrade_comment(context: Context, body: str, reason: str, summary_written: bool) -> int:
    if summary_written:
        append_summary(
            context,
            f"> The promptgate PR comment was not posted: {md_text(reason)}. "
            "The report is in this job summary.",
        )
    else:
        append_summary(context, body)
    where = (
        "the job summary"
        if context.step_summary
        else "the report files (no GITHUB_STEP_SUMMARY here)"
    )
    warn(f"promptgate: PR comment not posted: {reason}. The report is in {where}.", context.token)
    return 0
