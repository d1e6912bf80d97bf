"""The Actions run ``promptgate github`` works in: repository, token, PR number, job summary, warnings.

Best effort for the *gate*: a missing token or repository never changes the verdict; the
commands report through the job summary and a ``::warning::`` instead (token redacted).
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from pytest_promptgate.github.api import DEFAULT_API_URL, redact
from pytest_promptgate.model import PromptgateError
from pytest_promptgate.textsafe import workflow_data


@dataclass(frozen=True)
class Context:
    repository: str
    api_url: str
    token: str = field(repr=False)
    step_summary: str | None = None


def context_from_args(args: argparse.Namespace) -> Context:
    repository = args.repo or os.environ.get("GITHUB_REPOSITORY", "")
    if repository and not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repository):
        raise PromptgateError(f"--repo must look like owner/name, got {repository!r}")
    return Context(
        repository=repository,
        api_url=(args.api_url or os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/"),
        token=os.environ.get(args.token_env, "").strip(),
        step_summary=os.environ.get("GITHUB_STEP_SUMMARY") or None,
    )


def pr_number_from_event(event_path: str | None) -> int | None:
    """The PR number of a pull_request(_target) or PR issue_comment event, else None."""
    if not event_path:
        return None
    try:
        event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(event, dict):
        return None
    if isinstance(event.get("pull_request"), dict) and event["pull_request"].get("number"):
        return int(event["pull_request"]["number"])
    issue = event.get("issue")
    if isinstance(issue, dict) and issue.get("pull_request") and issue.get("number"):
        return int(issue["number"])
    return None


def warn(message: str, token: str = "") -> None:
    print(f"::warning title=promptgate::{workflow_data(redact(message, token))}", flush=True)


def append_summary(context: Context, text: str) -> None:
    if not context.step_summary:
        return
    with open(context.step_summary, "a", encoding="utf-8") as summary:
        summary.write(redact(text, context.token).rstrip("\n") + "\n\n")


def load_report_file(path: Path) -> dict:
    from pytest_promptgate.report.cli import load_report

    return load_report(path)


def report_and_context(args: argparse.Namespace) -> tuple[dict, Context]:
    return load_report_file(args.report), context_from_args(args)
