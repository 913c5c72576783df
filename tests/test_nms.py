"""The vectorised greedy NMS against a plain reference loop, on boxes built to form long suppression chains."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from preprocgate.functional.nms import batched_nms


def reference_nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou: float) -> list[int]:
    """Textbook greedy NMS, one box at a time (stable order on equal scores), IoU written out in numpy."""
    b, c = boxes.numpy(), classes.numpy()
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    kept: list[int] = []
    for i in order:
        others = b[kept]
        w = np.clip(np.minimum(b[i, 2], others[:, 2]) - np.maximum(b[i, 0], others[:, 0]), 0, None)
        h = np.clip(np.minimum(b[i, 3], others[:, 3]) - np.maximum(b[i, 1], others[:, 1]), 0, None)
        area = (b[i, 2] - b[i, 0]) * (b[i, 3] - b[i, 1])
        areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
        with np.errstate(invalid="ignore"):
            overlap = w * h / (area + areas - w * h)
        if not ((overlap > iou) & (c[kept] == c[i])).any():
            kept.append(i)
    return kept


def clustered(n: int, classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boxes jittered around a few centres (heavy overlap, chains of suppression), random scores and classes."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(6, 2, generator=g) * 100
    pick = torch.randint(0, 6, (n,), generator=g)
    xy = centres[pick] + torch.randn(n, 2, generator=g) * 4
    wh = 10 + torch.rand(n, 2, generator=g) * 20
    boxes = torch.cat([xy - wh / 2, xy + wh / 2], 1)
    return boxes, torch.rand(n, generator=g), torch.randint(0, classes, (n,), generator=g)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("iou", [0.3, 0.7])
def test_matches_the_reference_loop(seed: int, iou: float) -> None:
    boxes, scores, classes = clustered(300, 3, seed)
    expected = reference_nms(boxes, scores, classes, iou)
    assert batched_nms(boxes, scores, classes, iou).tolist() == expected
    # chunks smaller than the input: suppression across chunks and the early stop at max_det
    assert batched_nms(boxes, scores, classes, iou, chunk=17).tolist() == expected
    assert batched_nms(boxes, scores, classes, iou, max_det=5, chunk=3).tolist() == expected[:5]


def test_a_chain_needs_the_fixed_point() -> None:
    """A suppresses B, B would suppress C: greedy keeps A and C (B is gone before it can suppress anything)."""
    boxes = torch.tensor([[0.0, 0, 10, 10], [3, 0, 13, 10], [6, 0, 16, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert batched_nms(boxes, scores, torch.zeros(3, dtype=torch.long), 0.3).tolist() == [0, 2]
    # other classes never suppress each other
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.3).tolist() == [0, 1, 2]


def test_edge_cases() -> None:
    empty = batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5)
    assert empty.shape == (0,) and empty.dtype == torch.long
    same = torch.tensor([[0.0, 0, 10, 10]] * 3)
    # equal scores keep their input order; IoU exactly at the threshold does not suppress (strictly greater)
    assert batched_nms(same, torch.ones(3), torch.zeros(3, dtype=torch.long), 0.5).tolist() == [0]
    assert batched_nms(same, torch.ones(3), torch.zeros(3, dtype=torch.long), 1.0).tolist() == [0, 1, 2]
    point = torch.tensor([[5.0, 5, 5, 5], [5.0, 5, 5, 5]])  # degenerate: IoU 0/0 never suppresses
    assert batched_nms(point, torch.tensor([0.9, 0.8]), torch.zeros(2, dtype=torch.long), 0.1).tolist() == [0, 1]
