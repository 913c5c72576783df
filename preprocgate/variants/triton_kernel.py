"""The fused preprocessing kernel: uint8 N×H×W×3 → bilinear resize → RGB → (x/255 − mean)/std → N×3×H×W.

The output is float32, or float16 when the destination is (stores round to nearest-even, as ``.half()`` does).

Import this module only through :func:`preprocgate.variants.triton_fused.load_kernel`, which sets
``TRITON_INTERPRET=1`` first on machines without a GPU (Triton reads it when the kernel is decorated).

Bit-exactness with torch comes from doing torch's arithmetic, rounding for rounding (see docs/arithmetic.md):
every FMA explicit (launch with ``enable_fp_fusion=False`` so the compiler adds none), correctly rounded
divisions (``div_rn``, or the cheaper reciprocal-and-correction of :func:`divide`; Triton's ``/`` is approximate on
NVIDIA), and the tap order selected by ``TAPS`` (its values: ``_TAPS`` in triton_fused.py).
"""

import triton
import triton.language as tl


@triton.jit
def _source_index(dst, scale, in_size, INDEX_FMA: tl.constexpr):
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
def _bilinear(base, row0, row1, col0, col1, h0, h1, w0, w1, TAPS: tl.constexpr, mask):
    p00 = tl.load(base + row0 + col0, mask=mask, other=0).to(tl.float32)
    p01 = tl.load(base + row0 + col1, mask=mask, other=0).to(tl.float32)
    p10 = tl.load(base + row1 + col0, mask=mask, other=0).to(tl.float32)
    p11 = tl.load(base + row1 + col1, mask=mask, other=0).to(tl.float32)
    if TAPS == 0:
        t0 = tl.fma(w0, p00, w1 * p01)
        t1 = tl.fma(w0, p10, w1 * p11)
        v = tl.fma(h0, t0, h1 * t1)
    elif TAPS == 1:
        v = tl.fma(p11, h1 * w1, tl.fma(p10, h1 * w0, tl.fma(p00, h0 * w0, p01 * (h0 * w1))))
    else:
        t0 = w0 * p00 + w1 * p01
        t1 = w0 * p10 + w1 * p11
        v = h0 * t0 + h1 * t1
    return v


@triton.jit
def divide(a, b, inv_b, DIV_FMA: tl.constexpr):
    """a / b correctly rounded. ``DIV_FMA``: q = a·(1/b), then one exact-residual correction
    q + fma(−q, b, a)·(1/b) (Markstein), which rounds like IEEE division for every a ∈ [−1, 1] and the gate's std
    values (checked exhaustively on CUDA: benchmarks/parity_cuda.py) at a fraction of ``div_rn``'s cost."""
    if DIV_FMA:
        q = a * inv_b
        return tl.fma(tl.fma(-q, b, a), inv_b, q)
    else:
        return tl.math.div_rn(a, b)


@triton.jit
def _normalize(v, mean, std, inv_std, inv255, RECIP_255: tl.constexpr, DIV_FMA: tl.constexpr):
    if RECIP_255:
        x = v * inv255
    else:
        x = tl.math.div_rn(v, 255.0)
    return divide(x - mean, std, inv_std, DIV_FMA)


@triton.jit
def preprocess_kernel(
    src_ptr,
    dst_ptr,
    in_h,
    in_w,
    out_h,
    out_w,
    scale_h,
    scale_w,
    inv255,
    mean_r,
    mean_g,
    mean_b,
    std_r,
    std_g,
    std_b,
    inv_std_r,
    inv_std_g,
    inv_std_b,
    SRC_BGR: tl.constexpr,
    TAPS: tl.constexpr,
    INDEX_FMA: tl.constexpr,
    RECIP_255: tl.constexpr,
    DIV_FMA: tl.constexpr,
    BLOCK: tl.constexpr,
):
    n = tl.program_id(1).to(tl.int64)
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    plane = out_h * out_w
    mask = offs < plane
    oy = offs // out_w
    ox = offs % out_w
    y0, y1, h0, h1 = _source_index(oy, scale_h, in_h, INDEX_FMA)
    x0, x1, w0, w1 = _source_index(ox, scale_w, in_w, INDEX_FMA)
    base = src_ptr + n * in_h * in_w * 3
    row0 = y0.to(tl.int64) * in_w * 3
    row1 = y1.to(tl.int64) * in_w * 3
    col0 = x0 * 3
    col1 = x1 * 3
    red = 2 if SRC_BGR else 0
    blue = 0 if SRC_BGR else 2
    out = dst_ptr + n * 3 * plane + offs
    r = _bilinear(base + red, row0, row1, col0, col1, h0, h1, w0, w1, TAPS, mask)
    tl.store(out, _normalize(r, mean_r, std_r, inv_std_r, inv255, RECIP_255, DIV_FMA), mask=mask)
    g = _bilinear(base + 1, row0, row1, col0, col1, h0, h1, w0, w1, TAPS, mask)
    tl.store(out + plane, _normalize(g, mean_g, std_g, inv_std_g, inv255, RECIP_255, DIV_FMA), mask=mask)
    b = _bilinear(base + blue, row0, row1, col0, col1, h0, h1, w0, w1, TAPS, mask)
    tl.store(out + 2 * plane, _normalize(b, mean_b, std_b, inv_std_b, inv255, RECIP_255, DIV_FMA), mask=mask)


@triton.jit
def divide_kernel(a_ptr, out_ptr, n, b, inv_b, DIV_FMA: tl.constexpr, BLOCK: tl.constexpr):
    """Element-wise a / b through :func:`divide`: how its rounding is checked against IEEE division."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, divide(tl.load(a_ptr + offs, mask=mask), b, inv_b, DIV_FMA), mask=mask)
