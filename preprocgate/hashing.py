"""Content hashes for cache keys and provenance: files by content, structures by canonical JSON."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any


def compact_json(value: Any, **options: Any) -> str:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"), **options)``, the same text, faster on long
    ASCII strings (RLE masks: megabytes an image): the encoder's path for unescaped non-ASCII output is the
    quicker one on them (10–13% less time, benchmarks/json_encoding.py), and where the text holds a character the
    standard encoder would escape as ``\\uXXXX`` it is encoded again the standard way: the result never differs."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, **options)
    # the standard encoder escapes every character from DEL (0x7f) up; isascii() is O(1) (CPython marks all-ASCII
    # strings), the DEL search a fast scan
    if not text.isascii() or "\x7f" in text:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), **options)
    return text


def digest_json(value: Any) -> str:
    """sha256 of canonical JSON (sorted keys, no whitespace): equal structures, equal digests."""
    return hashlib.sha256(compact_json(value, default=str).encode()).hexdigest()


@lru_cache(maxsize=256)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, computed once per (path, size, mtime) in a process."""
    st = path.stat()
    return _file_digest(str(path.resolve()), st.st_size, st.st_mtime_ns)
