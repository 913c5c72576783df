"""Our evaluation equals pycocotools called directly; faster-coco-eval gives the same statistics."""

import json
from pathlib import Path

import numpy as np
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


def test_run_starts_from_tensors_compress_to_pycocotools_encoding() -> None:
    """Run starts found on a tensor (the path CUDA masks take) compress to exactly pycocotools' own strings."""
    import torch
    from pycocotools import mask as mask_utils

    from preprocgate.functional.coco import RunStarts, encode_masks

    rng = np.random.default_rng(1)
    masks = rng.random((6, 37, 53)) < 0.5
    masks[0] = False  # one run of zeros
    masks[1] = True  # an empty run of zeros, then ones
    masks[2] = rng.random((37, 53)) < 0.01  # sparse: long runs
    masks[3, :, :20] = True  # column-major order: a block of whole columns is one run
    masks[3, :, 20:] = False
    masks[4, -1, -1], masks[4, 0, 0] = True, False  # the last pixel alone
    starts = RunStarts.of(torch.from_numpy(masks))
    counts = starts.lengths()
    assert [c.tolist() for c in counts[:2]] == [[37 * 53], [0, 37 * 53]]
    assert counts[3].tolist() == [0, 37 * 20, 37 * 33]
    compressed = mask_utils.frPyObjects([{"size": [37, 53], "counts": c} for c in counts], 37, 53)
    expected = encode_masks(torch.from_numpy(masks))  # on the CPU: pycocotools' encode
    assert [r["counts"].decode() for r in compressed] == [r["counts"] for r in expected]
    assert encode_masks(starts) == expected
    decoded = mask_utils.decode([{**r, "counts": r["counts"].encode()} for r in expected])
    np.testing.assert_array_equal(decoded.transpose(2, 0, 1), masks)
    assert encode_masks(torch.zeros((0, 37, 53), dtype=torch.bool)) == []
