"""Detections ↔ COCO result records (masks as compressed RLE), the format pycocotools evaluates.

:class:`Detections` lives here, below the model adapters that produce it, so that encoding needs no model code."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class RunStarts:
    """Where the runs of bool K×H×W masks start, in COCO's column-major order: all an RLE encoder needs.

    Found where the masks are, so that from a GPU only a few thousand positions reach the host instead of
    K×H×W bytes (100 masks at 640×480 are 30 MB).
    """

    count: int
    height: int
    width: int
    which: np.ndarray  # mask index of each run start after the first pixel, ascending
    starts: np.ndarray  # column-major position of each such start, ascending within a mask
    first_set: np.ndarray  # bool per mask: whether its first pixel is set (then its first run of zeros is empty)

    @classmethod
    def of(cls, masks: torch.Tensor) -> RunStarts:
        k, h, w = masks.shape
        flat = masks.transpose(1, 2).reshape(k, h * w)
        which, where = (flat[:, 1:] != flat[:, :-1]).nonzero(as_tuple=True)
        return cls(k, h, w, which.cpu().numpy(), (where + 1).cpu().numpy(), flat[:, 0].cpu().numpy())

    def __len__(self) -> int:
        return self.count

    def lengths(self) -> list[np.ndarray]:
        """COCO's uncompressed RLE counts per mask, alternating runs of zeros and ones, zeros first.

        Vectorised over all masks and linear in the number of runs (a random-weight model's masks have millions:
        a sort here cost 40 ms an image, more than the network): ``which``/``starts`` come sorted by mask, then
        position, so each mask's boundaries — 0, [0 again if its first pixel is set], its run starts, H·W — are
        placed by index arithmetic, and its counts are the differences between consecutive boundaries.
        """
        k, end = self.count, self.height * self.width
        if k == 0:
            return []
        runs = np.bincount(self.which, minlength=k)
        lead = 1 + self.first_set.astype(np.int64)  # boundaries before the first run start: 0, or 0 and 0
        per_mask = lead + runs + 1
        first = np.cumsum(per_mask) - per_mask  # index of each mask's first boundary
        position = np.zeros(int(per_mask.sum()), np.int64)
        rank = np.arange(len(self.starts)) - np.repeat(np.cumsum(runs) - runs, runs)
        position[np.repeat(first + lead, runs) + rank] = self.starts
        position[first + per_mask - 1] = end
        counts = np.diff(position)
        counts = np.delete(counts, first[1:] - 1).astype(np.uint32)  # drop the step from one mask to the next
        return np.split(counts, np.cumsum(per_mask - 1)[:-1])


@dataclass
class Detections:
    """One image's detections; boxes, scores and labels on the host.

    ``masks`` is bool K×H×W at original size, or None. It may stay a tensor on the model's device: encoding it
    to RLE there moves a few thousand run boundaries to the host instead of K×H×W bytes (the dump stage may
    replace it by those, a :class:`RunStarts`).
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | torch.Tensor | RunStarts | None = None

    def __len__(self) -> int:
        return len(self.scores)


def encode_masks(masks: np.ndarray | torch.Tensor | RunStarts) -> list[dict]:
    """Bool K×H×W masks (host array, tensor on any device, or their :class:`RunStarts`) → compressed RLEs with
    ``counts`` as str (JSON-ready).

    Every path gives pycocotools' own strings: from run starts the counts are compressed by ``frPyObjects``; on
    the host pycocotools' ``encode`` is the faster way.
    """
    from pycocotools import mask as mask_utils

    if len(masks) == 0:
        return []
    if isinstance(masks, torch.Tensor) and masks.device.type != "cpu":
        masks = RunStarts.of(masks)
    if isinstance(masks, RunStarts):
        h, w = masks.height, masks.width
        rles = mask_utils.frPyObjects([{"size": [h, w], "counts": c} for c in masks.lengths()], h, w)
    else:
        masks = masks.numpy() if isinstance(masks, torch.Tensor) else masks
        rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    return [{"size": [int(s) for s in r["size"]], "counts": r["counts"].decode("ascii")} for r in rles]


def portable(det: Detections) -> Detections:
    """The detections with masks on an accelerator replaced by their :class:`RunStarts`: host-only and small,
    ready for the writer thread, and the device memory of the masks freed at once."""
    if isinstance(det.masks, torch.Tensor) and det.masks.device.type != "cpu":
        return dataclasses.replace(det, masks=RunStarts.of(det.masks))
    return det


def to_results(image_id: int, det: Detections) -> list[dict]:
    """One COCO result per detection: bbox xywh rounded to 0.01 px, score to 1e-6 (stable JSON digests)."""
    rles = encode_masks(det.masks) if det.masks is not None else [None] * len(det)
    out = []
    for box, score, label, rle in zip(det.boxes, det.scores, det.labels, rles, strict=True):
        x0, y0, x1, y1 = (float(v) for v in box)
        record = {
            "image_id": int(image_id),
            "category_id": int(label),
            "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
            "score": round(float(score), 6),
        }
        if rle is not None:
            record["segmentation"] = rle
        out.append(record)
    return out
