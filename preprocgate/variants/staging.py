"""Reusable host buffers for uploads: why a GPU variant called on host images costs about one copy, not three."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from preprocgate.variants import arena
from preprocgate.variants.arena import torch_dtype


class Staging:
    """Host buffers that a batch is stacked into before it goes to ``device``, reused from call to call.

    On CUDA they are page-locked: a copy from pageable memory goes through the driver's bounce buffer and holds
    the host until it ends, one from page-locked memory is a single DMA that ``non_blocking`` leaves running.
    Page-locking costs far more than a copy, hence the reuse: each buffer grows to the largest batch it held and
    stays. ``slots`` buffers take turns so that the host fills one while the previous copy still reads another,
    and a buffer is rewritten only after the copies out of it have finished (an event recorded behind them).
    On other devices the buffers are ordinary memory and the upload is the array itself (what
    ``torch.from_numpy(a).to("cpu")`` gives), so that the CPU runs, and tests, the same reuse code.
    ``slots=0`` turns staging off: a fresh pageable array per batch, as before (benchmarks compare the two).
    Images that already lie back to back in an :class:`~preprocgate.variants.arena.ImageArena` (the dump stage
    decodes into one) are not stacked at all: :meth:`stack` returns them as one array, which :meth:`upload` copies
    straight from the arena.

    The images of a list must be copied into one buffer on the host whatever happens, and one thread copies
    slower than PCIe moves the bytes: ``threads`` > 1 splits each copy of ``split_bytes`` or more over a thread
    pool (numpy copies without the GIL; below that, waking the threads costs more than it saves), and
    :meth:`stack` with ``prefetch`` starts the upload of each chunk of about ``chunk_bytes`` (whole images) as
    soon as it is written, so that copying and DMA overlap, for batches of ``prefetch_bytes`` or more.
    The defaults are the H200 machine's best (benchmarks/RESULTS.md, ``benchmarks/host_path_gpu.py``): 4 threads
    (8 were slower, 1 took 2.6–4.5× as long on 50–60 MB batches); prefetch from 16 MB (below, at 1 and 8 images of
    480×640, one upload after the stack was faster).
    One caller at a time, as the stages call a variant: two threads sharing one would share its buffers.
    """

    def __init__(
        self,
        device: torch.device,
        slots: int = 2,
        threads: int = 4,
        chunk_bytes: int = 4 << 20,
        split_bytes: int = 1 << 20,
        prefetch_bytes: int = 16 << 20,
    ) -> None:
        self.device = device
        self.pinned = device.type == "cuda"
        self.threads = threads
        self.chunk_bytes = chunk_bytes
        self.split_bytes = split_bytes
        self.prefetch_bytes = prefetch_bytes
        self._buffers: list[torch.Tensor | None] = [None] * slots
        self._events: list[torch.cuda.Event | None] = [None] * slots
        # per slot: the (address, shape) stacked there with prefetch, and its upload, already queued
        self._prefetched: list[tuple[int, tuple[int, ...], torch.Tensor] | None] = [None] * slots
        # per slot: the array :meth:`empty` handed out last, and the same bytes as a view of the buffer's tensor
        self._views: list[tuple[np.ndarray, torch.Tensor] | None] = [None] * slots
        self._pool: ThreadPoolExecutor | None = None
        self._next = 0

    def empty(self, shape: Sequence[int], dtype: np.dtype | type) -> np.ndarray:
        """An uninitialised array in the next buffer, once the copies that last read that buffer have finished.

        Valid until ``slots`` more calls: the caller fills it, then passes it (or a contiguous part) to
        :meth:`upload`."""
        dtype = np.dtype(dtype)
        if not self._buffers:
            return np.empty(shape, dtype)
        slot = self._next
        self._next = (slot + 1) % len(self._buffers)
        event = self._events[slot]
        if event is not None:
            event.synchronize()
            self._events[slot] = None
        self._prefetched[slot] = None
        shape = tuple(shape)
        view = self._views[slot]
        if view is not None and view[0].shape == shape and view[0].dtype == dtype:
            return view[0]  # the batch before had this shape: skip the slicing, a few µs of a small call
        nbytes = math.prod(shape) * dtype.itemsize
        buffer = self._buffers[slot]
        if buffer is None or buffer.numel() < nbytes:
            self._buffers[slot] = buffer = self._views[slot] = None  # free the smaller one before the larger
            buffer = torch.empty(nbytes, dtype=torch.uint8, pin_memory=self.pinned)
            self._buffers[slot] = buffer
        tensor = buffer[:nbytes].view(torch_dtype(dtype)).view(shape)
        self._views[slot] = (tensor.numpy(), tensor)
        return self._views[slot][0]

    def stack(self, arrays: Sequence[np.ndarray], prefetch: bool = False) -> np.ndarray:
        """``np.stack(arrays)``, written into the next buffer. ``prefetch``: also start its upload, chunk by
        chunk while the rest is copied; :meth:`upload` of the returned array then hands over that tensor, so
        the caller must not change the array in between. Images back to back in an arena come back as one
        read-only view of it, without a copy."""
        together = arena.joined(arrays) if self._buffers else None
        if together is not None:
            return together
        first = arrays[0]
        out = self.empty((len(arrays), *first.shape), first.dtype)
        found = self._find(out) if prefetch and self.pinned and out.nbytes >= self.prefetch_bytes else None
        if found is None:
            self._copy(arrays, out)
            return out
        slot, host = found
        tensor = torch.empty(host.shape, dtype=host.dtype, device=self.device)
        per_chunk = max(1, self.chunk_bytes // max(first.nbytes, 1))
        for lo in range(0, len(arrays), per_chunk):
            hi = min(lo + per_chunk, len(arrays))
            self._copy(arrays[lo:hi], out[lo:hi])
            tensor[lo:hi].copy_(host[lo:hi], non_blocking=True)
        self._record(slot)
        self._prefetched[slot] = (out.ctypes.data, out.shape, tensor)
        return out

    def pack(self, arrays: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[int]]:
        """Arrays of any shapes as one uint8 buffer on the device, and each one's byte offset in it: a ragged
        launch's source. Arrays lying in one arena slab without gaps go up as that span of the slab (widened to
        8-byte boundaries inside it), without a copy on the host; others are copied one after another into the
        next buffer (its size rounded up to 8 bytes) and go up from there."""
        spanned = arena.spanned(arrays) if self._buffers else None
        if spanned is not None:
            tensor, pinned, offsets = spanned
            return tensor.to(self.device, non_blocking=pinned and self.pinned), offsets
        offsets = np.cumsum([0, *(a.nbytes for a in arrays)]).tolist()
        host = self.empty((-(-offsets[-1] // 8) * 8,), np.uint8)
        flat = [a.reshape(-1).view(np.uint8) for a in arrays]
        self._copy(flat, [host[lo:hi] for lo, hi in itertools.pairwise(offsets)])
        return self.upload(host), offsets[:-1]

    def _copy(self, arrays: Sequence[np.ndarray], targets: Sequence[np.ndarray] | np.ndarray) -> None:
        """Each of ``arrays`` into its place among ``targets`` (a stacked array's rows, or any arrays), on the
        pool where it is worth it."""
        if self.threads <= 1 or sum(a.nbytes for a in arrays) < self.split_bytes:
            for source, target in zip(arrays, targets, strict=True):
                np.copyto(target, source)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="preprocgate-staging")
        # at least one piece per thread: bands of rows where there are fewer images than threads
        bands = -(-self.threads // len(arrays))
        pieces = [(i, rows) for i in range(len(arrays)) for rows in _bands(len(arrays[i]), bands)]
        for _ in self._pool.map(lambda p: np.copyto(targets[p[0]][p[1]], arrays[p[0]][p[1]]), pieces):
            pass

    def upload(self, array: np.ndarray) -> torch.Tensor:
        """``array`` as a tensor on the device. From one of the buffers: without a bounce and without waiting
        (the tensor is ready on the current stream); from an arena's page-locked memory likewise (the arena is
        never rewritten, and torch's allocator keeps the slab until the copy ends); any other array takes the
        pageable copy (of a copy, where it is read-only: torch warns about tensors over read-only memory)."""
        in_arena = arena.find(array) if not array.flags.writeable else None  # the arena's arrays are read-only
        if in_arena is not None:
            tensor, pinned = in_arena
            return tensor.to(self.device, non_blocking=pinned and self.pinned)
        found = self._find(array)
        if found is None:
            return torch.from_numpy(array if array.flags.writeable else array.copy()).to(self.device)
        slot, host = found
        if not self.pinned:
            return host.to(self.device)
        prefetched = self._prefetched[slot]
        if prefetched is not None and prefetched[:2] == (array.ctypes.data, array.shape):
            self._prefetched[slot] = None  # handed over once: a second upload is a tensor of its own
            return prefetched[2]
        tensor = host.to(self.device, non_blocking=True)
        self._record(slot)
        return tensor

    def _record(self, slot: int) -> None:
        """Mark the copies queued so far out of ``slot``'s buffer: :meth:`empty` waits for them."""
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(self.device))
        self._events[slot] = event

    def _find(self, array: np.ndarray) -> tuple[int, torch.Tensor] | None:
        """The buffer holding all of ``array``'s bytes, contiguous, and ``array`` as a view of that buffer's
        tensor: not ``torch.from_numpy``, so that torch's pinned allocator knows the block is being read and
        keeps it until the copy ends, even if the buffer is replaced meanwhile."""
        for slot, view in enumerate(self._views):
            if view is not None and view[0] is array:
                return slot, view[1]
        if not array.flags.c_contiguous or array.size == 0:
            return None
        start = array.ctypes.data
        for slot, buffer in enumerate(self._buffers):
            if buffer is None:
                continue
            offset = start - buffer.data_ptr()
            if offset >= 0 and offset + array.nbytes <= buffer.numel() and offset % array.itemsize == 0:
                return slot, buffer[offset : offset + array.nbytes].view(torch_dtype(array.dtype)).view(array.shape)
        return None


def _bands(rows: int, bands: int) -> list[slice]:
    step = max(1, -(-rows // bands))
    return [slice(lo, min(lo + step, rows)) for lo in range(0, rows, step)]
