"""``promptgate github annotate``: ``::error`` workflow commands for the first failing cases."""

from __future__ import annotations

import argparse
import os
import posixpath

from pytest_promptgate.github.api import redact
from pytest_promptgate.github.workflow import load_report_file
from pytest_promptgate.model import CONSIDER_FINE_TUNING, FAIL, FAILED, RETHINK
from pytest_promptgate.textsafe import strip_control, workflow_data, workflow_property

MAX_ANNOTATIONS = 10
_FAILING_VERDICTS = (FAIL, CONSIDER_FINE_TUNING, RETHINK)


def error_annotations(
    report: dict, path_prefix: str = "", limit: int = MAX_ANNOTATIONS
) -> list[str]:
    """``::error`` workflow commands for the first failing cases of failing prompts.

    Message and properties are escaped the way the runner unescapes them, so model text can
    neither end the command nor start a new line (and so never a new command).
    """
    failing_prompts = {
        p.get("prompt"): p
        for p in report.get("prompts") or []
        if p.get("verdict") in _FAILING_VERDICTS
    }
    lines = []
    candidates = [
        c
        for c in report.get("cases") or []
        if c.get("prompt") in failing_prompts
        and c.get("status") == FAILED
        and c.get("version")
        == failing_prompts[c.get("prompt")].get("current_version", c.get("version"))
    ]
    for case in candidates[:limit]:
        reasons = "; ".join(
            f"{f.get('expectation')}: {f.get('reason')}" for f in case.get("failures") or []
        )
        message = strip_control(f"case {case.get('case')} failed: {reasons or 'see the report'}")[
            :500
        ]
        title = f"promptgate: {case.get('prompt')} {case.get('version')}"
        props = []
        if case.get("file"):
            path = (
                posixpath.normpath(posixpath.join(path_prefix, case["file"]))
                if path_prefix
                else case["file"]
            )
            props.append(f"file={workflow_property(path)}")
            if case.get("line"):
                props.append(f"line={int(case['line'])}")
        props.append(f"title={workflow_property(title)}")
        lines.append(f"::error {','.join(props)}::{workflow_data(message)}")
    if len(candidates) > limit:
        lines.append(
            f"::notice title=promptgate::{len(candidates) - limit} more failing cases are in the job summary"
        )
    return lines


def run_annotate(args: argparse.Namespace) -> int:
    report = load_report_file(args.report)
    token = os.environ.get("GITHUB_TOKEN", "").strip()
    for line in error_annotations(report, args.path_prefix or ""):
        print(redact(line, token))
    return 0
