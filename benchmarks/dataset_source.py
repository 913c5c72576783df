"""How a dataset's images are best read from an fsspec URL: one ``cat_file`` per image in threads, or a chunk
of images in one concurrent ``fs.cat`` (what preprocgate/data/source.py does for asynchronous backends), against
a local read and against what ``load_coco`` takes end to end (read + hash).

    PYTHONPATH=. python benchmarks/dataset_source.py [--images FOLDER] [--repeats 3]

Serves FOLDER (default: the 128 COCO photos of ../shared/data) over real HTTP on 127.0.0.1 with Python's
http.server; CPU only. A remote store adds latency per request, which favours concurrent reads further.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fsspec

from preprocgate.data.source import CHUNK, THREADS, images_at
from tests.helpers.http_folder import served

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco128" / "val2017"


def best(repeats: int, work: Callable[[], object]) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = work()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=DEFAULT)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    names = sorted(p.name for p in args.images.iterdir() if p.is_file())
    with served(args.images) as base:
        fs = fsspec.filesystem("http")
        urls = [f"{base}/{n}" for n in names]
        fs.cat_file(urls[0])  # the session and the connection pool, outside the timings

        def threads() -> list[bytes]:
            with ThreadPoolExecutor(max_workers=THREADS) as pool:
                return list(pool.map(fs.cat_file, urls))

        def batched() -> list[bytes]:
            out: list[bytes] = []
            for start in range(0, len(urls), CHUNK):
                found = fs.cat(urls[start : start + CHUNK], on_error="return")
                out += [found[u] for u in urls[start : start + CHUNK]]
            return out

        def local() -> list[bytes]:
            with ThreadPoolExecutor(max_workers=THREADS) as pool:
                return list(pool.map(lambda n: (args.images / n).read_bytes(), names))

        def source(where: str) -> list[str]:
            return [hashlib.sha256(b).hexdigest() for b in images_at(where, Path("/")).read_many(names)]

        rows = [
            (f"http: cat_file per image, {THREADS} threads", *best(args.repeats, threads)),
            (f"http: fs.cat of {CHUNK} images at a time", *best(args.repeats, batched)),
            ("local folder, threads", *best(args.repeats, local)),
        ]
        reference = rows[-1][2]
        assert all(r[2] == reference for r in rows), "the reads disagree"
        digests = [hashlib.sha256(b).hexdigest() for b in reference]
        for label, where in (("source.py read_many + sha256: http", base), ("  same: local", str(args.images))):
            seconds, found = best(args.repeats, lambda w=where: source(w))
            assert found == digests
            rows.append((label, seconds, None))
    size = sum(map(len, reference)) / 1e6
    print(f"{len(names)} images, {size:.1f} MB, best of {args.repeats}")
    print("| read | seconds | MB/s |\n|---|---|---|")
    for label, seconds, _ in rows:
        print(f"| {label} | {seconds:.3f} | {size / seconds:.0f} |")


if __name__ == "__main__":
    main()
