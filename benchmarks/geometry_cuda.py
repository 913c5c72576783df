"""Triton vs torch bit-exactness for every resize mode over a held-out shape sweep, and the letterbox kernel's speed.

    python benchmarks/geometry_cuda.py --out results.json            # on a machine with an NVIDIA GPU
    python benchmarks/geometry_cuda.py --device cpu --quick --out x  # the same logic, small, in Triton's interpreter

Sweep: stretch, letterbox (Ultralytics: centred, round; YOLOX: top-left, floor, BGR, raw 0–255; a Detectron2-style
normalisation in 0–255 units) and keep_ratio (Detectron2: shorter side, capped longer side, stride padding, 0 after
normalising; and with a pixel pad; single images and one batch of mixed shapes). Sources: odd, tiny, portrait,
landscape, extreme ratios and 12-megapixel photos. Every case runs under several launch configurations (block,
warps, division), each counted element by element against the torch variant; fp16 output is checked against the
torch output ``.half()``; a control with the wrong tap arithmetic must show mismatches. Timings: the letterbox
kernel on 64 × 480×640 → 512² and 32 × 1080×1920 → 640², against the stretch kernel, torch's chain and a
device-to-device copy, plus the launch configurations on the first shape.

``input.interpolation`` (``interpolation`` in the JSON): nearest, nearest-exact and bilinear_antialias against the
torch variant, pillow_bilinear against the pillow variant (Pillow on the CPU), each in stretch, letterbox and
keep_ratio over sources from 1×1 to 4000×3000 (→ 320²: a 12.5× downscale); Pillow's uint8 values are also
compared before normalisation (mean 0, std 1, pixel_scale 1). Their timings: 64 × 480×640 → 512² (stretch and
letterbox), with the bytes the kernel gathers (taps × 3 per output pixel: antialias and Pillow read more than
the image) next to the unique bytes (source + output) that the fraction of the copy bandwidth is computed on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from preprocgate.data.synthetic import make
from preprocgate.fileio import atomic_write_text
from preprocgate.geometry import Geometry
from preprocgate.spec import InputSpec
from preprocgate.variants import filters
from preprocgate.variants.pillow import PillowResize
from preprocgate.variants.torch_interpolate import TorchInterpolate
from preprocgate.variants.triton_fused import TritonFused

Size = tuple[int, int]
IMAGENET_255 = {"mean": (123.675, 116.28, 103.53), "std": (58.395, 57.12, 57.375)}
YOLOX = {"target_order": "BGR", "pixel_scale": 1, "mean": (0, 0, 0), "std": (1, 1, 1)}

# mode name → (input spec without size, output sizes); the sizes are ignored by keep_ratio
MODES: dict[str, tuple[dict[str, Any], list[Size]]] = {
    "stretch": ({}, [(640, 640), (57, 131)]),
    "letterbox": ({"resize": "letterbox"}, [(640, 640), (320, 320), (384, 640)]),
    "letterbox_yolox": (
        {"resize": {"mode": "letterbox", "align": "top_left", "content_rounding": "floor"}, **YOLOX},
        [(416, 416)],
    ),
    "letterbox_imagenet_255": (
        {"resize": {"mode": "letterbox", "pad": [0, 0, 0]}, "pixel_scale": 1, **IMAGENET_255},
        [(512, 512)],
    ),
    "keep_ratio": ({"resize": {"mode": "keep_ratio", "short_side": 800, "max_size": 1333, "stride": 32}}, [(1, 1)]),
    "keep_ratio_small_pixel_pad": (
        {
            "resize": {"mode": "keep_ratio", "short_side": 320, "max_size": 512, "stride": 64, "pad": 0},
            "source_order": "RGB",
        },
        [(1, 1)],
    ),
}
SOURCES: list[Size] = [
    (1, 1),
    (1, 640),
    (640, 1),
    (2, 3),
    (7, 13),
    (37, 53),
    (53, 37),
    (101, 37),
    (153, 544),  # YOLOX's int() truncates 116.99999999999999 to 116
    (333, 500),
    (500, 333),
    (427, 640),
    (480, 640),
    (640, 480),
    (719, 1279),
    (1000, 64),
    (64, 1000),
    (5, 2000),
    (2000, 5),
    (1080, 1920),
    (1920, 1080),
    (3000, 4000),
    (4000, 3000),
]
QUICK_MODES = {
    "stretch": (MODES["stretch"][0], [(29, 31)]),
    "letterbox": (MODES["letterbox"][0], [(40, 72)]),
    "letterbox_yolox": (MODES["letterbox_yolox"][0], [(52, 52)]),
    "letterbox_imagenet_255": (MODES["letterbox_imagenet_255"][0], [(40, 40)]),
    "keep_ratio": ({"resize": {"mode": "keep_ratio", "short_side": 40, "max_size": 70, "stride": 32}}, [(1, 1)]),
}
QUICK_SOURCES: list[Size] = [(1, 1), (37, 53), (53, 37), (5, 90)]
LAUNCHES: list[dict[str, Any]] = [
    {},  # the variant's defaults (launch_shape; bilinear's pixel pairs from 32-bit words), reciprocal-and-FMA division
    {"words": False},  # one load per source byte
    {"rows": 2, "block": 128, "num_warps": 2},
    {"block": 512, "num_warps": 4},
    {"block": 1024, "num_warps": 8},
    {"division": "div_rn"},
    {"words": True},  # word reads: exact where the source allows them, the byte path elsewhere
    {"rows": 8, "reuse_rows": True, "words": True},
    {"words": True, "word_bits": 64},  # bilinear's pixel pairs from two 64-bit words, both kernels
    {"rows": 8, "reuse_rows": True, "words": True, "word_bits": 64},
]
QUICK_LAUNCHES: list[dict[str, Any]] = [{}, {"block": 1024, "division": "reciprocal_fma"}]
TIMED = [(64, (480, 640), (512, 512)), (32, (1080, 1920), (640, 640))]
QUICK_TIMED = [(2, (48, 64), (32, 32))]

INTERPOLATIONS = ["nearest", "nearest-exact", "bilinear_antialias", "pillow_bilinear"]
# geometry name → (input spec without size and interpolation, output size)
INTERP_GEOMETRIES: dict[str, tuple[dict[str, Any], Size]] = {
    "stretch": ({}, (320, 320)),
    "letterbox": ({"resize": "letterbox"}, (512, 512)),
    "letterbox_yolox": (
        {"resize": {"mode": "letterbox", "align": "top_left", "content_rounding": "floor"}, **YOLOX},
        (416, 416),
    ),
    "keep_ratio": ({"resize": {"mode": "keep_ratio", "short_side": 320, "max_size": 512, "stride": 32}}, (1, 1)),
}
INTERP_SOURCES: list[Size] = [
    (1, 1),
    (7, 13),
    (37, 53),
    (101, 37),
    (320, 320),
    (333, 500),
    (480, 640),
    (1000, 64),
    (64, 1000),
    (1080, 1920),
    (3000, 4000),
    (4000, 3000),
]
QUICK_INTERP_GEOMETRIES = {  # letterbox: in the quick timings
    "stretch": ({}, (12, 9)),
    "keep_ratio": ({"resize": {"mode": "keep_ratio", "short_side": 12, "max_size": 20, "stride": 8}}, (1, 1)),
}
QUICK_INTERP_SOURCES: list[Size] = [(37, 53), (60, 45)]
# the default, and the 64-bit source reads (tiled, and rows_kernel where the resize allows it)
INTERP_SWEEP_LAUNCHES: list[dict[str, Any]] = [
    {},
    {"words": True},
    {"words": False},
    {"rows": 16, "reuse_rows": True, "words": True},
]
INTERP_TIMED = (64, (480, 640), (512, 512))
QUICK_INTERP_TIMED = (2, (48, 64), (32, 32))


def probe_images(source: Size, quick: bool = False) -> list[np.ndarray]:
    """Synthetic images of one shape; the slow smooth generators only below 1.5 megapixels."""
    h, w = source
    generators = ("natural", "noise", "edges", "gradient", "texture") if h * w <= 1_500_000 else ("noise", "edges")
    return [make(g, 0, h, w) for g in generators[: 2 if quick else None]]


def config_for(spec: dict[str, Any], size: Size) -> InputSpec:
    return InputSpec.model_validate({"size": size, **spec})


def compare(got: torch.Tensor, expected: torch.Tensor) -> dict[str, Any]:
    if got.shape != expected.shape:
        return {"shape": list(got.shape), "expected_shape": list(expected.shape), "mismatching_elements": -1}
    differ = got.view(torch.int32) != expected.view(torch.int32)
    return {
        "elements": expected.numel(),
        "mismatching_elements": int(differ.sum()),
        "max_abs": float((got.double() - expected.double()).abs().max()) if expected.numel() else 0.0,
    }


def sweep(device: torch.device, quick: bool) -> list[dict[str, Any]]:
    """Every mode × output size × source (and, for keep_ratio, one batch of every source) × launch config."""
    modes, sources, launches = (QUICK_MODES, QUICK_SOURCES, QUICK_LAUNCHES) if quick else (MODES, SOURCES, LAUNCHES)
    images = {source: probe_images(source, quick) for source in sources}
    rows = []
    for mode, (spec, sizes) in modes.items():
        print(f"sweep: {mode}", file=sys.stderr, flush=True)
        first = len(rows)
        keep_ratio = "keep_ratio" in mode
        for size in sizes:
            config = config_for(spec, size)
            reference = TorchInterpolate(config, device)
            variants = [(launch, TritonFused(config, device, **launch)) for launch in launches]
            cases: list[tuple[str, list[np.ndarray]]] = [(f"{h}x{w}", images[(h, w)]) for h, w in sources]
            if keep_ratio:  # one call with every shape: one shared canvas, groups of one shape each
                cases.append(("mixed", [batch[0] for batch in images.values()]))
            for name, batch in cases:
                with torch.inference_mode():
                    expected = reference(batch)
                    geometry = reference.plan(batch)[0]
                    for launch, variant in variants:
                        row = {
                            "mode": mode,
                            "source": name,
                            "output": list(expected.shape[2:]),
                            "content": list(geometry.content) if name != "mixed" else None,
                            "offset": list(geometry.offset) if name != "mixed" else None,
                            "images": len(batch),
                            "launch": launch or "default",
                            **compare(variant(batch), expected),
                        }
                        if not launch and name != "mixed":
                            row["fp16_mismatching_elements"] = fp16_mismatches(variant, batch, geometry, expected)
                        rows.append(row)
                del expected
        _tally(mode, rows[first:])
    return rows


def _tally(name: str, rows: list[dict[str, Any]]) -> None:
    """A finished part's counts on stderr as it ends: a run cut by a time limit still says what it checked."""
    elements = sum(r.get("elements", 0) for r in rows)
    bad = sum(max(r["mismatching_elements"], 0) for r in rows)
    shapes = sum(r["mismatching_elements"] < 0 for r in rows)  # compare's mark for an output of the wrong shape
    print(
        f"  {name}: {len(rows)} comparisons, {elements} elements, {bad} mismatching, {shapes} of the wrong shape",
        file=sys.stderr,
        flush=True,
    )


