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
