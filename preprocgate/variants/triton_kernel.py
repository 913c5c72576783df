"""The fused preprocessing kernel: uint8 N×H×W×3 → resize into the content region, pad value around it
→ target channel order → (x / pixel_scale − mean) / std → N×3×H×W, in one pass.

The resize is ``INTERP`` (values below): torch's bilinear, nearest or nearest-exact computed in the kernel, or a
separable filter whose per-output-index taps (first source index, weights) come from host tables, as torch's
and Pillow's own kernels precompute them (preprocgate/variants/filters.py): torch's antialiased bilinear in
float32, or Pillow's bilinear in fixed point with its uint8 rounding after each pass.

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

from preprocgate.functional.bilinear_kernel import blend, source_index

PAD_NONE = 0  # stretch: the content is the whole output
PAD_PIXEL = 1  # pad pixels hold a colour, normalised like the image (Ultralytics, YOLOX)
PAD_ZERO = 2  # pad pixels are 0 after normalising (Detectron2, torchvision, MMDetection)

BILINEAR = 0  # F.interpolate(mode="bilinear", align_corners=False), TAPS and INDEX_FMA pick the rounding
NEAREST = 1  # F.interpolate(mode="nearest"): floor(dst · scale)
NEAREST_EXACT = 2  # F.interpolate(mode="nearest-exact"): floor((dst + 0.5) · scale)
SEPARABLE_FLOAT = 3  # float32 taps and weights from tables, horizontal pass then vertical (torch's antialias)
SEPARABLE_FIXED = 4  # int32 weights with 22 fraction bits, uint8 after each pass (Pillow's Resample.c)
ACC_ROUNDED = 0  # separable float: every product rounded, then added (CPU builds without FMA code paths)
ACC_FMA = 1  # one FMA per tap (nvcc contracts torch's CUDA loop)
ACC_FMA_REMAINDER = 2  # FMAs from the tap idx_*[c, 1] on: torch's x86 CPU loop (filters.cpu_fma_from)
FIXED_CLAMPED = tl.constexpr(1)  # FIXED for Pillow's passes, each ending in its clamp to 0…255
FIXED_UNCLAMPED = tl.constexpr(2)  # the same where the weights make the clamp a no-op (launched with CLAMP False)
PILLOW_PRECISION_BITS = tl.constexpr(22)  # Resample.c: PRECISION_BITS = 32 − 8 − 2
PILLOW_HALF = tl.constexpr(1 << 21)  # its rounding: each sum starts at half a unit
UNROLLED_TAPS = 4  # a separable pass of at most this many taps is unrolled (its weights held by _tap_weights)
# The source's and the content's sizes and place change with nearly every image of a real set. Triton compiles a
# kernel per combination of its integer arguments being 1 or a multiple of 16 (and per constexpr), so a dump of
# COCO-like photos compiled 9–38 kernels of 0.4 s or more each on a cold cache (benchmarks/specializations.py);
# unspecialised on these, 2–4. The sm_90 code is instruction for instruction the same for a stretch, and 2% longer
# in a letterbox's pad arithmetic only where the offsets were multiples of 16 (benchmarks/RESULTS.md). The output's
# size stays specialised: it is fixed per gate, and its multiples of 16 keep the stores vectorised.
PER_IMAGE_INTS = ("in_h", "in_w", "top", "left", "content_h", "content_w")
# A ragged launch (``RAGGED``) draws images of different sizes in one grid: program (…, …, n) reads image n's
# values from row n of an int64 table of these columns (the scales as their float32 bits), instead of the scalar
# arguments; the output image it writes is the row's ``out``, and ``last_word`` is the source buffer's last 64-bit
# word (the images lie anywhere in one buffer, at any byte offset). Built by ``TritonFused.run_ragged``.
RAGGED_COLUMNS = (
    "offset", "in_h", "in_w", "top", "left", "content_h", "content_w", "scale_h", "scale_w", "out", "last_word"
)  # fmt: skip
RAGGED_WIDTH = tl.constexpr(len(RAGGED_COLUMNS))


@triton.jit
def _float(p):
    """uint8 (or a small non-negative int32) → float32, exactly. The conversion instruction issues at a quarter of
    the FMA rate on sm_90, but on its own pipe: the kernel is bound by instruction issue (Nsight Compute: SM 82%,
    DRAM 40%), and the bit trick that avoids it (the float bits of 2²³ + p, minus 2²³) costs two issued
    instructions per sample instead of one: 138 against 126 per bilinear output pixel
    (``benchmarks/kernel_sass.py``)."""
    return p.to(tl.float32)


@triton.jit
def _window(words, at, last_word):
    """The source bytes from offset ``at`` on, read as two aligned 64-bit words instead of one load per byte,
    as three 32-bit words: bytes ``at`` … ``at + 3`` (the first in the low byte), ``at + 4`` … ``at + 7``, and
    ``at + 8`` on (at least that one is valid). On the H200 the kernel's time follows its byte loads per pixel more
    than its instructions (benchmarks/RESULTS.md), and a pixel's three channels and its right-hand neighbour's,
    or a filter's taps of up to 2 pixels, lie in two such words whatever their alignment (3 taps: :func:`_window9`).
    The second word is clamped to the source's last (``last_word``): past the source's end it holds no byte the
    caller uses."""
    i = at >> 3
    s = ((at & 7) * 8).to(tl.uint64)
    w0 = tl.load(words + i)
    w1 = tl.load(words + tl.minimum(i + 1, last_word))
    lo = (w0 >> s) | ((w1 << 1) << (63 - s))  # (w1 << 1) << (63 − s): w1 << (64 − s), and 0 for s = 0
    hi = w1 >> s
    return lo.to(tl.uint32), (lo >> 32).to(tl.uint32), hi.to(tl.uint32)


@triton.jit
def _window9(words, start, at):
    """:func:`_window` for a 3-tap row pass, whose 9 bytes (``start`` + ``at`` on: ``start`` an int64 offset
    alike for a whole row of lanes, ``at`` a small int32 one per lane) are read as three aligned 32-bit words: each
    32-bit value is then one funnel shift of two words (``SHF.R.U64`` on sm_90), where two 64-bit words need a
    128-bit shift, and the offsets stay 32-bit per lane. No clamp: the third word holds byte ``at + 8``, a byte
    the pass uses, and a source whose size is a multiple of 4 holds that whole word."""
    words = words.to(tl.pointer_type(tl.uint32))
    at = at + (start & 3).to(tl.int32)
    p = words + (start >> 2) + (at >> 2)
    s = ((at & 3) * 8).to(tl.uint64)
    w0 = tl.load(p).to(tl.uint64)
    w1 = tl.load(p + 1).to(tl.uint64)
    w2 = tl.load(p + 2).to(tl.uint64)
    lo = (((w1 << 32) | w0) >> s).to(tl.uint32)
    mid = (((w2 << 32) | w1) >> s).to(tl.uint32)
    return lo, mid, (w2 >> s).to(tl.uint32)


@triton.jit
def _byte(l0, l1, h, J: tl.constexpr):
    """Byte ``J`` (0 … 8) of a :func:`_window`, as a uint32."""
    if J < 4:
        w = l0 >> (8 * J)
    elif J < 8:
        w = l1 >> (8 * (J - 4))
    else:
        w = h >> (8 * (J - 8))
    return w & 255


@triton.jit
def _window6(words, start, at, last_word):
    """:func:`_window`'s first 6 bytes (a pixel pair) from three aligned 32-bit words, as :func:`_window9` reads
    them (``start`` alike for a row of lanes, ``at`` per lane): one funnel shift per 32-bit value, 32-bit offsets.
    The second and third words may hold no byte the caller uses (the third is needed only where ``at`` is 3 past
    a word's start, the second not at the image's last pixel when it starts a word's first two bytes) and then may
    lie past the source's end: both are clamped to the source's last word (``last_word`` counts 64-bit words)."""
    words = words.to(tl.pointer_type(tl.uint32))
    at = at.to(tl.int32) + (start & 3).to(tl.int32)
    base = words + (start >> 2)
    i = at >> 2
    s = ((at & 3) * 8).to(tl.uint64)
    w0 = tl.load(base + i).to(tl.uint64)
    last = tl.minimum(last_word * 2 + 1 - (start >> 2), 1 << 30).to(tl.int32)  # a row's words fit far below
    w1 = tl.load(base + tl.minimum(i + 1, last)).to(tl.uint64)
    w2 = tl.load(base + tl.minimum(i + 2, last)).to(tl.uint64)
    lo = (((w1 << 32) | w0) >> s).to(tl.uint32)
    return lo, (((w2 << 32) | w1) >> s).to(tl.uint32), lo


@triton.jit
def _pixel_pair(words, start, at, wide, last_word, FIRST: tl.constexpr, WORDS: tl.constexpr):
    """The three channels (source order from channel ``FIRST``: 0, or 2 when swapping) of the pixel at ``start +
    at`` and of its right-hand neighbour (``wide``; else the same pixel: the image's last column), as float32.
    ``WORDS``: 1 reads them through :func:`_window` (64-bit words), 2 through :func:`_window6` (32-bit words)."""
    if WORDS == 2:
        l0, l1, h = _window6(words, start, at, last_word)
    else:
        l0, l1, h = _window(words, start + at, last_word)
    a0 = _byte(l0, l1, h, FIRST)
    a1 = _byte(l0, l1, h, 1)
    a2 = _byte(l0, l1, h, 2 - FIRST)
    b0 = tl.where(wide, _byte(l0, l1, h, 3 + FIRST), a0)
    b1 = tl.where(wide, _byte(l0, l1, h, 4), a1)
    b2 = tl.where(wide, _byte(l0, l1, h, 5 - FIRST), a2)
    return _float(a0), _float(a1), _float(a2), _float(b0), _float(b1), _float(b2)


@triton.jit
def _bilinear(base, row0, row1, col0, col1, h0, h1, w0, w1, TAPS: tl.constexpr):
    r0 = base + row0
    r1 = base + row1
    p00 = _float(tl.load(r0 + col0))
    p01 = _float(tl.load(r0 + col1))
    p10 = _float(tl.load(r1 + col0))
    p11 = _float(tl.load(r1 + col1))
    return blend(p00, p01, p10, p11, h0, h1, w0, w1, TAPS)


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
def split_divide(a, b, inv_b):
    """a / b as a · (1/b) with the reciprocal in two parts: ``inv_b`` and its remainder ``lo`` =
    (1 − b·inv_b)·inv_b, so that a / b ≈ fma(a, inv_b, a·lo), two instructions where :func:`divide` takes three.
    Not IEEE division for every ``a``, so only used where the launch has checked every value ``a`` takes
    (``triton_fused.split_division_exact``). ``lo`` depends on the arguments alone: computed once per program."""
    lo = tl.fma(-b, inv_b, 1.0) * inv_b
    return tl.fma(a, inv_b, a * lo)


@triton.jit
def _normalize(
    v, mean, std, inv_std, scale, inv_scale, RECIP_SCALE: tl.constexpr, DIV_FMA: tl.constexpr, SPLIT: tl.constexpr
):  # fmt: skip
    """``SPLIT``: both divisions through :func:`split_divide`, where every ``v`` is an integer 0…255 (or a pad
    colour) and the launch has checked that each quotient this makes rounds as IEEE division does
    (``triton_fused.split_division_exact``): two instructions a division, where :func:`divide` takes three and
    ``div_rn`` more. Otherwise ``v / scale`` is ``div_rn`` (where not ``RECIP_SCALE``)."""
    if RECIP_SCALE:
        x = v * inv_scale
    elif SPLIT:
        x = split_divide(v, scale, inv_scale)
    else:
        x = divide(v, scale, inv_scale, False)
    if SPLIT:
        y = split_divide(x - mean, std, inv_std)
    else:
        y = divide(x - mean, std, inv_std, DIV_FMA)
    return y


@triton.jit
def _finish(
    v, inside, pixel_scale, inv_pixel_scale, pad, mean, std, inv_std,
    PAD: tl.constexpr, RECIP_SCALE: tl.constexpr, DIV_FMA: tl.constexpr, SPLIT: tl.constexpr,
):  # fmt: skip
    """One output channel from its resampled value: the pad outside the content (see ``preprocess_kernel``)."""
    if PAD == 1:  # PAD_PIXEL: the pad colour goes through the same normalisation as a sample
        v = tl.where(inside, v, pad)
    v = _normalize(v, mean, std, inv_std, pixel_scale, inv_pixel_scale, RECIP_SCALE, DIV_FMA, SPLIT)
    if PAD == 2:  # PAD_ZERO
        v = tl.where(inside, v, 0.0)
    return v


@triton.jit
def _store(
    out, plane, mask, v0, v1, v2, inside, pixel_scale, inv_pixel_scale, pad_r, pad_g, pad_b, mean_r, mean_g, mean_b,
    std_r, std_g, std_b, inv_std_r, inv_std_g, inv_std_b,
    PAD: tl.constexpr, RECIP_SCALE: tl.constexpr, DIV_FMA: tl.constexpr, SPLIT: tl.constexpr,
):  # fmt: skip
    """The three output planes of resampled values: each channel finished (:func:`_finish`) and stored."""
    c0 = _finish(
        v0, inside, pixel_scale, inv_pixel_scale, pad_r, mean_r, std_r, inv_std_r, PAD, RECIP_SCALE, DIV_FMA, SPLIT,
    )  # fmt: skip
    tl.store(out, c0, mask=mask)
    c1 = _finish(
        v1, inside, pixel_scale, inv_pixel_scale, pad_g, mean_g, std_g, inv_std_g, PAD, RECIP_SCALE, DIV_FMA, SPLIT,
    )  # fmt: skip
    tl.store(out + plane, c1, mask=mask)
    c2 = _finish(
        v2, inside, pixel_scale, inv_pixel_scale, pad_b, mean_b, std_b, inv_std_b, PAD, RECIP_SCALE, DIV_FMA, SPLIT,
    )  # fmt: skip
    tl.store(out + 2 * plane, c2, mask=mask)


@triton.jit
def _nearest_index(dst, scale, in_size, EXACT: tl.constexpr):
    """torch's nearest_idx / nearest_exact_idx: float32 product, then floor (truncation: it is never negative
    where it is used), clamped to the last index."""
    d = dst.to(tl.float32)
    if EXACT:
        d = d + 0.5
    return tl.minimum(tl.maximum((d * scale).to(tl.int32), 0), in_size - 1)


@triton.jit
def _clip8(acc, FIXED: tl.constexpr):
    """Resample.c's clip8: the fixed-point sum (its rounding half already added) → uint8, saturated; the
    saturation left out where the launch has proved it changes nothing (``FIXED`` = ``FIXED_UNCLAMPED``)."""
    v = acc >> PILLOW_PRECISION_BITS
    if FIXED == FIXED_CLAMPED:
        v = tl.minimum(tl.maximum(v, 0), 255)
    return v


@triton.jit
def _accumulate(acc, x, w, t, fma_from, FIXED: tl.constexpr, ACC: tl.constexpr):
    """acc + x·w, rounded as the reference does for tap ``t``: integers (``FIXED``), or float32 with a rounded
    product (ACC_ROUNDED), one FMA (ACC_FMA), or FMAs from tap ``fma_from`` on (ACC_FMA_REMAINDER)."""
    if FIXED or ACC == 0:
        acc = acc + x * w
    elif ACC == 1:
        acc = tl.fma(x, w, acc)
    else:
        acc = tl.where(t >= fma_from, tl.fma(x, w, acc), acc + x * w)
    return acc


@triton.jit
def _sample(p, FIXED: tl.constexpr):
    """One source byte (uint8, or uint32 from a :func:`_window`) as the filter reads it: int32 for Pillow's
    integers, else float32."""
    if FIXED:
        x = p.to(tl.int32)
    else:
        x = _float(p)
    return x


@triton.jit
def _inner_tap(h0, h1, h2, b0, b1, b2, o_off, i0, wi, i_fma, i_stride, t, FIXED: tl.constexpr, ACC: tl.constexpr):
    """The first pass's tap ``t``, of weight ``wi``, for three channels (see :func:`_separable`)."""
    off = i0.to(tl.int64) * i_stride + t * i_stride
    h0 = _accumulate(h0, _sample(tl.load(b0 + o_off + off), FIXED), wi, t, i_fma, FIXED, ACC)
    h1 = _accumulate(h1, _sample(tl.load(b1 + o_off + off), FIXED), wi, t, i_fma, FIXED, ACC)
    h2 = _accumulate(h2, _sample(tl.load(b2 + o_off + off), FIXED), wi, t, i_fma, FIXED, ACC)
    return h0, h1, h2


@triton.jit
def _word_tap(h0, h1, h2, l0, l1, h, wi, i_fma, t: tl.constexpr, FIRST: tl.constexpr, FIXED: tl.constexpr,
              ACC: tl.constexpr):  # fmt: skip
    """:func:`_inner_tap` on bytes of a :func:`_window` (the first pass along a row: tap ``t`` is 3 bytes on)."""
    h0 = _accumulate(h0, _sample(_byte(l0, l1, h, 3 * t + FIRST), FIXED), wi, t, i_fma, FIXED, ACC)
    h1 = _accumulate(h1, _sample(_byte(l0, l1, h, 3 * t + 1), FIXED), wi, t, i_fma, FIXED, ACC)
    h2 = _accumulate(h2, _sample(_byte(l0, l1, h, 3 * t + 2 - FIRST), FIXED), wi, t, i_fma, FIXED, ACC)
    return h0, h1, h2


@triton.jit
def _tap_weights(i_w, I_TAPS: tl.constexpr):
    """The first pass's weights (``I_TAPS`` ≤ ``UNROLLED_TAPS`` of them, unrolled; the others 0), loaded once:
    ``rows_kernel`` runs a first pass for every source row of its run, and the compiler does not move a load out
    of a loop that stores (the table could be the output, for all it knows), so a load in the pass is issued
    again each row."""
    q0 = tl.load(i_w)
    q1 = q0 * 0
    q2 = q1
    q3 = q1
    if I_TAPS > 1:
        q1 = tl.load(i_w + 1)
    if I_TAPS > 2:
        q2 = tl.load(i_w + 2)
    if I_TAPS > 3:
        q3 = tl.load(i_w + 3)
    return q0, q1, q2, q3


@triton.jit
def _tap_weight(q0, q1, q2, q3, T: tl.constexpr):
    """Weight ``T`` of a :func:`_tap_weights`."""
    tl.static_assert(T < 4, "_tap_weights holds UNROLLED_TAPS = 4 weights")
    if T == 0:
        w = q0
    elif T == 1:
        w = q1
    elif T == 2:
        w = q2
    else:
        w = q3
    return w


@triton.jit
def _first_pass(
    b0, b1, b2, o_off, i0, i_w, q0, q1, q2, q3, i_fma, i_stride, i_taps, like, words, img_off, last_word,
    I_TAPS: tl.constexpr, FIXED: tl.constexpr, ACC: tl.constexpr, WORDS: tl.constexpr, FIRST: tl.constexpr,
):  # fmt: skip
    """The first pass at one source line (offset ``o_off``) for three channels: its taps accumulated, and for
    Pillow rounded to uint8 (:func:`_clip8`). ``like``: a tensor of the result's shape. Unrolled (``I_TAPS``), the
    weights are ``q*`` (:func:`_tap_weights`); looped, they are read at ``i_w``. ``WORDS``: the pass runs along a
    row with at most 3 taps (unrolled), whose bytes are read as one :func:`_window` (:func:`_window9` for 3). ``FIXED``:
    0 for float passes, else Pillow's (``FIXED_CLAMPED``, ``FIXED_UNCLAMPED``)."""
    h0 = like * 0
    if FIXED:
        h0 += PILLOW_HALF
    h1 = h0
    h2 = h0
    if WORDS:
        if I_TAPS == 3:
            l0, l1, h = _window9(words, img_off + o_off, i0 * 3)
        else:
            l0, l1, h = _window(words, img_off + o_off + i0.to(tl.int64) * 3, last_word)
        for t in tl.static_range(I_TAPS):
            wi = _tap_weight(q0, q1, q2, q3, t)
            h0, h1, h2 = _word_tap(h0, h1, h2, l0, l1, h, wi, i_fma, t, FIRST, FIXED, ACC)
    elif I_TAPS > 0:
        for t in tl.static_range(I_TAPS):
            wi = _tap_weight(q0, q1, q2, q3, t)
            h0, h1, h2 = _inner_tap(h0, h1, h2, b0, b1, b2, o_off, i0, wi, i_fma, i_stride, t, FIXED, ACC)
    else:
        for t in range(0, i_taps):
            wi = tl.load(i_w + t)
            h0, h1, h2 = _inner_tap(h0, h1, h2, b0, b1, b2, o_off, i0, wi, i_fma, i_stride, t, FIXED, ACC)
    if FIXED:
        h0 = _clip8(h0, FIXED)
        h1 = _clip8(h1, FIXED)
        h2 = _clip8(h2, FIXED)
    return h0, h1, h2


@triton.jit
def _outer_tap(
    a0, a1, a2, b0, b1, b2, r, o0, o_w, o_fma, o_stride, i0, i_w, q0, q1, q2, q3, i_fma, i_stride,
    i_taps, words, img_off, last_word, I_TAPS: tl.constexpr, FIXED: tl.constexpr, ACC: tl.constexpr,
    WORDS: tl.constexpr, FIRST: tl.constexpr,
):  # fmt: skip
    """The second pass's tap ``r``: a first pass along the other axis, then one accumulation per channel."""
    wo = tl.load(o_w + r)
    h0, h1, h2 = _first_pass(
        b0, b1, b2, (o0 + r) * o_stride, i0, i_w, q0, q1, q2, q3, i_fma, i_stride, i_taps, a0, words, img_off,
        last_word, I_TAPS,
        FIXED, ACC, WORDS, FIRST,
    )  # fmt: skip
    a0 = _accumulate(a0, h0, wo, r, o_fma, FIXED, ACC)
    a1 = _accumulate(a1, h1, wo, r, o_fma, FIXED, ACC)
    a2 = _accumulate(a2, h2, wo, r, o_fma, FIXED, ACC)
    return a0, a1, a2


@triton.jit
def _separable(
    b0, b1, b2, in_w, cy, cx, content_h, content_w, tab_x, tab_y, idx_x, idx_y, o_taps, i_taps, words, img_off,
    last_word, O_TAPS: tl.constexpr, I_TAPS: tl.constexpr, FIXED: tl.constexpr, ACC: tl.constexpr,
    V_FIRST: tl.constexpr, WORDS: tl.constexpr, FIRST: tl.constexpr,
):  # fmt: skip
    """Three channels of a separable filter over a tile: ``cy`` is a column of content rows, ``cx`` a row of
    content columns. Per axis, ``idx_*[c]`` holds the first source index and the first FMA tap of output index
    ``c`` (see :func:`_accumulate`), ``tab_*[c, :]`` its weights (``o_taps``, ``i_taps`` of them for the outer and
    inner pass); they are read once per tile row or column. The first pass runs along x (or y when ``V_FIRST``)
    for each of the other axis' taps, the second combines those. Weights past an index's own tap count are 0 in
    the tables, which adds exactly nothing, so every lane runs the same loops. Accumulation runs tap by tap from
    the first, as the references do. ``FIXED``: Pillow's integers, each pass starting at half a unit and ending in
    :func:`_clip8`.

    Every read is inside the tables and the source, so none is masked (a masked read costs an instruction more
    than the read, for its default value): rows and columns outside the content (pad, or past the output's
    edge) read the nearest content index's taps, a value the caller replaces; the tables place every tap inside
    the source (``filters.within_source``).

    ``O_TAPS``, ``I_TAPS``: the tap counts when the launch unrolls the loops (small counts: one compiled kernel
    each), else 0 and the loops run to ``o_taps``, ``i_taps`` (one kernel for every strong downscale, whose
    unrolled form would take minutes to compile)."""
    cy = tl.minimum(tl.maximum(cy, 0), content_h - 1)
    cx = tl.minimum(tl.maximum(cx, 0), content_w - 1)
    y0 = tl.load(idx_y + cy * 2)
    y_fma = tl.load(idx_y + cy * 2 + 1)
    x0 = tl.load(idx_x + cx * 2)
    x_fma = tl.load(idx_x + cx * 2 + 1)
    if V_FIRST:  # outer: columns, inner: rows
        o0 = x0
        o_fma = x_fma
        i0 = y0
        i_fma = y_fma
        o_w = tab_x + cx * o_taps
        i_w = tab_y + cy * i_taps
        o_stride = 3
        i_stride = in_w * 3
    else:  # outer: rows, inner: columns
        o0 = y0
        o_fma = y_fma
        i0 = x0
        i_fma = x_fma
        o_w = tab_y + cy * o_taps
        i_w = tab_x + cx * i_taps
        o_stride = in_w * 3
        i_stride = 3
    q0, q1, q2, q3 = _tap_weights(i_w, I_TAPS)
    if FIXED:
        a0 = tl.zeros_like(y0 + x0) + PILLOW_HALF
    else:
        a0 = tl.zeros_like(y0 + x0).to(tl.float32)
    a1 = a0
    a2 = a0
    if O_TAPS > 0:
        for r in tl.static_range(O_TAPS):
            a0, a1, a2 = _outer_tap(
                a0, a1, a2, b0, b1, b2, r, o0, o_w, o_fma, o_stride, i0, i_w, q0, q1, q2, q3, i_fma, i_stride,
                i_taps, words,
                img_off, last_word, I_TAPS, FIXED, ACC, WORDS, FIRST,
            )  # fmt: skip
    else:
        for r in range(0, o_taps):
            a0, a1, a2 = _outer_tap(
                a0, a1, a2, b0, b1, b2, r, o0, o_w, o_fma, o_stride, i0, i_w, q0, q1, q2, q3, i_fma, i_stride,
                i_taps, words,
                img_off, last_word, I_TAPS, FIXED, ACC, WORDS, FIRST,
            )  # fmt: skip
    if FIXED:
        v0 = _float(_clip8(a0, FIXED))
        v1 = _float(_clip8(a1, FIXED))
        v2 = _float(_clip8(a2, FIXED))
    else:
        v0 = a0
        v1 = a1
        v2 = a2
    return v0, v1, v2


@triton.jit
def _resample(
    base, cy, cx, in_h, in_w, content_h, content_w, scale_h, scale_w, tab_x, tab_y, idx_x, idx_y, o_taps, i_taps,
    words, img_off, last_word,
    SWAP: tl.constexpr, TAPS: tl.constexpr, INDEX_FMA: tl.constexpr, INTERP: tl.constexpr, ACC: tl.constexpr,
    V_FIRST: tl.constexpr, O_TAPS: tl.constexpr, I_TAPS: tl.constexpr, WORDS: tl.constexpr, CLAMP: tl.constexpr,
):  # fmt: skip
    """The three resampled channels of a tile (content rows ``cy`` × content columns ``cx``) in source order
    swapped to the target's when ``SWAP``. No read is masked (a masked read costs an instruction more, for its
    default value): every source index is clamped into the image, so rows and columns outside the content (pad,
    or past the output's edge) read some pixel whose value the caller replaces or does not store."""
    first: tl.constexpr = 2 if SWAP else 0
    last: tl.constexpr = 0 if SWAP else 2
    fixed: tl.constexpr = (FIXED_CLAMPED if CLAMP else FIXED_UNCLAMPED) if INTERP == 4 else 0
    # written out per channel: no tuple or starred arguments, which older Triton compilers reject
    if INTERP == 0:  # BILINEAR
        y0, y1, h0, h1 = source_index(cy, scale_h, in_h, INDEX_FMA)
        x0, x1, w0, w1 = source_index(cx, scale_w, in_w, INDEX_FMA)
        row0 = y0 * (in_w * 3)
        row1 = y1 * (in_w * 3)
        col0 = x0.to(tl.int64) * 3
        if WORDS:  # each source row's two pixels from one window
            wide = x1 > x0
            p000, p001, p002, p010, p011, p012 = _pixel_pair(
                words, img_off + row0, col0, wide, last_word, first, WORDS
            )  # fmt: skip
            p100, p101, p102, p110, p111, p112 = _pixel_pair(
                words, img_off + row1, col0, wide, last_word, first, WORDS
            )  # fmt: skip
            v0 = blend(p000, p010, p100, p110, h0, h1, w0, w1, TAPS)
            v1 = blend(p001, p011, p101, p111, h0, h1, w0, w1, TAPS)
            v2 = blend(p002, p012, p102, p112, h0, h1, w0, w1, TAPS)
        else:
            col1 = x1.to(tl.int64) * 3
            v0 = _bilinear(base + first, row0, row1, col0, col1, h0, h1, w0, w1, TAPS)
            v1 = _bilinear(base + 1, row0, row1, col0, col1, h0, h1, w0, w1, TAPS)
            v2 = _bilinear(base + last, row0, row1, col0, col1, h0, h1, w0, w1, TAPS)
    elif INTERP <= 2:  # NEAREST, NEAREST_EXACT: a copy of one source pixel
        sy = _nearest_index(cy, scale_h, in_h, INTERP == 2)
        sx = _nearest_index(cx, scale_w, in_w, INTERP == 2)
        at = base + (sy * (in_w * 3) + sx * 3)
        v0 = _float(tl.load(at + first))
        v1 = _float(tl.load(at + 1))
        v2 = _float(tl.load(at + last))
    else:  # SEPARABLE_FLOAT, SEPARABLE_FIXED
        v0, v1, v2 = _separable(
            base + first, base + 1, base + last, in_w, cy, cx, content_h, content_w, tab_x, tab_y, idx_x, idx_y,
            o_taps, i_taps, words, img_off, last_word, O_TAPS, I_TAPS, fixed, ACC, V_FIRST, WORDS, first,
        )  # fmt: skip
    return v0, v1, v2


@triton.jit
def _image(images, in_h, in_w, top, left, content_h, content_w, scale_h, scale_w, RAGGED: tl.constexpr):
    """Image ``program_id(2)``'s values: its byte offset in the source, its sizes, place and scales (32-bit, float32
    scales), its output index and the source's last 64-bit word. ``RAGGED``: from its row of the table at
    ``images`` (``RAGGED_COLUMNS``); else the scalar arguments, the images stacked in order."""
    n = tl.program_id(2).to(tl.int64)
    if RAGGED:
        row = images + n * RAGGED_WIDTH
        img_off = tl.load(row)
        in_h = tl.load(row + 1).to(tl.int32)
        in_w = tl.load(row + 2).to(tl.int32)
        top = tl.load(row + 3).to(tl.int32)
        left = tl.load(row + 4).to(tl.int32)
        content_h = tl.load(row + 5).to(tl.int32)
        content_w = tl.load(row + 6).to(tl.int32)
        scale_h = tl.load(row + 7).to(tl.int32).to(tl.float32, bitcast=True)
        scale_w = tl.load(row + 8).to(tl.int32).to(tl.float32, bitcast=True)
        out_n = tl.load(row + 9)
        last_word = tl.load(row + 10)
    else:
        img_off = n * in_h * in_w * 3
        out_n = n
        last_word = (tl.num_programs(2).to(tl.int64) * in_h * in_w * 3 >> 3) - 1
    return img_off, in_h, in_w, top, left, content_h, content_w, scale_h, scale_w, out_n, last_word


@triton.jit(do_not_specialize=PER_IMAGE_INTS)
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
    tab_x,
    tab_y,
    idx_x,
    idx_y,
    o_taps,
    i_taps,
    images_ptr,
    SWAP: tl.constexpr,
    PAD: tl.constexpr,
    TAPS: tl.constexpr,
    INDEX_FMA: tl.constexpr,
    RECIP_SCALE: tl.constexpr,
    DIV_FMA: tl.constexpr,
    INTERP: tl.constexpr,
    ACC: tl.constexpr,
    V_FIRST: tl.constexpr,
    O_TAPS: tl.constexpr,
    I_TAPS: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK: tl.constexpr,
    WORDS: tl.constexpr = False,
    SPLIT: tl.constexpr = False,
    CLAMP: tl.constexpr = True,
    RAGGED: tl.constexpr = False,
):
    """One program computes a tile of ``ROWS`` output rows × ``BLOCK`` output columns of one image (grid: column
    tiles, row tiles, images), so that everything that depends on the row alone (source rows, their weights)
    or on the column alone is computed once per tile row or column instead of once per pixel. Row offsets within
    an image are 32-bit (the launch refuses images of 2³¹ bytes or more): half the address arithmetic of 64-bit
    ones; column offsets are widened in their multiply, which sm_90 fuses with the address add (``IMAD.WIDE``:
    ``benchmarks/kernel_sass.py`` counts the instructions).

    Output channels 0, 1, 2 read source channels 2, 1, 0 when ``SWAP`` (source order ≠ target order), and the
    pad values ``pad_*`` are in output channel order. ``PAD``: whether and how pixels outside the content
    (``content_h``×``content_w`` at ``top``, ``left``) are padded: ``PAD_NONE`` (stretch),
    ``PAD_PIXEL`` (the value ``pad_*``, normalised with the same arithmetic as a sample, as torch normalises its
    padded canvas) or ``PAD_ZERO`` (0 in the output, as Detectron2 pads the normalised tensor). ``INTERP``: the
    resize (module constants); ``tab_*``, ``idx_*``, ``o_taps``, ``i_taps``: the separable modes' tables and their
    widths (unused otherwise), ``ACC``, ``V_FIRST``, ``O_TAPS``, ``I_TAPS``: their accumulation, pass order and
    unrolling (see :func:`_separable`). ``WORDS``: bilinear and the row-first separable modes with up to 3 taps
    read their bytes through :func:`_window` (3-tap rows: :func:`_window9`; bilinear's pixel pairs through
    :func:`_window6` where ``WORDS`` is 2; the launch sets it where the source starts on an 8-byte boundary and its
    size is a multiple of 8). ``SPLIT``: both divisions of the normalisation through
    :func:`split_divide` (see :func:`_normalize`). ``CLAMP``: Pillow's passes clamp their sums
    to 0…255; False where the launch has proved the clamp a no-op for these tables
    (``filters.pillow_clamp_free``). ``RAGGED``: each image's sizes, place, scales, source offset and output
    index come from row n of the table at ``images_ptr`` (``RAGGED_COLUMNS``), so that images of different sizes
    sharing one canvas are one launch; the scalar arguments they replace are ignored."""
    img_off, in_h, in_w, top, left, content_h, content_w, scale_h, scale_w, out_n, last_word = _image(
        images_ptr, in_h, in_w, top, left, content_h, content_w, scale_h, scale_w, RAGGED
    )  # fmt: skip
    oy = tl.program_id(1) * ROWS + tl.arange(0, ROWS)[:, None]
    ox = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)[None, :]
    plane = out_h * out_w
    mask = (oy < out_h) & (ox < out_w)
    if PAD == 0:  # PAD_NONE
        cy = oy
        cx = ox
        inside = mask
    else:
        cy = oy - top
        cx = ox - left
        inside = (cy >= 0) & (cy < content_h) & (cx >= 0) & (cx < content_w)
    base = src_ptr + img_off
    words = src_ptr.to(tl.pointer_type(tl.uint64))
    if PAD == 0:  # PAD_NONE
        v0, v1, v2 = _resample(
            base, cy, cx, in_h, in_w, content_h, content_w, scale_h, scale_w, tab_x, tab_y, idx_x, idx_y, o_taps,
            i_taps, words, img_off, last_word, SWAP, TAPS, INDEX_FMA, INTERP, ACC, V_FIRST, O_TAPS, I_TAPS, WORDS,
            CLAMP,
        )  # fmt: skip
    else:  # a tile wholly in the pad reads nothing: its values are all replaced
        v0 = tl.zeros([ROWS, BLOCK], tl.float32)
        v1 = v0
        v2 = v0
        top_row = tl.program_id(1) * ROWS - top
        left_col = tl.program_id(0) * BLOCK - left
        if (top_row < content_h) & (top_row + ROWS > 0) & (left_col < content_w) & (left_col + BLOCK > 0):
            v0, v1, v2 = _resample(
                base, cy, cx, in_h, in_w, content_h, content_w, scale_h, scale_w, tab_x, tab_y, idx_x, idx_y,
                o_taps, i_taps, words, img_off, last_word, SWAP, TAPS, INDEX_FMA, INTERP, ACC, V_FIRST, O_TAPS,
                I_TAPS, WORDS, CLAMP,
            )  # fmt: skip
    _store(
        dst_ptr + out_n * 3 * plane + oy * out_w + ox, plane, mask, v0, v1, v2, inside, pixel_scale, inv_pixel_scale,
        pad_r, pad_g, pad_b, mean_r, mean_g, mean_b, std_r, std_g, std_b, inv_std_r, inv_std_g, inv_std_b, PAD,
        RECIP_SCALE, DIV_FMA, SPLIT,
    )  # fmt: skip


