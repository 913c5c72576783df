"""Detections ↔ COCO result records (masks as compressed RLE), the format pycocotools evaluates."""

from __future__ import annotations

import numpy as np
import torch

from preprocgate.models.base import Detections


def run_lengths(masks: torch.Tensor) -> list[np.ndarray]:
    """COCO's uncompressed RLE counts of bool K×H×W masks, found where the masks are.

    On a GPU this moves only the run boundaries to the host, not K×H×W bytes: 100 masks at 640×480 are 30 MB
    but a few thousand boundaries. Counts run column-major and start with a (possibly empty) run of zeros.
    """
    k, h, w = masks.shape
    flat = masks.transpose(1, 2).reshape(k, h * w)
    which, where = (flat[:, 1:] != flat[:, :-1]).nonzero(as_tuple=True)
    which, starts, first = which.cpu().numpy(), (where + 1).cpu().numpy(), flat[:, 0].cpu().numpy()
    end = np.array([h * w])
    counts = []
    for i, runs in enumerate(np.split(starts, np.searchsorted(which, np.arange(1, k)))):
        lengths = np.diff(np.concatenate(([0], runs, end))).astype(np.uint32)
        counts.append(np.concatenate(([0], lengths)).astype(np.uint32) if first[i] else lengths)
    return counts


def encode_masks(masks: np.ndarray | torch.Tensor) -> list[dict]:
    """Bool K×H×W (host array or tensor on any device) → compressed RLEs with ``counts`` as str (JSON-ready).

    Both paths give pycocotools' own strings: on an accelerator the run lengths are found there and compressed
    by ``frPyObjects``; on the host pycocotools' ``encode`` is the faster of the two.
    """
    from pycocotools import mask as mask_utils

    if len(masks) == 0:
        return []
    if isinstance(masks, torch.Tensor) and masks.device.type != "cpu":
        h, w = masks.shape[1:]
        rles = mask_utils.frPyObjects([{"size": [h, w], "counts": c} for c in run_lengths(masks)], h, w)
    else:
        masks = masks.numpy() if isinstance(masks, torch.Tensor) else masks
        rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    return [{"size": [int(s) for s in r["size"]], "counts": r["counts"].decode("ascii")} for r in rles]


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
