"""The fused kernel against the GPU's copy bandwidth on every batched shape of issue 13, each interpolation's
kernel (issue 18), and the Triton variant's host overhead per call. Prints JSON (and writes it with --out).

    PYTHONPATH=. python benchmarks/kernel_cuda.py --out results.json [--quick] [--device cuda] [--only MODE ...]

Bandwidth: bytes = the uint8 source read once + the output written, over the median kernel time
(``triton.testing.do_bench``), against a device-to-device copy of 1 GiB timed the same way in the same run;
``fraction_of_copy_bytes_needed`` counts only the source rows some tap reads (a strong downscale skips rows, so
the first measure can exceed 100%: 3000×4000 → 640² reads 1,280 of 3,000 rows). Every
timed launch configuration is re-checked bit for bit against its reference on the same batch: the torch chain
(``F.interpolate`` → / pixel_scale → normalize, ``.half()`` for float16 output) or, for Pillow, the pillow variant.

Tiles: the launch configurations (output rows × columns per program, warps) are swept on the first shape; the
fastest few, and the variant's default, are then timed on every shape. Each other interpolation sweeps its own
tiles on that shape, then times its fastest few on its letterbox.

Host overhead: one 480×640 → 512² image on device tensors. ``host_us`` is the Python time of a call (the launch
is asynchronous: no synchronisation inside the timed region); ``event_us`` the time between CUDA events recorded
around each of many back-to-back calls, the way a user's loop sees it, beside the torch chain timed alike.
``--device cpu`` runs a tiny version in Triton's interpreter: a check that the script works.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from geometry_cuda import bench, config_for, copy_bandwidth, interpolation_reference, versions

from preprocgate.fileio import atomic_write_text
from preprocgate.geometry import Geometry
from preprocgate.spec import InputSpec
from preprocgate.variants import filters
from preprocgate.variants.torch_interpolate import TorchInterpolate
from preprocgate.variants.triton_fused import TritonFused

Size = tuple[int, int]
# name, batch, source, output, resize, output dtype
SHAPES: list[tuple[str, int, Size, Size, str, torch.dtype]] = [
    ("64 x 480x640 -> 512x512", 64, (480, 640), (512, 512), "stretch", torch.float32),
    ("64 x 480x640 -> 512x512 fp16", 64, (480, 640), (512, 512), "stretch", torch.float16),
    ("32 x 1080x1920 -> 640x640", 32, (1080, 1920), (640, 640), "stretch", torch.float32),
    ("128 x 480x640 -> 312x312", 128, (480, 640), (312, 312), "stretch", torch.float32),
    ("256 x 224x224 -> 224x224", 256, (224, 224), (224, 224), "stretch", torch.float32),
    ("16 x 3000x4000 -> 640x640", 16, (3000, 4000), (640, 640), "stretch", torch.float32),
    ("64 x 480x640 -> 512x512 letterbox", 64, (480, 640), (512, 512), "letterbox", torch.float32),
    ("32 x 1080x1920 -> 640x640 letterbox", 32, (1080, 1920), (640, 640), "letterbox", torch.float32),
]
QUICK_SHAPES = [
    ("2 x 48x64 -> 32x32", 2, (48, 64), (32, 32), "stretch", torch.float32),
    ("2 x 48x64 -> 32x32 letterbox", 2, (48, 64), (32, 32), "letterbox", torch.float32),
]


def tile(
    rows: int, block: int, warps: int, reuse_rows: bool = False, words: bool = False, word_bits: int = 64
) -> dict[str, Any]:
    """A launch configuration: output rows × columns (block) per program, warps, whether the program runs its
    rows one after another keeping each source row's horizontal pass (``reuse_rows``), and whether it reads the
    source as words (``words``); both always named, as the variant's defaults pick them by shape and mode.
    ``word_bits`` (named with ``words``): bilinear's pixel pairs from two 64-bit words or three 32-bit ones."""
    out = {"rows": rows, "block": block, "num_warps": warps, "reuse_rows": reuse_rows, "words": words}
    return {**out, "word_bits": word_bits} if words else out


