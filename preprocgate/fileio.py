"""Atomic file writes: a report, cache entry or baseline is either the old file or the whole new one.

Files are created with the permissions an ordinary ``open()`` gives (0644 under the usual umask), not the 0600
of a temporary file: reports and baselines are read by other CI steps and other users.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from preprocgate.errors import RunError
from preprocgate.hashing import compact_json

_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    with _UMASK_LOCK:  # reading the umask means setting it; no other thread may create files meanwhile
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes | bytearray | memoryview | Sequence[bytes]) -> None:
    """Write ``data`` to ``path`` atomically; an unwritable path is a one-line RunError naming it. ``data`` may
    be pieces, written one after another where they lie: a dump's part is megabytes of mask text an image, and
    joining them first copied all of it once more (benchmarks/dump_overhead.py)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise RunError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            if isinstance(data, bytes | bytearray | memoryview):  # one buffer, not pieces to iterate
                f.write(data)
            else:
                f.writelines(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise RunError(f"cannot write {path}: {exc.strerror or exc}") from exc
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any, compact: bool = False) -> None:
    """``compact`` for bulk machine-read files (dump parts): no indentation lets json use its C encoder, which
    wrote an RF-DETR dump part (8 images, 800 masks) about ten times faster than the indented one."""
    text = compact_json(data, allow_nan=True) if compact else json.dumps(data, indent=2, sort_keys=True, allow_nan=True)
    atomic_write_text(path, text + "\n")


def unusable_folder(folder: Path) -> str | None:
    """Why files could not be written under ``folder`` (created on demand), or None if they can."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return f"{folder}: no existing parent folder"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, where a folder is needed for {folder}"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable (needed for {folder})"
    return None
