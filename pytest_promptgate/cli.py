"""The `promptgate` console script: the same engine as the pytest plugin, for humans and CI.

Each sub-command lives with the module that owns its data and registers itself through
``add_cli(subparsers)``; this file only dispatches and turns PromptgateError into one line.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pytest_promptgate.model import PromptgateError

# Modules that contribute sub-commands, in the order `--help` lists them.
COMMAND_MODULES = (
    "pytest_promptgate.history",  # promptgate history
    "pytest_promptgate.report.cli",  # promptgate report
    "pytest_promptgate.merge",  # promptgate merge
    "pytest_promptgate.finetune",  # promptgate export-finetune
    "pytest_promptgate.github",  # promptgate github comment|issues|annotate
    "pytest_promptgate.scaffold",  # promptgate init
    "pytest_promptgate.importers.promptfoo",  # promptgate import promptfoo
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promptgate",
        description="Gate LLM prompts on measured success rates (pytest-promptgate).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.add_cli(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except PromptgateError as exc:
        print(f"promptgate: {exc.format()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
