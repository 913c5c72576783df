"""torch's antialiased bilinear weights and outputs on a device against filters.py's tables and the fused kernel.

    python benchmarks/antialias_cuda_probe.py --out probe.json               # on a machine with an NVIDIA GPU
    python benchmarks/antialias_cuda_probe.py --device cpu --out probe.json  # smoke test: CPU tables, interpreter

Weights: a one-hot input (``eye(n)`` as n channels of two rows, or of two columns) through ``F.interpolate(mode=
"bilinear", antialias=True)`` gives torch's effective weights exactly: each output is 1·w plus zeros, and the other
axis keeps its size (weights [1, 0]). They are compared bit for bit with the device's table
(``filters.torch_antialias``) and, on CUDA, with every contraction hypothesis of ``filters.torch_antialias_cuda``
(which of torch's float32 expressions nvcc fuses into FMAs), so one run says which one torch's build follows.
Outputs: random uint8 images through the torch variant (F.interpolate on their float32 values) and through the
fused kernel (``TritonFused``), mean 0, std 1, pixel_scale 1 so the values compared are the
resized ones; mismatching elements are counted bit for bit. A host model of torch CUDA's loop (:func:`emulate_cuda`)
runs on the same tables, to tell a weight error from a kernel one (on the CPU, whose loop differs, it is only
exercised). Exit 0 when the device's tables equal torch's weights and the kernel's outputs equal torch's
everywhere, else 1.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from geometry_cuda import versions  # the sibling script's: python puts benchmarks/ on sys.path

from preprocgate.fileio import atomic_write_text
from preprocgate.spec import InputSpec
from preprocgate.variants import filters
from preprocgate.variants.torch_interpolate import TorchInterpolate
from preprocgate.variants.triton_fused import TritonFused

Size = tuple[int, int]
# (input size, output size) along one axis: upscales, odd downscales, dyadic ratios (500, 1000, 4000 → 320), 320 → 7
WEIGHT_CASES: list[tuple[int, int]] = [
    (7, 320),
    (13, 320),
    (37, 320),
    (53, 320),
    (101, 320),
    (333, 320),
    (500, 320),
    (64, 320),
    (1000, 320),
    (320, 7),
    (320, 416),
    (1080, 320),
    (4000, 320),
    (41, 90),
    (999, 37),
]
# (source H×W, output H×W): the H200 sweep's mismatching stretch cases, an upscale, dyadic controls, a downscale
IMAGE_CASES: list[tuple[Size, Size]] = [
    ((7, 13), (320, 320)),
    ((37, 53), (320, 320)),
    ((101, 37), (320, 320)),
    ((333, 500), (320, 320)),
    ((1000, 64), (320, 320)),
    ((320, 320), (416, 416)),
    ((480, 640), (320, 320)),
    ((320, 320), (7, 13)),
]
CPU_OUTPUT = (24, 24)  # the interpreter runs the kernel's Python: small outputs on --device cpu


def hex32(v: float) -> str:
    return f"0x{int(np.asarray(v, dtype=np.float32).view(np.uint32)):08x}"


def torch_weights(n_in: int, n_out: int, device: torch.device, axis: str) -> np.ndarray:
    """torch's weights as a dense [n_out, n_in] float32 matrix, along the width (``x``) or the height (``y``).
    The other axis is 2 wide, not 1: torch 2.13's CPU kernel gives every output row the first row's weights when
    the width is 1."""
    eye = torch.eye(n_in, device=device)
    with torch.inference_mode():
        if axis == "x":
            x = eye.reshape(1, n_in, 1, n_in).expand(1, n_in, 2, n_in).contiguous()
            out = F.interpolate(x, size=(2, n_out), mode="bilinear", antialias=True, align_corners=False)[:, :, 0, :]
        else:
            x = eye.reshape(1, n_in, n_in, 1).expand(1, n_in, n_in, 2).contiguous()
            out = F.interpolate(x, size=(n_out, 2), mode="bilinear", antialias=True, align_corners=False)[..., 0]
    return out.reshape(n_in, n_out).T.contiguous().cpu().numpy()


def dense(table: filters.Table, n_in: int) -> np.ndarray:
    first, weights, counts = table
    matrix = np.zeros((len(first), n_in), dtype=np.float32)
    for i in range(len(first)):
        matrix[i, first[i] : first[i] + counts[i]] = weights[i, : counts[i]]
    return matrix


def first_difference(got: np.ndarray, expected: np.ndarray) -> dict[str, Any] | None:
    """None when equal bit for bit, else the first differing (output, input) index and both values."""
    differ = got.view(np.int32) != expected.view(np.int32)
    if not differ.any():
        return None
    o, i = (int(v) for v in np.argwhere(differ)[0])
    return {
        "output": o,
        "input": i,
        "torch": hex32(expected[o, i]),
        "table": hex32(got[o, i]),
        "torch_value": float(expected[o, i]),
        "table_value": float(got[o, i]),
        "outputs_differing": int(differ.any(axis=1).sum()),
    }


def hypotheses(device: torch.device) -> dict[str, Any]:
    """name → function (n_in, n_out) → table. The device's own table first: the one the kernel uses."""
    own = {"table": lambda n_in, n_out: filters.torch_antialias(n_in, n_out, device.type)}
    if device.type != "cuda":
        return own
    names = filters.CUDA_CONTRACTIONS
    for n in range(len(names) + 1):
        for fused in itertools.combinations(names, n):
            key = frozenset(fused)
            own["fma:" + ("+".join(fused) or "none")] = lambda n_in, n_out, k=key: filters.torch_antialias_cuda(
                n_in, n_out, k
            )
    return own


