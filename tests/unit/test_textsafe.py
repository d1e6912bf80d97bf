"""The text-safety helpers every renderer shares: clipping, terminal text, percentages, paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_promptgate.textsafe import clip, one_line, pct, printable, relpath, truncate


@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [
        (0.575, 1, "57.5%"),
        (0.7, 1, "70%"),  # no trailing ".0"
        (1.0, 1, "100%"),
        (0.0, 1, "0%"),
        (0.12345, 2, "12.35%"),
        (0.625, 0, "62%"),  # the terminal table's whole percents (25/40), as always printed
        (0.7, 0, "70%"),
        (None, 1, "n/a"),
    ],
)
def test_pct(value, digits, expected):
    assert pct(value, digits) == expected


def test_pct_says_what_a_missing_rate_looks_like():
    assert pct(None, 0, missing="—") == "—"


def test_clip_keeps_at_most_limit_characters_with_an_ellipsis():
    assert clip("abcdef", 10) == "abcdef"
    assert clip("abcdef", 4) == "abc…"
    assert len(clip("x" * 500, 40)) == 40
    assert clip(None, 5) == ""


def test_truncate_says_how_much_was_cut_and_cutting_twice_keeps_the_true_count():
    once = truncate("x" * 1500, 1000)
    assert once == "x" * 1000 + "… (500 more characters)"
    block = truncate("y" * 25_000, 20_000, newline=True)
    assert block.endswith("y\n… (5,000 more characters)")
    assert truncate(block, 20_000, newline=True) == block, "an xdist worker already cut it"
    assert truncate("short", 10) == "short"
    payload = "z" * 20_000 + "\n… (980000 more characters cut)"  # cut on an xdist worker
    assert truncate(payload, 20_000, newline=True) == payload


def test_printable_shows_control_characters_instead_of_sending_them():
    text = "red \x1b[31mX\x1b[0m bell\x07 nul\x00 c1\x9b\nnext\tline"
    shown = printable(text)
    assert "\x1b" not in shown and "\x07" not in shown and "\x00" not in shown
    assert "\x9b" not in shown
    assert "\\x1b[31mX" in shown and "\\x00" in shown and "\\x9b" in shown
    assert "\nnext\tline" in shown, "newline and tab are kept"
    assert printable("plain é ✓") == "plain é ✓"


def test_one_line_is_printable_flat_and_clipped():
    assert one_line("a\nb\tc\x1b", 90) == "a b c\\x1b"
    assert len(one_line("word " * 100, 30)) == 30


def test_relpath_inside_outside_and_without_root(tmp_path):
    suite = tmp_path / "prompts" / "a.promptgate.yaml"
    assert relpath(suite, tmp_path) == "prompts/a.promptgate.yaml"
    assert relpath(tmp_path / "prompts" / ".." / "b.yaml", tmp_path) == "b.yaml"
    outside = tmp_path.parent / "elsewhere.yaml"
    assert relpath(outside, tmp_path / "repo") == outside.as_posix()
    assert relpath("prompts/a.yaml", None) == "prompts/a.yaml"


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_relpath_through_symlinks_on_either_side(tmp_path):
    real_root = tmp_path / "real"
    (real_root / "prompts").mkdir(parents=True)
    linked_root = tmp_path / "linked"
    linked_root.symlink_to(real_root)
    suite = real_root / "prompts" / "a.yaml"
    suite.write_text("x")
    # The root is named through a symlink (like /tmp vs /private/tmp), the file by its real path.
    assert relpath(suite, linked_root) == "prompts/a.yaml"
    assert relpath(linked_root / "prompts" / "a.yaml", real_root) == "prompts/a.yaml"
    # A folder inside the root that links elsewhere keeps its in-repo name.
    shared = tmp_path / "shared-prompts"
    shared.mkdir()
    (shared / "b.yaml").write_text("x")
    (real_root / "vendored").symlink_to(shared)
    assert relpath(real_root / "vendored" / "b.yaml", real_root) == "vendored/b.yaml"


def test_relpath_of_a_relative_path_is_taken_from_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("prompts").mkdir()
    assert relpath(Path("prompts/a.yaml"), tmp_path) == "prompts/a.yaml"
