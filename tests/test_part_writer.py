"""The local executor's part writer: parts encoded on one thread and written on another, in order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from preprocgate.cache import DumpCache
from preprocgate.functional.coco import Detections, EncodedMasks
from preprocgate.keys import DumpDigest, dump_digest
from preprocgate.stages.dump import PartWriter


def detections(seed: int) -> Detections:
    rng = np.random.default_rng(seed)
    boxes = rng.random((3, 4)).astype(np.float32) * 50
    boxes[:, 2:] += boxes[:, :2]
    counts = ["".join(chr(48 + int(c)) for c in rng.integers(0, 64, 80)) for _ in range(3)]  # 48..111, with "\\"
    return Detections(boxes, rng.random(3).astype(np.float32), rng.integers(1, 80, 3), EncodedMasks(20, 30, counts))


def test_parts_are_written_in_order_and_digested_as_the_whole_dump(tmp_path: Path) -> None:
    cache, digest = DumpCache(tmp_path), DumpDigest()
    done: dict[int, list[dict]] = {}
    with PartWriter(cache, "k" * 64, digest) as writer:
        futures = [writer.submit(f"all-{n:06d}", [2 * n, 2 * n + 1], [detections(2 * n), detections(2 * n + 1)])
                   for n in range(12)]  # fmt: skip
        for future in futures:
            part, seconds = future.result()
            assert seconds > 0
            done.update(part)
    assert digest.ok and digest.hexdigest() == dump_digest(done)
    files = sorted(cache.folder("k" * 64).glob("part-all-*.json"))
    assert len(files) == 12
    assert json.loads(files[3].read_text())["results"] == {str(k): done[k] for k in (6, 7)}
    assert any("\\" in r["segmentation"]["counts"] for records in done.values() for r in records)


def test_an_encoding_error_reaches_the_caller_and_writes_nothing(tmp_path: Path) -> None:
    cache = DumpCache(tmp_path)
    with PartWriter(cache, "k" * 64) as writer:
        future = writer.submit("all-000000", [1, 2], [detections(1)])  # one detection list short
        with pytest.raises(ValueError):
            future.result()
    assert not list(tmp_path.rglob("part-*.json"))