TILES = [
    *(tile(*t) for t in [
        (1, 128, 1), (1, 256, 1), (1, 256, 2), (1, 512, 2), (1, 512, 4), (2, 64, 1), (2, 128, 1), (2, 128, 2),
        (2, 256, 2), (4, 64, 1), (4, 128, 2), (4, 128, 4), (8, 64, 2),
    ]),
    *(tile(*t, reuse_rows=True) for t in [(8, 128, 1), (16, 128, 1), (32, 128, 1), (16, 64, 1), (16, 256, 2)]),
    *(tile(*t, words=True) for t in [(1, 128, 1), (1, 256, 2), (2, 128, 1)]),
    tile(8, 128, 1, reuse_rows=True, words=True),
    # bilinear's pixel pairs from 32-bit words: 9% fewer sm_90 instructions, 17% fewer integer ones, 50% more loads
    tile(1, 128, 1, words=True, word_bits=32),
    tile(8, 128, 1, reuse_rows=True, words=True, word_bits=32),
]  # fmt: skip
# the other interpolations' sweep: fewer, the likely ones (benchmarks/kernel_sass.py: the separable modes issue the
# fewest instructions a pixel with one row of 256 columns a warp, and many more with several rows)
INTERPOLATION_TILES = [
    *(tile(*t) for t in [(1, 128, 1), (1, 256, 1), (1, 256, 2), (1, 512, 2), (2, 128, 1), (4, 64, 1)]),
    *(tile(*t, reuse_rows=True) for t in [(16, 128, 1), (16, 256, 2)]),  # the separable modes' upscaled rows
    *(tile(*t, words=True) for t in [(1, 128, 1), (1, 256, 2)]),
    # rows_kernel reading words: bilinear's fastest on the H200, and the separable passes' weights now loaded once
    *(tile(*t, reuse_rows=True, words=True) for t in [(8, 128, 1), (16, 128, 1), (8, 256, 2), (16, 256, 2)]),
]
KEEP = 3  # tiles timed on every shape: the fastest of the sweep
INTERPOLATIONS = ["bilinear", "nearest", "nearest-exact", "bilinear_antialias", "pillow_bilinear"]


def _resize(mode: str) -> dict[str, Any]:
    return {"resize": "letterbox"} if mode == "letterbox" else {}


def reference_chain(
    config: InputSpec, device: torch.device, src: torch.Tensor, geometry: Geometry, dtype: torch.dtype
) -> torch.Tensor:
    """The torch chain's output for the batch, in the kernel's output dtype (the Pillow reference for Pillow)."""
    if config.interpolation == "pillow_bilinear":
        ref = interpolation_reference(config, device)
        out = ref([image for image in src.cpu().numpy()])
    else:
        ref = TorchInterpolate(config, device)
        with torch.inference_mode():
            x = src.permute(0, 3, 1, 2).flip(1).float().contiguous()
            out = ref.forward(x, geometry)
    return out.to(dtype)


def rows_read(in_size: int, out_size: int, interpolation: str) -> int:
    """Source rows (or columns) the kernel's taps touch along one axis, as the kernel computes the indices
    (float32). A strong downscale leaves rows unread, so the source bytes a kernel must read can be fewer than
    the source holds."""
    scale = np.float32(in_size) / np.float32(out_size)
    d = np.arange(out_size, dtype=np.float32)
    if interpolation in ("nearest", "nearest-exact"):
        d = d + np.float32(0.5) if interpolation == "nearest-exact" else d
        return len(np.unique(np.minimum((d * scale).astype(np.int64), in_size - 1)))
    if interpolation == "bilinear":
        src = np.maximum(scale * (d + np.float32(0.5)) - np.float32(0.5), np.float32(0))
        i0 = np.minimum(src.astype(np.int64), in_size - 1)
        return len(np.union1d(i0, np.minimum(i0 + 1, in_size - 1)))
    if interpolation == "pillow_bilinear":
        first, weights, _ = filters.pillow_bilinear(in_size, out_size)
    else:
        first, weights, _ = filters.torch_antialias(in_size, out_size, "cuda")
    taps = [np.arange(f, min(f + weights.shape[1], in_size)) for f in first.astype(np.int64)]
    return len(np.unique(np.concatenate(taps)))


