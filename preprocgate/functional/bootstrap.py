"""Paired bootstrap over images for COCO metrics, reusing one COCOeval.evaluate() per dump.

COCO metrics are not means over images, so each resample must be re-accumulated. ``evaluate()`` matches
detections to ground truth per (category, area range, image) once; a resample is a multiplicity per image,
and :func:`weighted_metrics` re-runs pycocotools' ``accumulate``/``summarize`` arithmetic over the images
repeated that many times, in the order pycocotools would see them, so that all-ones multiplicities
reproduce pycocotools' numbers exactly. Pairing (the same resample for both variants) cancels the
per-image difficulty that both share, which is what makes a small Δ measurable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUMMARY = {  # metric → (IoU-threshold selector, area range index, precision or recall)
    "AP": (None, 0, "precision"),
    "AP50": (0.5, 0, "precision"),
    "AP75": (0.75, 0, "precision"),
    "APs": (None, 1, "precision"),
    "APm": (None, 2, "precision"),
    "APl": (None, 3, "precision"),
    "AR100": (None, 0, "recall"),
}


@dataclass
class _Cell:
    """One (category, area range): every image's detections concatenated in image order."""

    scores: np.ndarray  # (D,)
    matched: np.ndarray  # (T, D) bool
    ignored: np.ndarray  # (T, D) bool
    offsets: np.ndarray  # (I + 1,) detection offsets per image
    present: np.ndarray  # (I,) bool: pycocotools had an evalImg (not None) for the image
    gt_count: np.ndarray  # (I,) ground truths not ignored


@dataclass
class ImageEvals:
    """What accumulate() needs from evaluate(), per (category, area range, image), for maxDets=100."""

    cells: list[list[_Cell]]  # [category][area]
    iou_thrs: np.ndarray
    rec_thrs: np.ndarray
    n_images: int


def from_cocoeval(ev: object, max_det: int = 100) -> ImageEvals:
    """Extract per-image matches from a pycocotools COCOeval on which ``evaluate()`` has run."""
    p = ev.params  # type: ignore[attr-defined]
    n_images, n_areas = len(p.imgIds), len(p.areaRng)
    cells = []
    for k in range(len(p.catIds)):
        row = []
        for a in range(n_areas):
            entries = ev.evalImgs[k * n_areas * n_images + a * n_images : k * n_areas * n_images + (a + 1) * n_images]  # type: ignore[attr-defined]
            t = len(p.iouThrs)
            scores, matched, ignored, sizes, gts = [], [], [], [], []
            for e in entries:
                if e is None:
                    sizes.append(0)
                    gts.append(0)
                    continue
                scores.append(np.asarray(e["dtScores"][:max_det], dtype=float))
                matched.append(np.asarray(e["dtMatches"][:, :max_det]).reshape(t, -1) != 0)
                ignored.append(np.asarray(e["dtIgnore"][:, :max_det]).reshape(t, -1) != 0)
                sizes.append(len(scores[-1]))
                gts.append(int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0)))
            row.append(
                _Cell(
                    scores=np.concatenate(scores) if scores else np.zeros(0),
                    matched=np.concatenate(matched, axis=1) if matched else np.zeros((t, 0), bool),
                    ignored=np.concatenate(ignored, axis=1) if ignored else np.zeros((t, 0), bool),
                    offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                    present=np.array([e is not None for e in entries]),
                    gt_count=np.asarray(gts, dtype=np.int64),
                )
            )
        cells.append(row)
    return ImageEvals(cells, np.asarray(p.iouThrs), np.asarray(p.recThrs), n_images)


def _gather(cell: _Cell, counts: np.ndarray) -> np.ndarray:
    """Detection indices for the images repeated ``counts`` times, in image order."""
    reps = np.repeat(np.arange(len(counts)), counts)
    lengths = (cell.offsets[1:] - cell.offsets[:-1])[reps]
    starts = cell.offsets[:-1][reps]
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return shift + np.arange(total)


