"""The cv2 variant's batch on the CPU: normalising by a per-pixel float formula (the path before) against looking
each uint8 level's value up (``cv2.LUT`` into the batch's slot, what the variant does now), with the resize and
the pool of threads alike; the outputs are compared bit for bit first.

    PYTHONPATH=. python benchmarks/cv2_batch.py [--batch 8] [--size 312] [--repeats 20]

Prints milliseconds per batch (median) for photos of COCO-like sizes (300–700 × 300–700, each its own), stretched
to ``--size`` squared; the production baseline of every gate runs this path.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from preprocgate.spec import InputSpec
from preprocgate.variants.opencv import OpenCVResize


class PerPixelFormula(OpenCVResize):
    """The variant as it was: ``((x / pixel_scale − mean) / std)`` computed on every pixel in float32 numpy."""

    def _one(self, image: np.ndarray, out: np.ndarray, geometry) -> None:
        (ch, cw) = geometry.content
        if image.shape[:2] != (ch, cw):
            image = self.resize(image, (ch, cw))
        if self.swap_channels:
            image = image[..., ::-1]
        x = (image.astype(np.float32) / np.float32(self.config.pixel_scale) - self.mean) / self.std
        out[...] = x.transpose(2, 0, 1)


def median_ms(variant: OpenCVResize, images: list[np.ndarray], repeats: int) -> float:
    variant(images)  # the pool started
    samples = []
    for _ in range(repeats):
        begin = time.perf_counter()
        variant(images)
        samples.append(time.perf_counter() - begin)
    return round(statistics.median(samples) * 1e3, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=312)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shapes = rng.integers(300, 701, (args.batch, 2))
    images = [rng.integers(0, 256, (int(h), int(w), 3), dtype=np.uint8) for h, w in shapes]
    config = InputSpec(size=(args.size, args.size))
    cpu = torch.device("cpu")
    formula, lookup = PerPixelFormula(config, cpu), OpenCVResize(config, cpu)
    assert torch.equal(formula(images).view(torch.int32), lookup(images).view(torch.int32)), "outputs differ"
    print(
        json.dumps(
            {
                "batch": args.batch,
                "size": args.size,
                "ms_per_batch": {
                    "per-pixel formula (before)": median_ms(formula, images, args.repeats),
                    "levels looked up (now)": median_ms(lookup, images, args.repeats),
                },
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
