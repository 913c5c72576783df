"""Detections ↔ COCO result records (masks as compressed RLE), the format pycocotools evaluates."""

from __future__ import annotations

import numpy as np

from preprocgate.models.base import Detections


def encode_masks(masks: np.ndarray) -> list[dict]:
    """Bool K×H×W → compressed RLEs with ``counts`` as str (JSON-ready)."""
    from pycocotools import mask as mask_utils

    if len(masks) == 0:
        return []
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