@triton.jit
def _bilinear_row(base, row, col0, col1, w0, w1, TAPS: tl.constexpr):
    """Bilinear's horizontal pass along one source row at a row of output columns: ``_bilinear``'s ``t0`` (or
    ``t1``), rounded the same way."""
    p0 = _float(tl.load(base + row + col0))
    p1 = _float(tl.load(base + row + col1))
    return _row_blend(p0, p1, w0, w1, TAPS)


@triton.jit
def _row_blend(p0, p1, w0, w1, TAPS: tl.constexpr):
    """Bilinear's horizontal pass on a channel's two samples."""
    if TAPS == 0:
        t = tl.fma(w0, p0, w1 * p1)
    else:
        t = w0 * p0 + w1 * p1
    return t


@triton.jit
def _source_row(
    b0, b1, b2, y, in_w, x0, col0, col1, w0, w1, i_w, q0, q1, q2, q3, x_fma, i_taps, words, img_off, last_word,
    wide, TAPS: tl.constexpr, INTERP: tl.constexpr, ACC: tl.constexpr, I_TAPS: tl.constexpr, WORDS: tl.constexpr,
    FIRST: tl.constexpr, FIXED: tl.constexpr,
):  # fmt: skip
    """Source row ``y``'s horizontal pass at the program's columns, three channels: bilinear's two taps, or the
    separable filter's first pass. ``WORDS``: the bytes read through :func:`_window` (``wide``: bilinear's
    second column is the next one)."""
    row = y * (in_w * 3)
    if INTERP == 0:  # BILINEAR
        if WORDS:
            p00, p01, p02, p10, p11, p12 = _pixel_pair(words, img_off + row, col0, wide, last_word, FIRST, WORDS)
            h0 = _row_blend(p00, p10, w0, w1, TAPS)
            h1 = _row_blend(p01, p11, w0, w1, TAPS)
            h2 = _row_blend(p02, p12, w0, w1, TAPS)
        else:
            h0 = _bilinear_row(b0, row, col0, col1, w0, w1, TAPS)
            h1 = _bilinear_row(b1, row, col0, col1, w0, w1, TAPS)
            h2 = _bilinear_row(b2, row, col0, col1, w0, w1, TAPS)
    else:
        h0, h1, h2 = _first_pass(
            b0, b1, b2, row, x0, i_w, q0, q1, q2, q3, x_fma, 3, i_taps, w0, words, img_off, last_word, I_TAPS,
            FIXED, ACC, WORDS, FIRST,
        )  # fmt: skip
    return h0, h1, h2


