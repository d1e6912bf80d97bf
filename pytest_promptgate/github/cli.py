"""``promptgate github {comment,issues,annotate,outputs}``: the sub-commands and their arguments."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pytest_promptgate.github.annotations import run_annotate
from pytest_promptgate.github.comment import run_comment
from pytest_promptgate.github.issues import DEFAULT_LABEL, run_issues
from pytest_promptgate.github.outputs import run_outputs
from pytest_promptgate.model import PromptgateError


def add_cli(subparsers) -> argparse.ArgumentParser:
    """Register ``github {comment,issues,annotate,outputs}``; handlers are ``args.func(args) -> int``."""
    parser = subparsers.add_parser(
        "github", help="post the report to GitHub (PR comment, issues, annotations)"
    )
    commands = parser.add_subparsers(dest="github_command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--report", type=Path, required=True, help="the JSON report (--promptgate-report)"
        )
        sub.add_argument("--repo", help="owner/name (default: $GITHUB_REPOSITORY)")
        sub.add_argument(
            "--token-env", default="GITHUB_TOKEN", help="environment variable holding the token"
        )
        sub.add_argument(
            "--api-url", help="REST API root (default: $GITHUB_API_URL or https://api.github.com)"
        )

    comment = commands.add_parser(
        "comment", help="create or update the one report comment on a pull request"
    )
    common(comment)
    comment.add_argument(
        "--markdown", type=Path, help="the Markdown report (default: rendered from the JSON)"
    )
    comment.add_argument(
        "--pr", type=int, help="pull request number (default: from $GITHUB_EVENT_PATH)"
    )
    comment.add_argument(
        "--summary-written",
        action="store_true",
        help="the report is already in the job summary: on failure add only a note",
    )
    comment.set_defaults(func=_guard(run_comment))

    issues = commands.add_parser(
        "issues", help="open or update one issue per prompt flagged for fine-tuning"
    )
    common(issues)
    issues.add_argument(
        "--label", default=DEFAULT_LABEL, help=f"issue label (default: {DEFAULT_LABEL})"
    )
    issues.set_defaults(func=_guard(run_issues))

    annotate = commands.add_parser(
        "annotate", help="print ::error annotations for the first failing cases"
    )
    annotate.add_argument("--report", type=Path, required=True)
    annotate.add_argument(
        "--path-prefix", default="", help="prefix for case files (the working directory)"
    )
    annotate.set_defaults(func=_guard(run_annotate))

    outputs = commands.add_parser(
        "outputs", help="write verdict, report-path, failed-prompts to $GITHUB_OUTPUT"
    )
    outputs.add_argument("--report", type=Path, required=True)
    outputs.set_defaults(func=_guard(run_outputs))
    return parser


def _guard(handler):
    """Usage errors become one line and exit 2; the token is redacted from anything we print."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except PromptgateError as exc:
            token = os.environ.get(getattr(args, "token_env", "GITHUB_TOKEN") or "GITHUB_TOKEN", "")
            text = exc.format()
            print(
                f"promptgate: error: {text.replace(token, '***') if token else text}",
                file=sys.stderr,
            )
            return 2

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="promptgate")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_cli(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)
