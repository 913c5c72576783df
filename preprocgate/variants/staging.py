"""Reusable host buffers for uploads: why a GPU variant called on host images costs about one copy, not three."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch


class Staging:
    """Host buffers that a batch is stacked into before it goes to ``device``, reused from call to call.

    On CUDA they are page-locked: a copy from pageable memory goes through the driver's bounce buffer and holds
    the host until it ends, one from page-locked memory is a single DMA that ``non_blocking`` leaves running.
    Page-locking costs far more than a copy, hence the reuse: each buffer grows to the largest batch it held and
    stays. ``slots`` buffers take turns so that the host fills one while the previous copy still reads another,
    and a buffer is rewritten only after the copy out of it has finished (an event recorded behind the copy).
    On other devices the buffers are ordinary memory and the upload is the array itself (what
    ``torch.from_numpy(a).to("cpu")`` gives), so that the CPU runs, and tests, the same reuse code.
    ``slots=0`` turns staging off: a fresh pageable array per batch, as before (benchmarks compare the two).
    """

    def __init__(self, device: torch.device, slots: int = 2) -> None:
        self.device = device
        self.pinned = device.type == "cuda"
        self._buffers: list[torch.Tensor | None] = [None] * slots
        self._events: list[torch.cuda.Event | None] = [None] * slots
        self._next = 0

    def empty(self, shape: Sequence[int], dtype: np.dtype | type) -> np.ndarray:
        """An uninitialised array in the next buffer, once the copy that last read that buffer has finished.

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
        nbytes = math.prod(shape) * dtype.itemsize
        buffer = self._buffers[slot]
        if buffer is None or buffer.numel() < nbytes:
            self._buffers[slot] = buffer = None  # free the smaller one before page-locking the larger
            buffer = torch.empty(nbytes, dtype=torch.uint8, pin_memory=self.pinned)
            self._buffers[slot] = buffer
        return buffer[:nbytes].numpy().view(dtype).reshape(shape)

    def stack(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """``np.stack(arrays)``, written into the next buffer."""
        first = arrays[0]
        return np.stack(arrays, out=self.empty((len(arrays), *first.shape), first.dtype))

    def upload(self, array: np.ndarray) -> torch.Tensor:
        """``array`` as a tensor on the device. From one of the buffers: without a bounce and without waiting
        (the tensor is ready on the current stream); any other array takes the pageable copy."""
        found = self._find(array)
        if found is None:
            return torch.from_numpy(array).to(self.device)
        slot, host = found
        if not self.pinned:
            return host.to(self.device)
        tensor = host.to(self.device, non_blocking=True)
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(self.device))
        self._events[slot] = event
        return tensor

    def _find(self, array: np.ndarray) -> tuple[int, torch.Tensor] | None:
        """The buffer holding all of ``array``'s bytes, contiguous, and ``array`` as a view of that buffer's
        tensor: not ``torch.from_numpy``, so that torch's pinned allocator knows the block is being read and
        keeps it until the copy ends, even if the buffer is replaced meanwhile."""
        if not array.flags.c_contiguous or array.size == 0:
            return None
        start = array.ctypes.data
        for slot, buffer in enumerate(self._buffers):
            if buffer is None:
                continue
            offset = start - buffer.data_ptr()
            if offset >= 0 and offset + array.nbytes <= buffer.numel() and offset % array.itemsize == 0:
                dtype = torch.from_numpy(np.empty(0, array.dtype)).dtype
                return slot, buffer[offset : offset + array.nbytes].view(dtype).view(array.shape)
        return None
