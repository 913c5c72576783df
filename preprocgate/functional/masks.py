"""Masks a model hands over before drawing them: low-resolution logits and the size they are drawn at.

Why: a segmentation head's masks are logits at a fraction of the photo's size (RF-DETR seg-nano: 78×78), drawn
at the photo's size by ``F.interpolate(mode="bilinear") > 0``. A dump only needs their run-length encoding: the
GPU RLE computes each pixel from the logits as it reads it (:func:`preprocgate.functional.rle.run_starts`), so
that the drawn masks (800 photos' worth a batch of 8, written once as float32 and once as bool) never exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

MASK_ELEMENTS = 1 << 26
"""The most mask pixels drawn in one call: 256 MB of float32 logits at the output size."""


@dataclass(frozen=True, eq=False)  # tensors: compared by what they draw, not as fields
class UpsampledMasks:
    """``F.interpolate(logits[:, None], (height, width), mode="bilinear", align_corners=False)[:, 0] > 0``, not yet
    computed: ``logits`` is K×h×w float32, contiguous."""

    logits: torch.Tensor
    height: int
    width: int

    def __len__(self) -> int:
        return len(self.logits)

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.logits), self.height, self.width

    @property
    def device(self) -> torch.device:
        return self.logits.device

    @property
    def same_size(self) -> bool:
        """Drawn at the logits' own size: torch copies them then (no blend), so each mask is ``logits > 0``."""
        return tuple(self.logits.shape[1:]) == (self.height, self.width)

    def drawn(self) -> torch.Tensor:
        """The bool K×H×W masks, as the model's own postprocess draws them: every output pixel is computed alone,
        so they are drawn in as few calls as fit :data:`MASK_ELEMENTS` (rfdetr draws 32 at a time, then
        concatenates)."""
        size = (self.height, self.width)
        step = max(1, MASK_ELEMENTS // max(1, self.height * self.width))
        parts = [
            torch.nn.functional.interpolate(self.logits[a : a + step, None], size, mode="bilinear", align_corners=False)
            for a in range(0, len(self), step)
        ]
        if not parts:
            return torch.zeros(self.shape, dtype=torch.bool, device=self.device)
        return (parts[0] if len(parts) == 1 else torch.cat(parts))[:, 0] > 0


def scales(masks: UpsampledMasks) -> tuple[float, float]:
    """The source step per output pixel, rows then columns, as torch's CUDA kernel computes it without given
    scales: ``(float)in / out``, a float32 division (``area_pixel_compute_scale``)."""
    h, w = masks.logits.shape[1:]
    return float(np.float32(h) / np.float32(masks.height)), float(np.float32(w) / np.float32(masks.width))
