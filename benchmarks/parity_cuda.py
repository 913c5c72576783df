"""Triton vs torch bit-exactness on CUDA over the shape sweep, plus preprocessing times. Prints JSON.

    python benchmarks/parity_cuda.py [--out results.json]

Also checks the kernel's division (reciprocal + FMA correction) against correctly rounded division for every
float32 a with 2⁻¹⁰⁰ ≤ |a| ≤ 1 and a = 0, and the float16 output against the torch chain's output ``.half()``.

Run on a machine with an NVIDIA GPU (CI has none: there the tests prove parity in Triton's interpreter).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch

from preprocgate.data.synthetic import make
from preprocgate.functional.parity import combine, parity_stats
from preprocgate.spec import InputSpec
from preprocgate.variants import VARIANTS, build_variant
from preprocgate.variants.triton_fused import triton_cdiv

SWEEP = [
    ((427, 640), (384, 384)),
    ((333, 500), (560, 560)),
    ((37, 53), (512, 512)),
    ((480, 640), (480, 640)),
    ((1, 1), (8, 8)),
    ((1000, 64), (300, 200)),
    ((64, 1000), (200, 300)),
    ((101, 37), (57, 131)),
    ((7, 13), (29, 31)),
    ((480, 640), (512, 512)),
    ((1080, 1920), (640, 640)),
    ((640, 480), (312, 312)),
]
GENERATORS = ("natural", "noise", "edges", "gradient", "texture")


def parity(device: torch.device) -> list[dict]:
    config = InputSpec(size=(384, 384))
    tri = build_variant(VARIANTS.get("triton"), config, device, {})
    ref = build_variant(VARIANTS.get("torch"), config, device, {})
    rows = []
    for (h, w), size in SWEEP:
        images = [make(g, seed, h, w) for g in GENERATORS for seed in range(2)]
        a, b = tri(images, size).cpu().numpy(), ref(images, size).cpu().numpy()
        stats = combine([parity_stats(x, y, f"{i}") for i, (x, y) in enumerate(zip(a, b, strict=True))])
        half = torch.empty((len(images), 3, *size), dtype=torch.float16, device=device)
        tri.launch(torch.from_numpy(np.stack(images)).to(device), half)
        rows.append(
            {
                "source": f"{h}x{w}",
                "output": f"{size[0]}x{size[1]}",
                "images": len(images),
                "elements": stats.numel,
                "max_ulp": stats.max_ulp,
                "max_abs": stats.max_abs,
                "mismatching_elements": stats.numel - stats.equal,
                "fp16_mismatching_elements": int((half.cpu() != torch.from_numpy(b).half()).sum()),
            }
        )
    # the arithmetic without the exactness measures, to show the test would catch a regression
    loose = build_variant(VARIANTS.get("triton"), config, device, {"arithmetic": "unfused"})
    images = [make("natural", 0, 427, 640)]
    diff = (loose(images) != ref(images)).sum().item()
    rows.append({"source": "427x640", "output": "384x384", "arithmetic": "unfused", "mismatching_elements": diff})
    return rows


def division(device: torch.device, lo: int = 0x0D800000, hi: int = 0x3F800000, chunk: int = 1 << 27) -> list[dict]:
    """Every float32 a in [2⁻¹⁰⁰, 1] of both signs, and 0, divided by each std through the kernel's
    :func:`divide` against float64 division rounded to float32 (correctly rounded: 53 ≥ 2·24 + 2 bits)."""
    from preprocgate.variants.triton_fused import load_kernel

    kernel = load_kernel(device)
    rows = []
    for std in (0.229, 0.224, 0.225, 0.5, 1 / 3, 0.7, 57.375):
        b = np.float32(std)
        inv_b = float(np.float32(1) / b)
        checked = mismatching = 0
        for sign in (0, -(1 << 31)):
            for start in range(lo, hi + 1, chunk):
                bits = torch.arange(start, min(start + chunk, hi + 1), dtype=torch.int64, device=device)
                a = (bits | sign).to(torch.int32).view(torch.float32)
                out = torch.empty_like(a)
                grid = (triton_cdiv(len(a), 4096),)
                kernel.divide_kernel[grid](a, out, len(a), float(b), inv_b, DIV_FMA=True, BLOCK=4096)
                expected = (a.double() / torch.tensor([float(b)], dtype=torch.float64, device=device)).float()
                mismatching += int((out.view(torch.int32) != expected.view(torch.int32)).sum())
                checked += len(a)
        zero = torch.zeros(1, device=device)
        out = torch.empty_like(zero)
        kernel.divide_kernel[(1,)](zero, out, 1, float(b), inv_b, DIV_FMA=True, BLOCK=16)
        rows.append({"std": float(b), "checked": checked + 1, "mismatching": mismatching + int(out.item() != 0.0)})
    return rows


def host_timings(device: torch.device, source=(480, 640), size=(512, 512), batch=1, repeats=50) -> list[dict]:
    config = InputSpec(size=size)
    images = [make("natural", i, *source) for i in range(batch)]
    rows = []
    for name in ("cv2", "torch", "triton"):
        v = build_variant(VARIANTS.get(name), config, device, {})
        samples = []
        for i in range(repeats + 5):
            torch.cuda.synchronize()
            t = time.perf_counter()
            v(images)
            torch.cuda.synchronize()
            if i >= 5:
                samples.append((time.perf_counter() - t) / batch)
        rows.append(
            {"variant": name, "batch": batch, "source": source, "output": size, "median_s": statistics.median(samples)}
        )
    return rows


def copy_bandwidth(device: torch.device) -> float:
    """GB/s of a 1 GiB device-to-device copy, counting bytes read plus bytes written."""
    import triton.testing

    src = torch.empty(1 << 30, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    ms = triton.testing.do_bench(lambda: dst.copy_(src), return_mode="median")
    return 2 * src.numel() / ms / 1e6


def kernel_timings(device: torch.device) -> list[dict]:
    """Device-resident inputs: the kernel alone vs torch's op chain, and the copy bandwidth ceiling."""

    from preprocgate.variants.triton_fused import TritonFused

    copy_gbs = copy_bandwidth(device)
    rows: list[dict] = [{"what": "device-to-device copy", "GB/s": copy_gbs}]
    for n, (h, w), (oh, ow) in [
        (64, (480, 640), (512, 512)),
        (32, (1080, 1920), (640, 640)),
        (1, (480, 640), (512, 512)),
    ]:
        config = InputSpec(size=(oh, ow))
        tri = TritonFused(config, device)
        src = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, device=device)
        mean = torch.tensor(config.mean, device=device).view(1, 3, 1, 1)
        std = torch.tensor(config.std, device=device).view(1, 3, 1, 1)

        def torch_chain(src=src, oh=oh, ow=ow, mean=mean, std=std):
            x = src.permute(0, 3, 1, 2).flip(1).float().contiguous()
            x = torch.nn.functional.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=False)
            return (x / 255 - mean) / std

        dst = torch.empty((n, 3, oh, ow), dtype=torch.float32, device=device)
        half = torch.empty((n, 3, oh, ow), dtype=torch.float16, device=device)
        div_rn = TritonFused(config, device, division="div_rn")
        repeats = 5 if n == 1 else 1  # microsecond launches move with clocks and launch overhead: take several
        t_ms = [bench(lambda tri=tri, src=src, dst=dst: tri.launch(src, dst)) for _ in range(repeats)]
        c_ms = [bench(torch_chain) for _ in range(repeats)]
        d_ms = bench(lambda div_rn=div_rn, src=src, dst=dst: div_rn.launch(src, dst))
        h_ms = bench(lambda tri=tri, src=src, half=half: tri.launch(src, half))
        nbytes = src.numel() + dst.numel() * 4
        t, c = statistics.median(t_ms), statistics.median(c_ms)
        rows.append(
            {
                "batch": n,
                "source": f"{h}x{w}",
                "output": f"{oh}x{ow}",
                "triton_us": t * 1e3,
                "triton_us_runs": [x * 1e3 for x in t_ms],
                "torch_chain_us": c * 1e3,
                "torch_chain_us_runs": [x * 1e3 for x in c_ms],
                "triton_GB/s": nbytes / t / 1e6,
                "fraction_of_copy": nbytes / t / 1e6 / copy_gbs,
                "speedup_vs_torch": c / t,
                "triton_div_rn_us": d_ms * 1e3,
                "div_rn_fraction_of_copy": nbytes / d_ms / 1e6 / copy_gbs,
                "triton_fp16_out_us": h_ms * 1e3,
                "fp16_fraction_of_copy": (src.numel() + half.numel() * 2) / h_ms / 1e6 / copy_gbs,
            }
        )
    return rows


