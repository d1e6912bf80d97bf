"""Small typed pieces of the session's state, shared by the session and the xdist hooks."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any

# Names of the item.user_properties entries that carry a case to the controller (xdist
# serialises reports, not items) and a tolerated miss's status to the terminal.
USER_PROPERTY = "promptgate"
STATUS_PROPERTY = "promptgate_status"


class Role(enum.Enum):
    """Which process of the run this is, decided once when the session starts."""

    SERIAL = "serial"  # no xdist: collects, calls, decides and reports
    CONTROLLER = "controller"  # xdist controller: gathers the workers' reports, gates, writes
    WORKER = "worker"  # xdist worker: collects and calls for the items it is sent


@dataclass
class RunCounters:
    """Counters of this process's batches (on the controller: merged from the workers)."""

    calls: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    saved_usd: float = 0.0
    spent_usd: float = 0.0
    model_phase_s: float = 0.0
    call_workers: int = 0  # call worker processes: the most of one batch, summed over xdist workers

    def add_outcome(self, outcome: Any) -> None:
        """Add a ``runner.RunOutcome``."""
        self.calls += outcome.calls
        self.cache_hits += outcome.cache_hits
        self.cache_misses += outcome.cache_misses
        self.saved_usd += outcome.saved_usd
        self.spent_usd += outcome.spent_usd
        self.model_phase_s += outcome.model_phase_s
        self.call_workers = max(self.call_workers, outcome.call_workers)

    def merge(self, other: dict[str, Any]) -> None:
        """Add a worker's counters (``as_dict`` on the other side of ``workeroutput``)."""
        self.calls += int(other.get("calls", 0))
        self.cache_hits += int(other.get("cache_hits", 0))
        self.cache_misses += int(other.get("cache_misses", 0))
        self.saved_usd += float(other.get("saved_usd", 0.0))
        self.spent_usd += float(other.get("spent_usd", 0.0))
        self.model_phase_s += float(other.get("model_phase_s", 0.0))
        self.call_workers += int(other.get("call_workers", 0))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
