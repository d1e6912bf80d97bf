"""Compare a report with a baseline report (for example the base branch's): rate change and flips.

The result is written into each matching version entry as ``version["baseline"]`` so every
renderer shows it without knowing where it came from.
"""

from __future__ import annotations

from typing import Any

from pytest_promptgate.model import FAILED, PASSED, SCHEMA_VERSION, PromptgateError


def apply_baseline(report: dict, baseline: dict) -> None:
    """Set ``baseline`` on every (prompt, version) of ``report`` that ``baseline`` also has.

    Versions are matched on (prompt, version, model) first, then on (prompt, version) when the
    baseline ran that version with exactly one model. ``fixed`` lists cases that failed in the
    baseline and pass now, ``broken`` the reverse; errored cases count as neither.
    """
    _check_schema(baseline)
    # Keys are (prompt, version[, model]) as the report has them (a field may be missing).
    exact: dict[tuple[Any, ...], dict] = {}
    by_label: dict[tuple[Any, ...], list[dict]] = {}
    for prompt in baseline.get("prompts") or []:
        for version in prompt.get("versions") or []:
            key = (prompt.get("prompt"), version.get("version"))
            exact[key + (version.get("model"),)] = version
            by_label.setdefault(key, []).append(version)
    base_status = _case_statuses(baseline)
    current_status = _case_statuses(report)

    for prompt in report.get("prompts") or []:
        for version in prompt.get("versions") or []:
            label_key = (prompt.get("prompt"), version.get("version"))
            old = exact.get(label_key + (version.get("model"),))
            if old is None and len(by_label.get(label_key, [])) == 1:
                old = by_label[label_key][0]
            if old is None:
                continue
            old_cases = base_status.get(label_key + (old.get("model"),), {})
            new_cases = current_status.get(label_key + (version.get("model"),), {})
            shared = sorted(set(old_cases) & set(new_cases))
            rate, old_rate = version.get("rate"), old.get("rate")
            version["baseline"] = {
                "rate": old_rate,
                "delta": None if rate is None or old_rate is None else round(rate - old_rate, 6),
                "fixed": [c for c in shared if old_cases[c] == FAILED and new_cases[c] == PASSED],
                "broken": [c for c in shared if old_cases[c] == PASSED and new_cases[c] == FAILED],
            }


def _check_schema(baseline: Any) -> None:
    if not isinstance(baseline, dict):
        raise PromptgateError(
            "the baseline is not a promptgate JSON report (expected an object)",
            hint="pass a file written by --promptgate-report",
        )
    version = baseline.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise PromptgateError(
            "the baseline has no valid schema_version: not a promptgate JSON report",
            hint="pass a file written by --promptgate-report",
        )
    if version > SCHEMA_VERSION:
        raise PromptgateError(
            f"the baseline report has schema_version {version}, newer than this pytest-promptgate "
            f"understands ({SCHEMA_VERSION})",
            hint="upgrade pytest-promptgate, or regenerate the baseline with this version",
        )


def _case_statuses(report: dict) -> dict[tuple[Any, ...], dict[Any, Any]]:
    statuses: dict[tuple[Any, ...], dict[Any, Any]] = {}
    for case in report.get("cases") or []:
        key = (case.get("prompt"), case.get("version"), case.get("model"))
        statuses.setdefault(key, {})[case.get("case")] = case.get("status")
    return statuses
