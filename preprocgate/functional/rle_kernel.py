"""The GPU RLE's Triton kernels: where each column-major run starts (read from the row-major masks and written in
column-major order, without a transposed copy of the masks first), and the compressed strings' values and
characters (each value's at once, bare and as JSON writes them, where the torch path makes a dozen passes over
every value and character).

Import this module only through :func:`preprocgate.functional.rle.load_kernel`, which sets
``TRITON_INTERPRET=1`` first on machines without a GPU (Triton reads it when the kernel is decorated).
"""

import triton
import triton.language as tl

from preprocgate.functional.bilinear_kernel import blend, source_index


@triton.jit
def run_starts_kernel(mask_ptr, out_ptr, h, w, BY: tl.constexpr, BX: tl.constexpr):
    """Mask ``program_id(2)`` (uint8 0/1, ``h`` × ``w``, row-major) → its pixels' flags in column-major order:
    1 where a run starts (the mask's first pixel, or a pixel unlike the one before it in column-major order: the
    one above, or at the top of a column the last of the column to its left). A program reads a BY × BX tile
    and the tile one row above it (mostly from cache); the compiler moves the flags through shared memory so that
    both the reads along rows and the writes along columns are coalesced."""
    k = tl.program_id(2).to(tl.int64)
    y = tl.program_id(0) * BY + tl.arange(0, BY)[:, None]
    x = tl.program_id(1) * BX + tl.arange(0, BX)[None, :]
    inside = (y < h) & (x < w)
    mask = mask_ptr + k * h * w
    pixel = tl.load(mask + y * w + x, mask=inside, other=0)
    top = y == 0
    before_y = tl.where(top, h - 1, y - 1)
    before_x = tl.where(top, x - 1, x)
    before = tl.load(mask + before_y * w + before_x, mask=inside & (before_x >= 0), other=0)
    starts = (pixel != before) | (top & (x == 0))
    tl.store(out_ptr + k * h * w + x * h + y, starts.to(tl.uint8), mask=inside)


@triton.jit
def _upsampled(logits, y, x, in_h, in_w, scale_h, scale_w):
    """Whether :func:`_blended` is above 0: the mask's pixel (y, x)."""
    return _blended(logits, y, x, in_h, in_w, scale_h, scale_w) > 0.0


@triton.jit
def _blended(logits, y, x, in_h, in_w, scale_h, scale_w):
    """Torch's CUDA ``upsample_bilinear2d`` (``align_corners=False``) of one mask's float32 logits at output
    pixel (y, x), its arithmetic as nvcc compiles it (:mod:`bilinear_kernel` with INDEX_FMA, TAPS 0). Indices are
    clamped into the logits for pixels past the output's edge (never stored); inside it the clamp changes
    nothing (the source index stays below in − ½)."""
    y0, y1, h0, h1 = source_index(y, scale_h, in_h, True)
    x0, x1, w0, w1 = source_index(x, scale_w, in_w, True)
    row0 = logits + y0 * in_w
    row1 = logits + y1 * in_w
    return blend(tl.load(row0 + x0), tl.load(row0 + x1), tl.load(row1 + x0), tl.load(row1 + x1), h0, h1, w0, w1, 0)


@triton.jit
def upsampled_values_kernel(
    logits_ptr, out_ptr, in_h, in_w, h, w, scale_h, scale_w, BY: tl.constexpr, BX: tl.constexpr
):
    """Every value :func:`_blended` gives mask ``program_id(2)``, row-major: what ``F.interpolate`` writes, for
    :func:`preprocgate.functional.rle.upsampled_agrees` to compare bit for bit."""
    k = tl.program_id(2).to(tl.int64)
    y = tl.program_id(0) * BY + tl.arange(0, BY)[:, None]
    x = tl.program_id(1) * BX + tl.arange(0, BX)[None, :]
    value = _blended(logits_ptr + k * in_h * in_w, y, x, in_h, in_w, scale_h, scale_w)
    tl.store(out_ptr + k * h * w + y * w + x, value, mask=(y < h) & (x < w))


