"""The dump stage's own cost per image, without a GPU: encoding and writing the parts, the dump's digest, and
a warm run's reading, on RF-DETR-like detections (100 masks an image at 480×640, each a random pattern of a
given density: random weights give noisy masks, megabytes of RLE an image).

    PYTHONPATH=. python benchmarks/dump_overhead.py [--images 64] [--density 0.02]

Prints milliseconds per image for: the encoding thread's work (records and part texts) with the RLE strings
scanned and escaped there, as before, escaped where they were made (the GPU's RLE), and records and text made
in one pass (``to_results_json``, what the local writer does now); the RLE thread's strings out of the buffer
the GPU transfers, each text copied (before) or a view of it (now); writing the parts (records to JSON on one
thread, files and the digest on another, as the local executor's writer does; wall time over all parts) and the
files alone (the writing thread's step); a Ray driver's writing of the records its workers return, as before
(the texts, the file and the digest in turn on the receiving thread) and now (a local run's writer threads,
:meth:`PartWriter.submit_records`); the digest the way it was computed before (the whole dump encoded again
after the last part) and the way it is now (each part's texts streamed into it as they are written); and a warm
run's use of a finished dump before (every part read and digested) and now (its completion marker checked,
nothing read).
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from preprocgate.cache import DumpCache, part_texts
from preprocgate.functional.coco import Detections, EncodedMasks, to_results, to_results_json
from preprocgate.keys import DumpDigest, dump_digest
from preprocgate.stages.allocator import trimming_held_back
from preprocgate.stages.dump import PartWriter

BATCH = 8


def detections(density: float, masks: int = 100) -> Detections:
    rng = np.random.default_rng(0)
    noisy = rng.random((masks, 480, 640)) < density
    rles = mask_utils.encode(np.asfortranarray(noisy.transpose(1, 2, 0).astype(np.uint8)))
    boxes = rng.random((masks, 4)).astype(np.float32) * 300
    boxes[:, 2:] += boxes[:, :2]
    counts = [r["counts"].decode("ascii") for r in rles]
    texts = [json.dumps(c)[1:-1].encode("ascii") for c in counts]  # as the GPU's encode_many_json hands them
    return Detections(
        boxes, rng.random(masks).astype(np.float32), rng.integers(1, 80, masks), EncodedMasks(480, 640, counts, texts)
    )


def encoding(one: Detections, images: int, how: str) -> float:
    """Seconds to make the records and part texts of ``images`` images, on this thread (the GIL held): the
    encoding thread's work. ``how``: ``here`` (the strings scanned and escaped here, as before the GPU escaped
    them), ``made`` (escaped where they were made, the records encoded as JSON and the strings spliced back), or
    ``together`` (:func:`to_results_json`: records and text in one pass, what the local writer does now)."""
    assert isinstance(one.masks, EncodedMasks)
    begin = time.perf_counter()
    for start in range(0, images, BATCH):
        ids = range(start, min(start + BATCH, images))
        if how == "together":
            for i in ids:
                to_results_json(i, one)
            continue
        part = {i: to_results(i, one) for i in ids}
        part_texts(part, {i: one.masks.json for i in part} if how == "made" else None)
    return time.perf_counter() - begin


def host_strings(one: Detections, images: int, views: bool) -> float:
    """Seconds to make ``images`` images' strings out of the host buffer the GPU's RLE transfers (every bare string,
    then every escaped one, end to end), as ``rle._host_strings`` does, with glibc's trimming held back as during a
    dump: a ``str`` of each bare string, and of each escaped one a ``bytes`` copy (``views`` False: before) or a
    view of the buffer (now)."""
    assert isinstance(one.masks, EncodedMasks) and one.masks.json is not None
    bare = [c.encode("ascii") for c in one.masks.counts] * BATCH
    escaped = [bytes(t) for t in one.masks.json] * BATCH
    data = memoryview(b"".join(bare + escaped))
    spans = list(itertools.pairwise(itertools.accumulate(map(len, bare + escaped), initial=0)))
    bare_spans, escaped_spans = spans[: len(bare)], spans[len(bare) :]
    elapsed = 0.0
    with trimming_held_back():
        for _ in range(0, images, BATCH):
            begin = time.perf_counter()
            strings = [str(data[a:b], "ascii") for a, b in bare_spans]
            texts = [data[a:b] if views else data[a:b].tobytes() for a, b in escaped_spans]
            elapsed += time.perf_counter() - begin
            del strings, texts
    return elapsed


def part_writes(one: Detections, images: int, cache: DumpCache) -> float:
    """Seconds to write the parts' files alone (``DumpCache.write_texts``: the writing thread's step, its
    ``fsync`` included), the texts made beforehand."""
    parts = [
        {i: to_results_json(i, one)[1] for i in range(start, min(start + BATCH, images))}
        for start in range(0, images, BATCH)
    ]
    begin = time.perf_counter()
    for n, texts in enumerate(parts):
        cache.write_texts("e" * 64, f"w-{n:06d}", texts)
    return time.perf_counter() - begin


def driver(one: Detections, images: int, cache: DumpCache, overlapped: bool) -> tuple[float, str]:
    """Seconds for a Ray driver to write ``images`` images' parts received from its workers (records and their
    strings' text, made there), and the dump's digest: the most parts a second the driver can take in."""
    assert isinstance(one.masks, EncodedMasks)
    parts = [
        {i: to_results(i, one) for i in range(start, min(start + BATCH, images))} for start in range(0, images, BATCH)
    ]
    key = ("b" if overlapped else "a") * 64
    digest = DumpDigest()
    begin = time.perf_counter()
    if overlapped:
        with PartWriter(cache, key, digest) as writer:
            futures = [
                writer.submit_records(f"r-{n:06d}", p, {i: one.masks.json for i in p}) for n, p in enumerate(parts)
            ]
            for future in futures:
                future.result()
    else:
        for n, p in enumerate(parts):
            texts = part_texts(p, {i: one.masks.json for i in p})
            cache.write_texts(key, f"r-{n:06d}", texts)
            digest.add_part(texts)
    return time.perf_counter() - begin, digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--density", type=float, default=0.02, help="share of mask pixels set, at random")
    args = parser.parse_args()
    one = detections(args.density)
    cache = DumpCache(Path(tempfile.mkdtemp(prefix="pg-dump-")))
    ids = list(range(args.images))
    key = "f" * 64
    digest = DumpDigest()
    done: dict[int, list[dict]] = {}
    begin = time.perf_counter()
    with PartWriter(cache, key, digest) as writer:
        futures = [
            writer.submit(f"all-{n:06d}", ids[start : start + BATCH], [one] * len(ids[start : start + BATCH]))
            for n, start in enumerate(range(0, len(ids), BATCH))
        ]
        for future in futures:
            done.update(future.result()[0])
    write = time.perf_counter() - begin
    begin = time.perf_counter()
    whole = dump_digest(done)
    digest_after = time.perf_counter() - begin
    assert digest.ok and digest.hexdigest() == whole
    cache.mark_complete(key, "v", whole, sum(len(v) for v in done.values()), ids, {})
    marker = cache.complete(key)
    begin = time.perf_counter()
    assert dump_digest(cache.load_parts(key)) == whole
    warm_before = time.perf_counter() - begin
    begin = time.perf_counter()
    assert marker is not None and cache.intact(key, marker, ids) is not None
    warm_now = time.perf_counter() - begin
    here, made, together = (
        min(encoding(one, args.images, how) for _ in range(3)) for how in ("here", "made", "together")
    )
    files = min(part_writes(one, args.images, cache) for _ in range(3))
    copied, viewed = (min(host_strings(one, args.images, views) for _ in range(3)) for views in (False, True))
    (in_turn, a), (threads, b) = (driver(one, args.images, cache, overlapped) for overlapped in (False, True))
    assert a == b == whole
    per_image = {
        "records and part texts, strings escaped here (before; best of 3)": here,
        "records and part texts, strings escaped where made (GPU RLE; best of 3)": made,
        "records and part texts made together, to_results_json (the local writer now; best of 3)": together,
        "RLE thread: strings from the transferred buffer, a bytes copy of each text (before; best of 3)": copied,
        "RLE thread: strings from the transferred buffer, each text a view (now; best of 3)": viewed,
        "write parts (encoding and writing threads, streaming the digest)": write,
        "part files alone, write_texts (the writing thread's step; best of 3)": files,
        "ray driver: write received parts in turn (before)": in_turn,
        "ray driver: write received parts on the writer's threads (now)": threads,
        "digest after the dump, as before": digest_after,
        "warm: read every part and digest, as before": warm_before,
        "warm: check the marker, now": warm_now,
    }
    out = {
        "images": args.images,
        "rle_characters_per_image": sum(len(c) for c in one.masks.counts),  # type: ignore[union-attr]
        "ms_per_image": {k: round(1e3 * v / args.images, 3) for k, v in per_image.items()},
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
