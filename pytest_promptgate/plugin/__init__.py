"""The pytest glue: options, hookspecs, and the session object that is the run's hooks.

Loaded for every pytest run through the ``pytest11`` entry point, so it imports nothing
heavy: ``PromptgateSession`` (``session.py``) imports the engine inside the methods that
need it, once a suite file is collected. The options come from ``pytest_promptgate.options``,
their one definition.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_promptgate.options import OPTIONS, Option, OptionError, parse_value, resolve


def _cli_parser(option: Option) -> Callable[[str], Any] | None:
    """The option's parser, with its error as pytest's usage error (raised at the boundary)."""
    parse = option.parse
    if parse is None:
        return None

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except OptionError as exc:
            raise pytest.UsageError(f"{option.flag_name}: {exc}") from None

    convert.__name__ = option.name  # argparse names the type in some messages
    return convert


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("promptgate", "pytest-promptgate: gate on LLM prompt quality")
    for option in OPTIONS:
        if option.flag:
            group.addoption(
                option.flag_name,
                dest=option.dest,
                action="store_true",
                default=None,
                help=option.help,
            )
            parser.addini(option.dest, option.help, type="bool", default=None)
        else:
            group.addoption(
                option.flag_name,
                dest=option.dest,
                type=_cli_parser(option),
                default=None,
                help=option.help,
            )
            parser.addini(option.dest, option.help, type="string", default=None)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_promptgate import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def _given(config: pytest.Config) -> dict[str, tuple[Any, str]]:
    """Each option given on the command line (already parsed) or in the ini (parsed here)."""
    given: dict[str, tuple[Any, str]] = {}
    for option in OPTIONS:
        value = config.getoption(option.dest)
        if value is not None:
            given[option.name] = (value, "cli")
            continue
        ini = config.getini(option.dest)
        if ini in (None, "", []):
            continue
        try:
            given[option.name] = (parse_value(option, ini), "ini")
        except OptionError as exc:
            raise pytest.UsageError(
                f"{option.flag_name}: {exc} (from the ini option {option.dest})"
            ) from None
    return given


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    from pytest_promptgate.plugin.session import SESSION, PromptgateSession

    config.addinivalue_line("markers", "promptgate: a case of a prompt suite (pytest-promptgate)")
    options = resolve(_given(config), config.rootpath, config.invocation_params.dir)
    run = config.stash[SESSION] = PromptgateSession(config, options)
    config.pluginmanager.register(run, "promptgate-session")
    if config.pluginmanager.hasplugin("xdist"):
        from pytest_promptgate.plugin.xdist import XdistHooks

        config.pluginmanager.register(XdistHooks(config, run), "promptgate-xdist")


def pytest_unconfigure(config: pytest.Config) -> None:
    from pytest_promptgate.plugin.session import SESSION

    run = config.stash.get(SESSION, None)
    if run is not None:
        del config.stash[SESSION]
        for plugin in (run, config.pluginmanager.get_plugin("promptgate-xdist")):
            if plugin is not None:
                config.pluginmanager.unregister(plugin)
