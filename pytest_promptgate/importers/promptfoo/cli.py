"""`promptgate import promptfoo CONFIG -o DIR`: the command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_promptgate.importers.promptfoo.convert import convert_config, format_report
from pytest_promptgate.importers.promptfoo.suite_file import check_suites, write_suites
from pytest_promptgate.model import PromptgateError


def _run_import(args: Any) -> int:
    result = convert_config(Path(args.config), name=args.name)
    if not result.suites:
        raise PromptgateError("nothing to write: no provider could be paired with a prompt")
    written = write_suites(result, Path(args.output), force=args.force)
    problems = check_suites(written)
    print(format_report(result, written, problems))
    return 1 if problems else 0


def add_cli(subparsers: Any) -> None:
    """``promptgate import promptfoo CONFIG -o DIR [--name NAME] [--force]``."""
    from pytest_promptgate.importers import import_subparsers

    parser = import_subparsers(subparsers).add_parser(
        "promptfoo",
        help="convert a promptfooconfig.yaml into suites",
        description="Convert a promptfoo config into *.promptgate.yaml suites and report what "
        "could not be converted (TODO(promptfoo) comments, with the config's line).",
    )
    parser.add_argument("config", help="the promptfoo config (promptfooconfig.yaml)")
    parser.add_argument("-o", "--output", required=True, help="directory for the suites")
    parser.add_argument("--name", help="suite name (default: the config's file or directory name)")
    parser.add_argument("--force", action="store_true", help="overwrite existing suite files")
    parser.set_defaults(func=_run_import)
