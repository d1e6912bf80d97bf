"""Per-session state kept in ``config.stash`` (no private attributes on pytest objects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_promptgate.model import CaseResult, Suite


@dataclass(frozen=True)
class Options:
    """Resolved promptgate options. ``None`` means "not given": the suite or a default decides."""

    model: str | None = None  # CLI: overrides every suite's model
    model_default: str | None = None  # ini: used by suites without `model:`
    threshold: float | None = None  # CLI: overrides the suites
    threshold_default: float = 0.8  # ini or 0.8
    concurrency: int = 8
    retries: int = 3
    timeout_s: float = 60.0
    strict: bool = False
    report: Path | None = None
    markdown: Path | None = None
    html: Path | None = None
    baseline: Path | None = None
    history: Path | None = None  # None: history disabled
    gate: str = "point"
    finetune: str = "fail"
    finetune_after: int | None = None  # CLI override
    finetune_after_default: int = 3
    cache: str = "readwrite"
    cache_dir: Path | None = None
    replay: bool = False
    max_cost_usd: float | None = None
    shard: tuple[int, int] | None = None  # (index 1-based, total)
    judge_model: str | None = None
    rpm: float | None = None  # requests per minute for models whose suite sets no `rpm:`
    workers: int | None = None  # call worker processes; None: auto (callpool.auto_workers)


@dataclass
class State:
    options: Options
    rootdir: Path
    suites: dict[str, Suite] = field(default_factory=dict)  # suite path (rootdir-relative) -> Suite
    prompt_files: dict[str, str] = field(default_factory=dict)  # prompt id -> suite path
    suites_collected: int = 0
    items_collected: int = 0
    # Results computed in this process, by node id (serial run, or an xdist worker).
    results: dict[str, CaseResult] = field(default_factory=dict)
    # Payloads seen in reports, by node id (the controller's view, serial or xdist).
    reported: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Counters from the batches of this process (merged from workers on the controller).
    run_stats: dict[str, float] = field(
        default_factory=lambda: {
            "calls": 0,
            "cache_hits": 0,
            "cache_misses": 0,
            "saved_usd": 0.0,
            "spent_usd": 0.0,
            "model_phase_s": 0.0,
            "call_workers": 0,
        }
    )
    warnings: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    history_loaded: bool = False
    # Per-prompt facts the items ask for repeatedly, keyed ("items"|"known"|"verdict", prompt).
    gate_cache: dict[tuple[str, str], Any] = field(default_factory=dict)
    report: dict[str, Any] | None = None
    exit_status: int | None = None
    interrupted: bool = False
    # A serial run's batch, advanced by the items as they report (session._Stream).
    stream: Any = None
    report_write_failed: bool = False  # a renderer raised: the run must not pass silently


STATE = pytest.StashKey[State]()

# Names of the item.user_properties entries that carry a case to the controller (xdist
# serialises reports, not items) and a tolerated miss's status to the terminal.
USER_PROPERTY = "promptgate"
STATUS_PROPERTY = "promptgate_status"
