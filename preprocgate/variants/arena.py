"""Decoded images kept back to back in host memory: why a dump's upload needs no copy on the host.

A variant called on a list of images must hand the device one N×H×W×3 block per shape group. When each image is
an array of its own, that block is a copy on the host (:class:`~preprocgate.variants.staging.Staging`), made again
by every variant, and on a 2–16 core host it takes longer than PCIe needs to move the bytes (benchmarks/RESULTS.md,
issue 13 item 5). The dump stage decodes each image once for every variant and knows the batches it will infer,
so it places the images of each batch's shape group one after another in an arena: the group is then already
one array (:func:`joined`), and on CUDA it lives in page-locked memory, so the upload is one DMA that does not
hold the host.

The arena's images are read-only and never rewritten: every variant of a run reads the same pixels, and a
variant that wrote into its batch in place would change them for the next one (numpy refuses the write).
Memory comes in slabs, page-locked up to :data:`PINNED_SHARE` of the host's memory and ordinary beyond (page-locked
memory cannot be swapped out; a dataset larger than that still runs, its later images uploaded from pageable
memory).
A slab is freed when its arena and the last of its images are; torch's page-locked allocator keeps freed blocks
for the process's later uploads rather than returning them to the system (torch has no public call to empty it).
"""

from __future__ import annotations

import bisect
import functools
import math
import os
import threading
import weakref
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

SLAB_BYTES = 64 << 20  # a power of two: torch's page-locked allocator rounds every block up to one
PINNED_SHARE = 0.25  # of physical memory, at most, page-locked by one arena

# every live slab, for the lookups: (start, end) sorted, and by start the slab's tensor, whether it is page-locked
# and its numpy view, weakly. An arena's arrays are views of that numpy array, so it lives while the arena or any
# of its images does; when it dies, its entry goes, and with the entry the tensor (torch's page-locked allocator
# then keeps the memory until the copies out of it have ended). Replaced, never mutated: read without the lock.
_SPANS: list[tuple[int, int]] = []
_SLABS: dict[int, tuple[torch.Tensor, bool, weakref.ref[np.ndarray]]] = {}
T = TypeVar("T", bound=Hashable)
_REGISTRY = threading.RLock()  # re-entered where a collection inside the lock runs a forget


@dataclass(frozen=True)
class Slot:
    """Where one image goes: a slab and a byte offset, reserved before the image is decoded."""

    slab: int
    offset: int
    shape: tuple[int, ...]


