"""COCO's compressed RLE computed where the masks are, in torch: pycocotools' exact strings.

On a GPU, masks at original size are the dump's bulkiest data (100 masks at 640×480 are 30 MB an image, and a
random-weight model's noisy masks have millions of runs). Encoding them there sends only the compressed strings
to the host, a few bytes per run, and leaves the host no per-mask work. The arithmetic follows pycocotools'
``rleEncode`` and ``rleToString`` (maskApi.c) step for step, so the strings are byte-identical to
``pycocotools.mask.encode``; tests/test_rle.py checks that on edge cases and random masks.
"""

from __future__ import annotations

import torch

# ``rleToString`` writes each value in 5-bit groups, least significant first; a group with bit 0x20 set says that
# another follows. Counts are below 2³¹ and their second differences within ±2³¹: seven groups always suffice.
_GROUPS = 7


def run_lengths(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """COCO's uncompressed counts of bool K×H×W masks, concatenated, and how many belong to each mask.

    Column-major runs, alternating zeros and ones, zeros first (an empty first run when the first pixel is set).
    Linear in the number of runs: each mask's boundaries — 0, [0 again], its run starts, H·W — are placed by index
    arithmetic, as ``nonzero`` returns the run starts sorted by mask, then position.
    """
    k, h, w = masks.shape
    device = masks.device
    flat = masks.transpose(1, 2).reshape(k, h * w)
    which, where = (flat[:, 1:] != flat[:, :-1]).nonzero(as_tuple=True)
    runs = torch.bincount(which, minlength=k)
    lead = 1 + flat[:, 0].long()  # boundaries before the first run start
    per_mask = lead + runs + 1
    first = torch.cumsum(per_mask, 0) - per_mask
    position = torch.zeros(int(per_mask.sum()), dtype=torch.int64, device=device)
    rank = torch.arange(len(where), device=device) - torch.repeat_interleave(torch.cumsum(runs, 0) - runs, runs)
    position[torch.repeat_interleave(first + lead, runs) + rank] = where + 1
    position[first + per_mask - 1] = h * w
    steps = torch.diff(position)
    keep = torch.ones_like(steps, dtype=torch.bool)
    keep[first[1:] - 1] = False  # the step from one mask's last boundary to the next mask's first
    return steps[keep], per_mask - 1


def compress(counts: torch.Tensor, per_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``rleToString`` of every mask at once: the concatenated ASCII bytes and the length of each mask's string.

    Each count is replaced by its difference from the count two before it (from the fourth count of a mask on:
    pycocotools' ``i > 2``), then written in signed 5-bit groups, each + 48.
    """
    device = counts.device
    start = torch.repeat_interleave(torch.cumsum(per_mask, 0) - per_mask, per_mask)
    index = torch.arange(len(counts), device=device) - start
    x = counts.clone()
    later = index > 2
    x[later] -= counts[torch.nonzero(later).squeeze(1) - 2]
    groups, active = [], torch.ones_like(x, dtype=torch.bool)
    for _ in range(_GROUPS):
        c = x & 0x1F
        x = x >> 5  # arithmetic shift, as C's >> on a negative long
        more = torch.where((c & 0x10) != 0, x != -1, x != 0)
        groups.append(torch.stack([(c | (more.long() << 5)) + 48, active.long()]))
        active = active & more
    stacked = torch.stack(groups, dim=2)  # (char, written) × value × group
    written = stacked[1].bool()
    chars = stacked[0][written].to(torch.uint8)
    per_value = written.sum(1)
    lengths = torch.zeros(len(per_mask), dtype=torch.int64, device=device)
    lengths.index_add_(0, torch.repeat_interleave(torch.arange(len(per_mask), device=device), per_mask), per_value)
    return chars, lengths


def encode(masks: torch.Tensor) -> list[str]:
    """The ``counts`` strings of ``pycocotools.mask.encode`` for bool K×H×W masks on any device; one transfer."""
    if len(masks) == 0:
        return []
    chars, lengths = compress(*run_lengths(masks))
    data = chars.cpu().numpy().tobytes()
    ends = torch.cumsum(lengths, 0).tolist()
    return [data[a:b].decode("ascii") for a, b in zip([0, *ends[:-1]], ends, strict=True)]