def read_bytes(n: int, source: Size, geometry: Geometry, interpolation: str) -> int:
    """Source bytes the kernel must bring from memory: whole rows where any tap reads one (a row's columns are
    denser than a 32-byte sector in every timed case), times the images."""
    return n * rows_read(source[0], geometry.content[0], interpolation) * source[1] * 3


def time_launch(fused: TritonFused, src: torch.Tensor, dst: torch.Tensor, geometry: Geometry, device) -> float:
    measure = bench(device)
    return statistics.median(measure(lambda: fused.launch(src, dst, geometry)) for _ in range(3))


def kernel_rows(
    device: torch.device, shapes: list, tiles: list, copy_gbs: float, interpolation: str = "bilinear"
) -> list[dict[str, Any]]:
    rows = []
    for name, n, source, size, mode, dtype in shapes:
        print(f"kernel: {interpolation} {name}", file=sys.stderr, flush=True)
        config = config_for({**_resize(mode), "interpolation": interpolation}, size)
        src = torch.randint(0, 256, (n, *source, 3), dtype=torch.uint8, device=device)
        probe = TritonFused(config, device)
        geometry = probe.plan([np.empty((*source, 3), np.uint8)])[0]
        expected = reference_chain(config, device, src, geometry, dtype)
        for launch in tiles:
            fused = TritonFused(config, device, **(launch or {}))
            dst = torch.empty((n, 3, *geometry.canvas), dtype=dtype, device=device)
            fused.launch(src, dst, geometry)
            exact = bool(torch.equal(dst, expected))
            mismatching = int((dst != expected).sum())
            ms = time_launch(fused, src, dst, geometry, device)
            nbytes = src.numel() + dst.numel() * dst.element_size()
            needed = read_bytes(n, source, geometry, interpolation) + dst.numel() * dst.element_size()
            rows.append(
                {
                    "shape": name,
                    "interpolation": interpolation,
                    "tile": launch or "default",
                    "bit_exact": exact,
                    "mismatching_elements": mismatching,
                    "us": ms * 1e3,
                    "GB/s": nbytes / ms / 1e6,
                    "fraction_of_copy": nbytes / ms / 1e6 / copy_gbs,
                    "read_and_written_bytes": needed,
                    "fraction_of_copy_bytes_needed": needed / ms / 1e6 / copy_gbs,
                }
            )
    return rows


def host_overhead(device: torch.device, quick: bool) -> dict[str, Any]:
    """One image, device tensors: Python time per call and event-timed back-to-back calls, triton (direct launch
    and through Triton's JIT) against the torch chain."""
    source, size = ((48, 64), (32, 32)) if quick else ((480, 640), (512, 512))
    calls = 20 if quick else 2000
    config = config_for({}, size)
    fused, ref = TritonFused(config, device), TorchInterpolate(config, device)
    src = torch.randint(0, 256, (1, *source, 3), dtype=torch.uint8, device=device)
    dst = torch.empty((1, 3, *size), dtype=torch.float32, device=device)
    geometry = fused.plan([np.empty((*source, 3), np.uint8)])[0]
    for _ in range(3):
        fused.launch(src, dst, geometry)
    (plan,) = fused._launches.values()

    def jit() -> None:
        plan.jit[plan.grid](src, dst, *plan.args, **plan.constexprs, **plan.options)

    def chain() -> torch.Tensor:
        return ref.forward(src.permute(0, 3, 1, 2).flip(1).float().contiguous(), geometry)

    def triton_direct() -> None:
        fused.launch(src, dst, geometry)

    direct = None if plan.fast is None else type(plan.fast.function).__name__  # C launch: builtin_function_...
    out: dict[str, Any] = {"source": list(source), "output": list(size), "direct_launch": direct}
    with torch.inference_mode():
        exact = torch.equal(dst.view(torch.int32), chain().view(torch.int32))
        out["bit_exact"] = bool(exact)
        for label, fn in (("triton", triton_direct), ("triton_via_jit", jit), ("torch_chain", chain)):
            out[label] = {"host_us": host_us(fn, device, calls), "event_us": event_us(fn, device, calls)}
    if device.type == "cuda":
        out["speedup_vs_torch_chain"] = out["torch_chain"]["event_us"] / out["triton"]["event_us"]
    return out


