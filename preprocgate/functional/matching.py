"""Detection diff between two dumps of the same images: the study's greedy pairing and its statistics.

Pairing, per image, over detections at or above a score threshold: reference detections in descending score
order each take the unmatched candidate detection of the same class with the highest box IoU, if that IoU is
at least the threshold (ties: higher candidate score, then lower index). Greedy one-to-one pairing keeps a
count shift from cascading into false mismatches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of xywh boxes (COCO convention), len(a) × len(b)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ax0, ay0, ax1, ay1 = a[:, 0], a[:, 1], a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx0, by0, bx1, by1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax1[:, None], bx1[None]) - np.maximum(ax0[:, None], bx0[None]), 0, None)
    ih = np.clip(np.minimum(ay1[:, None], by1[None]) - np.maximum(ay0[:, None], by0[None]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def greedy_pairs(reference: list[dict], candidate: list[dict], iou_threshold: float) -> list[tuple[int, int, float]]:
    """(reference index, candidate index, box IoU) for every matched pair."""
    if not reference or not candidate:
        return []
    iou = box_iou(
        np.array([r["bbox"] for r in reference], dtype=np.float64),
        np.array([c["bbox"] for c in candidate], dtype=np.float64),
    )
    ref_cls = np.array([r["category_id"] for r in reference])
    cand_cls = np.array([c["category_id"] for c in candidate])
    cand_score = np.array([c["score"] for c in candidate])
    iou = np.where(ref_cls[:, None] == cand_cls[None], iou, -1.0)
    free = np.ones(len(candidate), bool)
    pairs = []
    for i in sorted(range(len(reference)), key=lambda k: (-reference[k]["score"], k)):
        row = np.where(free & (iou[i] >= iou_threshold), iou[i], -1.0)
        if row.max() < 0:
            continue
        best = np.flatnonzero(row == row.max())
        j = int(min(best, key=lambda k: (-cand_score[k], k)))
        free[j] = False
        pairs.append((i, j, float(iou[i, j])))
    return pairs


@dataclass(frozen=True)
class DiffStats:
    reference_count: int
    candidate_count: int
    matched: int
    delta_conf_mean: float
    delta_conf_p95: float
    delta_conf_max: float
    box_iou_mean: float
    box_iou_p5: float
    mask_iou_mean: float | None
    mask_iou_p5: float | None
    mask_mismatch_fraction: float | None

    @property
    def unmatched_reference(self) -> int:
        return self.reference_count - self.matched

    @property
    def unmatched_candidate(self) -> int:
        return self.candidate_count - self.matched

    @property
    def matched_fraction(self) -> float:
        """matched / the larger side: 1.0 only when both dumps pair up completely."""
        total = max(self.reference_count, self.candidate_count)
        return self.matched / total if total else 1.0


def diff_dumps(
    reference: dict[int, list[dict]], candidate: dict[int, list[dict]], score_threshold: float, iou_threshold: float
) -> DiffStats:
    """Pair detections image by image and summarise the differences of matched pairs."""
    from pycocotools import mask as mask_utils

    n_ref = n_cand = 0
    dconf: list[float] = []
    ious: list[float] = []
    mask_ious: list[float] = []
    mismatched = 0
    for image_id in sorted(set(reference) | set(candidate)):
        ref = [r for r in reference.get(image_id, []) if r["score"] >= score_threshold]
        cand = [c for c in candidate.get(image_id, []) if c["score"] >= score_threshold]
        n_ref, n_cand = n_ref + len(ref), n_cand + len(cand)
        for i, j, iou in greedy_pairs(ref, cand, iou_threshold):
            dconf.append(abs(ref[i]["score"] - cand[j]["score"]))
            ious.append(iou)
            rs, cs = ref[i].get("segmentation"), cand[j].get("segmentation")
            if rs is not None and cs is not None:
                mask_ious.append(float(mask_utils.iou([_rle(rs)], [_rle(cs)], [0])[0][0]))
                mismatched += rs["counts"] != cs["counts"]
    d = np.asarray(dconf)
    b = np.asarray(ious)
    m = np.asarray(mask_ious)
    return DiffStats(
        reference_count=n_ref,
        candidate_count=n_cand,
        matched=len(dconf),
        delta_conf_mean=float(d.mean()) if d.size else 0.0,
        delta_conf_p95=float(np.percentile(d, 95)) if d.size else 0.0,
        delta_conf_max=float(d.max()) if d.size else 0.0,
        box_iou_mean=float(b.mean()) if b.size else 1.0,
        box_iou_p5=float(np.percentile(b, 5)) if b.size else 1.0,
        mask_iou_mean=float(m.mean()) if m.size else None,
        mask_iou_p5=float(np.percentile(m, 5)) if m.size else None,
        mask_mismatch_fraction=mismatched / len(mask_ious) if mask_ious else None,
    )


def _rle(segmentation: dict) -> dict:
    return {"size": segmentation["size"], "counts": segmentation["counts"].encode("ascii")}


def image_disagreement(
    reference: list[dict], candidate: list[dict], score_threshold: float, iou_threshold: float
) -> tuple[float, set[int], set[int]]:
    """How much two variants' detections on one image disagree (unmatched detections count 1 each, a matched
    pair 1 − box IoU plus |Δscore|), and the indices, among those at or above the score threshold, of
    unmatched reference and candidate detections: the pictures show the images where this is largest."""
    ref = [i for i, r in enumerate(reference) if r["score"] >= score_threshold]
    cand = [j for j, c in enumerate(candidate) if c["score"] >= score_threshold]
    pairs = greedy_pairs([reference[i] for i in ref], [candidate[j] for j in cand], iou_threshold)
    lost_ref = set(ref) - {ref[i] for i, _, _ in pairs}
    lost_cand = set(cand) - {cand[j] for _, j, _ in pairs}
    moved = sum(1 - iou + abs(reference[ref[i]]["score"] - candidate[cand[j]]["score"]) for i, j, iou in pairs)
    return len(lost_ref) + len(lost_cand) + moved, lost_ref, lost_cand