def bench(fn) -> float:
    import triton.testing

    return triton.testing.do_bench(fn, return_mode="median")


def tuning(device: torch.device) -> list[dict]:
    """Kernel time over launch configurations on the batched target shape; parity is re-checked for each."""
    import triton.testing

    from preprocgate.variants.triton_fused import TritonFused

    config = InputSpec(size=(512, 512))
    src = torch.randint(0, 256, (64, 480, 640, 3), dtype=torch.uint8, device=device)
    ref = build_variant(VARIANTS.get("torch"), config, device, {})
    images = [make("natural", 0, 480, 640)]
    expected = ref(images)
    copy_gbs = copy_bandwidth(device)
    rows = []
    for block in (256, 512, 1024, 2048):
        for warps in (1, 2, 4, 8):
            if block // (32 * warps) < 1:
                continue
            tri = TritonFused(config, device, block=block, num_warps=warps)
            dst = torch.empty((64, 3, 512, 512), dtype=torch.float32, device=device)
            ms = triton.testing.do_bench(lambda tri=tri, dst=dst: tri.launch(src, dst), return_mode="median")
            exact = bool(torch.equal(tri(images), expected))
            gbs = (src.numel() + dst.numel() * 4) / ms / 1e6
            rows.append(
                {
                    "block": block,
                    "num_warps": warps,
                    "us": ms * 1e3,
                    "GB/s": gbs,
                    "fraction_of_copy": gbs / copy_gbs,
                    "bit_exact": exact,
                }
            )
    return sorted(rows, key=lambda r: r["us"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out")
    args = parser.parse_args()
    device = torch.device("cuda")
    import triton

    result = {
        "device": torch.cuda.get_device_name(device),
        "versions": {
            "torch": torch.__version__,
            "triton": triton.__version__,
            "cuda": torch.version.cuda,
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "parity": parity(device),
        "division": division(device),
        "host_timings": host_timings(device),
        "kernel_timings": kernel_timings(device),
        "tuning": tuning(device),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
