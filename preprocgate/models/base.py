"""The model-adapter contract: a preprocessed batch in, detections at original image size out.

An adapter receives what a variant produced (float32 N×3×H×W on the run's device) together with each image's
:class:`~preprocgate.geometry.Geometry` (where the image's content sits on the network input, and how to map
back), and returns one :class:`Detections` per image: boxes xyxy in original-image pixels, scores, dataset
category ids, and optionally boolean instance masks at original size. Everything model-specific (output layout,
label mapping, thresholds) stays inside the adapter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from preprocgate.functional.coco import Detections
from preprocgate.geometry import Geometry
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
    def __call__(self, batch: torch.Tensor, geometries: Sequence[Geometry]) -> list[Detections]:
        """``batch``: float32 N×3×H×W from a variant; ``geometries``: each image's placement on it (the same plan
        the variant drew the batch with). One Detections per image, in source pixels."""

    def launch(self, batch: torch.Tensor, geometries: Sequence[Geometry]) -> Callable[[], list[Detections]]:
        """:meth:`__call__` in two halves: this one queues the batch's device work, the call it returns waits for
        what the detections need on the host and makes them. Why: the local executor's ``lookahead`` queues the
        next batch (its preprocessing and forward) before it waits for this one, so that the GPU runs a forward
        while the host makes the last batch's detections. An adapter whose call waits for its device early
        overrides this; the default does the whole call now, so the executor's order changes nothing for it."""
        detections = self(batch, geometries)
        return lambda: detections


def map_labels(labels: np.ndarray | torch.Tensor, label_map: dict[int, int]) -> np.ndarray:
    """Class indices → the dataset's category ids (``label_map``; unmapped ones kept), int64, without a Python
    step per detection: an adapter's inferring thread maps 800 labels a batch of RF-DETR's."""
    values = np.asarray(labels).astype(np.int64)
    if not label_map:
        return values
    keys = np.array(sorted(label_map), dtype=np.int64)
    targets = np.array([label_map[k] for k in keys.tolist()], dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
    return np.where(keys[at] == values, targets[at], values)


def rescale(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    labels: np.ndarray,
    masks: torch.Tensor | None,
    geometry: Geometry,
    mask_threshold: float = 0.5,
) -> Detections:
    """Map detections from the network's input pixels (the canvas) back to the source image.

    Boxes go through :meth:`Geometry.boxes_to_source` (offset removed, multiplied by ``inverse``, clipped).
    ``masks`` (K×h×w or K×1×h×w) may be at any resolution proportional to the canvas (the canvas itself, or a
    network's coarser mask grid). The content region is cropped from them (padding never reaches the source),
    resized bilinearly to the source size and thresholded:

    - float masks are probabilities: resized by ``F.interpolate`` on their device, then ``> mask_threshold``, as
      torchvision and RF-DETR do. When the content's edges fall between mask pixels the masks are first resized to
      the canvas, where every edge is a whole pixel (rounding the crop would shift them by up to half a pixel);
    - bool masks are already decided at their resolution (Ultralytics thresholds on the canvas): resized as uint8
      0/1 by ``cv2.resize`` INTER_LINEAR on the host, whose rounding keeps a pixel where the interpolated value is
      ≥ 0.5, exactly Ultralytics' ``scale_image``; ``mask_threshold`` does not apply.
    """
    out_boxes = geometry.boxes_to_source(boxes.float())
    out_masks = None
    if masks is not None and masks.dtype == torch.bool:
        out_masks = _binary_to_source(masks.reshape(len(masks), *masks.shape[-2:]), geometry)
    elif masks is not None:
        out_masks = _masks_to_source(masks, geometry) > mask_threshold
    return Detections(
        boxes=out_boxes.cpu().numpy().astype(np.float32),  # type: ignore[union-attr]
        scores=scores.float().cpu().numpy(),
        labels=np.asarray(labels, dtype=np.int64),
        masks=out_masks,
    )


def _masks_to_source(masks: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """Probabilities K×h×w (or K×1×h×w) proportional to the canvas → float K×H×W at the source size."""
    source = geometry.source
    m = masks.float().reshape(len(masks), 1, *masks.shape[-2:])
    if not len(m):
        return m.new_zeros((0, *source))
    if not geometry.is_stretch:
        region = _content_region(m.shape[-2:], geometry)
        if region is None:
            m = F.interpolate(m, size=geometry.canvas, mode="bilinear", align_corners=False)
            region = _content_region(geometry.canvas, geometry)
        (top, bottom), (left, right) = region  # type: ignore[misc]
        m = m[..., top:bottom, left:right]
    return F.interpolate(m, size=source, mode="bilinear", align_corners=False)[:, 0]


_CV2_CHANNELS = 128  # the most channels OpenCV's Python binding takes in one image


def _binary_to_source(masks: torch.Tensor, geometry: Geometry) -> np.ndarray:
    """Bool K×h×w proportional to the canvas → bool K×H×W at the source size (a K-last array seen as K×H×W).

    cv2 resizes up to 128 channels in one call, so K masks take ⌈K / 128⌉ calls, whatever K.
    """
    import cv2

    h, w = geometry.source
    if not len(masks):
        return np.zeros((0, h, w), dtype=bool)
    region = _content_region(masks.shape[-2:], geometry)
    if region is None:
        raise ValueError(f"binary masks of {tuple(masks.shape[-2:])} do not divide the canvas {geometry.canvas}")
    (top, bottom), (left, right) = region
    planes = masks[:, top:bottom, left:right].permute(1, 2, 0).to(torch.uint8).cpu().numpy()  # K last, for cv2
    out = np.empty((h, w, len(masks)), dtype=np.uint8)
    for lo in range(0, len(masks), _CV2_CHANNELS):
        part = np.ascontiguousarray(planes[..., lo : lo + _CV2_CHANNELS])
        out[..., lo : lo + _CV2_CHANNELS] = cv2.resize(part, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
    return out.view(bool).transpose(2, 0, 1)


def _content_region(shape: Sequence[int], geometry: Geometry) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Row and column bounds of the content at a mask resolution ``shape``; None where an edge is fractional."""
    bounds = []
    for n, canvas, offset, content in zip(shape, geometry.canvas, geometry.offset, geometry.content, strict=True):
        lo, hi = offset * n / canvas, (offset + content) * n / canvas
        if lo != int(lo) or hi != int(hi):
            return None
        bounds.append((int(lo), int(hi)))
    return bounds[0], bounds[1]
