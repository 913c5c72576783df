"""Triton's CPU interpreter made to round ``tl.fma`` once, as the GPU does.

The fused kernel reproduces torch's arithmetic rounding by rounding, and several of its steps are FMAs. Before
Triton 3.9 the interpreter computed ``tl.fma(x, y, z)`` as ``x * y + z`` in float32: two roundings. The kernel
then differs from torch on the CPU by up to millions of ULP near zero (measured: Triton 3.8, which torch 2.14
requires, 41,857 of 292,032 values of a 480×640 → 312² resize differ), and a CPU gate reports a parity
failure that is not there. :func:`ensure_exact_fma` checks the interpreter in use with one tiny kernel and, where
it rounds twice, gives its builder an exactly rounded float32 FMA (:func:`fma_float32`); Triton 3.9 and later
need nothing.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import triton
import triton.language as tl

from preprocgate.errors import RunError

# (1 + 2⁻¹²)² − (1 + 2⁻¹¹) is exactly 2⁻²⁴; rounding the product first loses it (a tie, rounded to even) and gives 0
_PROBE = (np.float32(1 + 2**-12), np.float32(1 + 2**-12), np.float32(-(1 + 2**-11)))
_EXACT = np.float32(2**-24)


def fma_float32(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``x · y + z`` rounded once to float32 (round half to even).

    The product of two float32 values is exact in float64 and the sum is rounded once there; rounding that to
    float32 is the correctly rounded result unless the float64 sum landed exactly halfway between two float32
    values while the exact sum was not (double rounding). The exact remainder of the float64 sum (Knuth's
    TwoSum) says which side the exact sum is on; such values are moved one float64 step towards it first.
    """
    x, y, z = np.broadcast_arrays(*(np.asarray(a, np.float32) for a in (x, y, z)))
    product = x.astype(np.float64) * y.astype(np.float64)
    addend = z.astype(np.float64)
    total = product + addend
    virtual = total - product
    remainder = (product - (total - virtual)) + (addend - virtual)
    with np.errstate(invalid="ignore", over="ignore"):
        rounded = total.astype(np.float32)
        other = np.nextafter(rounded, np.where(total > rounded, np.inf, -np.inf).astype(np.float32))
        halfway = (rounded.astype(np.float64) + other.astype(np.float64)) / 2 == total
    tie = np.isfinite(total) & (total != rounded) & halfway & (remainder != 0)
    if tie.any():
        toward = np.where(remainder[tie] > 0, np.inf, -np.inf)
        rounded[tie] = np.nextafter(total[tie], toward).astype(np.float32)
    return rounded


@triton.jit
def _fma_kernel(x_ptr, y_ptr, z_ptr, out_ptr):
    tl.store(out_ptr, tl.fma(tl.load(x_ptr), tl.load(y_ptr), tl.load(z_ptr)))


def _fma_is_exact() -> bool:
    x, y, z = (torch.tensor([v]) for v in _PROBE)
    out = torch.empty(1)
    _fma_kernel[(1,)](x, y, z, out)
    return bool(out.item() == _EXACT)


@functools.cache
def ensure_exact_fma() -> None:
    """Make the interpreter's ``tl.fma`` round once, where it does not (Triton before 3.9); the kernel module must
    already run in the interpreter (``TRITON_INTERPRET=1`` when Triton was imported)."""
    if _fma_is_exact():
        return
    from triton.runtime import interpreter

    builder = getattr(interpreter, "InterpreterBuilder", None)
    if builder is None or not hasattr(builder, "create_fma"):
        raise RunError(_inexact())
    twice = builder.create_fma

    def create_fma(self, x, y, z):  # type: ignore[no-untyped-def]
        if z.data.dtype != np.float32:
            return twice(self, x, y, z)
        return interpreter.TensorHandle(fma_float32(x.data, y.data, z.data), z.dtype.scalar)

    builder.create_fma = create_fma
    if not _fma_is_exact():
        builder.create_fma = twice
        raise RunError(_inexact())


def _inexact() -> str:
    return (
        f"triton {triton.__version__}'s CPU interpreter rounds tl.fma twice, so the triton variant cannot match torch "
        "on the CPU; install triton>=3.9, or run the gate on CUDA"
    )