class ImageArena:
    """uint8 images in slabs of host memory, page-locked where ``pinned`` (a CUDA run) up to ``pinned_bytes``.

    :meth:`reserve` places a group of same-shape images back to back (in one slab) before they are decoded;
    :meth:`array` gives a slot's array to decode into, allocating its slab on first use (decoding threads call it
    concurrently). Reserving is the caller's one thread; reading and looking up are free-threaded."""

    def __init__(self, pinned: bool, slab_bytes: int = SLAB_BYTES, pinned_bytes: int | None = None) -> None:
        self.pinned = pinned
        self.slab_bytes = slab_bytes
        self.pinned_bytes = physical_memory() * PINNED_SHARE if pinned_bytes is None else pinned_bytes
        self._sizes: list[int] = []  # per slab, reserved up front; the memory itself comes with the first image
        self._used = 0  # bytes reserved in the last slab
        self._pinned_total = 0
        self._slabs: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def reserve(self, shape: Sequence[int], count: int) -> list[Slot]:
        """``count`` slots of ``shape``, back to back in one slab (a new one where the last lacks room; a group
        larger than a slab gets a slab of its size)."""
        shape = tuple(shape)
        size = int(np.prod(shape))
        need = size * count
        if not self._sizes or self._used + need > self._sizes[-1]:
            self._sizes.append(max(self.slab_bytes, need))
            self._used = 0
        slab, start = len(self._sizes) - 1, self._used
        self._used += need
        return [Slot(slab, start + k * size, shape) for k in range(count)]

    def array(self, slot: Slot) -> np.ndarray:
        """The slot's image array (writable: the decoder fills it once; :meth:`seal` makes it read-only)."""
        host = self._slab(slot.slab)
        size = int(np.prod(slot.shape))
        return host[slot.offset : slot.offset + size].reshape(slot.shape)

    def reserve_groups(self, groups: Iterable[Sequence[T]], shape_of: Callable[[T], tuple[int, ...]]) -> dict[T, Slot]:
        """A slot for every item, each group's back to back (:meth:`reserve`); empty groups are skipped."""
        slots: dict[T, Slot] = {}
        for group in groups:
            if group:
                slots.update(zip(group, self.reserve(shape_of(group[0]), len(group)), strict=True))
        return slots

    def fill(self, slot: Slot, image: np.ndarray) -> np.ndarray:
        """``image`` copied to its slot, read-only; an image of another shape than reserved stays where it is."""
        if image.shape != slot.shape:
            return image
        target = self.array(slot)
        np.copyto(target, image)
        return self.seal(target)

    def hold(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Read-only copies of same-shape ``images``, back to back: from now on one array without a copy."""
        slots = self.reserve(images[0].shape, len(images))
        return [self.fill(slot, image) for image, slot in zip(images, slots, strict=True)]

    def release(self, below: float) -> None:
        """Forgets the slabs before slab ``below``: each is freed once the last of its images is (a run that
        cannot keep every image streams them through an arena this way, :meth:`DumpStage.decoded_batches`)."""
        with self._lock:
            for index in [k for k in self._slabs if k < below]:
                del self._slabs[index]

    @staticmethod
    def seal(array: np.ndarray) -> np.ndarray:
        """``array``, read-only from now on: what every variant of the run reads."""
        array.flags.writeable = False
        return array

    def _slab(self, index: int) -> np.ndarray:
        found = self._slabs.get(index)
        if found is not None:
            return found
        with self._lock:
            if index not in self._slabs:
                nbytes = self._sizes[index]
                pin = self.pinned and self._pinned_total + nbytes <= self.pinned_bytes
                try:
                    tensor = torch.empty(nbytes, dtype=torch.uint8, pin_memory=pin)
                except RuntimeError:  # the driver refused to lock more memory: ordinary memory still works
                    tensor, pin = torch.empty(nbytes, dtype=torch.uint8), False
                self._pinned_total += nbytes if pin else 0
                self._slabs[index] = _register(tensor, pin)
            return self._slabs[index]


def _register(tensor: torch.Tensor, pinned: bool) -> np.ndarray:
    """The slab's numpy view, which the lookups know for as long as it lives."""
    global _SPANS
    host = tensor.numpy()
    start = tensor.data_ptr()

    def forget(_: object) -> None:
        global _SPANS
        with _REGISTRY:
            _SLABS.pop(start, None)
            _SPANS = [span for span in _SPANS if span[0] != start]

    with _REGISTRY:
        _SLABS[start] = (tensor, pinned, weakref.ref(host, forget))
        _SPANS = sorted([*_SPANS, (start, start + tensor.numel())])
    return host


def _locate(start: int, nbytes: int) -> tuple[int, torch.Tensor, bool, np.ndarray] | None:
    """The live slab holding bytes ``start`` to ``start + nbytes``: its offset there, tensor, page-locking and numpy
    view; None where no slab holds them all."""
    spans = _SPANS
    at = bisect.bisect_right(spans, (start, math.inf)) - 1
    if at < 0 or start + nbytes > spans[at][1]:
        return None
    found = _SLABS.get(spans[at][0])
    host = found[2]() if found is not None else None
    if found is None or host is None:
        return None
    return start - spans[at][0], found[0], found[1], host


def find(array: np.ndarray) -> tuple[torch.Tensor, bool] | None:
    """``array`` (C-contiguous, wholly inside one arena slab) as a view of that slab's tensor, so that torch's
    page-locked allocator knows the block is read, and whether the slab is page-locked; None for other memory."""
    if not array.flags.c_contiguous or array.size == 0 or not _SPANS:
        return None
    found = _locate(array.ctypes.data, array.nbytes)
    if found is None:
        return None
    offset, tensor, pinned, _ = found
    if array.dtype == np.uint8:  # the images: one call where a slice and two views take three (µs each)
        return tensor.as_strided(array.shape, array.strides, offset), pinned
    return tensor[offset : offset + array.nbytes].view(torch_dtype(array.dtype)).view(array.shape), pinned


def joined(arrays: Sequence[np.ndarray]) -> np.ndarray | None:
    """``np.stack(arrays)`` without a copy, where they are same-shape images lying back to back, in order, in
    one arena slab: a read-only view of the slab; None otherwise (the caller stacks them)."""
    if not _SPANS or not arrays:
        return None
    first = arrays[0]
    nbytes, start = first.nbytes, first.ctypes.data
    for k, a in enumerate(arrays):
        if a.shape != first.shape or a.dtype != first.dtype or not a.flags.c_contiguous:
            return None
        if a.ctypes.data != start + k * nbytes:
            return None
    found = _locate(start, nbytes * len(arrays))  # also the bounds check: a following slab may adjoin this one
    if found is None:
        return None
    offset, _, _, host = found
    array = host[offset : offset + nbytes * len(arrays)].view(first.dtype).reshape(len(arrays), *first.shape)
    array.flags.writeable = False
    return array


def spanned(arrays: Sequence[np.ndarray]) -> tuple[torch.Tensor, bool, list[int]] | None:
    """Arrays of any shapes lying in one arena slab with nothing between them (a ragged batch the dump stage
    reserved back to back), as one run of the slab's tensor, widened to 8-byte boundaries inside the slab, with
    whether it is page-locked and each array's byte offset in it; None otherwise (the caller copies them)."""
    if not _SPANS or not arrays or any(not a.flags.c_contiguous or a.dtype != np.uint8 for a in arrays):
        return None
    starts = [a.ctypes.data for a in arrays]
    lo = min(starts)
    hi = max(start + a.nbytes for start, a in zip(starts, arrays, strict=True))
    if hi - lo > sum(a.nbytes for a in arrays):  # gaps between them: other images' bytes would go up too
        return None
    found = _locate(lo, hi - lo)
    if found is None:
        return None
    offset, tensor, pinned, _ = found
    begin = offset - offset % 8
    end = min(-(-(offset + hi - lo) // 8) * 8, tensor.numel())
    return tensor[begin:end], pinned, [start - lo + offset - begin for start in starts]


def physical_memory() -> int:
    """The host's memory in bytes: what the page-locked share and the images a run keeps are fractions of."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a small host
        return 8 << 30


@functools.cache
def torch_dtype(dtype: np.dtype) -> torch.dtype:
    """torch's dtype for a numpy one."""
    return torch.from_numpy(np.empty(0, dtype)).dtype