def fp16_mismatches(variant: TritonFused, batch: list[np.ndarray], geometry: Geometry, expected: torch.Tensor) -> int:
    src = torch.from_numpy(np.stack(batch)).to(variant.device)
    half = torch.empty((len(batch), 3, *geometry.canvas), dtype=torch.float16, device=variant.device)
    variant.launch(src, half, geometry)
    return int((half.view(torch.int16) != expected.half().view(torch.int16)).sum())


def control(device: torch.device) -> dict[str, Any]:
    """The comparison detects an arithmetic change: the unfused tap order on a letterbox case (into 512², where the
    content is resized: a 640² canvas would hold 427×640 at scale 1, where every tap order agrees)."""
    config = config_for(MODES["letterbox"][0], (64, 64) if device.type != "cuda" else (512, 512))
    batch = [make("natural", 0, 427, 640)]
    with torch.inference_mode():
        expected = TorchInterpolate(config, device)(batch)
        got = TritonFused(config, device, arithmetic="unfused")(batch)
    return {"mode": "letterbox", "source": "427x640", "arithmetic": "unfused", **compare(got, expected)}


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in rows:
        entry = out.setdefault(
            row["mode"], {"cases": 0, "elements": 0, "mismatching_elements": 0, "fp16": 0, "by_launch": {}}
        )
        entry["cases"] += 1
        entry["elements"] += row.get("elements", 0)
        entry["mismatching_elements"] += abs(row["mismatching_elements"])
        entry["fp16"] += row.get("fp16_mismatching_elements", 0)
        _add_by_launch(entry, row)
    return out


