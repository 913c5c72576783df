"""Exact greedy non-maximum suppression in plain torch (torchvision's ``nms`` does not import beside the CPU build).

Greedy NMS keeps a box unless a kept box of the same class with a higher score overlaps it by IoU > threshold.
Written as an equation over the candidates in score order, ``keep[i] = not any(keep[j] and S[i, j] for j < i)``
with ``S`` the "same class and IoU > threshold" matrix, it has exactly one solution (by induction on i), and
iterating it from "keep everything" reaches that solution after at most (longest suppression chain + 1) rounds:
the values of the first d links of every chain are final after d rounds. Each round is one vectorised pass over
an n×n boolean matrix, so there is no Python loop per detection.

To bound memory the candidates are taken in chunks of ``chunk`` in score order: a chunk is first suppressed by
everything already kept (a box's fate depends only on higher-scoring boxes), then by itself through the fixed
point; once ``max_det`` boxes are kept the rest cannot enter the result and are never looked at.
"""

from __future__ import annotations

import torch


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of xyxy boxes (torchvision's formula: intersection / (area a + area b − intersection))."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _suppressed(iou: torch.Tensor, same_class: torch.Tensor, threshold: float) -> torch.Tensor:
    return (iou > threshold) & same_class


def batched_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    classes: torch.Tensor,
    iou_threshold: float,
    max_det: int | None = None,
    chunk: int = 2048,
) -> torch.Tensor:
    """Class-aware greedy NMS: indices of the kept boxes, highest score first (at most ``max_det``).

    Ties in score keep their input order (stable sort). A box whose IoU is undefined (0/0, both degenerate) never
    suppresses, as in torchvision.
    """
    limit = len(scores) if max_det is None else max_det
    order = torch.sort(scores, descending=True, stable=True).indices
    boxes, classes = boxes[order].float(), classes[order]
    kept_boxes = boxes.new_zeros((0, 4))
    kept_classes = classes.new_zeros((0,))
    kept: list[torch.Tensor] = []
    count = 0
    for start in range(0, len(order), chunk):
        if count >= limit:
            break
        b, c = boxes[start : start + chunk], classes[start : start + chunk]
        alive = torch.ones(len(b), dtype=torch.bool, device=b.device)
        if len(kept_boxes):
            by_kept = _suppressed(box_iou(b, kept_boxes), c[:, None] == kept_classes[None, :], iou_threshold)
            alive = ~by_kept.any(1)
        earlier = torch.ones(len(b), len(b), dtype=torch.bool, device=b.device).tril(-1)
        hits = _suppressed(box_iou(b, b), c[:, None] == c[None, :], iou_threshold) & earlier
        keep = alive
        while True:
            again = alive & ~(hits & keep[None, :]).any(1)
            if torch.equal(again, keep):
                break
            keep = again
        index = keep.nonzero()[:, 0]
        kept.append(index + start)
        kept_boxes = torch.cat([kept_boxes, b[index]])
        kept_classes = torch.cat([kept_classes, c[index]])
        count += len(index)
    if not kept:
        return order[:0]
    return order[torch.cat(kept)[:limit]]