@triton.jit
def upsampled_run_starts_kernel(
    logits_ptr, out_ptr, lead_ptr, in_h, in_w, h, w, scale_h, scale_w, BY: tl.constexpr, BX: tl.constexpr
):
    """:func:`run_starts_kernel` of mask ``program_id(2)`` drawn from its logits (K × ``in_h`` × ``in_w``) at
    ``h`` × ``w`` as it reads each pixel (:func:`_upsampled`), and the mask's first pixel into ``lead_ptr``: the
    drawn masks are never written.

    Each pixel is blended once. A program draws BY rows and writes the flags of the last BY − 1: its first row is
    the one before them (for the mask's first row, the last pixel of the column to the left), and each row is
    compared with the row above it taken from the tile itself (``tl.gather`` along the rows, through shared
    memory). Blending the pixel before each pixel again, as a first version did, took as long as the pixel's
    own blend."""
    k = tl.program_id(2).to(tl.int64)
    row = tl.arange(0, BY)[:, None]
    top = tl.program_id(0) * (BY - 1)  # the first row written
    x = tl.program_id(1) * BX + tl.arange(0, BX)[None, :]
    y = top - 1 + row
    wrap = (row == 0) & (top == 0)  # before the mask's first row: the last pixel of the column to the left
    source_y = tl.where(wrap, h - 1, y)
    source_x = tl.where(wrap, x - 1, x)
    logits = logits_ptr + k * in_h * in_w
    pixel = _upsampled(logits, source_y, tl.maximum(source_x, 0), in_h, in_w, scale_h, scale_w) & (source_x >= 0)
    pixel = pixel.to(tl.int32)
    before = tl.gather(pixel, tl.broadcast_to(tl.maximum(row - 1, 0), (BY, BX)), axis=0)
    inside = (row > 0) & (y < h) & (x < w)
    first = (y == 0) & (x == 0)
    starts = (pixel != before) | first
    tl.store(out_ptr + k * h * w + x * h + y, starts.to(tl.uint8), mask=inside)
    tl.store(lead_ptr + k + y * 0 + x * 0, pixel.to(tl.uint8), mask=first)


@triton.jit
def values_kernel(counts_ptr, raw_ptr, values_ptr, widths_ptr, escaped_widths_ptr, n, BLOCK: tl.constexpr):
    """``rleToString``'s values of ``n`` counts and how many characters each takes, bare and as JSON writes it.

    A count is replaced by its difference from the count two before it, except where ``raw`` is set (a mask's first
    three counts: pycocotools' ``i > 2``). A value takes one 5-bit group, plus one for each signed width (5, 10,
    ... 30 bits) it does not fit; ``~v`` of a negative value has the bit length ``v`` has in two's complement.
    Among its characters (each group + 48, + 32 where another follows), a backslash (92) is a group of 12 with
    another after it; JSON doubles it."""
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = i < n
    count = tl.load(counts_ptr + i, mask=inside, other=0).to(tl.int32)
    before = tl.load(counts_ptr + i - 2, mask=inside & (i >= 2), other=0).to(tl.int32)
    raw = tl.load(raw_ptr + i, mask=inside, other=1)
    value = tl.where(raw != 0, count, count - before)
    magnitude = tl.where(value < 0, ~value, value)
    groups = tl.full((BLOCK,), 1, tl.int32)
    for width in tl.static_range(5, 35, 5):
        groups += (magnitude >= (1 << (width - 1))).to(tl.int32)
    backslashes = tl.zeros((BLOCK,), tl.int32)
    for g in tl.static_range(6):  # the seventh group is always the last: no bit 0x20, never a backslash
        backslashes += ((g + 1 < groups) & (((value >> (5 * g)) & 0x1F) == 12)).to(tl.int32)
    tl.store(values_ptr + i, value, mask=inside)
    tl.store(widths_ptr + i, groups, mask=inside)
    tl.store(escaped_widths_ptr + i, groups + backslashes, mask=inside)


@triton.jit
def chars_kernel(
    values_ptr,
    widths_ptr,
    ends_ptr,
    escaped_widths_ptr,
    escaped_ends_ptr,
    out_ptr,
    escaped_at,
    n,
    ESCAPE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Each value's characters at their place (its characters end at ``ends``, the running sum of the widths),
    least significant group first; with ``ESCAPE`` also as JSON writes them, from ``escaped_at`` on (each
    backslash twice). Additions only (a group, + 48, + 32 where another follows): a first version that or-ed the
    continuation bit in wrote some first characters 48 too low compiled by Triton 3.6 for an H100 (exact in the
    interpreter); :func:`preprocgate.functional.rle.kernel_agrees` checks every device before it is used."""
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = i < n
    value = tl.load(values_ptr + i, mask=inside, other=0)
    groups = tl.load(widths_ptr + i, mask=inside, other=0)
    at = tl.load(ends_ptr + i, mask=inside, other=0) - groups
    if ESCAPE:
        escaped = escaped_at + tl.load(escaped_ends_ptr + i, mask=inside, other=0)
        escaped -= tl.load(escaped_widths_ptr + i, mask=inside, other=0)
    for g in tl.static_range(7):  # seven groups hold any value below 2³¹ in magnitude
        written = inside & (g < groups)
        char = ((value >> (5 * g)) & 0x1F) + tl.where(g + 1 < groups, 80, 48)  # >> on int32: arithmetic, as C's
        tl.store(out_ptr + at + g, char.to(tl.uint8), mask=written)
        if ESCAPE:
            tl.store(out_ptr + escaped, char.to(tl.uint8), mask=written)
            doubled = written & (char == 92)
            tl.store(out_ptr + escaped + 1, char.to(tl.uint8), mask=doubled)
            escaped += 1 + doubled.to(tl.int64)
