"""Content hashes for cache keys and provenance: files by content, structures by canonical JSON."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
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


# the characters JSON writes as they are, and the backslash, which it doubles: a counts string made only of these
# (COCO's RLE strings are 48..111) needs no other escape
_PLAIN = bytes(b for b in range(0x20, 0x7F) if b != 0x22)
_MARK = "\x00"  # stands for a set-aside counts string; the encoder writes it "\u0000", which no RLE string holds


def results_json(records: list[dict], escaped: Sequence[bytes] | None = None, **options: Any) -> bytes:
    """``compact_json(records, **options)`` of COCO results as ASCII bytes (what a part file and a dump's digest
    take), the same text in about half the time when they carry RLE masks (megabytes an image for a noisy
    model's masks): each long ``segmentation.counts`` string is set aside, the rest encoded, and the strings put
    back with their backslashes doubled, the only escape their characters need. Bytes, not str: the strings are
    checked, escaped and joined as bytes (a bytes ``replace`` takes a third of the str one's time) and never
    encoded again. Anything else (a string with another character to escape, the mark found elsewhere) takes
    the standard way. ``escaped``: where the caller has them, each record's counts string already escaped
    (:func:`preprocgate.functional.rle.escape`, made on the GPU beside the string), put back as they are: no scan
    and no copy of the strings here. Measured: benchmarks/dump_overhead.py."""
    counts: list[bytes] = []
    stripped = []
    for k, record in enumerate(records):
        segmentation = record.get("segmentation")
        text = segmentation.get("counts") if isinstance(segmentation, dict) else None
        raw = None
        if escaped is not None and isinstance(text, str):
            raw = escaped[k]
        elif isinstance(text, str) and len(text) > 64:
            plain = text.encode("ascii") if text.isascii() else None
            if plain is None or plain.translate(None, _PLAIN):
                return compact_json(records, **options).encode("ascii")
            raw = plain.replace(b"\\", b"\\\\")
        if raw is not None:
            counts.append(raw)
            record = {**record, "segmentation": {**segmentation, "counts": _MARK}}
        stripped.append(record)
    if not counts:
        return compact_json(records, **options).encode("ascii")
    pieces = compact_json(stripped, **options).encode("ascii").split(b'"\\u0000"')
    if len(pieces) != len(counts) + 1:
        return compact_json(records, **options).encode("ascii")
    out = [pieces[0]]
    for raw, rest in zip(counts, pieces[1:], strict=True):
        out += (b'"', raw, b'"', rest)
    return b"".join(out)


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
