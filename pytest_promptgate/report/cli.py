"""``promptgate report REPORT.json``: re-render a JSON report as terminal text, Markdown, HTML or JSON."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

from pytest_promptgate.atomic import write_atomic
from pytest_promptgate.model import PromptgateError

FORMATS = ("terminal", "markdown", "html", "json")


def add_cli(subparsers) -> argparse.ArgumentParser:
    """Register ``report``; the handler is ``args.func(args) -> int``."""
    parser = subparsers.add_parser(
        "report",
        help="render a JSON report as terminal text, Markdown, HTML or JSON",
        description="Render a promptgate JSON report (from --promptgate-report) in another format.",
    )
    parser.add_argument("report", type=Path, help="the JSON report")
    parser.add_argument(
        "--format", choices=FORMATS, default="terminal", help="output format (default: terminal)"
    )
    parser.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    parser.add_argument("--baseline", type=Path, help="a baseline JSON report to compare with")
    parser.set_defaults(func=run_report)
    return parser


def load_report(path: Path) -> dict:
    """A JSON report, validated by ``json_report.read_report`` (a clear error when it is not one)."""
    from pytest_promptgate.report.json_report import read_report

    return read_report(path)


def render(report: dict, fmt: str) -> str:
    if fmt == "markdown":
        from pytest_promptgate.report.markdown import render_markdown

        return render_markdown(report)
    if fmt == "html":
        from pytest_promptgate.report.html import render_html

        return render_html(report)
    if fmt == "json":
        from pytest_promptgate.report.json_report import dumps_report

        return dumps_report(report)
    from pytest_promptgate.report.terminal import render_terminal

    return render_terminal(report)


def run_report(args: argparse.Namespace) -> int:
    try:
        report = load_report(args.report)
        if args.baseline:
            from pytest_promptgate.report.baseline import apply_baseline

            apply_baseline(report, load_report(args.baseline))
        text = render(report, args.format)
    except PromptgateError as exc:
        print(f"promptgate: error: {exc.format()}", file=sys.stderr)
        return 2
    if args.output:
        write_atomic(args.output, text)
        return 0
    write_untrusted(text, sys.stdout)
    return 0


def write_untrusted(text: str, stream) -> None:
    """Print text that may contain model output; on Actions, stop workflow commands around it.

    The runner would otherwise execute a model output line like ``::add-mask::`` or
    ``::error::``; ``::stop-commands::TOKEN`` disables that until ``::TOKEN::``, with a token
    the model cannot guess.
    """
    if os.environ.get("GITHUB_ACTIONS") == "true":
        token = secrets.token_hex(16)
        stream.write(f"::stop-commands::{token}\n{text}")
        if not text.endswith("\n"):
            stream.write("\n")
        stream.write(f"::{token}::\n")
    else:
        stream.write(text)
    stream.flush()


def main(argv: list[str] | None = None) -> int:
    """Run ``report`` alone (the package's cli.py normally dispatches here)."""
    parser = argparse.ArgumentParser(prog="promptgate")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_cli(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
