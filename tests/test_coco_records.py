"""COCO result records and their part text, made fast: the same records as Python's ``round`` one value at a
time gives, and the same bytes as the canonical encoder, on values chosen to break a careless vectorisation
(ties, negative zero, NaN and infinities, tiny and huge corners, float64 inputs)."""

from __future__ import annotations

import numpy as np
import pytest

from preprocgate.functional.coco import Detections, EncodedMasks, to_results, to_results_json
from preprocgate.hashing import compact_json, results_json


def reference(image_id: int, det: Detections) -> list[dict]:
    """The records as to_results made them before it was vectorised: Python's round on every value."""
    masks = det.masks
    out = []
    rows = zip(
        np.asarray(det.boxes).tolist(), np.asarray(det.scores).tolist(), np.asarray(det.labels).tolist(), strict=True
    )
    for k, ((x0, y0, x1, y1), score, label) in enumerate(rows):
        record = {
            "image_id": image_id,
            "category_id": int(label),
            "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
            "score": round(score, 6),
        }
        if masks is not None:
            record["segmentation"] = {"size": [masks.height, masks.width], "counts": masks.counts[k]}
        out.append(record)
    return out


def hostile_values(rng: np.random.Generator, n: int) -> np.ndarray:
    """float32 values where rounding goes wrong if done carelessly: exact ties at 0.01 and 1e-6 (k + 0.5 over
    the scale, where binary can hold it), values next to ties, negative values near zero, specials, the extremes."""
    ties = (rng.integers(-20000, 20000, n) + 0.5) / 100
    near = np.nextafter(ties.astype(np.float32), np.float32(np.inf))
    score_ties = (rng.integers(0, 2000, n) * 2 + 1) / 2**21  # binary fractions: some exactly halfway at 1e-6
    special = np.array(
        [0.0, -0.0, -0.004, -0.005, 0.125, 0.375, 2.675, 1e-45, -1e-45, 3e38, -3e38, 1e-30, 65504, np.nan, np.inf],
        np.float32,
    )
    pool = np.concatenate([ties, near, score_ties, rng.uniform(-700, 1400, n), special]).astype(np.float32)
    return rng.choice(pool, size=n)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("masked", [True, False])
def test_records_and_text_equal_the_canonical_ones(dtype: type, masked: bool) -> None:
    rng = np.random.default_rng(0)
    n = 4000
    with np.errstate(over="ignore", invalid="ignore"):
        boxes = hostile_values(rng, 4 * n).reshape(n, 4).astype(dtype)
        scores = np.concatenate([hostile_values(rng, n // 2), rng.uniform(0, 1, n - n // 2)]).astype(dtype)
    counts = [f"{k}\\ab0" for k in range(n)]  # a backslash: JSON doubles it
    masks = EncodedMasks(480, 640, counts, [c.replace("\\", "\\\\").encode() for c in counts]) if masked else None
    det = Detections(boxes, scores, rng.integers(1, 91, n), masks)
    expected = reference(7, det)
    records, text = to_results_json(np.int64(7), det)
    assert records == expected and to_results(7, det) == expected
    assert repr(records) == repr(expected)  # == holds for 0.0 against -0.0 and not for NaN: the spellings too
    assert text == compact_json(expected, allow_nan=True).encode("ascii")
    assert text == results_json(expected, masks.json if masks else None, allow_nan=True)


def test_widths_of_corners_far_apart_are_rounded_as_python_rounds_them() -> None:
    """x1 - x0 of corners whose exponents are far apart has too many bits for its product by 100 to be exact:
    these two boxes are ones where rint(w * 100) / 100 and Python's round disagree (found by search)."""
    boxes = np.array(
        [
            [2.086162576020456e-09, -5.9604643443123e-10, 0.11500000208616257, 0.23499999940395355],
            [1e-30, 1e-45, 8388607.5, 0.375],
        ],
        np.float32,
    )
    widths = boxes[0, 2:].astype(np.float64) - boxes[0, :2].astype(np.float64)
    assert all(np.rint(w * 100) / 100 != round(float(w), 2) for w in widths)  # the values are hostile
    det = Detections(boxes, np.array([0.5, 0.25], np.float32), np.array([1, 2]))
    assert repr(to_results(1, det)) == repr(reference(1, det))


def test_no_detections_and_masks_the_gpu_did_not_escape() -> None:
    empty = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
    assert to_results_json(3, empty) == ([], b"[]")
    host = EncodedMasks(2, 2, ['a"b\\'])  # no JSON text beside it: escaped by the canonical encoder
    det = Detections(np.array([[0, 0, 1, 1]], np.float32), np.array([0.5], np.float32), np.array([4]), host)
    assert to_results_json(3, det)[1] == compact_json(reference(3, det), allow_nan=True).encode("ascii")


def test_mismatched_columns_are_refused() -> None:
    det = Detections(np.zeros((2, 4), np.float32), np.zeros(2, np.float32), np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="image 5: 2 scores, 3 labels"):
        to_results(5, det)
