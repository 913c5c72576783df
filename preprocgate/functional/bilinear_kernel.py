"""Torch's bilinear resampling (``align_corners=False``) as Triton helpers, rounding for rounding: the source index
and weights of an output index, and the blend of four samples. Both the fused preprocessing kernel
(preprocgate/variants/triton_kernel.py) and the GPU RLE's masks drawn as they are read (rle_kernel.py) must give
``F.interpolate``'s values bit for bit, so they share this one arithmetic (docs/arithmetic.md derives it).

Import this module only from kernel modules loaded through :func:`preprocgate.triton_modules.import_kernels`,
which sets ``TRITON_INTERPRET=1`` first on machines without a GPU.
"""

import triton
import triton.language as tl


@triton.jit
def source_index(dst, scale, in_size, INDEX_FMA: tl.constexpr):
    """Output index ``dst`` → the two source indices it reads and their weights. ``INDEX_FMA``: nvcc contracts
    ``scale · (dst + ½) − ½`` into one FMA in torch's CUDA kernel; the CPU builds round the product first. The
    source index is clamped at 0 and truncated; the second index stays inside the source at its last row or
    column."""
    d = dst.to(tl.float32) + 0.5
    if INDEX_FMA:
        src = tl.fma(scale, d, -0.5)
    else:
        src = scale * d - 0.5
    src = tl.maximum(src, 0.0)
    i0 = tl.minimum(src.to(tl.int32), in_size - 1)
    i1 = tl.where(i0 < in_size - 1, i0 + 1, i0)
    lam1 = src - i0.to(tl.float32)
    lam0 = 1.0 - lam1
    return i0, i1, lam0, lam1


@triton.jit
def blend(p00, p01, p10, p11, h0, h1, w0, w1, TAPS: tl.constexpr):
    """Bilinear's arithmetic on four samples (row, column), in the tap order ``TAPS`` (its values: ``_TAPS`` in
    preprocgate/variants/triton_fused.py; 0 is torch's CUDA kernel: each row's blend one FMA after a product,
    the rows' likewise)."""
    if TAPS == 0:
        t0 = tl.fma(w0, p00, w1 * p01)
        t1 = tl.fma(w0, p10, w1 * p11)
        v = tl.fma(h0, t0, h1 * t1)
    elif TAPS == 1:
        v = tl.fma(p11, h1 * w1, tl.fma(p10, h1 * w0, tl.fma(p00, h0 * w0, p01 * (h0 * w1))))
    elif TAPS == 3:  # the channels-last order without FMAs: every product and sum rounded, left to right
        v = p00 * (h0 * w0) + p01 * (h0 * w1) + p10 * (h1 * w0) + p11 * (h1 * w1)
    else:
        t0 = w0 * p00 + w1 * p01
        t1 = w0 * p10 + w1 * p11
        v = h0 * t0 + h1 * t1
    return v
