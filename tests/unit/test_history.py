"""History file: atomic appends, concurrent writers, killed writers, damaged lines, CLI."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from pytest_promptgate import history
from pytest_promptgate.history import (
    append_records,
    case_set_hash,
    git_commit,
    iterations_table,
    load_records,
    make_record,
)

REPO = Path(__file__).resolve().parents[2]


def record(
    prompt: str = "p",
    version: str = "v1",
    content_hash: str = "h1",
    rate: float = 0.7,
    timestamp: str = "2026-11-27T10:00:00Z",
    **extra: object,
) -> dict:
    made = make_record(
        prompt=prompt,
        version=version,
        content_hash=content_hash,
        model="m",
        case_ids=["a", "b", "c"],
        n=3,
        passed=2,
        failed=1,
        errors=0,
        rate=rate,
        ci_low=0.2,
        ci_high=0.9,
        failing_cases=["c"],
        cost_usd=None,
        git_commit=None,
        timestamp=timestamp,
    )
    made.update(extra)
    return made


def test_append_then_load_round_trips(tmp_path):
    path = tmp_path / ".promptgate" / "history.jsonl"
    append_records(path, [record(version="v1"), record(version="v2", content_hash="h2")])
    append_records(path, [record(version="v3", content_hash="h3")])
    records, warnings = load_records(path)
    assert warnings == []
    assert [r["version"] for r in records] == ["v1", "v2", "v3"]
    assert records[0]["schema"] == 1
    assert records[0]["case_set_hash"] == case_set_hash(["c", "b", "a"])


def test_missing_file_is_an_empty_history(tmp_path):
    assert load_records(tmp_path / "nope.jsonl") == ([], [])


def test_truncated_and_damaged_lines_are_skipped_with_a_warning(tmp_path):
    path = tmp_path / "history.jsonl"
    good = json.dumps(record())
    path.write_text(good + "\n" + "not json\n" + good[: len(good) // 2], encoding="utf-8")
    records, warnings = load_records(path)
    assert len(records) == 1
    assert len(warnings) == 2
    assert warnings[0].startswith(f"{path}:2: damaged history line skipped")
    assert warnings[1].startswith(f"{path}:3: damaged history line skipped")
    # Appending after a truncated tail keeps every complete record readable.
    append_records(path, [record(version="v9", content_hash="h9")])
    records, warnings = load_records(path)
    assert [r["version"] for r in records] == ["v1", "v9"]
    assert len(warnings) == 2


def test_newer_schema_and_incomplete_records_are_skipped(tmp_path):
    path = tmp_path / "history.jsonl"
    newer = dict(record(), schema=2)
    incomplete = {"schema": 1, "prompt": "p"}
    path.write_text("\n".join(json.dumps(r) for r in (newer, incomplete, record())) + "\n")
    records, warnings = load_records(path)
    assert len(records) == 1
    assert "newer schema (2)" in warnings[0] and ":1:" in warnings[0]
    assert "missing" in warnings[1] and ":2:" in warnings[1]


def test_case_set_hash_ignores_order_and_duplicates():
    assert case_set_hash(["b", "a", "a"]) == case_set_hash(["a", "b"])
    assert case_set_hash(["a", "b"]) != case_set_hash(["a", "c"])


def test_git_commit_outside_a_repository_is_none(tmp_path):
    assert git_commit(tmp_path) is None


WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from pytest_promptgate.history import append_records, make_record
    worker = int(sys.argv[1])
    for i in range(25):
        append_records(sys.argv[2], [make_record(
            prompt="p", version=f"w{{worker}}-{{i}}", content_hash=f"h{{worker}}-{{i}}", model="m",
            case_ids=["a"], n=1, passed=1, failed=0, errors=0, rate=1.0, ci_low=0.2,
            ci_high=1.0, failing_cases=[], cost_usd=None, git_commit=None)])
    """
)


