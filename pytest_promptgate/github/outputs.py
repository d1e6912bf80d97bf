"""``promptgate github outputs``: the action's outputs (verdict, report-path, failed-prompts)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from pytest_promptgate.github.workflow import load_report_file, warn
from pytest_promptgate.model import PASS, PromptgateError
from pytest_promptgate.textsafe import strip_control


def action_outputs(report: dict | None, report_path: str) -> dict[str, str]:
    if report is None:
        return {"verdict": "ERROR", "report-path": "", "failed-prompts": ""}
    failed = [
        re.sub(r"[\s,]+", "_", strip_control(p.get("prompt")))
        for p in report.get("prompts") or []
        if p.get("verdict") != PASS
    ]
    return {
        "verdict": strip_control(report.get("verdict")).replace("\n", " "),
        "report-path": report_path,
        "failed-prompts": ",".join(failed),
    }


def run_outputs(args: argparse.Namespace) -> int:
    try:
        report = load_report_file(args.report)
    except PromptgateError as exc:
        warn(f"promptgate: no report: {exc.message}")
        report = None
    outputs = action_outputs(report, str(Path(args.report).resolve()) if report is not None else "")
    target = os.environ.get("GITHUB_OUTPUT")
    text = "".join(f"{key}={value}\n" for key, value in outputs.items())
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0
