"""Detections ↔ COCO result records (masks as compressed RLE), the format pycocotools evaluates.

:class:`Detections` lives here, below the model adapters that produce it, so that encoding needs no model code."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from preprocgate.functional import rle


@dataclass(frozen=True)
class EncodedMasks:
    """Masks already compressed to COCO RLE strings where they were found (:mod:`preprocgate.functional.rle`):
    what a GPU's masks become before they reach the host, a few bytes per run instead of K×H×W bytes.

    ``json``: each string as JSON writes it between its quotes, where the encoder made that beside it
    (:func:`~preprocgate.functional.rle.encode_many_json`), for the part file's text
    (:func:`preprocgate.hashing.results_json`'s ``escaped``)."""

    height: int
    width: int
    counts: list[str]
    json: list[bytes] | None = None

    @classmethod
    def of(cls, masks: torch.Tensor) -> EncodedMasks:
        return cls(int(masks.shape[1]), int(masks.shape[2]), rle.encode(masks))

    def __len__(self) -> int:
        return len(self.counts)


@dataclass
class Detections:
    """One image's detections; boxes, scores and labels on the host.

    ``masks`` is bool K×H×W at original size, or None. It may stay a tensor on the model's device: encoding it
    to RLE there moves the compressed strings to the host instead of K×H×W bytes (the dump stage replaces it by
    those, an :class:`EncodedMasks`).
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | torch.Tensor | EncodedMasks | None = None

    def __len__(self) -> int:
        return len(self.scores)


def encode_masks(masks: np.ndarray | torch.Tensor | EncodedMasks) -> list[dict]:
    """Bool K×H×W masks (host array, tensor on any device, or already :class:`EncodedMasks`) → compressed RLEs
    with ``counts`` as str (JSON-ready).

    Every path gives pycocotools' own strings: on an accelerator :mod:`preprocgate.functional.rle` computes them
    there; on the host pycocotools' ``encode`` is the faster way.
    """
    if len(masks) == 0:
        return []
    if isinstance(masks, torch.Tensor) and masks.device.type != "cpu":
        masks = EncodedMasks.of(masks)
    if isinstance(masks, EncodedMasks):
        return [{"size": [masks.height, masks.width], "counts": c} for c in masks.counts]
    from pycocotools import mask as mask_utils

    masks = masks.numpy() if isinstance(masks, torch.Tensor) else masks
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    return [{"size": [int(s) for s in r["size"]], "counts": r["counts"].decode("ascii")} for r in rles]


def portable(detections: Sequence[Detections]) -> list[Detections]:
    """The detections with masks on an accelerator replaced by their :class:`EncodedMasks`: host-only and small,
    ready for the writer thread, and the device memory of the masks freed at once. A batch's masks are encoded
    together: per image, the encoder's handful of host synchronisations cost more than the network (RF-DETR,
    100 masks an image, benchmarks/RESULTS.md)."""
    out = list(detections)
    on_device = [i for i, d in enumerate(out) if isinstance(d.masks, torch.Tensor) and d.masks.device.type != "cpu"]
    if on_device:
        tensors = [out[i].masks for i in on_device]
        for i, masks, (counts, texts) in zip(on_device, tensors, rle.encode_many_json(tensors), strict=True):
            encoded = EncodedMasks(int(masks.shape[1]), int(masks.shape[2]), counts, texts)
            out[i] = dataclasses.replace(out[i], masks=encoded)
    return out


def to_results(image_id: int, det: Detections) -> list[dict]:
    """One COCO result per detection: bbox xywh rounded to 0.01 px, score to 1e-6 (stable JSON digests)."""
    rles = encode_masks(det.masks) if det.masks is not None else [None] * len(det)
    out = []
    image_id = int(image_id)
    # tolist(): Python floats and ints in one call, the values float() gives one numpy scalar at a time
    columns = (np.asarray(det.boxes).tolist(), np.asarray(det.scores).tolist(), np.asarray(det.labels).tolist())
    for (x0, y0, x1, y1), score, label, encoded in zip(*columns, rles, strict=True):
        record = {
            "image_id": image_id,
            "category_id": int(label),
            "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
            "score": round(score, 6),
        }
        if encoded is not None:
            record["segmentation"] = encoded
        out.append(record)
    return out
