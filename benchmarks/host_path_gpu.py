"""Variants called on host uint8 images against a bare page-locked host-to-device copy of the same bytes.

    PYTHONPATH=. python benchmarks/host_path_gpu.py --out r.json    # one NVIDIA GPU, well under 90 s
    PYTHONPATH=. python benchmarks/host_path_gpu.py --device cpu --out x.json    # tiny shapes: the script runs

The goal (issue 13, item 5): ``variant(list_of_numpy_images)``, what the speed probe and the dump stage call,
takes at most 1.25× the time of the bare copy. Per case (480×640 → 512² stretch at batch 1, 8 and 64;
1080×1920 → 640² at batch 8; and 8 images alternately 480×640 and 640×480 → 512², two interleaved shape groups,
as the dump stage gets from COCO), medians of CUDA-event intervals:

- ``pinned_copy_us``: a page-locked uint8 N×H×W×3 tensor ``.to(device, non_blocking=True)``, the floor;
- ``pageable_copy_us``: the same bytes from an ordinary numpy array, what the variants did before staging;
- ``stack_us``, ``stack_threads1_us``, ``stack_threads8_us``: host time of stacking the images into a
  page-locked buffer, on four threads (the default), one and eight: the copy no upload avoids when the caller
  holds one array per image;
- ``gather_us``: the device copy of the output into a second tensor, which ``__call__`` made before even for one
  shape group;
- per variant (triton, torch), ``<config>_us`` and ``<config>_ratio`` (to the pinned copy) for each of
  ``arena`` (the images held as the dump stage and the speed probe hold them: decoded into an
  ``ImageArena``, page-locked, each shape group back to back; no copy on the host, ``within_goal`` judges it),
  ``staged`` (one numpy array per image: four threads; from 16 MB the upload of each 4 MB chunk starts once
  it is stacked),
  ``threads1`` and ``threads8`` (the same, stacking on one or eight threads), ``no_prefetch`` (the upload starts
  after the whole stack) and ``unstaged`` (``Staging(slots=0)``: a fresh pageable array and a pageable copy, as before,
  without the gather; the old call ≈ unstaged + gather). ``within_goal``: arena_ratio ≤ 1.25.
- per variant, beside the arena's one-call median: ``arena_back_to_back_us`` (calls queued one after another,
  as a dump queues its batches: the host's work hidden behind the device's where it is shorter) and, for one
  shape group, ``arena_upload_us`` (the call's upload alone): what the call adds to the copy, and where.

``new_shapes``: a batch of 8 images each of its own size, sizes the variant has not met (as a dump of photos
of many sizes calls it), per variant the call then the same call again (shapes met), beside the pinned copy of
its bytes: how much of a dump's preprocessing is the first sight of a shape.

Also checked on the device, for every configuration: outputs bit-identical to unstaged ones, including a result
taken before later calls rewrote the staging buffers with no synchronisation between (the event wait, and the
hand-over of prefetched uploads: no CPU test can show either).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from geometry_cuda import versions  # the sibling script's: python puts benchmarks/ on sys.path

from preprocgate.fileio import atomic_write_text
from preprocgate.spec import InputSpec
from preprocgate.stages.dump import shape_groups
from preprocgate.variants import VARIANTS, arena, build_variant
from preprocgate.variants.arena import ImageArena
from preprocgate.variants.base import Preprocessor
from preprocgate.variants.staging import Staging

GOAL = 1.25
CASES = [(1, (480, 640), (512, 512)), (8, (480, 640), (512, 512)), (64, (480, 640), (512, 512))]
CASES += [(8, (1080, 1920), (640, 640)), (8, (-480, 640), (512, 512))]  # the last: two interleaved shape groups
TINY = [
    (1, (24, 32), (16, 16)),
    (3, (24, 32), (16, 16)),
    (3, (-24, 32), (16, 16)),
]  # the CPU smoke run: Triton's interpreter is slow
VARIANT_NAMES = ("triton", "torch")
CONFIGS = ("arena", "staged", "threads1", "threads8", "no_prefetch", "unstaged")


def timer(device: torch.device) -> Callable[[Callable[[], object]], float]:
    """Microseconds one call of ``fn`` spans: CUDA events around it (the host's work and the device's, up to
    the last queued kernel), or the wall clock on the CPU."""
    if device.type != "cuda":

        def wall(fn: Callable[[], object]) -> float:
            start = time.perf_counter()
            fn()
            return (time.perf_counter() - start) * 1e6

        return wall
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def events(fn: Callable[[], object]) -> float:
        torch.cuda.synchronize(device)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) * 1e3

    return events


def back_to_back(fn: Callable[[], object], device: torch.device, calls: int, warmup: int = 3) -> float:
    """Microseconds per call of ``calls`` calls queued one after another with no wait between (events around
    the lot): the rate a dump, which queues the next batch while the device works, gets. A call's host work
    then overlaps the device work queued before it; the one-call median cannot show that."""

    def queued() -> None:  # each output dropped as the next call comes, as a dump drops its batches
        for _ in range(calls):
            fn()

    for _ in range(warmup):
        fn()
    return timer(device)(queued) / calls


def median(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 3) -> float:
    measure = timer(device)
    for _ in range(warmup):
        measure(fn)
    return statistics.median(measure(fn) for _ in range(repeats))


def images_for(batch: int, source: tuple[int, int], seed: int) -> list[np.ndarray]:
    """``batch`` random images; for a negative ``source`` height, alternately h×w and w×h (two shape groups,
    interleaved, as COCO's landscape and portrait photos come)."""
    rng = np.random.default_rng(seed)
    h, w = abs(source[0]), source[1]
    shapes = [(h, w), (w, h)] if source[0] < 0 else [(h, w)]
    return [rng.integers(0, 256, (*shapes[i % len(shapes)], 3), dtype=np.uint8) for i in range(batch)]


def held(images: list[np.ndarray], device: torch.device) -> list[np.ndarray]:
    """The same images as the dump stage holds them: in an arena (page-locked on CUDA), each shape group back to
    back in the order the call meets it."""
    store = ImageArena(pinned=device.type == "cuda")
    out: list[np.ndarray] = list(images)
    for indices in shape_groups(range(len(images)), lambda i: images[i].shape):
        for i, image in zip(indices, store.hold([images[i] for i in indices]), strict=True):
            out[i] = image
    return out


def configure(variant: Preprocessor, config: str, device: torch.device) -> Preprocessor:
    """``config``: staged (as shipped: 4 threads, prefetch from 16 MB), threads1 and threads8 (the host copy on
    1 or 8 threads), no_prefetch (the upload starts after the whole stack at every size), unstaged (a fresh
    pageable array, as before, without the gather)."""
    if config.startswith("threads"):
        variant.staging = Staging(device, threads=int(config.removeprefix("threads")))
    elif config == "no_prefetch":
        variant.staging = Staging(device, prefetch_bytes=1 << 62)
    elif config == "unstaged":
        variant.staging = Staging(device, slots=0)
    return variant


def stack_groups(staging: Staging, images: list[np.ndarray]) -> None:
    """Stack each shape group, as ``Preprocessor.__call__`` does."""
    for group in shape_groups(images, lambda image: image.shape):
        staging.stack(group)


def variant_row(
    name: str,
    device: torch.device,
    source: tuple[int, int],
    images: list[np.ndarray],
    size: tuple[int, int],
    repeats: int,
) -> dict[str, Any]:
    def build(config: str) -> Preprocessor:
        return configure(build_variant(VARIANTS.get(name), InputSpec(size=size), device, {}), config, device)

    reference = build("unstaged")
    expected = reference(images)
    others = [images_for(len(images), source, seed) for seed in (101, 102, 103)]
    in_arena = held(images, device), [held(other, device) for other in others]
    row: dict[str, Any] = {"variant": name}
    identical = True
    for config in CONFIGS:
        variant = build(config)
        mine, my_others = in_arena if config == "arena" else (images, others)
        # a result, then calls that rewrite every buffer with no synchronisation between: still the reference?
        first = variant(mine)
        later = [variant(other) for other in my_others]
        variant.synchronize()
        identical &= torch.equal(first.view(torch.int32), expected.view(torch.int32))
        identical &= all(torch.equal(a, reference(o)) for a, o in zip(later, others, strict=True))
        row[f"{config}_us"] = median(lambda variant=variant, mine=mine: variant(mine), device, repeats)
        if config == "arena":
            row["arena_back_to_back_us"] = back_to_back(lambda v=variant, m=mine: v(m), device, repeats)
            joined = arena.joined(mine)
            if joined is not None:  # one shape group: its upload alone, the floor the call adds its work to
                row["arena_upload_us"] = median(lambda v=variant, j=joined: v.upload(j), device, repeats)
    row["bit_identical_after_reuse"] = bool(identical)
    return row


def case(
    device: torch.device, batch: int, source: tuple[int, int], size: tuple[int, int], repeats: int
) -> dict[str, Any]:
    images = images_for(batch, source, 0)
    stacked = np.concatenate([image.ravel() for image in images])  # the same bytes, whatever the shapes
    pinned = torch.from_numpy(stacked).pin_memory() if device.type == "cuda" else torch.from_numpy(stacked)
    staging, staging1, staging8 = Staging(device), Staging(device, threads=1), Staging(device, threads=8)
    output = torch.empty((batch, 3, *size), dtype=torch.float32, device=device)
    index = torch.arange(batch, device=device)
    gathered = torch.empty_like(output)

    def gather() -> None:
        gathered[index] = output

    row: dict[str, Any] = {
        "batch": batch,
        "source": f"{source[0]}x{source[1]}" if source[0] > 0 else f"{-source[0]}x{source[1]} and transposed",
        "output": f"{size[0]}x{size[1]}",
        "MB": stacked.nbytes / 1e6,
        "pinned_copy_us": median(lambda: pinned.to(device, non_blocking=True, copy=True), device, repeats),
        "pageable_copy_us": median(lambda: torch.from_numpy(stacked).to(device, copy=True), device, repeats),
        "stack_us": median(lambda: stack_groups(staging, images), torch.device("cpu"), repeats),
        "stack_threads1_us": median(lambda: stack_groups(staging1, images), torch.device("cpu"), repeats),
        "stack_threads8_us": median(lambda: stack_groups(staging8, images), torch.device("cpu"), repeats),
        "gather_us": median(gather, device, repeats),
    }
    row["pinned_GB/s"] = stacked.nbytes / row["pinned_copy_us"] / 1e3
    row["variants"] = [variant_row(name, device, source, images, size, repeats) for name in VARIANT_NAMES]
    for v in row["variants"]:
        for config in (*CONFIGS, "arena_back_to_back"):
            v[f"{config}_ratio"] = v[f"{config}_us"] / row["pinned_copy_us"]
        v["within_goal"] = v["arena_ratio"] <= GOAL
    return row


def new_shapes(device: torch.device, repeats: int) -> list[dict[str, Any]]:
    """A dump of photos of many sizes: every image of a batch its own shape, and shapes the variant has not met
    (the synthetic sets draw each side from 300–700, so nearly every image is new). Per variant, the call on a
    batch of 8 new shapes, then the same call again (shapes now met: launch plans, compiled kernels cached),
    beside a pinned copy of the same bytes: what one batch of such a dump costs to preprocess, and how much of
    it is the first sight of a shape."""
    low, high, size = (300, 701, (312, 312)) if device.type == "cuda" else (8, 25, (16, 16))
    rng = np.random.default_rng(7)
    batches = []
    for _ in range(repeats + 1):  # the first batch warms up (imports, the first compiles)
        shapes = [(int(h), int(w)) for h, w in rng.integers(low, high, (8, 2))]
        batches.append(held([rng.integers(0, 256, (*s, 3), dtype=np.uint8) for s in shapes], device))
    measure = timer(device)
    rows = []
    for name in VARIANT_NAMES:
        variant = build_variant(VARIANTS.get(name), InputSpec(size=size), device, {})
        variant(batches[0])
        first, again = [], []
        for images in batches[1:]:
            call = functools.partial(variant, images)
            first.append(measure(call))
            again.append(measure(call))
        rows.append(
            {"variant": name, "new_shapes_us": statistics.median(first), "seen_shapes_us": statistics.median(again)}
        )
    copies = []
    for images in batches[1:]:
        stacked = torch.from_numpy(np.concatenate([image.ravel() for image in images]))
        stacked = stacked.pin_memory() if device.type == "cuda" else stacked
        copies.append(measure(lambda stacked=stacked: stacked.to(device, non_blocking=True, copy=True)))
    for row in rows:
        row["pinned_copy_us"] = statistics.median(copies)
        row["new_shapes_ratio"] = row["new_shapes_us"] / row["pinned_copy_us"]
    return rows


def summary(case_row: dict[str, Any], v: dict[str, Any]) -> dict[str, Any]:
    """One line per case and variant: the shipped ratio, and the best configuration's."""
    best = min(CONFIGS, key=lambda c: v[f"{c}_ratio"])
    return {
        "case": f"{case_row['batch']} x {case_row['source']} -> {case_row['output']}",
        "variant": v["variant"],
        "pinned_copy_us": round(case_row["pinned_copy_us"], 1),
        "arena_us": round(v["arena_us"], 1),
        "arena_ratio": round(v["arena_ratio"], 2),
        "arena_back_to_back_ratio": round(v["arena_back_to_back_ratio"], 2),
        "arena_upload_us": round(v.get("arena_upload_us", float("nan")), 1),
        "staged_ratio": round(v["staged_ratio"], 2),
        "unstaged_ratio": round(v["unstaged_ratio"], 2),
        "best": best,
        "best_ratio": round(v[f"{best}_ratio"], 2),
        "within_goal": v["within_goal"],
    }


def run(device: torch.device, repeats: int, only_new_shapes: bool = False) -> dict[str, Any]:
    cases = [] if only_new_shapes else CASES if device.type == "cuda" else TINY
    rows = [case(device, *c, repeats) for c in cases]
    checks = [v for r in rows for v in r["variants"]]
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (Triton interpreter)",
        "versions": versions(),
        "goal": f"variant call on images held as the dump stage holds them <= {GOAL} x pinned copy",
        "correct": all(v["bit_identical_after_reuse"] for v in checks),
        "summary": [summary(r, v) for r in rows for v in r["variants"]],
        "cases": rows,
        "new_shapes": new_shapes(device, repeats),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="JSON file to write")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu (tiny shapes, interpreter)")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per figure (median)")
    parser.add_argument(
        "--only-new-shapes", action="store_true", help="only the batches of 8 sizes (to compare two packages)"
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device; use --device cpu to exercise the script", file=sys.stderr)
        return 2
    if device.type != "cuda":
        os.environ.setdefault("TRITON_INTERPRET", "1")
    result = run(device, args.repeats, args.only_new_shapes)
    text = json.dumps(result, indent=2) + "\n"
    print(text, end="")
    if args.out:
        atomic_write_text(Path(args.out), text)
    return 0 if result["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
