"""The GPU RLE's Triton kernel: where each column-major run starts (read from the row-major masks and written in
column-major order, without a transposed copy of the masks first).

Import this module only through :func:`preprocgate.functional.rle.load_kernel`, which sets
``TRITON_INTERPRET=1`` first on machines without a GPU (Triton reads it when the kernel is decorated).
"""

import triton
import triton.language as tl


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
