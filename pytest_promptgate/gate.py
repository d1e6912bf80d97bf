"""The verdict of one prompt, and its ``prompts[]`` entry in the JSON report.

``evaluate_prompt`` is the front of the gate: it measures each version (``stats``), pairs the
iterations with the history (``iterations``), decides the verdict (``verdicts.decide``, whose
docstring states the rules in order) and assembles the entry with its reason and advice
(``gate_report``). ``overall`` and ``history_records`` complete the gate's public names, and
the names of those modules that callers use are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_promptgate.gate_report import (
    MAX_FAILING_PATTERNS,
    MAX_LISTED_CASES,
    PLATEAU_TEST,
    reason_and_advice,
    version_entries,
)
from pytest_promptgate.iterations import (
    VersionRun,
    history_records,
    prompt_iterations,
    utc_now,
)
from pytest_promptgate.model import Suite
from pytest_promptgate.options import DEFAULT_PLATEAU_MARGIN, FINETUNE_MODES, GATE_MODES
from pytest_promptgate.stats import version_stats
from pytest_promptgate.verdicts import (
    COMPARABLE_OVERLAP,
    MAX_ERROR_FRACTION,
    NOISE_JACCARD,
    RETHINK_BELOW,
    SEVERITY,
    SIGNIFICANCE,
    Decision,
    Gain,
    Iteration,
    decide,
    gate_passes,
    overall,
)

__all__ = [
    "COMPARABLE_OVERLAP",
    "DEFAULT_PLATEAU_MARGIN",
    "FINETUNE_MODES",
    "GATE_MODES",
    "MAX_ERROR_FRACTION",
    "MAX_FAILING_PATTERNS",
    "MAX_LISTED_CASES",
    "NOISE_JACCARD",
    "PLATEAU_TEST",
    "RETHINK_BELOW",
    "SEVERITY",
    "SIGNIFICANCE",
    "Decision",
    "Gain",
    "Iteration",
    "VersionRun",
    "decide",
    "evaluate_prompt",
    "gate_passes",
    "history_records",
    "overall",
]


def evaluate_prompt(
    *,
    suite: Suite,
    file: str,
    versions: Sequence[VersionRun],
    threshold: float,
    gate: str = "point",
    finetune_after: int = 3,
    history: Sequence[Mapping[str, Any]] = (),
    finetune_mode: str = "fail",
    plateau_margin: float = DEFAULT_PLATEAU_MARGIN,
) -> dict[str, Any]:
    """The ``prompts[]`` entry of the JSON report for one prompt (docs/ARCHITECTURE.md).

    ``versions`` are in suite order; the last one is the current version. ``history`` is
    the content of the history file (all prompts; this function picks its own).
    ``finetune_mode`` does not change the verdict (only ``overall``'s exit status); it is
    accepted so the advice can say whether the build is blocked. ``plateau_margin`` is δ,
    the gain (a rate difference in 0..1) below which the window counts as a plateau.
    """
    if not versions:
        raise ValueError(f"prompt {suite.prompt!r}: no version was run")
    if gate not in GATE_MODES:
        raise ValueError(f"unknown gate mode {gate!r}; expected one of {', '.join(GATE_MODES)}")
    if finetune_mode not in FINETUNE_MODES:
        raise ValueError(f"unknown finetune mode {finetune_mode!r}; expected fail or flag")
    if not 0.0 < plateau_margin <= 1.0:
        raise ValueError(f"plateau margin must be in (0, 1], got {plateau_margin!r}")
    finetune_after = max(1, int(finetune_after))
    timestamp = utc_now()
    all_stats = [version_stats(run.results) for run in versions]

    entries = version_entries(versions, all_stats, threshold, gate)
    iterations = prompt_iterations(versions, all_stats, history, suite.prompt, timestamp)
    decision = decide(
        iterations,
        threshold=threshold,
        gate=gate,
        finetune_after=finetune_after,
        plateau_margin=plateau_margin,
    )

    current_run, current = versions[-1], all_stats[-1]
    reason, advice = reason_and_advice(
        decision,
        iterations=iterations,
        suite=suite,
        file=file,
        current_run=current_run,
        current=current,
        threshold=threshold,
        gate=gate,
        finetune_after=finetune_after,
        finetune_mode=finetune_mode,
        plateau_margin=plateau_margin,
    )
    return {
        "prompt": suite.prompt,
        "file": file,
        "line": suite.location.line if suite.location else 1,
        "description": suite.description,
        "threshold": threshold,
        "verdict": decision.verdict,
        "reason": reason,
        "current_version": current_run.label,
        "versions": entries,
        "iterations": [it.to_dict() for it in iterations],
        "advice": advice,
    }
