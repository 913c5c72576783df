"""The one COCO reference every metric test compares with: raw pycocotools, called the way its README does,
and a small ground truth with perturbed detections that exercises misses, wrong classes and masks."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from preprocgate.data import demo
from preprocgate.evaluators.base import METRICS


def reference_cocoeval(ground_truth: Path | dict, results: list[dict], iou_type: str) -> Any:
    """pycocotools' COCOeval after evaluate, accumulate and summarize (quietly); inputs are not modified."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_json = json.loads(ground_truth.read_text()) if isinstance(ground_truth, Path) else ground_truth
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(gt_json)
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(copy.deepcopy(results)), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def reference_metrics(ground_truth: Path | dict, results: list[dict], iou_type: str) -> dict[str, float]:
    """The twelve summary numbers by preprocgate's metric names."""
    stats = reference_cocoeval(ground_truth, results, iou_type).stats
    return {name: float(stats[i]) for name, i in METRICS.items()}


def perturbed_dataset(root: Path) -> tuple[Path, list[dict]]:
    """Six generated images and detections made from their annotations: ~15% missed, boxes jittered, ~10% with
    the wrong class, plus one confident false positive."""
    paths = demo.generate(root, "val", 6, seed=3)
    gt = json.loads(paths.annotations.read_text())
    rng = np.random.default_rng(0)
    results = []
    for ann in gt["annotations"]:
        if rng.random() < 0.15:  # misses
            continue
        x, y, w, h = ann["bbox"]
        jitter = rng.normal(0, 0.08, 4) * [w, h, w, h]
        results.append(
            {
                "image_id": ann["image_id"],
                "category_id": ann["category_id"] if rng.random() > 0.1 else 1 + ann["category_id"] % 4,
                "bbox": [float(v) for v in np.array([x, y, w, h]) + jitter],
                "score": float(rng.uniform(0.05, 1)),
                "segmentation": ann["segmentation"],
            }
        )
    first = gt["annotations"][0]["segmentation"]
    results.append({"image_id": 1, "category_id": 2, "bbox": [1, 1, 30, 30], "score": 0.99, "segmentation": first})
    return paths.annotations, results
