"""Our evaluation equals pycocotools called directly; faster-coco-eval gives the same statistics."""

import json
from pathlib import Path

import pytest

from preprocgate.evaluators import EVALUATORS
from tests.helpers.coco_reference import reference_metrics


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_pycocotools_backend_equals_direct_call(coco: tuple[Path, list[dict]], iou_type: str) -> None:
    annotations, results = coco
    ids = [img["id"] for img in json.loads(annotations.read_text())["images"]]
    got = EVALUATORS.get("pycocotools")(annotations).evaluate(results, iou_type, ids)
    assert got == reference_metrics(annotations, results, iou_type)
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
