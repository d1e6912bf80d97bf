"""The run history: ``.promptgate/history.jsonl``, one JSON record per evaluated version.

The history is what lets the gate count prompt iterations across runs (a suite usually holds
only its current version). It must survive what CI does to files:

* concurrent runs: writers take an exclusive ``fcntl.flock`` on a sidecar ``<file>.lock``;
* interrupted writes: a writer copies the existing file plus its new lines into a temporary
  file in the same directory, fsyncs it and ``os.replace``-s it over the original, so a
  killed writer leaves either the old or the new complete file (never half a line).
  Temporary files left by killed writers are removed by the next writer, under the lock;
* damaged files (edited by hand, truncated by a full disk): ``load_records`` skips a line it
  cannot read, with a warning naming file and line, and never fails.

Rewriting the whole file on each append is O(size); a record is a few hundred bytes, so
this stays cheap for tens of thousands of runs.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_promptgate.atomic import temp_prefix, write_atomic

HISTORY_SCHEMA = 1
DEFAULT_HISTORY_PATH = Path(".promptgate") / "history.jsonl"

# Fields every record must have for the gate to use it.
REQUIRED_FIELDS = ("prompt", "version", "content_hash", "rate", "timestamp")


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def case_set_hash(case_ids: Iterable[str]) -> str:
    """Order-independent hash of a set of case ids (16 hex chars)."""
    joined = "\n".join(sorted(set(case_ids)))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:16]


def git_commit(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """The checked-out commit, or None outside a repository / without git / before a commit."""
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "--verify", "-q", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = completed.stdout.strip()
    return commit if completed.returncode == 0 and commit else None


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a+b") as lock_file:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)


def _remove_stale_temps(path: Path) -> None:
    # Called under the lock: no other writer is active, so any temp file is a leftover.
    for leftover in path.parent.glob(temp_prefix(path) + "*.tmp"):
        try:
            leftover.unlink()
        except OSError:
            pass


def _write_bytes(handle: Any, data: bytes) -> None:
    """One place that writes the new file's content (tests slow it down to kill a writer)."""
    handle.write(data)


def append_records(path: str | os.PathLike[str], records: Sequence[Mapping[str, Any]]) -> None:
    """Append ``records`` (one JSON line each) atomically, safe against concurrent writers."""
    path = Path(path)
    if not records:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    new_lines = "".join(
        json.dumps(dict(record), ensure_ascii=False, sort_keys=True) + "\n" for record in records
    ).encode("utf-8")
    with _exclusive_lock(path):
        _remove_stale_temps(path)
        try:
            existing = path.read_bytes()
        except FileNotFoundError:
            existing = b""
        if existing and not existing.endswith(b"\n"):
            existing += b"\n"  # keep a damaged tail line on its own line (the reader skips it)
        # _write_bytes is looked up now, so a test can slow the write down to kill a writer.
        write_atomic(path, existing + new_lines, keep_mode=True, write=_write_bytes)