def host_us(fn: Callable[[], object], device: torch.device, calls: int) -> float:
    samples = []
    for start in range(0, calls, 100):
        for _ in range(min(100, calls - start)):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return statistics.median(samples) * 1e6


def event_us(fn: Callable[[], object], device: torch.device, calls: int) -> float | None:
    if device.type != "cuda":
        return None
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(calls)]
    for _ in range(10):
        fn()
    torch.cuda.synchronize(device)
    for begin, end in events:
        begin.record()
        fn()
        end.record()
    torch.cuda.synchronize(device)
    return statistics.median(b.elapsed_time(e) for b, e in events) * 1e3


def best_tiles(rows: list[dict[str, Any]], keep: int) -> list[dict[str, Any]]:
    exact = sorted((r for r in rows if r["bit_exact"] and r["tile"] != "default"), key=lambda r: r["us"])
    return [r["tile"] for r in exact[:keep]]


def run(device: torch.device, quick: bool, only: list[str] = INTERPOLATIONS) -> dict[str, Any]:
    shapes = QUICK_SHAPES if quick else SHAPES
    tiles = [tile(1, 64, 1), tile(2, 64, 2), tile(4, 64, 1, reuse_rows=True)] if device.type != "cuda" else TILES
    copy_gbs = copy_bandwidth(device, quick)
    kernels = []
    if "bilinear" in only:
        sweep = kernel_rows(device, shapes[:1], [None, *tiles], copy_gbs)
        kernels = sweep + kernel_rows(device, shapes[1:], [None, *best_tiles(sweep, KEEP)], copy_gbs)
    interpolations = []
    stretch, *others = [s for s in shapes if s[5] == torch.float32 and s[1:4] == shapes[0][1:4]]
    interpolation_tiles = tiles[:2] if device.type != "cuda" else INTERPOLATION_TILES
    for interpolation in [i for i in INTERPOLATIONS[1:] if i in only]:
        swept = kernel_rows(device, [stretch], [None, *interpolation_tiles], copy_gbs, interpolation)
        interpolations += swept + kernel_rows(device, others, [None, *best_tiles(swept, KEEP)], copy_gbs, interpolation)
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "versions": versions(),
        "copy_GB/s": copy_gbs,
        "tile_sweep_shape": shapes[0][0],
        "kernels": kernels,
        "interpolations": interpolations,
        "host_overhead": host_overhead(device, quick),
        "summary": summary(kernels + interpolations),
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per shape and interpolation: the default tile's figure, the best exact tile's, and whether every timed
    configuration was bit-exact."""
    out: dict[str, Any] = {}
    for row in rows:
        key = f"{row['interpolation']}: {row['shape']}"
        entry = out.setdefault(key, {"all_exact": True, "default": None, "best": None})
        entry["all_exact"] &= row["bit_exact"]
        if row["tile"] == "default":
            entry["default"] = {k: row[k] for k in ("us", "fraction_of_copy", "fraction_of_copy_bytes_needed")}
        if row["bit_exact"] and (entry["best"] is None or row["us"] < entry["best"]["us"]):
            entry["best"] = {k: row[k] for k in ("tile", "us", "fraction_of_copy", "fraction_of_copy_bytes_needed")}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="JSON file to write")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu (Triton's interpreter)")
    parser.add_argument("--quick", action="store_true", help="small shapes only: a check that the script works")
    parser.add_argument(
        "--only", nargs="+", choices=INTERPOLATIONS, default=INTERPOLATIONS, help="interpolations to time (default all)"
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    result = run(device, args.quick or device.type != "cuda", args.only)
    text = json.dumps(result, indent=2)
    print(json.dumps(result["summary"], indent=1))
    print(json.dumps(result["host_overhead"], indent=1))
    if args.out:
        atomic_write_text(Path(args.out), text + "\n")
    return 0 if all(v["all_exact"] for v in result["summary"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
