"""Small host tensors to a device without stopping the host: why every index, size or table goes through here.

A copy to a CUDA device from ordinary (pageable) memory returns only once the device has run everything queued
before it, so a few bytes sent mid-batch make the calling thread wait for the whole forward. From page-locked
memory the copy is queued behind that work like a kernel and the host goes on (torch's allocator keeps the
page-locked block until the copy has read it)."""

from __future__ import annotations

import torch


def to_device(host: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``host`` on ``device``, queued without waiting where the device is CUDA (a page-locked copy first)."""
    if device.type != "cuda":
        return host.to(device)
    return host.pin_memory().to(device, non_blocking=True)