def weight_rows(device: torch.device) -> list[dict[str, Any]]:
    tables = hypotheses(device)
    rows = []
    for n_in, n_out in WEIGHT_CASES:
        for axis in ("x", "y"):
            expected = torch_weights(n_in, n_out, device, axis)
            row: dict[str, Any] = {"in": n_in, "out": n_out, "axis": axis, "equal": {}, "first_difference": {}}
            for name, table in tables.items():
                diff = first_difference(dense(table(n_in, n_out), n_in), expected)
                row["equal"][name] = diff is None
                row["first_difference"][name] = diff
            rows.append(row)
            diff = row["first_difference"]["table"]
            detail = (
                ""
                if diff is None
                else f" first at out {diff['output']} in {diff['input']}: torch {diff['torch']} table {diff['table']}"
                f" ({diff['outputs_differing']} of {n_out} outputs differ)"
            )
            print(f"weights {n_in:>5} -> {n_out:<4} {axis}: equal {'yes' if diff is None else 'no'}{detail}")
    return rows


def fma_chain(values: np.ndarray, first: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """One pass of torch CUDA's ``interpolate_aa_single_dim`` along the last axis of float32 ``values``: per
    output index, ``t₀·w₀`` rounded, then one float32 FMA per further tap (float64 products are exact; the
    float64 sum rounded to float32 differs from a true FMA only on exact float32 midpoints, vanishingly rare)."""
    n = values.shape[-1]
    acc = np.zeros((*values.shape[:-1], len(first)), dtype=np.float32)
    for t in range(weights.shape[1]):
        taps = values[..., np.minimum(first + t, n - 1)].astype(np.float64)  # past the window: weight 0
        acc = (taps * weights[:, t].astype(np.float64) + acc.astype(np.float64)).astype(np.float32)
    return acc


def emulate_cuda(image: np.ndarray, size: Size, device: torch.device, swap: bool) -> np.ndarray:
    """torch CUDA's ``upsample_gen2d_aa_out_frame`` on the host with the device's tables: each source row of the
    window interpolated along x and rounded to float32 (``buffer2``), then those rows combined along y. Tells
    whether a mismatch is in the weights (this differs too) or in the Triton kernel (this matches torch)."""
    (h, w), (oh, ow) = image.shape[:2], size
    first_x, weights_x, _ = filters.torch_antialias(w, ow, device.type)
    first_y, weights_y, _ = filters.torch_antialias(h, oh, device.type)
    chw = image.transpose(2, 0, 1).astype(np.float32)
    if swap:  # the variants' channel order: source → target
        chw = chw[::-1]
    rows = fma_chain(chw, first_x, weights_x)  # C×H×OW
    return fma_chain(rows.transpose(0, 2, 1), first_y, weights_y).transpose(0, 2, 1)  # C×OH×OW


def output_rows(device: torch.device) -> list[dict[str, Any]]:
    rows = []
    for n, (source, size) in enumerate(IMAGE_CASES):
        if device.type != "cuda":
            size = CPU_OUTPUT if size[0] * size[1] > CPU_OUTPUT[0] * CPU_OUTPUT[1] else size
        config = InputSpec(size=size, interpolation="bilinear_antialias", mean=(0, 0, 0), std=(1, 1, 1), pixel_scale=1)
        rng = np.random.default_rng(n)
        images = [rng.integers(0, 256, (*source, 3), dtype=np.uint8) for _ in range(2)]
        reference = TorchInterpolate(config, device)
        with torch.inference_mode():
            expected = reference(images)
            got = TritonFused(config, device)(images)
        differ = got.view(torch.int32) != expected.view(torch.int32)
        emulated = np.stack([emulate_cuda(image, size, device, reference.swap_channels) for image in images])
        host = expected.cpu().numpy()
        row = {
            "source": list(source),
            "output": list(size),
            "elements": expected.numel(),
            "mismatching_elements": int(differ.sum()),
            "max_abs": float((got.double() - expected.double()).abs().max()),
            "emulated_cuda_model_mismatching": int((emulated.view(np.int32) != host.view(np.int32)).sum()),
        }
        rows.append(row)
        print(
            f"outputs {source[0]}x{source[1]} -> {size[0]}x{size[1]}: kernel {row['mismatching_elements']} of "
            f"{row['elements']} mismatching (max |Δ| {row['max_abs']:.3g} in 0–255 units); host model of "
            f"CUDA's loop with these tables: {row['emulated_cuda_model_mismatching']}"
        )
    return rows


def run(device: torch.device) -> dict[str, Any]:
    start = time.perf_counter()
    weights = weight_rows(device)
    outputs = output_rows(device)
    names = list(weights[0]["equal"])
    matching = [name for name in names if all(row["equal"][name] for row in weights)]
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (Triton interpreter)",
        "versions": versions(),
        "contractions_in_use": sorted(filters.CUDA_FMA),
        "hypotheses_matching_every_case": matching,
        "weights": weights,
        "outputs": outputs,
        "seconds": round(time.perf_counter() - start, 1),
    }
    result["passed"] = "table" in matching and all(row["mismatching_elements"] == 0 for row in outputs)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu (Triton's interpreter)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device; use --device cpu to exercise the script", file=sys.stderr)
        return 2
    if device.type != "cuda":
        os.environ.setdefault("TRITON_INTERPRET", "1")
    result = run(device)
    atomic_write_text(Path(args.out), json.dumps(result, indent=2) + "\n")
    print(f"hypotheses matching torch's weights in every case: {result['hypotheses_matching_every_case'] or 'none'}")
    print(f"passed: {result['passed']} ({result['seconds']} s)")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
