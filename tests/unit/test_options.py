"""options.py: every option defined once; parsing, defaults and precedence without pytest."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_promptgate import options
from pytest_promptgate.options import OPTIONS, Option, OptionError, Options, resolve


def test_every_option_has_a_unique_name_dest_and_help() -> None:
    names = [option.name for option in OPTIONS]
    assert len(names) == len(set(names))
    assert all(option.dest == "promptgate_" + option.name.replace("-", "_") for option in OPTIONS)
    assert all(option.help and not option.help.endswith(".") for option in OPTIONS)


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.choices], ids=lambda o: o.name)
def test_a_choice_option_accepts_exactly_its_choices(option: Option) -> None:
    assert option.parse is not None
    assert [option.parse(choice.upper()) for choice in option.choices] == list(option.choices)
    with pytest.raises(OptionError, match="expected one of " + ", ".join(option.choices)):
        option.parse("sometimes")


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("threshold", "80", "did you mean 0.8"),
        ("threshold", "high", "between 0 and 1"),
        ("concurrency", "0", "expected at least 1"),
        ("finetune-after", "1", "expected at least 2"),
        ("timeout", "-1", "positive number"),
        ("workers", "-2", "auto or a whole number"),
        ("shard", "3/2", "1 <= I <= N"),
    ],
)
def test_bad_values_say_what_was_expected(name: str, text: str, message: str) -> None:
    parse = options.OPTIONS_BY_NAME[name].parse
    assert parse is not None
    with pytest.raises(OptionError, match=message):
        parse(text)


def test_good_values_parse() -> None:
    by_name = options.OPTIONS_BY_NAME
    assert by_name["threshold"].parse("85%") == pytest.approx(0.85)  # type: ignore[misc]
    assert by_name["workers"].parse("auto") is None  # type: ignore[misc]
    assert by_name["shard"].parse("2/4") == (2, 4)  # type: ignore[misc]
    assert by_name["max-cost"].parse("$1.5") == 1.5  # type: ignore[misc]


def test_defaults_are_the_ones_the_settings_use(tmp_path: Path) -> None:
    resolved = resolve({}, tmp_path)
    assert resolved == Options(
        history=tmp_path / ".promptgate" / "history.jsonl",
        cache_dir=tmp_path / ".promptgate" / "cache",
    )
    assert (resolved.concurrency, resolved.retries, resolved.threshold_default) == (8, 3, 0.8)


def test_the_command_line_overrides_and_the_ini_only_sets_defaults(tmp_path: Path) -> None:
    cli = resolve({"model": ("openai/a", "cli"), "threshold": (0.9, "cli")}, tmp_path)
    ini = resolve({"model": ("openai/b", "ini"), "threshold": (0.7, "ini")}, tmp_path)
    assert (cli.model, cli.model_default, cli.threshold) == ("openai/a", None, 0.9)
    assert (ini.model, ini.model_default, ini.threshold, ini.threshold_default) == (
        None,
        "openai/b",
        None,
        0.7,
    )


def test_replay_reads_the_cache_and_no_history_disables_it(tmp_path: Path) -> None:
    resolved = resolve(
        {"replay": (True, "cli"), "no-history": (True, "cli"), "report": ("out/r.json", "cli")},
        tmp_path,
        tmp_path / "sub",
    )
    assert (resolved.cache, resolved.replay, resolved.history) == ("read", True, None)
    assert resolved.report == tmp_path / "sub" / "out" / "r.json"
