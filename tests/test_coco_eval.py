"""Our evaluation equals pycocotools called directly; faster-coco-eval gives the same statistics."""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from preprocgate.data import demo
from preprocgate.evaluators import EVALUATORS, METRICS


@pytest.fixture(scope="module")
def coco(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    root = tmp_path_factory.mktemp("coco")
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
    results.append(
        {
            "image_id": 1,
            "category_id": 2,
            "bbox": [1, 1, 30, 30],
            "score": 0.99,
            "segmentation": gt["annotations"][0]["segmentation"],
        }
    )
    return paths.annotations, results


def _direct(annotations: Path, results: list[dict], iou_type: str) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(annotations))
        ev = COCOeval(gt, gt.loadRes(json.loads(json.dumps(results))), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_pycocotools_backend_equals_direct_call(coco: tuple[Path, list[dict]], iou_type: str) -> None:
    annotations, results = coco
    expected = _direct(annotations, results, iou_type)
    ids = [img["id"] for img in json.loads(annotations.read_text())["images"]]
    got = EVALUATORS.get("pycocotools")(annotations).evaluate(results, iou_type, ids)
    assert got == {name: float(expected[i]) for name, i in METRICS.items()}
    assert 0.2 < got["AP"] < 0.95  # a real, non-degenerate evaluation


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_faster_coco_eval_matches_pycocotools(coco: tuple[Path, list[dict]], iou_type: str) -> None:
    annotations, results = coco
    ids = [img["id"] for img in json.loads(annotations.read_text())["images"]]
    ref = EVALUATORS.get("pycocotools")(annotations).evaluate(results, iou_type, ids)
    fast = EVALUATORS.get("faster_coco_eval")(annotations).evaluate(results, iou_type, ids)
    # equal to the last bits of float summation order (seen: 0.5833333333333334 vs ...331)
    assert fast == pytest.approx(ref, rel=0, abs=1e-12)


def test_no_detections_scores_zero(coco: tuple[Path, list[dict]]) -> None:
    annotations, _ = coco
    assert set(EVALUATORS.get("pycocotools")(annotations).evaluate([], "bbox", [1]).values()) == {0.0}
