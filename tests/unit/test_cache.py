"""ResponseCache: keys, round trip, modes, atomic writes, damaged entries, no secrets on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_promptgate import atomic as atomic_module
from pytest_promptgate.cache import ResponseCache, cache_key, public_params
from pytest_promptgate.model import CallRequest, CallResult, UsageError

SECRET = "sk-canary-5f4dcc3b5aa765d61d8327deb882cf99"


def req(content: str = "hello", sample: int = 0, **params: object) -> CallRequest:
    base = {"api_base": "http://127.0.0.1:1/v1", "api_key": SECRET, "temperature": 0}
    return CallRequest(
        "openai/fake-model", ({"role": "user", "content": content},), {**base, **params}, sample
    )


RESULT = CallResult(
    output="billing",
    prompt_tokens=12,
    completion_tokens=1,
    cost_usd=0.0025,
    latency_ms=321.5,
    attempts=2,
)


def test_round_trip_keeps_original_latency_and_cost(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path, "readwrite")
    assert cache.get(req()) is None
    assert cache.put(req(), RESULT)
    hit = cache.get(req())
    assert hit == CallResult(
        output="billing",
        prompt_tokens=12,
        completion_tokens=1,
        cost_usd=0.0025,
        latency_ms=321.5,
        attempts=2,
        cached=True,
    )
    assert (cache.hits, cache.misses, cache.saved_usd) == (1, 1, pytest.approx(0.0025))
    path = cache.path_for(cache.key(req()))
    assert path.parent.name == cache.key(req())[:2] and path.exists()
    entry = json.loads(path.read_text())
    assert entry["schema"] == 1 and entry["created_at"].endswith("Z")


def test_unknown_cost_stays_unknown(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path, "readwrite")
    cache.put(req(), CallResult(output="x", cost_usd=None, latency_ms=5.0))
    hit = cache.get(req())
    assert hit is not None and hit.cost_usd is None and cache.saved_usd == 0.0


def test_key_covers_what_changes_the_reply_and_ignores_secrets() -> None:
    key = cache_key(req())
    assert cache_key(req("other")) != key
    assert cache_key(req(sample=1)) != key
    assert cache_key(req(temperature=1)) != key
    assert cache_key(req(max_tokens=5)) != key  # contains "token" but is not a secret
    assert cache_key(req(api_base="http://other/v1")) != key
    assert cache_key(CallRequest("openai/other", req().messages, req().params)) != key
    assert cache_key(req(api_key="sk-another-key-value")) == key
    assert (
        cache_key(req(extra_headers={"Authorization": "Bearer x"}, aws_secret_access_key="s"))
        == key
    )
    assert (
        cache_key(CallRequest(req().model, req().messages, req().params, label="node::id")) == key
    )


def test_public_params_drops_secret_keys() -> None:
    params = {
        "api_key": "a",
        "github_token": "b",
        "headers": {},
        "db_password": "c",
        "max_tokens": 3,
        "seed": 1,
    }
    assert public_params(params) == {"max_tokens": 3, "seed": 1}


def test_no_secret_reaches_the_disk(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path, "readwrite")
    cache.put(req(), RESULT)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text()


def test_only_fresh_successes_are_written(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path, "readwrite")
    assert not cache.put(req(), CallResult(output=None, error="boom", error_kind="server"))
    assert not cache.put(req(), CallResult(output="x", cached=True))
    assert list(tmp_path.rglob("*.json")) == []


@pytest.mark.parametrize(
    "mode, replay, reads, writes",
    [
        ("off", False, False, False),
        ("read", False, True, False),
        ("write", False, False, True),
        ("readwrite", False, True, True),
        ("readwrite", True, True, False),  # replay never records
    ],
)
def test_modes(tmp_path: Path, mode: str, replay: bool, reads: bool, writes: bool) -> None:
    ResponseCache(tmp_path, "readwrite").put(req("stored"), RESULT)
    cache = ResponseCache(tmp_path, mode, replay=replay)
    assert (cache.get(req("stored")) is not None) is reads
    assert cache.put(req("new"), RESULT) is writes


def test_unknown_mode_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown cache mode 'sometimes'") as info:
        ResponseCache(tmp_path, "sometimes")
    assert "readwrite" in (info.value.hint or "")


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ResponseCache(tmp_path, "readwrite")
    target = cache.path_for(cache.key(req()))
    seen: list[tuple[bool, str]] = []
    real_replace = os.replace

    def replace(src: str, dst: object) -> None:
        # Just before the rename: the whole entry is in the temporary file, the target absent.
        seen.append((Path(str(dst)).exists(), Path(src).read_text()))
        real_replace(src, dst)

    monkeypatch.setattr(atomic_module.os, "replace", replace)
    cache.put(req(), RESULT)
    assert seen and seen[0][0] is False and json.loads(seen[0][1])["output"] == "billing"
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_a_leftover_temporary_file_does_not_block_a_write(tmp_path: Path) -> None:
    # A run killed between create and rename leaves ``<entry>.<pid>.<n>.tmp``; a later process
    # that happens to get the same pid must still write its entry.
    cache = ResponseCache(tmp_path, "readwrite")
    target = cache.path_for(cache.key(req()))
    target.parent.mkdir(parents=True)
    Path(f"{target}.{os.getpid()}.0.tmp").write_text("half an entry")
    assert cache.put(req(), RESULT)
    assert [p.name for p in target.parent.iterdir()] == [target.name]
    assert ResponseCache(tmp_path, "read").get(req()) is not None


def test_failed_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = ResponseCache(tmp_path, "readwrite")

    def fail(src: str, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_module.os, "replace", fail)
    assert not cache.put(req(), RESULT)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert "No space left" in cache.warnings[0]


@pytest.mark.parametrize(
    "content, reason",
    [
        ('{"schema": 1, "output": "x"', "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"schema": 99, "output": "x"}', "schema 99"),
        ("KEYMISMATCH", "does not match"),
        ('{"schema": 1, "key": "KEY", "output": null}', "no output"),
        ('{"schema": 1, "key": "KEY", "output": "x", "latency_ms": "fast"}', "latency_ms"),
    ],
)
def test_damaged_entry_is_a_miss_with_a_warning(tmp_path: Path, content: str, reason: str) -> None:
    cache = ResponseCache(tmp_path, "readwrite")
    key = cache.key(req())
    if content == "KEYMISMATCH":
        content = json.dumps({"schema": 1, "key": "0" * 64, "output": "x"})
    path = cache.path_for(key)
    path.parent.mkdir(parents=True)
    path.write_text(content.replace("KEY", key))
    assert cache.get(req()) is None
    assert (cache.hits, cache.misses) == (0, 1)
    assert (
        len(cache.warnings) == 1 and str(path) in cache.warnings[0] and reason in cache.warnings[0]
    )
    # the next successful call repairs it
    assert cache.put(req(), RESULT) and cache.get(req()) is not None


def test_contains_neither_counts_nor_warns(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path, "readwrite")
    assert not cache.contains(req())
    cache.put(req(), RESULT)
    assert cache.contains(req())
    assert (cache.hits, cache.misses, cache.warnings) == (0, 0, [])
