"""Importers: other tools' test configurations become pytest-promptgate suites.

Each importer is a module (or package) whose ``add_cli(subparsers)`` registers
``promptgate import <tool>`` (``pytest_promptgate.cli`` lists the modules); ``promptfoo`` is the
first.
"""

from __future__ import annotations

from typing import Any


def import_subparsers(subparsers: Any) -> Any:
    """The sub-commands of ``promptgate import``, creating ``import`` on first use so that
    several importer modules can each add their tool."""
    parser = subparsers.choices.get("import")
    if parser is None:
        parser = subparsers.add_parser(
            "import", help="convert another tool's test config into suites"
        )
        tools = parser.add_subparsers(dest="tool", metavar="TOOL")
        parser.set_defaults(func=lambda args: parser.print_help() or 2)
        parser._promptgate_tools = tools
    return parser._promptgate_tools
