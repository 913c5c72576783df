"""The detection diff's greedy pairing on hand-built cases."""

import pytest

from preprocgate.functional.matching import box_iou, diff_dumps, greedy_pairs


def det(x: float, y: float, w: float, h: float, score: float, cls: int = 1) -> dict:
    return {"bbox": [x, y, w, h], "score": score, "category_id": cls}


def test_box_iou_hand_computed() -> None:
    import numpy as np

    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[5, 0, 10, 10], [20, 20, 5, 5], [0, 0, 10, 10]], float)
    assert box_iou(a, b).tolist() == [[50 / 150, 0.0, 1.0]]


def test_count_shift_does_not_cascade() -> None:
    """An extra detection in the candidate leaves every other pair intact."""
    ref = [det(0, 0, 10, 10, 0.9), det(50, 50, 10, 10, 0.8), det(100, 100, 10, 10, 0.7)]
    cand = [det(25, 25, 10, 10, 0.95), *ref]  # a new detection in front
    pairs = greedy_pairs(ref, cand, 0.5)
    assert sorted((i, j) for i, j, _ in pairs) == [(0, 1), (1, 2), (2, 3)]


def test_class_mismatch_is_not_a_match() -> None:
    assert greedy_pairs([det(0, 0, 10, 10, 0.9, cls=1)], [det(0, 0, 10, 10, 0.9, cls=2)], 0.5) == []


def test_highest_score_first_takes_the_contested_box() -> None:
    """Two reference boxes overlap one candidate: the higher-scored reference gets it."""
    ref = [det(0, 0, 10, 10, 0.6), det(1, 0, 10, 10, 0.9)]
    cand = [det(0, 0, 10, 10, 0.8)]
    assert [(i, j) for i, j, _ in greedy_pairs(ref, cand, 0.5)] == [(1, 0)]


def test_iou_ties_go_to_the_higher_scored_candidate_then_lower_index() -> None:
    ref = [det(0, 0, 10, 10, 0.9)]
    cand = [det(0, 0, 10, 10, 0.3), det(0, 0, 10, 10, 0.7), det(0, 0, 10, 10, 0.7)]
    assert [(i, j) for i, j, _ in greedy_pairs(ref, cand, 0.5)] == [(0, 1)]


def test_below_iou_threshold_is_unmatched() -> None:
    assert greedy_pairs([det(0, 0, 10, 10, 0.9)], [det(6, 0, 10, 10, 0.9)], 0.5) == []


def test_diff_statistics() -> None:
    ref = {1: [det(0, 0, 10, 10, 0.9), det(50, 50, 10, 10, 0.5), det(80, 80, 5, 5, 0.1)]}
    cand = {1: [det(0, 0, 10, 10, 0.8), det(52, 50, 10, 10, 0.45)], 2: [det(0, 0, 4, 4, 0.9)]}
    s = diff_dumps(ref, cand, score_threshold=0.4, iou_threshold=0.5)
    assert (s.reference_count, s.candidate_count, s.matched) == (2, 3, 2)  # the 0.1 detection is below the bar
    assert (s.unmatched_reference, s.unmatched_candidate) == (0, 1)
    assert s.matched_fraction == pytest.approx(2 / 3)
    assert s.delta_conf_mean == pytest.approx(0.075) and s.delta_conf_max == pytest.approx(0.1)
    assert s.box_iou_mean == pytest.approx((1 + 80 / 120) / 2)
    assert s.mask_iou_mean is None and s.mask_mismatch_fraction is None
