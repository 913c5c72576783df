"""Separable resampling filters as the references tabulate them: per output index, the first source index and
the weights of its taps, for torch's antialiased bilinear (per device) and Pillow's bilinear.

Both references compute these tables before touching a pixel (torch's CPU kernel and Pillow on the host, torch's
CUDA kernel per thread block), each with its own mix of float32, float64 and integer steps; reproducing them
here, rounding for rounding, in Python floats (C doubles) and numpy float32 scalars (IEEE float32, like C's
``float``), lets the Triton kernel use the reference's exact weights. docs/arithmetic.md walks through each.

A table is ``(first, weights, counts)``: int32 ``first[out]``, ``weights[out, taps]`` (float32, or int32 for
Pillow) and int32 ``counts[out]``, each index's own tap count (its weights past it are 0; the count matters to
torch's CPU accumulation, see :func:`cpu_fma_from`). An axis whose size does not change is the identity: one tap of
weight 1, as both references skip that pass (torch CUDA's computed weights there are exactly [1, 0], the same
result).
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache
from typing import Literal

import numpy as np

f32 = np.float32
PILLOW_PRECISION_BITS = 22  # Resample.c: 32 − 8 − 2
Table = tuple[np.ndarray, np.ndarray, np.ndarray]
CPU_UNROLL = 4  # torch's CPU antialias loop: products rounded in groups of 4 taps, FMAs in the remainder
Device = Literal["cpu", "cuda"]
# Which of torch's CUDA weight expressions nvcc contracts into FMAs (see torch_antialias_cuda).
# benchmarks/antialias_cuda_probe.py measures every combination against torch's weights on a GPU.
CUDA_CONTRACTIONS = ("span", "offset", "filter")
CUDA_FMA: frozenset[str] = frozenset({"span", "offset"})


def _identity(size: int, one: float | int, dtype: type) -> Table:
    return np.arange(size, dtype=np.int32), np.full((size, 1), one, dtype=dtype), np.ones(size, dtype=np.int32)


def _pack(rows: list[tuple[int, list]], dtype: type) -> Table:
    taps = max(1, max(len(w) for _, w in rows))
    weights = np.zeros((len(rows), taps), dtype=dtype)
    for i, (_, w) in enumerate(rows):
        weights[i, : len(w)] = w
    first = np.asarray([first for first, _ in rows], dtype=np.int32)
    return first, weights, np.asarray([len(w) for _, w in rows], dtype=np.int32)


def within_source(table: Table, in_size: int) -> tuple[Table, np.ndarray]:
    """The table with every index's taps inside the source, and how far each index's taps moved right.

    An index near the end, whose taps past its own count would read past the last source pixel, starts earlier
    instead, its weights preceded by zeros (and the width is at most the source size). The kernel then reads every
    tap without a bounds check, and the result is unchanged: a leading zero-weight tap adds 0·x to a sum that is
    still +0 (or Pillow's integer half), a trailing one adds +0 to a non-negative sum (triangle weights are never
    negative), exactly, in every accumulation the kernel reproduces."""
    first, weights, counts = table
    width = min(weights.shape[1], in_size)
    shift = np.maximum(first + width - in_size, 0).astype(np.int32)
    column = np.arange(width)[None, :] - shift[:, None]
    real = (column >= 0) & (column < counts[:, None])
    moved = np.take_along_axis(weights, np.clip(column, 0, weights.shape[1] - 1), axis=1)
    return (first - shift, np.where(real, moved, 0).astype(weights.dtype), counts), shift


def cpu_fma_from(counts: np.ndarray) -> np.ndarray:
    """The first tap that torch's x86 CPU antialias loop (``interpolate_aa_single_dim``, built with FMA
    contraction) accumulates with an FMA: ``output = t0·w0``, then the taps 1…n−1 run as a loop the compiler
    vectorises by 4 (products rounded, added one by one) with a scalar remainder of (n − 1) mod 4 taps contracted
    into FMAs. Measured on torch 2.13 (AVX512): 0 mismatches over 1206 outputs of 7 shapes, where one FMA for
    every tap mismatches a third of them and none mismatches 1 in 20."""
    return ((counts - 1) // CPU_UNROLL) * CPU_UNROLL + 1


def pillow_vertical_first(source: tuple[int, int], content: tuple[int, int]) -> bool:
    """Whether Pillow runs its vertical pass first. Recent releases (13 does) do when the height shrinks by more
    than twice the width, in pixels, to make the horizontal pass cheaper; older ones always run the horizontal
    pass first. The order changes the result (the intermediate image is rounded to uint8), so the installed
    Pillow is asked once which rule it follows (:func:`_pillow_orders_passes`)."""
    (h, w), (oh, ow) = source, content
    return _pillow_orders_passes() and h - oh > 0 and h - oh > (w - ow) * 2


@lru_cache(maxsize=1)
def _pillow_orders_passes() -> bool:
    """A 12×4 image shrunk to 3 rows and stretched to 7 columns: the vertical pass goes first under the recent
    rule, and the two orders give different pixels there."""
    try:
        from PIL import Image
    except ImportError:  # no reference installed to follow: the current release's rule
        return True
    image = np.random.default_rng(0).integers(0, 256, (12, 4, 3), dtype=np.uint8)
    got = np.asarray(Image.fromarray(image).resize((7, 3), Image.Resampling.BILINEAR))
    return not np.array_equal(got, pillow_reference(image, (3, 7), vertical_first=False))


def pillow_reference(image: np.ndarray, size: tuple[int, int], vertical_first: bool) -> np.ndarray:
    """Pillow's bilinear resize of a uint8 H×W×C image to ``size`` (height, width), in numpy integers: the
    fixed-point passes of Resample.c in the given order, for checking a kernel without Pillow's own pass order."""
    out = image.astype(np.int64)
    axes = (0, 1) if vertical_first else (1, 0)
    for axis in axes:
        if out.shape[axis] == size[axis]:
            continue
        first, weights, _ = pillow_bilinear(out.shape[axis], size[axis])
        moved = np.moveaxis(out, axis, 0)
        acc = np.full((size[axis], *moved.shape[1:]), 1 << (PILLOW_PRECISION_BITS - 1), dtype=np.int64)
        for t in range(weights.shape[1]):
            rows = np.minimum(first + t, moved.shape[0] - 1)
            acc += moved[rows] * weights[:, t].reshape(-1, *([1] * (moved.ndim - 1)))
        out = np.moveaxis(np.clip(acc >> PILLOW_PRECISION_BITS, 0, 255), 0, axis)
    return out.astype(np.uint8)