@triton.jit
def _kept_or_passed(
    y, yk, k0, k1, k2, yl, l0, l1, l2, b0, b1, b2, in_w, x0, col0, col1, w0, w1, i_w, q0, q1, q2, q3, x_fma,
    i_taps, words, img_off, last_word, wide, TAPS: tl.constexpr, INTERP: tl.constexpr, ACC: tl.constexpr,
    I_TAPS: tl.constexpr, WORDS: tl.constexpr, FIRST: tl.constexpr, FIXED: tl.constexpr,
):  # fmt: skip
    """Source row ``y``'s horizontal pass: one of two kept ones (rows ``yk``, ``yl``) when it is that row, else
    computed (:func:`_source_row`). The one rule by which ``rows_kernel`` reuses rows."""
    if y == yk:
        h0 = k0
        h1 = k1
        h2 = k2
    elif y == yl:
        h0 = l0
        h1 = l1
        h2 = l2
    else:
        h0, h1, h2 = _source_row(
            b0, b1, b2, y, in_w, x0, col0, col1, w0, w1, i_w, q0, q1, q2, q3, x_fma, i_taps, words, img_off,
            last_word, wide, TAPS,
            INTERP, ACC, I_TAPS, WORDS, FIRST, FIXED,
        )  # fmt: skip
    return h0, h1, h2


