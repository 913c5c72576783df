"""The model-adapter contract: a preprocessed batch in, detections at original image size out.

An adapter receives what a variant produced (float32 N×3×H×W on the run's device) together with each image's
original (height, width), and returns one :class:`Detections` per image: boxes xyxy in original-image pixels,
scores, dataset category ids, and optionally boolean instance masks at original size. Everything
model-specific (output layout, label mapping, thresholds) stays inside the adapter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from preprocgate.functional.coco import Detections
from preprocgate.types import Size

__all__ = ["Detections", "ModelAdapter", "Size", "rescale"]


class ModelAdapter(ABC):
    """Runs one model. ``identity`` names everything that can change its outputs (for cache keys)."""

    version: ClassVar[str] = "1"

    def __init__(self, device: torch.device, precision: str = "fp32") -> None:
        self.device = device
        self.precision = precision

    @property
    @abstractmethod
    def identity(self) -> dict[str, str]:
        """Hashes and settings that determine outputs: model file hash, thresholds, label map."""

    @abstractmethod
    def __call__(self, batch: torch.Tensor, original_sizes: Sequence[Size]) -> list[Detections]:
        """``batch``: float32 N×3×H×W from a variant; one Detections per image."""


def rescale(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    labels: np.ndarray,
    masks: torch.Tensor | None,
    input_size: Size,
    original: Size,
    mask_threshold: float = 0.5,
) -> Detections:
    """Map detections from the network's input pixels to the original image (boxes scaled, masks resized).

    ``masks`` are per-detection probabilities (K×H×W or K×1×H×W) at input size; they are resized bilinearly to
    the original size and then thresholded, as torchvision and RF-DETR do.
    """
    (ih, iw), (oh, ow) = input_size, original
    scale = torch.tensor([ow / iw, oh / ih, ow / iw, oh / ih], dtype=torch.float32, device=boxes.device)
    out_boxes = boxes.float() * scale
    out_boxes[:, 0::2] = out_boxes[:, 0::2].clamp(0, ow)
    out_boxes[:, 1::2] = out_boxes[:, 1::2].clamp(0, oh)
    out_masks = None
    if masks is not None:
        m = masks.float().reshape(len(masks), 1, *masks.shape[-2:])
        if len(m):
            m = F.interpolate(m, size=original, mode="bilinear", align_corners=False)
        else:
            m = m.new_zeros((0, 1, oh, ow))
        out_masks = m[:, 0] > mask_threshold
    return Detections(
        boxes=out_boxes.cpu().numpy().astype(np.float32),
        scores=scores.float().cpu().numpy(),
        labels=np.asarray(labels, dtype=np.int64),
        masks=out_masks,
    )