def pillow_clamp_free(weights: np.ndarray) -> bool:
    """Whether Resample.c's clamp of each fixed-point sum to 0…255 (``clip8``) can change no result of a pass
    with these int32 weights (one row per output index). With no negative weight, a sum of uint8 samples starts
    at half a unit and grows, so it is never below 0; and if 255 times the largest row of weights plus that half
    stays below 256 units, it never reaches 256. Pillow's bilinear weights are never negative and each row sums to
    1 plus at most half a unit per tap of rounding, far inside that bound, so its kernel leaves the clamp out
    (two instructions per channel and pass); a filter with negative lobes would keep it."""
    one = 1 << PILLOW_PRECISION_BITS
    sums = weights.astype(np.int64).sum(axis=1)
    return bool((weights >= 0).all() and 255 * int(sums.max(initial=0)) + one // 2 < 256 * one)


def _triangle(x: float) -> float:
    """Pillow's bilinear_filter (torch's aa_filter for bilinear), in doubles."""
    x = abs(x)
    return 1.0 - x if x < 1.0 else 0.0


@lru_cache(maxsize=256)
def pillow_bilinear(in_size: int, out_size: int) -> Table:
    """Resample.c ``precompute_coeffs`` with the bilinear filter (support 1, widened by the downscale factor) and
    ``normalize_coeffs_8bpc``: doubles normalised by their sum, then rounded half away from zero to 22 fraction
    bits. Resize box: the whole image (Image.resize's default)."""
    if in_size == out_size:
        return _identity(out_size, 1 << PILLOW_PRECISION_BITS, np.int32)
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    ss = 1.0 / filterscale
    rows = []
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        w = [_triangle((x + xmin - center + 0.5) * ss) for x in range(xmax)]
        total = 0.0
        for v in w:
            total += v
        if total != 0.0:
            w = [v / total for v in w]
        fixed = [
            int(-0.5 + v * (1 << PILLOW_PRECISION_BITS)) if v < 0 else int(0.5 + v * (1 << PILLOW_PRECISION_BITS))
            for v in w
        ]
        rows.append((xmin, fixed))
    return _pack(rows, np.int32)


def round_f32(x: Fraction) -> np.float32:
    """``x`` rounded once to float32, to nearest, ties to even: a float32 FMA's result, where numpy's
    float64-then-float32 would round twice."""
    f = f32(float(x))  # within one float32 step of the correctly rounded value
    candidates = (np.nextafter(f, f32(-np.inf)), f, np.nextafter(f, f32(np.inf)))
    return min(candidates, key=lambda c: (abs(Fraction(float(c)) - x), int(np.asarray(c).view(np.int32)) & 1))


def fma_f32(a: np.float32, b: np.float32, c: np.float32) -> np.float32:
    """IEEE float32 fused multiply-add: a·b + c rounded once (what nvcc emits for a contracted ``a * b + c``)."""
    return round_f32(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)))


