"""COCO's compressed RLE computed where the masks are, in torch: pycocotools' exact strings.

On a GPU, masks at original size are the dump's bulkiest data (100 masks at 640×480 are 30 MB an image, and a
random-weight model's noisy masks have millions of runs). Encoding them there sends only the compressed strings
to the host, a few bytes per run, and leaves the host no per-mask work. The arithmetic follows pycocotools'
``rleEncode`` and ``rleToString`` (maskApi.c) step for step, so the strings are byte-identical to
``pycocotools.mask.encode``; tests/test_rle.py checks that on edge cases and random masks.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from itertools import accumulate, pairwise
from types import ModuleType
from typing import NamedTuple

import numpy as np
import torch

from preprocgate.functional.masks import UpsampledMasks, scales
from preprocgate.functional.transfer import to_device
from preprocgate.triton_modules import import_kernels, interpreted

# ``rleToString`` writes each value in 5-bit groups, least significant first; a group with bit 0x20 set says that
# another follows. Counts are below 2³¹ and their second differences within ±2³¹: seven groups always suffice.
# A value takes n groups when it fits a signed 5n-bit integer and not a 5(n-1)-bit one.
_WIDTHS = [5 * n for n in range(1, 7)]
_TILE = (64, 64)  # run_starts_kernel's tile: rows × columns of a mask per program


def flatten(batches: Sequence[torch.Tensor]) -> torch.Tensor:
    """Bool K×H×W mask tensors (one per image, sizes may differ) → one column-major pixel vector, so that every
    image's masks are encoded with one set of kernels and transfers. Each image's masks are transposed straight
    into their place in the vector: one copy of the pixels, not two."""
    flat = torch.empty(sum(m.numel() for m in batches), dtype=torch.bool, device=batches[0].device)
    at = 0
    for m in batches:
        k, h, w = m.shape
        flat[at : at + m.numel()].view(k, w, h).copy_(m.transpose(1, 2))
        at += m.numel()
    return flat


def load_kernel(device: torch.device) -> ModuleType:
    """The RLE's kernels, in Triton's interpreter when running on the CPU."""
    return import_kernels("preprocgate.functional.rle_kernel", device)


def _use_kernel(device: torch.device, kernel: bool | None) -> bool:
    """``kernel`` where given, else: on CUDA, unless this process runs Triton in its interpreter (a CPU variant
    set ``TRITON_INTERPRET``), where the torch path gives the same result."""
    if kernel is None:
        return device.type == "cuda" and not interpreted()
    return kernel


Masks = torch.Tensor | UpsampledMasks  # bool K×H×W, or logits drawn as the RLE reads them


def run_lengths(batches: Sequence[Masks], kernel: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """COCO's uncompressed counts of bool K×H×W masks (one tensor per image, sizes may differ; or
    :class:`~preprocgate.functional.masks.UpsampledMasks`), all masks' concatenated, and how many belong to each
    mask.

    Column-major runs, alternating zeros and ones, zeros first (an empty first run when the first pixel is set).
    The counts are the steps from one run start (:func:`run_starts`) to the next (the last to the end of the
    pixels), and a mask whose first pixel is set gets its empty run of zeros in front. Work over the runs and the
    masks only: each mask's first run is found by a binary search of the run starts (its first pixel always
    starts one), not by counting runs per mask. Two host synchronisations (the number of starts, then of
    counts); the masks' sizes reach the device without one (a page-locked copy).

    Two other ways were timed on an H100 and dropped (benchmarks/RESULTS.md, 2026-12-06): both flags of a pixel
    (its mask's first, a turn) side by side, so that the counts are the steps between flags with no runs to
    insert, and a count of each tile column's starts followed by a kernel writing them compacted (no flags). Both
    were faster on noise and slower on smooth masks, what segmentation heads give: the first compacts twice the
    bytes, the second reads the pixels twice and scans each tile column."""
    device = batches[0].device
    offsets = mask_offsets(batches)
    change, lead = run_starts(batches, offsets, kernel)
    starts = change.nonzero().squeeze(1)
    steps = torch.diff(starts, append=starts.new_full((1,), len(change)))
    first_run = torch.searchsorted(starts, offsets)
    runs = torch.diff(first_run, append=first_run.new_full((1,), len(starts)))
    inserted = torch.cumsum(lead, 0)  # empty runs in front of this mask's runs, its own included
    counts = torch.zeros(len(starts) + int(inserted[-1]), dtype=torch.int64, device=device)
    shift = torch.repeat_interleave(inserted, runs, output_size=len(starts))
    counts[torch.arange(len(starts), device=device) + shift] = steps
    return counts, runs + lead


def mask_offsets(batches: Sequence[Masks]) -> torch.Tensor:
    """Where each mask's pixels begin in :func:`run_starts`' column-major vector, on the masks' device: the sizes
    reach it by a page-locked copy, without a host synchronisation."""
    sizes = torch.tensor([m.shape[1] * m.shape[2] for m in batches for _ in range(len(m))])
    sizes = to_device(sizes, batches[0].device)
    return torch.cumsum(sizes, 0) - sizes


def run_starts(
    batches: Sequence[Masks], offsets: torch.Tensor, kernel: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the column-major runs of bool K×H×W masks (one tensor per image) start, the masks laid end to end
    (each mask's first pixel at ``offsets``): a flag a pixel, set at a mask's first pixel or a pixel unlike the one
    before it; and each mask's first pixel (int64 1 where set: an empty run of zeros goes first). ``kernel``: one
    Triton kernel per image reads the masks where they are and writes the flags in column-major order (0.06 ms
    an image of 100 masks at 480×640 on an H100), where the torch path first copies the masks transposed (1-byte
    elements written 480 bytes apart) and then compares the copy with itself shifted (0.27 ms;
    benchmarks/RESULTS.md). :class:`~preprocgate.functional.masks.UpsampledMasks` are drawn from their logits by
    the kernel as it reads them (where :func:`upsampled_agrees`), else drawn first. Default: on CUDA
    (:func:`_use_kernel`)."""
    device = batches[0].device
    use = _use_kernel(device, kernel)
    upsample = use and any(isinstance(m, UpsampledMasks) for m in batches) and (kernel or upsampled_agrees(device))
    batches = [_drawn(m, upsample) for m in batches]
    if not use:
        flat = flatten(batches)
        change = torch.empty_like(flat)
        torch.ne(flat[1:], flat[:-1], out=change[1:])
        change[offsets] = True  # every mask's first pixel starts a run (offsets[0] is 0)
        return change, flat[offsets].long()
    k = load_kernel(device)
    change = torch.empty(sum(math.prod(m.shape) for m in batches), dtype=torch.uint8, device=device)
    lead = torch.empty(sum(len(m) for m in batches), dtype=torch.uint8, device=device)
    at = first = 0
    for m in batches:
        n, h, w = m.shape
        if n:
            grid = (-(-h // _TILE[0]), -(-w // _TILE[1]), n)
            if isinstance(m, UpsampledMasks):
                logits = m.logits.float().contiguous()
                grid = (-(-h // (_TILE[0] - 1)), *grid[1:])  # a tile's first row is the one before those it writes
                k.upsampled_run_starts_kernel[grid](
                    logits, change[at : at + n * h * w], lead[first : first + n], *logits.shape[1:], h, w,
                    *scales(m), BY=_TILE[0], BX=_TILE[1],
                )  # fmt: skip
            else:
                pixels = m.contiguous().view(torch.uint8)
                k.run_starts_kernel[grid](pixels, change[at : at + m.numel()], h, w, BY=_TILE[0], BX=_TILE[1])
                lead[first : first + n] = pixels[:, 0, 0]
        at += n * h * w
        first += n
    return change.view(torch.bool), lead.long()


def _drawn(masks: Masks, upsample: bool) -> torch.Tensor | UpsampledMasks:
    """``masks`` as :func:`run_starts` reads them: upsampled masks drawn unless the kernel draws them, or where
    they are drawn at their own size (``logits > 0``: torch copies there, and an infinite logit beside a pixel
    would make the kernel's blend NaN)."""
    if not isinstance(masks, UpsampledMasks):
        return masks
    if masks.same_size:
        return masks.logits > 0
    return masks if upsample else masks.drawn()


def compress(counts: torch.Tensor, per_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``rleToString`` of every mask at once, in torch: the concatenated ASCII bytes and each mask's string length.

    Each count is replaced by its difference from the count two before it (from the fourth count of a mask on:
    pycocotools' ``i > 2``), then written in signed 5-bit groups, each + 48. How many groups each value takes
    is worked out first (the smallest signed width that holds it), so that every character is computed once,
    at its place in the output: no value × group scratch, no selection of the written groups, and one host
    synchronisation (the number of characters). The path off CUDA; :func:`strings` takes a GPU's values through
    two Triton kernels instead.
    """
    device = counts.device
    # 32-bit: a count is below 2³¹ and so is a difference of two; half the memory traffic of int64 on the
    # millions of runs of a noisy batch
    x = counts.to(torch.int32)
    mask_end = torch.cumsum(per_mask, 0)  # one past each mask's last count
    later = _raw(len(x), per_mask, mask_end) == 0
    before = torch.zeros_like(x)
    before[2:] = x[:-2]
    x = torch.where(later, x - before, x)
    # groups: 1 + one for each signed width (5, 10, ... bits) the value does not fit; ~x for a negative value
    # has the same bit length as x has in two's complement
    magnitude = torch.where(x < 0, ~x, x)
    groups = torch.ones_like(x)
    for width in _WIDTHS:
        groups += magnitude >= 1 << (width - 1)
    ends = torch.cumsum(groups, 0)
    total = int(ends[-1])
    value = torch.repeat_interleave(torch.arange(len(x), device=device, dtype=torch.int32), groups, output_size=total)
    group = torch.arange(total, device=device, dtype=torch.int32) - (ends - groups).to(torch.int32)[value]
    more = (group < groups[value] - 1).to(torch.int32)  # bit 0x20: another group follows
    chars = ((((x[value] >> (5 * group)) & 0x1F) | (more << 5)) + 48).to(torch.uint8)  # >>: C's, arithmetic
    return chars, _lengths(ends, mask_end)


def _raw(n: int, per_mask: torch.Tensor, mask_end: torch.Tensor) -> torch.Tensor:
    """uint8 flags of the ``n`` counts written as they are, not as second differences: each mask's first three
    (a mask has at least one count)."""
    first = mask_end - per_mask
    raw = torch.zeros(n, dtype=torch.uint8, device=per_mask.device)
    for k in range(3):
        raw[torch.where(per_mask > k, first + k, first)] = 1
    return raw


def _lengths(ends: torch.Tensor, mask_end: torch.Tensor) -> torch.Tensor:
    """Each mask's number of characters, from the running sum of its values' widths."""
    chars_end = ends[mask_end - 1]
    return torch.diff(chars_end, prepend=chars_end.new_zeros(1))


def escape(chars: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`compress`'s strings as JSON writes each between its quotes, with the length of each: every
    backslash doubled, the one character of COCO's alphabet (48..111) that JSON escapes. Done where the strings
    are made (two scatters of the characters), so that the host's writer does not scan and copy megabytes of
    text an image holding the GIL to find and double them (``bytes.replace``; benchmarks/dump_overhead.py). One
    host synchronisation (the number of backslashes)."""
    # 32-bit positions, as compress's: a noisy batch has hundreds of millions of characters
    extra = (chars == 92).to(torch.int32)
    before = torch.cumsum(extra, 0, dtype=torch.int32)  # backslashes up to and including each character
    at = torch.arange(len(chars), device=chars.device, dtype=torch.int32) + before - extra  # each one's place
    out = torch.empty(len(chars) + int(before[-1]), dtype=torch.uint8, device=chars.device)
    out[at] = chars
    out[at + extra] = chars  # a backslash's second place; any other character is written again where it is
    through = before[torch.cumsum(lengths, 0) - 1]  # backslashes up to each string's end
    return out, lengths + torch.diff(through, prepend=through.new_zeros(1))


class Strings(NamedTuple):
    """Every mask's string laid end to end (``plain`` bytes), then, where asked, each as JSON writes it between its
    quotes: one tensor, so that one transfer brings both to the host."""

    data: torch.Tensor
    plain: int
    lengths: torch.Tensor
    escaped_lengths: torch.Tensor | None


_BLOCK = 1024  # values per program of the value and character kernels


def strings(counts: torch.Tensor, per_mask: torch.Tensor, *, escaped: bool, kernel: bool | None = None) -> Strings:
    """:func:`compress` (and, with ``escaped``, :func:`escape`) of :func:`run_lengths`'s counts.

    ``kernel`` (default: on CUDA where :func:`kernel_agrees`): two Triton kernels, the values and their widths,
    then every character at its place, bare and escaped, written straight into one buffer; between them the
    widths' running sums and one host synchronisation (the totals). The torch path makes about thirty passes over
    the values and characters and a concatenation (benchmarks/rle_steps.py). Same bytes either way."""
    device = counts.device
    if not (_use_kernel(device, kernel) and (kernel or kernel_agrees(device))):
        chars, lengths = compress(counts, per_mask)
        if not escaped:
            return Strings(chars, len(chars), lengths, None)
        text, text_lengths = escape(chars, lengths)
        return Strings(torch.cat([chars, text]), len(chars), lengths, text_lengths)
    k = load_kernel(device)
    n = len(counts)
    mask_end = torch.cumsum(per_mask, 0)
    values = torch.empty(n, dtype=torch.int32, device=device)
    widths, escaped_widths = torch.empty((2, n), dtype=torch.int32, device=device)
    grid = (-(-n // _BLOCK),)
    k.values_kernel[grid](counts, _raw(n, per_mask, mask_end), values, widths, escaped_widths, n, BLOCK=_BLOCK)
    ends = torch.cumsum(widths, 0)
    escaped_ends = torch.cumsum(escaped_widths, 0) if escaped else ends
    plain, text = torch.stack([ends[-1], escaped_ends[-1]]).tolist() if escaped else (int(ends[-1]), 0)
    data = torch.empty(plain + text, dtype=torch.uint8, device=device)
    k.chars_kernel[grid](
        values, widths, ends, escaped_widths, escaped_ends, data, plain, n, ESCAPE=escaped, BLOCK=_BLOCK
    )
    text_lengths = _lengths(escaped_ends, mask_end) if escaped else None
    return Strings(data, plain, _lengths(ends, mask_end), text_lengths)


@functools.cache
def kernel_agrees(device: torch.device) -> bool:
    """Whether the compiled value and character kernels write the torch path's bytes on ``device``, checked once
    a process on counts whose values take every number of groups of either sign and whose characters include
    backslashes. Why: a first character kernel was exact in Triton's interpreter and wrong compiled by one Triton
    release (benchmarks/RESULTS.md, 2026-12-06); a compiler's slip must cost speed, never a wrong string. A
    disagreement is said once as a warning and the torch path is taken."""
    generator = torch.Generator().manual_seed(0)
    per_mask = torch.tensor([1, 2, 3, 4, 5, 40, 200, 1000])
    magnitude = 2 ** torch.randint(0, 31, (int(per_mask.sum()),), generator=generator)
    counts = (torch.rand(magnitude.shape, generator=generator) * magnitude).long()
    counts[[0, 9, 11]] = 2**31 - 1  # alone in its mask; later a difference of 2³¹ − 1, and of −(2³¹ − 1)
    counts, per_mask = counts.to(device), per_mask.to(device)
    for escaped in (False, True):
        got = strings(counts, per_mask, escaped=escaped, kernel=True)
        expected = strings(counts, per_mask, escaped=escaped, kernel=False)
        same = got.plain == expected.plain and torch.equal(got.data, expected.data)
        same = same and torch.equal(got.lengths, expected.lengths)
        if escaped:
            same = same and torch.equal(got.escaped_lengths, expected.escaped_lengths)
        if not same:
            warnings.warn(
                f"the GPU RLE's Triton kernels write other strings than its torch path on {device} "
                f"(triton {_triton_version()}); the torch path is used",
                RuntimeWarning,
                stacklevel=2,
            )
            return False
    return True


@functools.cache
def upsampled_agrees(device: torch.device) -> bool:
    """Whether the compiled kernels that draw masks from their logits compute, bit for bit, the values torch's
    ``F.interpolate`` writes on ``device`` (and so the same masks, flags and first pixels), checked once a process
    on logits of either sign upscaled, downscaled and both, RF-DETR's 78×78 to a photo's size among them. Values,
    not only masks: a pixel flips only where the blend nearly cancels, which a check's few pixels rarely meet. As
    with :func:`kernel_agrees`: a compiler's slip, or torch drawing with other arithmetic, must cost speed, never
    a wrong mask; a disagreement is said once as a warning and the masks are drawn first. So must a Triton that
    cannot build the kernel (3.0 and 3.1 lack ``tl.gather``): the error's first line is the warning's reason."""
    try:
        if _draws_as_torch(device):
            return True
        reason = "draws other masks from their logits than torch"
    except Exception as exc:  # building or running the optional kernel failed: the masks are drawn, as without it
        reason = f"cannot draw masks from their logits ({type(exc).__name__}: {str(exc).strip().splitlines()[0]})"
    warnings.warn(
        f"the GPU RLE's kernel {reason} on {device} (triton {_triton_version()}, torch {torch.__version__}); "
        "the masks are drawn first",
        RuntimeWarning,
        stacklevel=2,
    )
    return False


def _draws_as_torch(device: torch.device) -> bool:
    """:func:`upsampled_agrees`' comparison, once: the run starts first, so that a kernel that cannot be built
    is named as such even where its values would differ too (on the GPU image's CPU build of torch 2.11, which
    draws other values than the CUDA arithmetic the kernel reproduces)."""
    generator = torch.Generator().manual_seed(0)
    batches = [
        UpsampledMasks(torch.randn(3, h, w, generator=generator).to(device), height, width)
        for (h, w), (height, width) in [((13, 11), (97, 64)), ((78, 78), (37, 300)), ((78, 78), (427, 640))]
    ]
    offsets = mask_offsets(batches)
    got = run_starts(batches, offsets, kernel=True)
    expected_starts = run_starts([m.drawn() for m in batches], offsets, kernel=True)
    if not all(torch.equal(a, b) for a, b in zip(got, expected_starts, strict=True)):
        return False
    k = load_kernel(device)
    for m in batches:
        values = torch.empty(m.shape, dtype=torch.float32, device=device)
        grid = (-(-m.height // _TILE[0]), -(-m.width // _TILE[1]), len(m))
        k.upsampled_values_kernel[grid](
            m.logits, values, *m.logits.shape[1:], m.height, m.width, *scales(m), BY=_TILE[0], BX=_TILE[1]
        )
        size = (m.height, m.width)
        expected = torch.nn.functional.interpolate(m.logits[:, None], size, mode="bilinear", align_corners=False)
        if not torch.equal(values.view(torch.int32), expected[:, 0].contiguous().view(torch.int32)):
            return False
    return True


def _triton_version() -> str:
    import triton

    return triton.__version__


def _to_host(chars: torch.Tensor) -> memoryview:
    """The characters on the host, by one DMA into page-locked memory (torch's cached pinned blocks) from a GPU."""
    host = chars
    if chars.is_cuda:
        host = torch.empty(chars.shape, dtype=torch.uint8, pin_memory=True)
        host.copy_(chars)  # synchronous: the strings are read next
    return memoryview(host.numpy())


def _spans(lengths: list[int], start: int = 0) -> list[tuple[int, int]]:
    """(begin, end) of each string, the strings laid end to end from ``start``."""
    return list(pairwise(accumulate(lengths, initial=start)))


def _per_image(items: list, batches: Sequence[torch.Tensor]) -> list[list]:
    return [items[a:b] for a, b in pairwise(np.cumsum([0, *(len(m) for m in batches)]).tolist())]


def encode_many(batches: Sequence[torch.Tensor]) -> list[list[str]]:
    """The ``counts`` strings of ``pycocotools.mask.encode`` for each bool K×H×W tensor (one per image, all on one
    device), computed there with one transfer to the host: a DMA into page-locked memory (torch's cached
    pinned blocks) from a GPU, and each string decoded straight from it, where a pageable copy, its staging
    and a ``bytes`` copy of the whole came before (megabytes a batch for a random-weight model's masks)."""
    return _per_image(_host_strings(batches, escaped=False)[0], batches)


def encode_many_json(batches: Sequence[torch.Tensor]) -> list[tuple[list[str], list[memoryview]]]:
    """Per image, :func:`encode_many`'s strings and each as :func:`escape` writes it for JSON (its bytes
    between the quotes): what the dump's writer puts in a part file as it is. The texts are views of the one
    host buffer the batch's characters arrived in, not copies: the part's text is joined from them once, so a
    ``bytes`` of each would only copy megabytes a batch more while holding the GIL (a view of it keeps that buffer
    alive until the part is written). Where they must cross to another process, copy them (``bytes(view)``)."""
    bare, texts = _host_strings(batches, escaped=True)
    return list(zip(_per_image(bare, batches), _per_image(texts, batches), strict=True))


def _host_strings(batches: Sequence[torch.Tensor], *, escaped: bool) -> tuple[list[str], list[memoryview]]:
    """Every mask's string on the host, and with ``escaped`` each as JSON writes it, a view of the buffer (else
    none): the buffer in one transfer, the lengths in another."""
    if sum(len(m) for m in batches) == 0:
        return [], []
    out = strings(*run_lengths(batches), escaped=escaped)
    data = _to_host(out.data)
    lengths = (torch.cat([out.lengths, out.escaped_lengths]) if escaped else out.lengths).tolist()
    bare = [str(data[a:b], "ascii") for a, b in _spans(lengths[: len(out.lengths)])]
    texts = [data[a:b] for a, b in _spans(lengths[len(out.lengths) :], out.plain)]
    return bare, texts


def encode(masks: torch.Tensor) -> list[str]:
    """:func:`encode_many` of one image's masks."""
    return encode_many([masks])[0]
