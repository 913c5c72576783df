"""The GPU RLE's Triton kernels: where each column-major run starts (read from the row-major masks, counted per
tile column, then written compacted in column-major order: no transposed copy of the masks, no pixel-sized flags
to compact afterwards), and the compressed strings' values and
characters (each value's at once, bare and as JSON writes them, where the torch path makes a dozen passes over
every value and character).

Import this module only through :func:`preprocgate.functional.rle.load_kernel`, which sets
``TRITON_INTERPRET=1`` first on machines without a GPU (Triton reads it when the kernel is decorated).
"""

import triton
import triton.language as tl


@triton.jit
def _starts(mask, h, w, BY: tl.constexpr, BX: tl.constexpr):
    """This program's BY × BX tile of a mask (uint8 0/1, ``h`` × ``w``, row-major): how many runs start at each
    pixel, its row and column indices. A run of zeros starts at the mask's first pixel, and one wherever a pixel
    differs from the one before it in column-major order (the one above, or at the top of a column the last of the
    column to its left; a 0 imagined before the first pixel): 2 at a first pixel that is set (its run of zeros is
    empty). The tile one row above is read mostly from cache."""
    y = tl.program_id(0) * BY + tl.arange(0, BY)[:, None]
    x = tl.program_id(1) * BX + tl.arange(0, BX)[None, :]
    inside = (y < h) & (x < w)
    pixel = tl.load(mask + y * w + x, mask=inside, other=0)
    top = y == 0
    before_y = tl.where(top, h - 1, y - 1)
    before_x = tl.where(top, x - 1, x)
    before = tl.load(mask + before_y * w + before_x, mask=inside & (before_x >= 0), other=0)
    return (top & (x == 0)).to(tl.int32) + (pixel != before).to(tl.int32), y, x


@triton.jit
def run_counts_kernel(mask_ptr, counts_ptr, h, w, tiles_y, BY: tl.constexpr, BX: tl.constexpr):
    """How many runs start in each column of each tile of mask ``program_id(2)``: ``counts[k, x, tile row]``,
    whose running sum in that order is where each column's runs go in column-major order."""
    k = tl.program_id(2).to(tl.int64)
    starts, _, _ = _starts(mask_ptr + k * h * w, h, w, BY, BX)
    column = tl.program_id(1) * BX + tl.arange(0, BX)
    tl.store(counts_ptr + (k * w + column) * tiles_y + tl.program_id(0), tl.sum(starts, axis=0), mask=column < w)


@triton.jit
def run_positions_kernel(mask_ptr, offsets_ptr, out_ptr, pixel_base, h, w, tiles_y, BY: tl.constexpr, BX: tl.constexpr):
    """Where each run of mask ``program_id(2)`` starts (its column-major pixel index, the masks laid end to end from
    ``pixel_base``), written from ``offsets[k, x, tile row]`` (:func:`run_counts_kernel`'s running sum, less each
    count) on: the compacted run starts without a pixel-sized flag array or a stream compaction of it."""
    k = tl.program_id(2).to(tl.int64)
    starts, y, x = _starts(mask_ptr + k * h * w, h, w, BY, BX)
    column = tl.program_id(1) * BX + tl.arange(0, BX)
    offset = tl.load(offsets_ptr + (k * w + column) * tiles_y + tl.program_id(0), mask=column < w, other=0)
    at = offset[None, :] + (tl.cumsum(starts, axis=0) - starts)
    position = pixel_base + k * h * w + x * h + y
    tl.store(out_ptr + at, position, mask=starts > 0)
    tl.store(out_ptr + at + 1, position, mask=starts > 1)  # a set first pixel: its empty run of zeros, then ones


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
