"""The local executor's part writer: parts encoded on one thread and written on another, in order; the finished
parts kept out of the garbage collector's way while a dump runs."""

from __future__ import annotations

import dataclasses
import gc
import itertools
import json
import pickle
import threading
import weakref
from collections import deque
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from preprocgate.cache import DumpCache
from preprocgate.functional.coco import Detections, EncodedMasks, to_results
from preprocgate.keys import DumpDigest, dump_digest
from preprocgate.stages import dump
from preprocgate.stages.dump import (
    DumpJob,
    MasksOnStream,
    PartWriter,
    escaped_counts,
    heap_frozen,
    take_written,
)
from preprocgate.timing import StageTimes


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


class _MasksSeen(MasksOnStream):
    """A batch whose masks are "on a GPU": encoding them says so and records which thread did it."""

    threads: list[str] = []  # noqa: RUF012 - shared by the instances on purpose
    started = threading.Event()

    def portable(self) -> list[Detections]:
        self.threads.append(threading.current_thread().name)
        self.started.set()
        return self.detections


def test_masks_on_a_gpu_are_encoded_on_their_own_thread_beside_the_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The RLE of a batch's GPU masks (mostly waits for the GPU) runs on a thread of its own, so that it does not
    wait for the encoding thread's records of the batch before: here part 1's records are made only once part 2's
    masks are being encoded (on one thread for both, that would never happen)."""
    _MasksSeen.threads, _MasksSeen.started = [], threading.Event()
    records = dump.to_results_json

    def held(image_id: int, d: Detections) -> tuple[list[dict], bytes]:
        if image_id == 1:
            assert _MasksSeen.started.wait(10), "part 2's masks were not encoded beside part 1's records"
        return records(image_id, d)

    monkeypatch.setattr(dump, "to_results_json", held)
    with PartWriter(DumpCache(tmp_path), "k" * 64) as writer:
        first = writer.submit("all-000000", [1], [detections(1)])
        second = writer.submit("all-000001", [2], _MasksSeen([detections(2)], None, None))
        assert first.result(timeout=20)[0][1] == to_results(1, detections(1))
        part, seconds = second.result(timeout=20)
    assert _MasksSeen.threads == ["preprocgate-rle_0"] and part[2] == to_results(2, detections(2)) and seconds > 0


def test_an_encoding_error_reaches_the_caller_and_writes_nothing(tmp_path: Path) -> None:
    cache = DumpCache(tmp_path)
    with PartWriter(cache, "k" * 64) as writer:
        future = writer.submit("all-000000", [1, 2], [detections(1)])  # one detection list short
        with pytest.raises(ValueError):
            future.result()
    assert not list(tmp_path.rglob("part-*.json"))


def test_strings_escaped_where_they_were_made_write_the_same_parts(tmp_path: Path) -> None:
    """Masks that carry their JSON text (the GPU's ``encode_many_json``) give byte for byte the parts and digest
    of the same masks without it, and so do their records received from a Ray worker with that text. The text
    is views of one buffer, as the encoder hands it over; what goes to another process is copied out of it."""
    plain = [detections(n) for n in range(4)]
    carried = []
    for d in plain:
        texts = [json.dumps(c)[1:-1].encode() for c in d.masks.counts]
        buffer = memoryview(b"".join(texts))
        views = [buffer[a:b] for a, b in itertools.pairwise(itertools.accumulate(map(len, texts), initial=0))]
        carried.append(dataclasses.replace(d, masks=dataclasses.replace(d.masks, json=views)))
    sent_texts = escaped_counts([0, 1, 2, 3], carried)
    expected = {i: [bytes(v) for v in d.masks.json] for i, d in enumerate(carried)}
    assert pickle.loads(pickle.dumps(sent_texts)) == expected
    parts, digests = [], []
    records = {}
    for name, batch in (("plain", plain), ("carried", carried), ("received", None)):
        cache, digest = DumpCache(tmp_path / name), DumpDigest()
        with PartWriter(cache, "k" * 64, digest) as writer:
            if batch is not None:
                records[name] = writer.submit("all-000000", [0, 1, 2, 3], batch).result()[0]
            else:  # a Ray worker's: records and their strings' text made there
                sent = {i: to_results(i, d) for i, d in enumerate(carried)}
                records[name] = writer.submit_records("all-000000", sent, sent_texts)
                records[name] = records[name].result()[0]
        parts.append(next(cache.folder("k" * 64).glob("part-*.json")).read_bytes())
        digests.append(digest.hexdigest())
    assert parts[0] == parts[1] == parts[2] and digests[0] == digests[1] == digests[2]
    assert records["plain"] == records["carried"] == records["received"]
    assert b"\\\\" in parts[0]


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_finished_parts_leave_the_collector_during_a_dump_and_come_back_after(tmp_path: Path) -> None:
    """While a dump runs, each finished part's records (and all else alive) are frozen out of the cyclic
    collector's generations, after a young collection that frees the garbage cycles made meanwhile; at the end
    everything is back in the collector's care."""
    stage = SimpleNamespace(times=StageTimes())
    job = DumpJob("v", "k" * 64, "all", None, [0, 1, 2, 3], {})  # type: ignore[arg-type]
    gc.unfreeze()  # an interpreter may start with objects frozen (one GPU image's Python: 375): none here
    with PartWriter(DumpCache(tmp_path), job.key, job.digest) as writer:
        assert writer.freeze
        dropped = weakref.ref(_Cycle())  # garbage only a collection frees
        parts = deque([writer.submit(f"all-{n:06d}", [2 * n, 2 * n + 1], [detections(2 * n), detections(2 * n + 1)])
                       for n in range(2)])  # fmt: skip
        take_written(stage, job, parts, keep=1)
        assert dropped() is None
        assert gc.get_freeze_count() > 0 and any(gc.is_tracked(r) for r in job.done[0])  # tracked, but in no generation
        take_written(stage, job, parts, keep=0)
        assert gc.get_freeze_count() > 0 and sorted(job.done) == [0, 1, 2, 3]
    assert gc.get_freeze_count() == 0


def test_a_process_that_froze_objects_itself_keeps_them_frozen_and_the_collector_off_stays_off() -> None:
    gc.freeze()  # e.g. a pre-fork server's own, or an interpreter's at start
    try:
        with heap_frozen() as freeze:
            assert freeze
            kept = [1.0, 2.0]
            gc.freeze()  # as the part writer does after each part
        assert gc.is_tracked(kept) and not any(o is kept for o in gc.get_objects())  # in no generation: frozen
    finally:
        gc.unfreeze()
    assert any(o is kept for o in gc.get_objects())
    gc.disable()
    try:
        with heap_frozen() as freeze:
            assert not freeze
    finally:
        gc.enable()