@triton.jit
def _vertical(
    t0, t1, h0, h1, wo, y_fma, TAPS: tl.constexpr, INTERP: tl.constexpr, ACC: tl.constexpr, FIXED: tl.constexpr
):  # fmt: skip
    """One channel's vertical pass over the two source rows' horizontal passes ``t0``, ``t1``: bilinear's with
    weights ``h0``, ``h1``, or the separable filter's second pass with the weights at ``wo`` (1 or 2 taps)."""
    if INTERP == 0:  # BILINEAR
        if TAPS == 0:
            v = tl.fma(h0, t0, h1 * t1)
        else:
            v = h0 * t0 + h1 * t1
    else:
        a = t0 * 0
        if FIXED:
            a += PILLOW_HALF
        a = _accumulate(a, t0, tl.load(wo), 0, y_fma, FIXED, ACC)
        if h1 > 0:  # a second tap: ``h1`` is the table width here
            a = _accumulate(a, t1, tl.load(wo + 1), 1, y_fma, FIXED, ACC)
        if FIXED:
            v = _float(_clip8(a, FIXED))
        else:
            v = a
    return v


@triton.jit(do_not_specialize=PER_IMAGE_INTS)
def rows_kernel(
    src_ptr, dst_ptr, in_h, in_w, out_h, out_w, top, left, content_h, content_w, scale_h, scale_w, pixel_scale,
    inv_pixel_scale, pad_r, pad_g, pad_b, mean_r, mean_g, mean_b, std_r, std_g, std_b, inv_std_r, inv_std_g,
    inv_std_b, tab_x, tab_y, idx_x, idx_y, o_taps, i_taps, images_ptr,
    SWAP: tl.constexpr, PAD: tl.constexpr, TAPS: tl.constexpr, INDEX_FMA: tl.constexpr, RECIP_SCALE: tl.constexpr,
    DIV_FMA: tl.constexpr, INTERP: tl.constexpr, ACC: tl.constexpr, V_FIRST: tl.constexpr, O_TAPS: tl.constexpr,
    I_TAPS: tl.constexpr, ROWS: tl.constexpr, BLOCK: tl.constexpr, WORDS: tl.constexpr = False,
    SPLIT: tl.constexpr = False, CLAMP: tl.constexpr = True, RAGGED: tl.constexpr = False,
):  # fmt: skip
    """:func:`preprocess_kernel` (same arguments) for the resizes that run a horizontal pass per source row, then
    a vertical pass over at most two of them: bilinear in the tap orders ``TAPS`` 0 and 2, and the separable
    filters horizontal-first with one or two vertical taps (``O_TAPS``; upscales and same-size heights). A
    program computes ``ROWS`` output rows one after another over ``BLOCK`` columns. Consecutive output rows share
    source rows (an upscale's neighbours read the same two, a same-size resize's next row reads this row's
    second), so the last two source rows' horizontal passes are kept for the next row: on 480 → 512 rows a source
    row is loaded and interpolated about once instead of twice. The columns' indices, weights and table reads are
    done once per program, not once per row. Every operation and operand is the tiled kernel's, so the values are
    too."""
    img_off, in_h, in_w, top, left, content_h, content_w, scale_h, scale_w, out_n, last_word = _image(
        images_ptr, in_h, in_w, top, left, content_h, content_w, scale_h, scale_w, RAGGED
    )  # fmt: skip
    ox = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    columns = ox < out_w
    if PAD == 0:  # PAD_NONE
        cx = ox
        x_in = columns
    else:
        cx = ox - left
        x_in = (cx >= 0) & (cx < content_w)
    if INTERP == 0:  # BILINEAR
        x0, x1, w0, w1 = source_index(cx, scale_w, in_w, INDEX_FMA)
        x_fma = x0
        i_w = tab_x
        q0 = w0
        q1 = w0
        q2 = w0
        q3 = w0
    else:  # the separable tables at the columns (clamped into the content, as in ``_separable``)
        cx = tl.minimum(tl.maximum(cx, 0), content_w - 1)
        x0 = tl.load(idx_x + cx * 2)
        x_fma = tl.load(idx_x + cx * 2 + 1)
        i_w = tab_x + cx * i_taps
        q0, q1, q2, q3 = _tap_weights(i_w, I_TAPS)  # once for the run of rows
        x1 = x0
        w0 = tl.zeros([BLOCK], tl.float32)
        if INTERP == 4:
            w0 = tl.zeros([BLOCK], tl.int32)
        w1 = w0
    col0 = x0.to(tl.int64) * 3
    col1 = x1.to(tl.int64) * 3
    wide = x1 > x0
    base = src_ptr + img_off
    words = src_ptr.to(tl.pointer_type(tl.uint64))
    first: tl.constexpr = 2 if SWAP else 0
    fixed: tl.constexpr = (FIXED_CLAMPED if CLAMP else FIXED_UNCLAMPED) if INTERP == 4 else 0
    b0 = base + (2 if SWAP else 0)
    b1 = base + 1
    b2 = base + (0 if SWAP else 2)
    plane = out_h * out_w
    out = dst_ptr + out_n * 3 * plane + ox
    # the two source rows last interpolated (none yet: -1) and their horizontal passes, per channel
    ya = tl.program_id(0) * 0 - 1
    yb = ya
    ta0 = w0 * 0
    ta1 = ta0
    ta2 = ta0
    tb0 = ta0
    tb1 = ta0
    tb2 = ta0
    for j in range(ROWS):
        oy = tl.program_id(1) * ROWS + j
        cy = oy - top
        row_in = (cy >= 0) & (cy < content_h)
        v0 = tl.zeros([BLOCK], tl.float32)
        v1 = v0
        v2 = v0
        if row_in:  # a pad row reads nothing
            if INTERP == 0:
                y0, y1, h0, h1 = source_index(cy, scale_h, in_h, INDEX_FMA)
                wo = tab_y
                y_fma = y0
            else:
                y0 = tl.load(idx_y + cy * 2)
                y_fma = tl.load(idx_y + cy * 2 + 1)
                wo = tab_y + cy * O_TAPS
                y1 = y0 + (O_TAPS - 1)
                h0 = 0
                h1 = O_TAPS - 1
            a0, a1, a2 = _kept_or_passed(
                y0, ya, ta0, ta1, ta2, yb, tb0, tb1, tb2, b0, b1, b2, in_w, x0, col0, col1, w0, w1, i_w, q0, q1, q2,
                q3, x_fma, i_taps, words, img_off, last_word, wide, TAPS, INTERP, ACC, I_TAPS, WORDS, first, fixed,
            )  # fmt: skip
            c0, c1, c2 = _kept_or_passed(  # y1 is y0 at the last source row
                y1, y0, a0, a1, a2, yb, tb0, tb1, tb2, b0, b1, b2, in_w, x0, col0, col1, w0, w1, i_w, q0, q1, q2,
                q3, x_fma, i_taps, words, img_off, last_word, wide, TAPS, INTERP, ACC, I_TAPS, WORDS, first, fixed,
            )  # fmt: skip
            ya = y0
            ta0 = a0
            ta1 = a1
            ta2 = a2
            yb = y1
            tb0 = c0
            tb1 = c1
            tb2 = c2
            v0 = _vertical(a0, c0, h0, h1, wo, y_fma, TAPS, INTERP, ACC, fixed)
            v1 = _vertical(a1, c1, h0, h1, wo, y_fma, TAPS, INTERP, ACC, fixed)
            v2 = _vertical(a2, c2, h0, h1, wo, y_fma, TAPS, INTERP, ACC, fixed)
        _store(
            out + oy * out_w, plane, columns & (ox * 0 + oy < out_h), v0, v1, v2, row_in & x_in, pixel_scale,
            inv_pixel_scale, pad_r, pad_g, pad_b, mean_r, mean_g, mean_b, std_r, std_g, std_b, inv_std_r, inv_std_g,
            inv_std_b, PAD, RECIP_SCALE, DIV_FMA, SPLIT,
        )  # fmt: skip


@triton.jit
def divide_kernel(a_ptr, out_ptr, n, b, inv_b, DIV_FMA: tl.constexpr, BLOCK: tl.constexpr):
    """Element-wise a / b through :func:`divide`: how its rounding is checked against IEEE division."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, divide(tl.load(a_ptr + offs, mask=mask), b, inv_b, DIV_FMA), mask=mask)