def test_concurrent_appends_from_four_processes_lose_nothing(tmp_path):
    path = tmp_path / "history.jsonl"
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(repo=str(REPO)))
    workers = [
        subprocess.Popen([sys.executable, str(script), str(worker), str(path)])
        for worker in range(4)
    ]
    assert [w.wait() for w in workers] == [0, 0, 0, 0]
    records, warnings = load_records(path)
    assert warnings == []
    assert sorted(r["version"] for r in records) == sorted(
        f"w{worker}-{i}" for worker in range(4) for i in range(25)
    )


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {repo!r})
    from pytest_promptgate import history

    def slow_write(handle, data):
        handle.write(data[: len(data) // 2])  # half of the new file is on disk...
        handle.flush()
        print("ready", flush=True)
        time.sleep(120)  # ...when the parent kills us

    history._write_bytes = slow_write
    history.append_records(sys.argv[1], [history.make_record(
        prompt="p", version="lost", content_hash="hx", model="m", case_ids=["a"], n=1,
        passed=1, failed=0, errors=0, rate=1.0, ci_low=0.2, ci_high=1.0, failing_cases=[],
        cost_usd=None, git_commit=None)] * 50)
    """
)


def test_a_writer_killed_mid_write_leaves_a_readable_file(tmp_path):
    path = tmp_path / "history.jsonl"
    append_records(path, [record(version="v1"), record(version="v2", content_hash="h2")])
    before = path.read_bytes()
    script = tmp_path / "killed.py"
    script.write_text(KILLED_WRITER.format(repo=str(REPO)))
    writer = subprocess.Popen(
        [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "ready"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    writer.stdout.close()

    assert list(tmp_path.glob(".history.jsonl.*.tmp")), "the killed writer left its temp file"
    assert path.read_bytes() == before
    records, warnings = load_records(path)
    assert warnings == [] and [r["version"] for r in records] == ["v1", "v2"]
    # The lock died with the writer: the next run appends and clears the leftover.
    append_records(path, [record(version="v3", content_hash="h3")])
    records, _ = load_records(path)
    assert [r["version"] for r in records] == ["v1", "v2", "v3"]
    assert not list(tmp_path.glob(".history.jsonl.*.tmp"))


def test_iterations_table_has_one_row_per_content_hash():
    records = [
        record(version="v1", content_hash="h1", rate=0.5, timestamp="2026-11-27T10:00:00Z"),
        record(version="v1", content_hash="h1", rate=0.6, timestamp="2026-11-27T11:00:00Z"),
        record(version="v2", content_hash="h2", rate=0.7, timestamp="2026-11-27T12:00:00Z"),
        record(prompt="other", content_hash="h9", timestamp="2026-11-27T09:00:00Z"),
    ]
    rows = iterations_table(records, "p")
    assert [(row[1], row[2], row[6], row[8]) for row in rows] == [
        (1, "v1", "60.0%", 2),
        (2, "v2", "70.0%", 1),
    ]


def test_history_command_prints_a_table(tmp_path, capsys):
    path = tmp_path / "history.jsonl"
    append_records(path, [record(version="v1"), record(version="v2", content_hash="h2", rate=0.75)])
    parser = argparse.ArgumentParser()
    history.add_cli(parser.add_subparsers())
    args = parser.parse_args(["history", "p", "--history", str(path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "iter" in out and "v2" in out and "75.0%" in out


def test_history_command_on_an_empty_history(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    history.add_cli(parser.add_subparsers())
    args = parser.parse_args(["history", "--history", str(tmp_path / "none.jsonl")])
    assert args.func(args) == 0
    assert "no history" in capsys.readouterr().out


def test_records_keep_errored_case_ids_and_the_effective_n():
    made = record()  # written without them: none errored, effective n = n
    assert made["error_cases"] == [] and made["effective_n"] == 3.0
    kept = make_record(
        prompt="p",
        version="v1",
        content_hash="h1",
        model="m",
        case_ids=["a", "b", "c", "d"],
        n=3,
        passed=2,
        failed=1,
        errors=1,
        rate=2 / 3,
        ci_low=0.2,
        ci_high=0.9,
        failing_cases=["c"],
        cost_usd=None,
        git_commit=None,
        error_cases=["d"],
        effective_n=7.25,
    )
    assert kept["error_cases"] == ["d"] and kept["effective_n"] == 7.25
