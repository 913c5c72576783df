"""Encoding a dump part as JSON: the standard ``json.dumps`` against :func:`preprocgate.hashing.compact_json`
(the same text), on an RF-DETR-like part: 8 images × 100 masks at 480×640, each a random pattern of a given
density (random weights give noisy masks: megabytes of RLE an image). Also decoding it. Needs no GPU.

    PYTHONPATH=. python benchmarks/json_encoding.py [--density 0.02] [--repeats 5]

Why: a dump's part files and its digest each encode every mask's RLE string; with 100 noisy masks an image that
is the engine's largest own cost after inference (benchmarks/RESULTS.md, RF-DETR dumps).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from pycocotools import mask as mask_utils

from preprocgate.hashing import compact_json


def part(density: float, images: int = 8, masks: int = 100) -> dict:
    rng = np.random.default_rng(0)
    noisy = rng.random((masks, 480, 640)) < density
    rles = mask_utils.encode(np.asfortranarray(noisy.transpose(1, 2, 0).astype(np.uint8)))
    records = [
        {
            "image_id": 1,
            "category_id": 3,
            "bbox": [1.25, 2.5, 30.75, 40.0],
            "score": 0.512345,
            "segmentation": {"size": [480, 640], "counts": r["counts"].decode("ascii")},
        }
        for r in rles
    ]
    return {"results": {str(i): records for i in range(images)}}


def timed(fn, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        begin = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - begin)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--density", type=float, default=0.02, help="share of mask pixels set, at random")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    data = part(args.density)
    images = len(data["results"])
    standard = json.dumps(data, sort_keys=True, separators=(",", ":"))
    assert compact_json(data) == standard
    ms = {
        "json.dumps": timed(lambda: json.dumps(data, sort_keys=True, separators=(",", ":")), args.repeats),
        "compact_json": timed(lambda: compact_json(data), args.repeats),
        "json.loads": timed(lambda: json.loads(standard), args.repeats),
    }
    out = {
        "rle_characters_per_image": len(standard) // images,
        "ms_per_image": {k: round(1e3 * v / images, 3) for k, v in ms.items()},
        "compact_json_over_json_dumps": round(ms["compact_json"] / ms["json.dumps"], 3),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