def load_records(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Read the history: (records, warnings). A missing file is an empty history."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        return [], [f"{path}: cannot read the history ({exc.strerror or exc}); ignored"]
    records: list[dict[str, Any]] = []
    warnings: list[str] = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            reason = getattr(exc, "msg", None) or str(exc)
            warnings.append(f"{path}:{number}: damaged history line skipped ({reason})")
            continue
        if not isinstance(record, dict):
            warnings.append(f"{path}:{number}: damaged history line skipped (not an object)")
            continue
        schema = record.get("schema")
        if isinstance(schema, int) and schema > HISTORY_SCHEMA:
            warnings.append(
                f"{path}:{number}: history record of a newer schema ({schema}) skipped; "
                "upgrade pytest-promptgate to read it"
            )
            continue
        missing = [name for name in REQUIRED_FIELDS if name not in record]
        if schema != HISTORY_SCHEMA or missing:
            detail = f"missing {', '.join(missing)}" if missing else f"schema {schema!r}"
            warnings.append(f"{path}:{number}: damaged history line skipped ({detail})")
            continue
        records.append(record)
    return records, warnings


def make_record(
    *,
    prompt: str,
    version: str,
    content_hash: str,
    model: str,
    case_ids: Sequence[str],
    n: int,
    passed: int,
    failed: int,
    errors: int,
    rate: float | None,
    ci_low: float | None,
    ci_high: float | None,
    failing_cases: Sequence[str],
    cost_usd: float | None,
    git_commit: str | None,
    timestamp: str | None = None,
    error_cases: Sequence[str] = (),
    effective_n: float | None = None,
) -> dict[str, Any]:
    """One history record. ``case_ids`` is kept so later runs can compare case sets.

    ``error_cases`` (ids among ``case_ids``) keeps later runs from pairing a case that errored
    here as if it had passed; ``effective_n`` is the sample size behind the interval (repeated
    samples of one case are not independent), ``n`` when absent.
    """
    return {
        "schema": HISTORY_SCHEMA,
        "prompt": prompt,
        "version": version,
        "content_hash": content_hash,
        "model": model,
        "case_set_hash": case_set_hash(case_ids),
        "case_ids": sorted(case_ids),
        "n": n,
        "passed": passed,
        "failed": failed,
        "errors": errors,
        "error_cases": sorted(error_cases),
        "effective_n": float(n) if effective_n is None else round(float(effective_n), 6),
        "rate": rate,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "failing_cases": list(failing_cases),
        "cost_usd": cost_usd,
        "git_commit": git_commit,
        "timestamp": timestamp or utc_now(),
    }


def iterations_table(
    records: Sequence[Mapping[str, Any]], prompt: str | None = None
) -> list[list[Any]]:
    """Rows for ``promptgate history``: one per (prompt, content hash), oldest first.

    The numbers are those of the latest run of that iteration; ``runs`` counts its runs.
    """
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for record in records:
        if prompt is not None and record["prompt"] != prompt:
            continue
        grouped.setdefault((record["prompt"], record["content_hash"]), []).append(record)
    ordered = sorted(
        grouped.items(), key=lambda item: (item[0][0], min(str(r["timestamp"]) for r in item[1]))
    )
    rows: list[list[Any]] = []
    iteration_number: dict[str, int] = {}
    for (prompt_id, content_hash), runs in ordered:
        latest = max(runs, key=lambda r: str(r["timestamp"]))
        iteration_number[prompt_id] = iteration_number.get(prompt_id, 0) + 1
        rate, low, high = latest.get("rate"), latest.get("ci_low"), latest.get("ci_high")
        rows.append(
            [
                prompt_id,
                iteration_number[prompt_id],
                latest["version"],
                str(content_hash)[:8],
                latest.get("model", ""),
                f"{latest.get('passed', '?')}/{latest.get('n', '?')}",
                "—" if rate is None else f"{rate * 100:.1f}%",
                "—" if low is None or high is None else f"{low * 100:.0f}–{high * 100:.0f}%",
                len(runs),
                latest["timestamp"],
                (latest.get("git_commit") or "")[:8],
            ]
        )
    return rows


HISTORY_HEADERS = [
    "prompt",
    "iter",
    "version",
    "hash",
    "model",
    "passed/n",
    "rate",
    "95% CI",
    "runs",
    "last run",
    "commit",
]


def _run_history_command(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    records, warnings = load_records(args.history)
    for warning in warnings:
        print(f"warning: {warning}")
    rows = iterations_table(records, args.prompt)
    if not rows:
        target = f"prompt {args.prompt!r}" if args.prompt else "any prompt"
        print(f"no history for {target} in {args.history}")
        return 0
    print(tabulate(rows, headers=HISTORY_HEADERS, tablefmt="simple"))
    return 0


def add_cli(subparsers: Any) -> None:
    """``promptgate history [PROMPT] [--history PATH]``; sets ``func(args) -> int``."""
    parser = subparsers.add_parser(
        "history", help="show the iterations of each prompt and their success rates"
    )
    parser.add_argument("prompt", nargs="?", default=None, help="only this prompt id")
    parser.add_argument(
        "--history",
        type=Path,
        default=DEFAULT_HISTORY_PATH,
        help=f"history file (default: {DEFAULT_HISTORY_PATH})",
    )
    parser.set_defaults(func=_run_history_command)