@lru_cache(maxsize=256)
def torch_antialias(in_size: int, out_size: int, device: Device) -> Table:
    """torch's ``F.interpolate(mode="bilinear", antialias=True)`` weights for float input on ``device``.

    CPU (UpSampleKernel.cpp ``_compute_indices_min_size_weights_aa`` with ``scalar_t = float``): float32 variables
    fed by double expressions (``scale * (i + 0.5)``, ``(j + xmin − center + 0.5) * invscale``), the tap count
    clamped to the table width. CUDA: :func:`torch_antialias_cuda` with the contractions nvcc applies. Both: a
    triangle of support ``scale`` on a downscale (1 on an upscale), normalised by the float32 sum of the weights
    with one float32 division each.
    """
    if device == "cuda":
        return torch_antialias_cuda(in_size, out_size, CUDA_FMA)
    if in_size == out_size:
        return _identity(out_size, 1.0, np.float32)
    scale = f32(in_size) / f32(out_size)  # area_pixel_compute_scale<float>
    support = f32(1.0 * float(scale)) if scale >= 1.0 else f32(1.0)
    invscale = f32(1.0 / float(scale)) if scale >= 1.0 else f32(1.0)
    max_taps = math.ceil(support) * 2 + 1
    rows = []
    for i in range(out_size):
        center = f32(float(scale) * (i + 0.5))
        xmin = max(int(float(center - support) + 0.5), 0)
        xsize = min(max(min(int(float(center + support) + 0.5), in_size) - xmin, 0), max_taps)
        args = [f32((float(f32(j + xmin) - center) + 0.5) * float(invscale)) for j in range(xsize)]
        rows.append((xmin, _normalised([f32(1.0) - abs(x) if abs(x) < 1.0 else f32(0.0) for x in args])))
    return _pack(rows, np.float32)


@lru_cache(maxsize=1024)
def torch_antialias_cuda(in_size: int, out_size: int, fused: frozenset[str]) -> Table:
    """torch's CUDA weights (UpSample.cuh ``_compute_weights_span`` and ``_compute_weights``, inlined into
    UpSampleBilinear2d.cu ``upsample_gen2d_aa_out_frame``; ``accscalar_t`` is float for float input), every step
    in float32: ``center = scale·(i + 0.5f)``, ``xmin = int(center − support + 0.5f)``, ``xsize = int(center +
    support + 0.5f) − xmin`` (no clamp), ``w = filter(((j + (xmin − center)) + 0.5f)·invscale)``.

    nvcc contracts ``a*b + c`` into an FMA by default (``-fmad=true``), across statements once inlined. ``fused``
    names the contractions (of :data:`CUDA_CONTRACTIONS`): ``span``: center's product into ``center ∓ support``
    (``xmin``, ``xsize``); ``offset``: into ``xmin − center`` (with both, ``center`` is never rounded, which changes
    the weights wherever ``scale·(i + 0.5)`` is inexact: every non-dyadic ratio); ``filter``: ``1 − |x|`` with the
    product that makes ``x``.
    """
    if in_size == out_size:  # CUDA computes [1, 0] (or [1]) here: the same result
        return _identity(out_size, 1.0, np.float32)
    scale = f32(in_size) / f32(out_size)  # area_pixel_compute_scale<float>, on the host
    support = scale if scale >= 1.0 else f32(1.0)  # (size · 0.5f) · scale
    invscale = f32(1.0 / float(scale)) if scale >= 1.0 else f32(1.0)  # 1.0 / scale in double, stored as float
    half = f32(0.5)
    rows = []
    for i in range(out_size):
        at = f32(i) + half
        if "span" in fused:
            lo, hi = fma_f32(scale, at, -support), fma_f32(scale, at, support)
        else:
            center = scale * at
            lo, hi = center - support, center + support
        xmin = max(int(lo + half), 0)
        xsize = min(int(hi + half), in_size) - xmin
        xmin_m_center = fma_f32(-scale, at, f32(xmin)) if "offset" in fused else f32(xmin) - scale * at
        w = []
        for j in range(xsize):
            a = (f32(j) + xmin_m_center) + half
            x = abs(a * invscale)
            if x >= 1.0:
                w.append(f32(0.0))
            else:
                w.append(fma_f32(-abs(a), invscale, f32(1.0)) if "filter" in fused else f32(1.0) - x)
        rows.append((xmin, _normalised(w)))
    return _pack(rows, np.float32)


def _normalised(w: list[np.float32]) -> list[np.float32]:
    """Both devices: a float32 sum in tap order, then one float32 division per weight (none if the sum is 0)."""
    total = f32(0.0)
    for v in w:
        total = total + v
    return [v / total for v in w] if total != 0.0 else w
