"""The fused preprocessing kernel: uint8 N×H×W×3 → bilinear resize into the content region, pad value around it
→ target channel order → (x / pixel_scale − mean) / std → N×3×H×W, in one pass.

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

PAD_NONE = 0  # stretch: the content is the whole output
PAD_PIXEL = 1  # pad pixels hold a colour, normalised like the image (Ultralytics, YOLOX)
PAD_ZERO = 2  # pad pixels are 0 after normalising (Detectron2, torchvision, MMDetection)


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
def _normalize(v, mean, std, inv_std, scale, inv_scale, RECIP_SCALE: tl.constexpr, DIV_FMA: tl.constexpr):
    if RECIP_SCALE:
        x = v * inv_scale
    else:
        x = tl.math.div_rn(v, scale)
    return divide(x - mean, std, inv_std, DIV_FMA)


@triton.jit
def _channel(
    base,
    row0,
    row1,
    col0,
    col1,
    h0,
    h1,
    w0,
    w1,
    load,
    inside,
    pixel_scale,
    inv_pixel_scale,
    pad,
    mean,
    std,
    inv_std,
    TAPS: tl.constexpr,
    PAD: tl.constexpr,
    RECIP_SCALE: tl.constexpr,
    DIV_FMA: tl.constexpr,
):
    """One output channel: the bilinear sample inside the content, the pad outside (see ``preprocess_kernel``)."""
    v = _bilinear(base, row0, row1, col0, col1, h0, h1, w0, w1, TAPS, load)
    if PAD == 1:  # PAD_PIXEL: the pad colour goes through the same normalisation as a sample
        v = tl.where(inside, v, pad)
    v = _normalize(v, mean, std, inv_std, pixel_scale, inv_pixel_scale, RECIP_SCALE, DIV_FMA)
    if PAD == 2:  # PAD_ZERO
        v = tl.where(inside, v, 0.0)
    return v


@triton.jit
def preprocess_kernel(
    src_ptr,
    dst_ptr,
    in_h,
    in_w,
    out_h,
    out_w,
    top,
    left,
    content_h,
    content_w,
    scale_h,
    scale_w,
    pixel_scale,
    inv_pixel_scale,
    pad_r,
    pad_g,
    pad_b,
    mean_r,
    mean_g,
    mean_b,
    std_r,
    std_g,
    std_b,
    inv_std_r,
    inv_std_g,
    inv_std_b,
    SWAP: tl.constexpr,
    PAD: tl.constexpr,
    TAPS: tl.constexpr,
    INDEX_FMA: tl.constexpr,
    RECIP_SCALE: tl.constexpr,
    DIV_FMA: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Output channels 0, 1, 2 read source channels 2, 1, 0 when ``SWAP`` (source order ≠ target order), and the
    pad values ``pad_*`` are in output channel order. ``PAD``: whether and how pixels outside the content
    (``content_h``×``content_w`` at ``top``, ``left``) are padded: ``PAD_NONE`` (stretch),
    ``PAD_PIXEL`` (the value ``pad_*``, normalised with the same arithmetic as a sample, as torch normalises its
    padded canvas) or ``PAD_ZERO`` (0 in the output, as Detectron2 pads the normalised tensor)."""
    n = tl.program_id(1).to(tl.int64)
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    plane = out_h * out_w
    mask = offs < plane
    oy = offs // out_w
    ox = offs % out_w
    if PAD == 0:  # PAD_NONE
        cy = oy
        cx = ox
        inside = mask
    else:
        cy = oy - top
        cx = ox - left
        inside = (cy >= 0) & (cy < content_h) & (cx >= 0) & (cx < content_w)
    load = mask & inside
    y0, y1, h0, h1 = _source_index(cy, scale_h, in_h, INDEX_FMA)
    x0, x1, w0, w1 = _source_index(cx, scale_w, in_w, INDEX_FMA)
    base = src_ptr + n * in_h * in_w * 3
    row0 = y0.to(tl.int64) * in_w * 3
    row1 = y1.to(tl.int64) * in_w * 3
    col0 = x0 * 3
    col1 = x1 * 3
    first = 2 if SWAP else 0
    last = 0 if SWAP else 2
    out = dst_ptr + n * 3 * plane + offs
    # written out per channel: no tuples or starred arguments, which older Triton compilers reject
    c0 = _channel(
        base + first, row0, row1, col0, col1, h0, h1, w0, w1, load, inside, pixel_scale, inv_pixel_scale,
        pad_r, mean_r, std_r, inv_std_r, TAPS, PAD, RECIP_SCALE, DIV_FMA,
    )  # fmt: skip
    tl.store(out, c0, mask=mask)
    c1 = _channel(
        base + 1, row0, row1, col0, col1, h0, h1, w0, w1, load, inside, pixel_scale, inv_pixel_scale,
        pad_g, mean_g, std_g, inv_std_g, TAPS, PAD, RECIP_SCALE, DIV_FMA,
    )  # fmt: skip
    tl.store(out + plane, c1, mask=mask)
    c2 = _channel(
        base + last, row0, row1, col0, col1, h0, h1, w0, w1, load, inside, pixel_scale, inv_pixel_scale,
        pad_b, mean_b, std_b, inv_std_b, TAPS, PAD, RECIP_SCALE, DIV_FMA,
    )  # fmt: skip
    tl.store(out + 2 * plane, c2, mask=mask)


@triton.jit
def divide_kernel(a_ptr, out_ptr, n, b, inv_b, DIV_FMA: tl.constexpr, BLOCK: tl.constexpr):
    """Element-wise a / b through :func:`divide`: how its rounding is checked against IEEE division."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, divide(tl.load(a_ptr + offs, mask=mask), b, inv_b, DIV_FMA), mask=mask)
