"""Content-addressed on-disk cache of model replies.

Key: sha256 of the canonical JSON of (api_base, model, messages, public params, sample index).
Value: ``<dir>/<key[:2]>/<key>.json`` with the output, tokens, cost and latency as first
measured, so ``cost`` and ``latency`` expectations judge a replayed reply like the original.
No secret ever enters a key or an entry: secret params are dropped before hashing.

Writes are atomic (temporary file in the same directory, then ``os.replace``, as
``atomic.write_atomic`` does, minus its fsync and per-write set-up): a reader, or a run
interrupted mid-write, sees a whole entry or none. A damaged entry is a miss plus a warning.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

from pytest_promptgate.model import (
    CallRequest,
    CallResult,
    UsageError,
    call_extras_from_dict,
    call_extras_to_dict,
)
from pytest_promptgate.options import CACHE_MODES
from pytest_promptgate.render import (
    public_params,
)  # one secret rule for hashes, cache keys and reports

__all__ = ["CACHE_MODES", "ResponseCache", "cache_key", "public_params"]

CACHE_SCHEMA = 1

# Where the request goes is part of the key; they are not sampling params.
_ENDPOINT_KEYS = ("api_base", "base_url")


def cache_key(req: CallRequest, endpoint: tuple[Any, dict[str, Any]] | None = None) -> str:
    """``endpoint``: ``key_params(req.params)`` when the caller already has it."""
    api_base, params = endpoint if endpoint is not None else key_params(req.params)
    document = {
        "api_base": api_base,
        "model": req.model,
        "messages": [dict(m) for m in req.messages],
        "params": params,
        "sample": req.sample,
    }
    canonical = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def key_params(raw: Any) -> tuple[Any, dict[str, Any]]:
    """(api_base, the other public params) as they enter a key: secrets never do."""
    params = public_params(raw)
    api_base = next((params.pop(k) for k in _ENDPOINT_KEYS if k in params), None)
    for k in _ENDPOINT_KEYS:
        params.pop(k, None)
    return api_base, params


class ResponseCache:
    """``get`` before a call, ``put`` after a successful one. Not thread-safe: one event loop."""

    def __init__(self, directory: Path | str, mode: str = "readwrite", replay: bool = False):
        if mode not in CACHE_MODES:
            raise UsageError(
                f"unknown cache mode {mode!r}",
                hint=f"use one of: {', '.join(CACHE_MODES)}",
            )
        self.directory = Path(directory)
        self.mode = mode
        self.replay = replay
        self.hits = 0
        self.misses = 0
        self.saved_usd = 0.0
        self.writes = 0
        self.warnings: list[str] = []
        self._made_dirs: set[str] = set()  # shards known to exist
        self._temp_ids = itertools.count()
        self._directory_text = os.fspath(self.directory)
        self._key_params: dict[int, tuple[Any, tuple[Any, dict[str, Any]]]] = {}

    @property
    def reads(self) -> bool:
        return self.replay or self.mode in ("read", "readwrite")

    @property
    def writes_enabled(self) -> bool:
        return not self.replay and self.mode in ("write", "readwrite")

    def key(self, req: CallRequest) -> str:
        # Every case of a version shares one params mapping: strip its secrets once, not per
        # call. The mapping is kept in the memo so that its id cannot be reused meanwhile.
        memo = self._key_params.get(id(req.params))
        if memo is None or memo[0] is not req.params:
            memo = (req.params, key_params(req.params))
            if len(self._key_params) > 256:
                self._key_params.clear()
            self._key_params[id(req.params)] = memo
        return cache_key(req, memo[1])

    def path_for(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def _file_for(self, key: str) -> str:
        """``path_for`` as a plain string, for the read path (a Path per lookup costs more than
        the read itself on a fully cached run)."""
        return os.path.join(self._directory_text, key[:2], key + ".json")

    def contains(self, req: CallRequest) -> bool:
        """Whether ``get`` would hit, without counting or warning (for budget estimates)."""
        if not self.reads:
            return False
        key = self.key(req)
        return self._load(self._file_for(key), key, quiet=True) is not None

    def get(self, req: CallRequest, key: str | None = None) -> CallResult | None:
        """The cached result for ``req`` (``key``: its precomputed ``self.key(req)``)."""
        if not self.reads:
            return None
        key = key or self.key(req)
        result = self._load(self._file_for(key), key, quiet=False)
        if result is None:
            self.misses += 1
            return None
        self.hits += 1
        if result.cost_usd:
            self.saved_usd += result.cost_usd
        return result

    def get_all(self, requests: list[CallRequest]) -> list[CallResult] | None:
        """Every request's cached result, counted as hits; None, counting nothing and warning
        about nothing, when one is missing (the caller then asks ``get`` one by one)."""
        if not self.reads:
            return None
        found = []
        for req in requests:
            key = self.key(req)
            result = self._load(self._file_for(key), key, quiet=True)
            if result is None:
                return None
            found.append(result)
        for result in found:
            self.hits += 1
            if result.cost_usd:
                self.saved_usd += result.cost_usd
        return found

    def _load(self, path: str | Path, key: str, quiet: bool) -> CallResult | None:
        try:
            with open(path, "rb") as handle:
                text = handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._damaged(path, f"unreadable ({exc.strerror or exc})", quiet)
            return None
        try:
            entry = json.loads(text)
        except ValueError:
            self._damaged(path, "not valid JSON", quiet)
            return None
        problem = _entry_problem(entry, key)
        if problem:
            self._damaged(path, problem, quiet)
            return None
        return CallResult(
            output=entry["output"],
            prompt_tokens=entry.get("prompt_tokens"),
            completion_tokens=entry.get("completion_tokens"),
            cost_usd=entry.get("cost_usd"),
            latency_ms=float(entry.get("latency_ms") or 0.0),
            attempts=int(entry.get("attempts") or 1),
            cached=True,
            **call_extras_from_dict(entry),  # tool calls etc.; absent in older entries
        )

    def _damaged(self, path: str | Path, reason: str, quiet: bool) -> None:
        if not quiet:
            self.warnings.append(
                f"damaged cache entry {path}: {reason}; treated as a miss and overwritten"
            )

    def put(self, req: CallRequest, result: CallResult, key: str | None = None) -> bool:
        """Store a successful, freshly measured result; returns whether it was written."""
        if not self.writes_enabled or not result.ok or result.cached or result.output is None:
            return False
        key = key or self.key(req)
        path = self._file_for(key)
        entry = {
            "schema": CACHE_SCHEMA,
            "key": key,
            "model": req.model,
            "sample": req.sample,
            "output": result.output,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "cost_usd": result.cost_usd,
            "latency_ms": result.latency_ms,
            "attempts": result.attempts,
            **call_extras_to_dict(result),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        try:
            self._write_entry(path, json.dumps(entry, ensure_ascii=False).encode("utf-8"))
        except OSError as exc:
            self.warnings.append(f"could not write cache entry {path}: {exc.strerror or exc}")
            return False
        self.writes += 1
        return True

    def _write_entry(self, path: str, payload: bytes) -> None:
        """``atomic.write_atomic`` without what an entry does not need, once per reply: a
        temporary file in the shard (named by pid and a counter: no other writer uses it), then
        ``os.replace``. No fsync (a lost entry is only a miss, and an fsync per reply would
        stall the event loop), no per-write mkdir, no random temporary name, no chmod: about
        half the CPU of the general writer."""
        shard = os.path.dirname(path)
        if shard not in self._made_dirs:  # mkdir once per shard, not once per write
            os.makedirs(shard, exist_ok=True)
            self._made_dirs.add(shard)
        temp = f"{path}.{os.getpid()}.{next(self._temp_ids)}.tmp"
        fd = os.open(
            temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o644
        )
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            os.replace(temp, path)
        except BaseException:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise


def _entry_problem(entry: Any, key: str) -> str | None:
    if not isinstance(entry, dict):
        return "not a JSON object"
    if entry.get("schema") != CACHE_SCHEMA:
        return f"schema {entry.get('schema')!r}, expected {CACHE_SCHEMA}"
    if entry.get("key") != key:
        return "its key does not match its file name"
    if not isinstance(entry.get("output"), str):
        return "no output text"
    for name in ("prompt_tokens", "completion_tokens"):
        if entry.get(name) is not None and not isinstance(entry[name], int):
            return f"{name} is not an integer"
    for name in ("cost_usd", "latency_ms"):
        value = entry.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"{name} is not a number"
    return None
