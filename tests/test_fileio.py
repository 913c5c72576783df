"""Atomic writes from pieces: the file is the pieces back to back, or, when a write fails midway, the old file
with no temporary file left beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from preprocgate.fileio import atomic_write_bytes


def test_pieces_are_written_back_to_back_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "part.json"
    pieces = [b'{"results":{"1":', b"x" * 3_000_000, b"}}\n"]  # a piece larger than the file's buffer
    atomic_write_bytes(path, pieces)
    assert path.read_bytes() == b"".join(pieces)
    with pytest.raises(TypeError):
        atomic_write_bytes(path, [b"new", "not bytes"])  # type: ignore[list-item]
    assert path.read_bytes() == b"".join(pieces)
    assert [p.name for p in tmp_path.iterdir()] == ["part.json"]
    atomic_write_bytes(path, bytearray(b"one buffer"))  # a bytes-like object is one piece, not bytes to iterate
    assert path.read_bytes() == b"one buffer"
