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
    {},  # the variant's defaults: BLOCK 256, 2 warps, reciprocal-and-FMA division on CUDA
    {"block": 128, "num_warps": 1},
    {"block": 512, "num_warps": 4},
    {"block": 1024, "num_warps": 8},
    {"division": "div_rn"},
]
QUICK_LAUNCHES: list[dict[str, Any]] = [{}, {"block": 1024, "division": "reciprocal_fma"}]
TIMED = [(64, (480, 640), (512, 512)), (32, (1080, 1920), (640, 640))]
QUICK_TIMED = [(2, (48, 64), (32, 32))]


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
    return rows


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
        launch = json.dumps(row["launch"], sort_keys=True) if isinstance(row["launch"], dict) else row["launch"]
        entry["by_launch"][launch] = entry["by_launch"].get(launch, 0) + abs(row["mismatching_elements"])
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


def versions() -> dict[str, str]:
    import triton

    return {
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": str(torch.version.cuda),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def run(device: torch.device, quick: bool) -> dict[str, Any]:
    rows = sweep(device, quick)
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (Triton interpreter)",
        "quick": quick,
        "versions": versions(),
        "summary": summary(rows),
        "control": control(device),
        "timings": timings(device, quick),
        "sweep": rows,
    }
    timed = result["timings"]
    result["passed"] = (
        all(v["mismatching_elements"] == 0 and v["fp16"] == 0 for v in result["summary"].values())
        and result["control"]["mismatching_elements"] > 0
        and all(k["bit_exact_vs_torch_chain"] for k in timed["kernels"])
        and all(t["bit_exact"] for t in timed["tuning"])
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
    print(
        json.dumps({"passed": result["passed"], "summary": result["summary"], "control": result["control"]}, indent=2)
    )
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
