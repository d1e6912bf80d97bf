"""Writing a suite (and its side files) to a directory and loading it, for the spec tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_promptgate.model import Suite, SuiteError
from pytest_promptgate.spec import load_suite

SUITE = "triage.promptgate.yaml"


def write_files(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def load(tmp_path: Path, suite: str, **files: str) -> Suite:
    write_files(tmp_path, {SUITE: suite, **files})
    return load_suite(tmp_path / SUITE, rootdir=tmp_path)


def error(tmp_path: Path, suite: str, **files: str) -> SuiteError:
    with pytest.raises(SuiteError) as caught:
        load(tmp_path, suite, **files)
    return caught.value
