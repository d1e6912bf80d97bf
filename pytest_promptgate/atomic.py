"""Whole-file-or-nothing writes: a killed run never leaves half a report, cache entry or dataset.

The data goes to a temporary file in the target's directory (same filesystem) and is renamed
over the target with ``os.replace``, which is atomic on POSIX and Windows. Readers see the old
file or the new one, never a mix. history.py uses it too, under its own lock.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def temp_prefix(path: Path) -> str:
    """How this module's temporary files for ``path`` start (``<prefix>*.tmp``)."""
    return f".{path.name}."


def write_atomic(
    path: str | os.PathLike[str],
    data: str | bytes,
    *,
    durable: bool = True,
    keep_mode: bool = False,
    write: Callable[[BinaryIO, bytes], None] | None = None,
) -> None:
    """Replace ``path`` with ``data`` atomically.

    ``durable`` fsyncs the data before the rename and the directory after it, so a power cut
    can leave neither an empty file behind a completed rename nor a lost rename. The response
    cache passes False: a lost entry is only a miss, and an fsync per reply would stall the
    event loop. ``keep_mode``: an existing file keeps its permissions (new files get 0644).
    ``write(handle, payload)`` replaces the plain ``handle.write`` (a test hook of history.py).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, temp_name = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if write is None:
                handle.write(payload)
            else:
                write(handle, payload)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        mode = 0o644  # mkstemp makes 0600; reports and caches are shared files
        if keep_mode and path.exists():
            mode = path.stat().st_mode & 0o777
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except BaseException:
        try:
            os.unlink(temp_name)
        except OSError:
            pass
        raise
    if durable:
        _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(str(directory), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems do not support fsync on directories
    finally:
        os.close(fd)
