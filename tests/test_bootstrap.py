"""The paired bootstrap: fast re-accumulation equals pycocotools, on the real and on resampled datasets."""

import json
from pathlib import Path

import numpy as np
import pytest

from preprocgate.evaluators.base import METRICS
from preprocgate.functional.bootstrap import from_cocoeval, paired_bootstrap, resample_counts, weighted_metrics
from tests.helpers.coco_reference import reference_cocoeval


def _duplicated(gt_json: dict, results: list[dict], counts: np.ndarray) -> tuple[dict, list[dict]]:
    """The slow, direct way: a dataset where image i really appears counts[i] times (new ids, same order)."""
    images = sorted(gt_json["images"], key=lambda i: i["id"])
    new_images, new_anns, new_results, next_id = [], [], [], 1
    for image, count in zip(images, counts, strict=True):
        for _ in range(count):
            new_images.append({**image, "id": next_id})
            own = [a for a in gt_json["annotations"] if a["image_id"] == image["id"]]
            new_anns += [{**a, "id": len(new_anns) + j + 1, "image_id": next_id} for j, a in enumerate(own)]
            new_results += [{**r, "image_id": next_id} for r in results if r["image_id"] == image["id"]]
            next_id += 1
    return {**gt_json, "images": new_images, "annotations": new_anns}, new_results


def _variant(results: list[dict], seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{**r, "score": float(np.clip(r["score"] + rng.normal(0, 0.1), 0.01, 1))} for r in results]


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_identity_weights_reproduce_pycocotools(coco: tuple[Path, list[dict]], iou_type: str) -> None:
    annotations, results = coco
    ev = reference_cocoeval(json.loads(annotations.read_text()), results, iou_type)
    got = weighted_metrics(from_cocoeval(ev))
    assert got == {name: float(ev.stats[i]) for name, i in METRICS.items()}


def test_resampled_metrics_equal_a_direct_evaluation_of_the_duplicated_dataset(coco: tuple[Path, list[dict]]) -> None:
    annotations, results = coco
    gt = json.loads(annotations.read_text())
    evals = from_cocoeval(reference_cocoeval(gt, results, "bbox"))
    for counts in resample_counts(evals.n_images, 3, seed=7):
        dup_gt, dup_results = _duplicated(gt, results, counts)
        direct = reference_cocoeval(dup_gt, dup_results, "bbox").stats
        fast = weighted_metrics(evals, counts)
        assert fast == pytest.approx({n: float(direct[i]) for n, i in METRICS.items()}, rel=0, abs=1e-12)


def test_bootstrap_interval_matches_slow_computation_and_is_deterministic(coco: tuple[Path, list[dict]]) -> None:
    annotations, results = coco
    gt = json.loads(annotations.read_text())
    other = _variant(results, 1)
    ref, cand = (
        from_cocoeval(reference_cocoeval(gt, results, "bbox")),
        from_cocoeval(reference_cocoeval(gt, other, "bbox")),
    )
    fast = paired_bootstrap(ref, cand, ["AP", "AP50"], resamples=12, seed=3)
    deltas = {"AP": [], "AP50": []}
    for counts in resample_counts(ref.n_images, 12, seed=3):
        dup_gt, dup_a = _duplicated(gt, results, counts)
        _, dup_b = _duplicated(gt, other, counts)
        a, b = reference_cocoeval(dup_gt, dup_a, "bbox").stats, reference_cocoeval(dup_gt, dup_b, "bbox").stats
        deltas["AP"].append(b[0] - a[0])
        deltas["AP50"].append(b[1] - a[1])
    for metric, values in deltas.items():
        assert fast[metric].low == pytest.approx(np.percentile(values, 2.5), abs=1e-12)
        assert fast[metric].high == pytest.approx(np.percentile(values, 97.5), abs=1e-12)
    assert paired_bootstrap(ref, cand, ["AP"], resamples=12, seed=3)["AP"] == fast["AP"]
    assert paired_bootstrap(ref, cand, ["AP"], resamples=12, seed=4)["AP"] != fast["AP"]
    assert fast["AP"].low <= fast["AP"].high
