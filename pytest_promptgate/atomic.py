"""Whole-file-or-nothing writes: a killed run never leaves half a report, cache entry or dataset.

The data goes to a temporary file in the target's directory (same filesystem) and is renamed
over the target with ``os.replace``, which is atomic on POSIX and Windows. Readers see the old
file or the new one, never a mix. (history.py has its own writer: it also holds a lock and
keeps a hook for tests that kill a writer mid-way.)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically.

    ``durable`` fsyncs the data before the rename, so a power cut cannot leave an empty file
    behind a completed rename. The response cache passes False: a lost entry is only a miss,
    and an fsync per reply would stall the event loop.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(temp_name, 0o644)  # mkstemp makes 0600; reports and caches are shared files
        os.replace(temp_name, path)
    except BaseException:
        try:
            os.unlink(temp_name)
        except OSError:
            pass
        raise