def bench(device: torch.device) -> Callable[[Callable[[], object]], float]:
    """Median milliseconds of a call: triton.testing.do_bench on CUDA, a wall-clock median elsewhere."""
    if device.type == "cuda":
        import triton.testing

        return lambda fn: triton.testing.do_bench(fn, return_mode="median")

    def wall(fn: Callable[[], object]) -> float:
        fn()
        samples = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - start) * 1e3)
        return statistics.median(samples)

    return wall


def copy_bandwidth(device: torch.device, quick: bool) -> float:
    """GB/s of a device-to-device copy (1 GiB; 16 MiB in quick mode), bytes read plus bytes written."""
    src = torch.empty(1 << (24 if quick else 30), dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    return 2 * src.numel() / bench(device)(lambda: dst.copy_(src)) / 1e6


def timings(device: torch.device, quick: bool) -> dict[str, Any]:
    timed = QUICK_TIMED if quick else TIMED
    measure = bench(device)
    copy_gbs = copy_bandwidth(device, quick)
    rows: list[dict[str, Any]] = []
    for n, source, size in timed:
        src = torch.randint(0, 256, (n, *source, 3), dtype=torch.uint8, device=device)
        for mode in ("letterbox", "stretch"):
            config = config_for(MODES[mode][0], size)
            tri, ref = TritonFused(config, device), TorchInterpolate(config, device)
            geometry = tri.plan([np.empty((*source, 3), np.uint8)])[0]
            dst = torch.empty((n, 3, *geometry.canvas), dtype=torch.float32, device=device)

            def chain(src=src, ref=ref, geometry=geometry) -> torch.Tensor:
                x = src.permute(0, 3, 1, 2).flip(1).float().contiguous()
                return ref.forward(x, geometry)

            with torch.inference_mode():
                tri.launch(src, dst, geometry)
                exact = bool(torch.equal(dst.view(torch.int32), chain().view(torch.int32)))
                t_ms = statistics.median(
                    measure(lambda tri=tri, src=src, dst=dst, g=geometry: tri.launch(src, dst, g)) for _ in range(3)
                )
                c_ms = measure(chain)
            nbytes = src.numel() + dst.numel() * 4
            rows.append(
                {
                    "mode": mode,
                    "batch": n,
                    "source": f"{source[0]}x{source[1]}",
                    "output": f"{size[0]}x{size[1]}",
                    "content": list(geometry.content),
                    "offset": list(geometry.offset),
                    "bit_exact_vs_torch_chain": exact,
                    "triton_us": t_ms * 1e3,
                    "torch_chain_us": c_ms * 1e3,
                    "triton_GB/s": nbytes / t_ms / 1e6,
                    "fraction_of_copy": nbytes / t_ms / 1e6 / copy_gbs,
                    "speedup_vs_torch": c_ms / t_ms,
                }
            )
    return {"copy_GB/s": copy_gbs, "kernels": rows, "tuning": tuning(device, timed[0], copy_gbs)}


def tuning(device: torch.device, shape: tuple[int, Size, Size], copy_gbs: float) -> list[dict[str, Any]]:
    """The letterbox kernel under each launch configuration on the first timed shape, exactness re-checked."""
    n, source, size = shape
    config = config_for(MODES["letterbox"][0], size)
    src = torch.randint(0, 256, (n, *source, 3), dtype=torch.uint8, device=device)
    probe = [make("natural", 0, *source)]
    expected = TorchInterpolate(config, device)(probe)
    blocks = (128, 256, 512, 1024) if device.type == "cuda" else (256,)
    warps = (1, 2, 4, 8) if device.type == "cuda" else (1,)
    rows = []
    for block in blocks:
        for num_warps in warps:
            if block < 32 * num_warps:  # fewer elements than threads
                continue
            tri = TritonFused(config, device, block=block, num_warps=num_warps)
            geometry = tri.plan(probe)[0]
            dst = torch.empty((n, 3, *geometry.canvas), dtype=torch.float32, device=device)
            ms = bench(device)(lambda tri=tri, dst=dst, g=geometry: tri.launch(src, dst, g))
            gbs = (src.numel() + dst.numel() * 4) / ms / 1e6
            exact = bool(torch.equal(tri(probe).view(torch.int32), expected.view(torch.int32)))
            rows.append(
                {
                    "block": block,
                    "num_warps": num_warps,
                    "us": ms * 1e3,
                    "GB/s": gbs,
                    "fraction_of_copy": gbs / copy_gbs,
                    "bit_exact": exact,
                }
            )
    return sorted(rows, key=lambda r: r["us"])


def interpolation_reference(config: InputSpec, device: torch.device) -> TorchInterpolate | PillowResize:
    if config.interpolation == "pillow_bilinear":
        return PillowResize(config, device)
    return TorchInterpolate(config, device)


def interpolation_sweep(device: torch.device, quick: bool) -> list[dict[str, Any]]:
    """Every new interpolation × geometry × source × launch (``INTERP_SWEEP_LAUNCHES``) against its reference;
    for Pillow also the uint8 values before normalisation (a mean-0, std-1, 0–255 spec: the output is the resized
    value)."""
    geometries, sources = (
        (QUICK_INTERP_GEOMETRIES, QUICK_INTERP_SOURCES) if quick else (INTERP_GEOMETRIES, INTERP_SOURCES)
    )
    launches = INTERP_SWEEP_LAUNCHES[:2] if quick else INTERP_SWEEP_LAUNCHES
    images = {source: probe_images(source, quick=True) for source in sources}
    rows = []
    for interpolation in INTERPOLATIONS:
        print(f"sweep: {interpolation}", file=sys.stderr, flush=True)
        first = len(rows)
        for geometry_name, (spec, size) in geometries.items():
            configs = {"normalised": config_for({**spec, "interpolation": interpolation}, size)}
            if interpolation == "pillow_bilinear":
                raw = {**spec, **YOLOX, "target_order": "RGB", "interpolation": interpolation}
                configs["uint8"] = config_for(raw, size)
            for kind, config in configs.items():
                reference = interpolation_reference(config, device)
                fused = [(launch, TritonFused(config, device, **launch)) for launch in launches]
                for source, batch in images.items():
                    with torch.inference_mode():
                        expected = reference(batch)
                        geometry = reference.plan(batch)[0]
                        for launch, variant in fused:
                            rows.append({
                                "interpolation": interpolation,
                                "geometry": geometry_name,
                                "compared": kind,
                                "source": f"{source[0]}x{source[1]}",
                                "content": list(geometry.content),
                                "vertical_first": interpolation == "pillow_bilinear"
                                and filters.pillow_vertical_first(geometry.source, geometry.content),
                                "launch": launch or "default",
                                **compare(variant(batch), expected),
                            })  # fmt: skip
        _tally(interpolation, rows[first:])
    return rows


def _add_by_launch(entry: dict[str, Any], row: dict[str, Any]) -> None:
    """A row's mismatches counted under its launch configuration."""
    launch = json.dumps(row["launch"], sort_keys=True) if isinstance(row["launch"], dict) else row["launch"]
    entry["by_launch"][launch] = entry["by_launch"].get(launch, 0) + abs(row["mismatching_elements"])


def interpolation_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in rows:
        key = row["interpolation"] + ("" if row["compared"] == "normalised" else " (uint8 values)")
        entry = out.setdefault(key, {"cases": 0, "elements": 0, "mismatching_elements": 0, "by_launch": {}})
        entry["cases"] += 1
        entry["elements"] += row.get("elements", 0)
        entry["mismatching_elements"] += abs(row["mismatching_elements"])
        _add_by_launch(entry, row)
    return out


def gathered_bytes(fused: TritonFused, geometry: Geometry, n: int) -> int:
    """Source bytes the kernel loads (all taps, 3 channels, in-image loads only) for ``n`` images: 1 tap per
    output pixel for nearest, 4 for bilinear, the table width product for the separable modes."""
    ch, cw = geometry.content
    interpolation = fused.config.interpolation
    if interpolation in ("nearest", "nearest-exact"):
        return n * ch * cw * 3
    if interpolation == "bilinear":
        return n * ch * cw * 3 * 4
    make_table = filters.pillow_bilinear if interpolation == "pillow_bilinear" else filters.torch_antialias
    args = () if interpolation == "pillow_bilinear" else ("cuda" if fused.device.type == "cuda" else "cpu",)
    taps = []
    for size_in, size_out in zip(geometry.source, geometry.content, strict=True):
        first, weights, _ = make_table(size_in, size_out, *args)
        # the kernel loops over the table width; loads past the image edge are masked off
        taps.append(np.minimum(weights.shape[1], size_in - first.astype(np.int64)))
    return int(n * 3 * taps[0].sum() * taps[1].sum())


INTERP_LAUNCHES: list[dict[str, Any]] = [
    {},
    {"block": 128, "num_warps": 4},
    {"block": 256, "num_warps": 4},
    {"block": 512, "num_warps": 4},
    {"block": 1024, "num_warps": 8},
]


def interpolation_timings(device: torch.device, quick: bool, copy_gbs: float) -> list[dict[str, Any]]:
    """Each interpolation's kernel on 64 × 480×640 → 512² (stretch and letterbox) under a few launch
    configurations on CUDA (the default first), exactness re-checked against its reference chain on the first
    image."""
    n, source, size = QUICK_INTERP_TIMED if quick else INTERP_TIMED
    launches = INTERP_LAUNCHES if device.type == "cuda" else [{}]
    measure = bench(device)
    src = torch.randint(0, 256, (n, *source, 3), dtype=torch.uint8, device=device)
    probe = [src[0].cpu().numpy()]
    rows = []
    for interpolation in ["bilinear", *INTERPOLATIONS]:
        for geometry_name in ("stretch", "letterbox"):
            spec = {"resize": "letterbox"} if geometry_name == "letterbox" else {}
            config = config_for({**spec, "interpolation": interpolation}, size)
            expected = interpolation_reference(config, device)(probe)
            for launch in launches:
                fused = TritonFused(config, device, **launch)
                geometry = fused.plan(probe)[0]
                dst = torch.empty((n, 3, *geometry.canvas), dtype=torch.float32, device=device)
                with torch.inference_mode():
                    exact = bool(torch.equal(fused(probe).view(torch.int32), expected.view(torch.int32)))
                    ms = statistics.median(
                        measure(lambda f=fused, d=dst, g=geometry: f.launch(src, d, g))
                        for _ in range(1 if quick else 3)
                    )
                unique = src.numel() + dst.numel() * 4
                gathered = gathered_bytes(fused, geometry, n)
                rows.append(
                    {
                        "interpolation": interpolation,
                        "geometry": geometry_name,
                        "launch": launch or "default",
                        "batch": n,
                        "source": f"{source[0]}x{source[1]}",
                        "output": f"{size[0]}x{size[1]}",
                        "bit_exact_vs_reference": exact,
                        "triton_us": ms * 1e3,
                        "unique_bytes": unique,
                        "gathered_source_bytes": gathered,
                        "gathered_per_source_byte": gathered / src.numel(),
                        "triton_GB/s": unique / ms / 1e6,
                        "fraction_of_copy": unique / ms / 1e6 / copy_gbs,
                    }
                )
    return rows


def versions() -> dict[str, str]:
    import triton

    return {
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": str(torch.version.cuda),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pillow": __import__("PIL").__version__,
    }


def run(device: torch.device, quick: bool) -> dict[str, Any]:
    rows = sweep(device, quick)
    interp_rows = interpolation_sweep(device, quick)
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (Triton interpreter)",
        "quick": quick,
        "versions": versions(),
        "summary": summary(rows),
        "control": control(device),
        "timings": timings(device, quick),
        "interpolation": {"summary": interpolation_summary(interp_rows), "sweep": interp_rows},
        "sweep": rows,
    }
    timed = result["timings"]
    timed["interpolations"] = interpolation_timings(device, quick, timed["copy_GB/s"])
    result["passed"] = (
        all(v["mismatching_elements"] == 0 and v["fp16"] == 0 for v in result["summary"].values())
        and result["control"]["mismatching_elements"] > 0
        and all(k["bit_exact_vs_torch_chain"] for k in timed["kernels"])
        and all(t["bit_exact"] for t in timed["tuning"])
        and all(v["mismatching_elements"] == 0 for v in result["interpolation"]["summary"].values())
        and all(k["bit_exact_vs_reference"] for k in timed["interpolations"])
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu (Triton's interpreter)")
    parser.add_argument("--quick", action="store_true", help="small shapes only: a check that the script works")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device; use --device cpu --quick to exercise the script", file=sys.stderr)
        return 2
    if device.type != "cuda":
        os.environ.setdefault("TRITON_INTERPRET", "1")
    result = run(device, args.quick)
    atomic_write_text(Path(args.out), json.dumps(result, indent=2) + "\n")
    keys = ("interpolation", "geometry", "launch", "triton_us", "fraction_of_copy", "gathered_per_source_byte")
    speed = [{k: row[k] for k in keys} for row in result["timings"]["interpolations"]]
    brief = {
        "passed": result["passed"],
        "summary": result["summary"],
        "control": result["control"],
        "interpolation": result["interpolation"]["summary"],
        "interpolation_speed": speed,
    }
    print(json.dumps(brief, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
