"""The docs say what exists: every relative link and every repository path mentioned in
README.md and docs/*.md exists, and every option in ``pytest --help`` is documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OPTIONS_PAGE = ROOT / "docs" / "running.md"

# [text](target) and ![alt](target); a target ends at whitespace or ")" (titles are not used).
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
# `path` in backticks, for the repository's own top-level directories (not `.github/`: the docs
# name the workflow `promptgate init` writes into a user's project).
REPO_DIRS = ("pytest_promptgate", "benchmarks", "examples", "tests", "docs", ".ci")
PATH = re.compile(r"`((?:" + "|".join(re.escape(d) for d in REPO_DIRS) + r")/[^`\s]*)`")
# Placeholders and patterns, not paths: <name>, globs, {a,b}, ellipses.
NOT_A_PATH = re.compile(r"[<>*{}]|\.\.\.|…")
FENCE = re.compile(r"^(```|~~~)")


def prose(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the lines outside fenced code blocks: examples in code blocks
    show user projects (prompts/, .github/ of a user repo), not this repository."""
    lines, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def relative_links(path: Path) -> list[tuple[int, str]]:
    found = []
    for number, line in prose(path):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # http:, https:, mailto:, in-page anchors
            found.append((number, target.split("#", 1)[0]))
    return found


def repo_paths(path: Path) -> list[tuple[int, str]]:
    found = []
    for number, line in prose(path):
        for mention in PATH.findall(line):
            if NOT_A_PATH.search(mention):
                continue
            # node ids (tests/x.py::test_y) and file:line positions name the file before them
            mention = mention.split("::", 1)[0]
            mention = re.sub(r":\d+(?:-\d+)?$", "", mention)
            found.append((number, mention))
    return found


def where(path: Path, number: int) -> str:
    return f"{path.relative_to(ROOT)}:{number}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_exists(doc: Path) -> None:
    missing = [
        f"{where(doc, n)}: {target}"
        for n, target in relative_links(doc)
        if target and not (doc.parent / target).exists()
    ]
    assert missing == [], "broken links:\n" + "\n".join(missing)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_repository_path_mentioned_exists(doc: Path) -> None:
    missing = [
        f"{where(doc, n)}: `{mention}`"
        for n, mention in repo_paths(doc)
        if not (ROOT / mention).exists()
    ]
    assert missing == [], "paths that do not exist:\n" + "\n".join(missing)


def test_the_checkers_find_links_and_paths(tmp_path: Path) -> None:
    # The checks above pass vacuously if the patterns match nothing: prove they match.
    page = tmp_path / "page.md"
    page.write_text(
        "See [a](docs/x.md#part), ![img](img/p.png), [web](https://e.org), [here](#top).\n"
        "Code in `pytest_promptgate/client.py:42`, `tests/unit/test_x.py::test_y`,\n"
        "not `tests/unit/<package>/test_*.py` nor `prompts/x.yaml`.\n"
        "```\n[in code](nowhere.md) `pytest_promptgate/nowhere.py`\n```\n",
        encoding="utf-8",
    )
    assert [t for _, t in relative_links(page)] == ["docs/x.md", "img/p.png"]
    assert [m for _, m in repo_paths(page)] == [
        "pytest_promptgate/client.py",
        "tests/unit/test_x.py",
    ]


def promptgate_help_options() -> list[str]:
    """The ``--promptgate-*`` options and ``promptgate_*`` ini names pytest's help prints."""
    help_text = subprocess.run(
        [sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout
    options = re.findall(r"^\s+(--promptgate-[a-z0-9-]+)", help_text, re.MULTILINE)
    return sorted(set(options))


def test_every_option_in_pytest_help_is_documented() -> None:
    options = promptgate_help_options()
    assert len(options) >= 10, "the promptgate option group was not found in pytest --help"
    page = OPTIONS_PAGE.read_text(encoding="utf-8")
    undocumented = [o for o in options if not re.search(re.escape(o) + r"(?![a-z0-9-])", page)]
    assert undocumented == [], f"options missing from {OPTIONS_PAGE.relative_to(ROOT)}: " + (
        ", ".join(undocumented)
    )
