"""``promptgate init [DIR]``: a starter suite and a GitHub workflow that gates PRs on it.

The starter follows the seed's first steps: one clear problem statement, a handful of real
cases with their expected outputs, an 80% threshold. Existing files are never overwritten
unless ``--force`` is given, and nothing is written if any target already exists.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

SUITE_PATH = Path("prompts") / "example.promptgate.yaml"
WORKFLOW_PATH = Path(".github") / "workflows" / "promptgate.yml"

STARTER_SUITE = """\
# A promptgate suite: one prompt, its versions (the last one is current) and real cases.
# Run it with `pytest prompts/`; the build fails when fewer than `threshold` of the cases pass.
# Keep earlier versions while you iterate: the report compares each version with the previous one.
prompt: ticket-triage
description: Route a support ticket to the right queue
model: openai/gpt-4o-mini          # any litellm model string; the API key comes from the environment
params: {temperature: 0, max_tokens: 5}
threshold: 0.8                     # the seed's rule: 8 of 10 succeed -> ship
finetune_after: 3                  # iterations below the threshold before fine-tuning is suggested
# usage: {calls_per_month: 100000, months: 12}   # enables the cost comparison with fine-tuning

versions:
  v1:
    system: |-
      Classify the support ticket as billing, bug, feature or account.
      Answer with that one word only, in lowercase.
    user: "{{ ticket }}"

defaults:
  expect:
    - one-of: [billing, bug, feature, account]

cases:
  - id: double-charge
    vars: {ticket: "I was charged twice for my subscription this month."}
    expect: [{equals: billing}]
  - id: refund-request
    vars: {ticket: "Please refund the annual plan I bought by mistake yesterday."}
    expect: [{equals: billing}]
  - id: export-crash
    vars: {ticket: "The app crashes every time I export a report to PDF."}
    expect: [{equals: bug}]
  - id: wrong-totals
    vars: {ticket: "The dashboard totals do not match the numbers in the table below them."}
    expect: [{equals: bug}]
  - id: dark-mode
    vars: {ticket: "Could you add a dark mode to the web app?"}
    expect: [{equals: feature}]
  - id: calendar-sync
    vars: {ticket: "It would be great to sync deadlines with Google Calendar."}
    expect: [{equals: feature}]
  - id: password-reset
    vars: {ticket: "I never receive the password reset email."}
    expect: [{equals: account}]
  - id: delete-account
    vars: {ticket: "How do I delete my account and all of my data?"}
    expect: [{equals: account}]
  - id: change-owner
    vars: {ticket: "Our admin left the company; how do we transfer ownership of the workspace?"}
    expect: [{equals: account}]
  - id: invoice-address
    vars: {ticket: "Our invoices show our old company address. Can you update it?"}
    expect: [{equals: billing}]
"""

STARTER_WORKFLOW = """\
# Gate pull requests on prompt quality with pytest-promptgate.
name: promptgate

on:
  pull_request:
  push:
    branches: [main]

permissions:
  contents: read

jobs:
  prompts:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      - name: Install
        run: python -m pip install pytest-promptgate
      # The history file lets promptgate count prompt iterations across runs.
      - uses: actions/cache@v4
        with:
          path: .promptgate
          key: promptgate-${{ github.ref_name }}-${{ github.run_id }}
          restore-keys: promptgate-${{ github.ref_name }}-
      - name: Run the prompt suites
        env:
          OPENAI_API_KEY: ${{ secrets.OPENAI_API_KEY }}
        run: python -m pytest prompts/ --promptgate-report promptgate-report.json
      - name: Keep the report
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: promptgate-report
          path: promptgate-report.json
"""

FILES = ((SUITE_PATH, STARTER_SUITE), (WORKFLOW_PATH, STARTER_WORKFLOW))


def init_project(directory: Path, force: bool = False) -> tuple[list[Path], list[Path]]:
    """Write the starter files under ``directory``: (written, refused because they exist)."""
    targets = [(directory / relative, content) for relative, content in FILES]
    existing = [path for path, _ in targets if path.exists()]
    if existing and not force:
        return [], existing
    written = []
    for path, content in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written, []


def _run_init_command(args: argparse.Namespace) -> int:
    written, refused = init_project(Path(args.directory), force=args.force)
    if refused:
        for path in refused:
            print(
                f"promptgate init: {path} already exists; nothing written (use --force to overwrite)"
            )
        return 1
    for path in written:
        print(f"wrote {path}")
    print("next: set OPENAI_API_KEY (or change `model:`), then run `pytest prompts/`")
    return 0


def add_cli(subparsers: Any) -> None:
    """``promptgate init [DIR] [--force]``."""
    parser = subparsers.add_parser("init", help="scaffold a starter suite and a GitHub workflow")
    parser.add_argument("directory", nargs="?", default=".", help="project directory (default .)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.set_defaults(func=_run_init_command)