def _accumulate(evals: ImageEvals, counts: np.ndarray, area: int) -> tuple[np.ndarray, np.ndarray]:
    """precision (T, R, K) and recall (T, K) for one area range, as COCOeval.accumulate computes them."""
    t, r, k = len(evals.iou_thrs), len(evals.rec_thrs), len(evals.cells)
    precision = -np.ones((t, r, k))
    recall = -np.ones((t, k))
    for ki, row in enumerate(evals.cells):
        cell = row[area]
        if not np.any(cell.present & (counts > 0)):
            continue
        npig = int(np.dot(cell.gt_count, counts))
        if npig == 0:
            continue
        idx = _gather(cell, counts)
        scores = cell.scores[idx]
        order = np.argsort(-scores, kind="mergesort")
        dtm, dtig = cell.matched[:, idx][:, order], cell.ignored[:, idx][:, order]
        tp_sum = np.cumsum(dtm & ~dtig, axis=1).astype(float)
        fp_sum = np.cumsum(~dtm & ~dtig, axis=1).astype(float)
        nd = tp_sum.shape[1]
        for ti in range(t):
            tp, fp = tp_sum[ti], fp_sum[ti]
            rc = tp / npig
            pr = tp / (fp + tp + np.spacing(1))
            recall[ti, ki] = rc[-1] if nd else 0
            pr = np.maximum.accumulate(pr[::-1])[::-1] if nd else pr
            inds = np.searchsorted(rc, evals.rec_thrs, side="left")
            q = np.zeros(r)
            valid = inds < nd
            q[valid] = pr[inds[valid]]
            precision[ti, :, ki] = q
    return precision, recall


def weighted_metrics(
    evals: ImageEvals, counts: np.ndarray | None = None, metrics: list[str] | None = None
) -> dict[str, float]:
    """COCO summary metrics with image i counted ``counts[i]`` times (all ones: pycocotools' own numbers).

    Only the area ranges that ``metrics`` need are accumulated (AP, AP50, AP75 and AR100 share one).
    """
    counts = np.ones(evals.n_images, np.int64) if counts is None else np.asarray(counts, np.int64)
    out: dict[str, float] = {}
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for name in metrics or list(SUMMARY):
        iou, area, kind = SUMMARY[name]
        if area not in cache:
            cache[area] = _accumulate(evals, counts, area)
        precision, recall = cache[area]
        s = precision if kind == "precision" else recall
        if iou is not None:
            s = s[np.flatnonzero(np.isclose(evals.iou_thrs, iou))]
        out[name] = float(np.mean(s[s > -1])) if np.any(s > -1) else -1.0
    return out


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    confidence: float
    resamples: int

    def excludes(self, tolerance: float) -> bool:
        """True when the whole interval lies outside ±tolerance: a regression beyond noise."""
        return self.low > tolerance or self.high < -tolerance


def resample_counts(n_images: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n_images) multiplicities, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_images, size=(resamples, n_images))
    return np.stack([np.bincount(d, minlength=n_images) for d in draws])


def paired_bootstrap(
    reference: ImageEvals,
    candidate: ImageEvals,
    metrics: list[str],
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Interval]:
    """Percentile interval of candidate − reference for each metric, over the same image resamples."""
    if reference.n_images != candidate.n_images:
        raise ValueError("paired bootstrap needs the same images on both sides")
    deltas: dict[str, list[float]] = {m: [] for m in metrics}
    for counts in resample_counts(reference.n_images, resamples, seed):
        a, b = weighted_metrics(reference, counts, metrics), weighted_metrics(candidate, counts, metrics)
        for m in metrics:
            deltas[m].append(b[m] - a[m])
    tail = 100 * (1 - confidence) / 2
    return {
        m: Interval(float(np.percentile(d, tail)), float(np.percentile(d, 100 - tail)), confidence, resamples)
        for m, d in deltas.items()
    }
