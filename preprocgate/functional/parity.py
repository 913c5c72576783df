"""Parity statistics between a candidate and a reference output tensor, and their aggregation over probes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from preprocgate.functional.ulp import ulp_distance, ulp_histogram


@dataclass(frozen=True)
class Location:
    """Where an element is: probe image, channel, row, column; with both values there."""

    image: str
    channel: int
    y: int
    x: int
    candidate: float
    reference: float


@dataclass(frozen=True)
class ParityStats:
    """Everything measured between two outputs. Sums are kept so that stats over many probes combine exactly."""

    numel: int
    max_abs: float
    sum_abs: float
    max_ulp: int
    ulp_histogram: list[int]
    equal: int
    nan_candidate: int
    nan_reference: int
    inf_candidate: int
    inf_reference: int
    tolerance_violations: int
    nonfinite_mismatch: int
    worst_ulp: Location | None = None
    worst_abs: Location | None = None
    shapes: list[str] = field(default_factory=list)

    @property
    def mean_abs(self) -> float:
        return self.sum_abs / self.numel if self.numel else 0.0

    @property
    def equal_fraction(self) -> float:
        return self.equal / self.numel if self.numel else 1.0


def _location(image: str, index: int, shape: tuple[int, ...], cand: np.ndarray, ref: np.ndarray) -> Location:
    c, y, x = np.unravel_index(index, shape)
    return Location(image, int(c), int(y), int(x), float(cand.flat[index]), float(ref.flat[index]))


def parity_stats(
    candidate: np.ndarray, reference: np.ndarray, image: str, atol: float = 0.0, rtol: float = 0.0
) -> ParityStats:
    """Compare one probe's C×H×W outputs. ``atol``/``rtol`` count elements outside ``atol + rtol·|reference|``."""
    if candidate.shape != reference.shape:
        raise ValueError(f"shape mismatch: {candidate.shape} vs {reference.shape}")
    cand = np.ascontiguousarray(candidate, dtype=np.float32)
    ref = np.ascontiguousarray(reference, dtype=np.float32)
    nan_c, nan_r = np.isnan(cand), np.isnan(ref)
    inf_c, inf_r = np.isinf(cand), np.isinf(ref)
    # elements whose non-finite status differs (or infinities of opposite sign): these never pass
    nonfinite = (nan_c | nan_r | inf_c | inf_r) & ~((nan_c & nan_r) | (inf_c & inf_r & (cand == ref)))
    both = ~(nan_c | nan_r)
    diff = np.abs(cand.astype(np.float64) - ref.astype(np.float64))
    diff = np.where(both & np.isfinite(diff), diff, 0.0)
    ulps = np.where(both, ulp_distance(cand, ref), 0)
    worst_ulp = int(np.argmax(ulps)) if ulps.size else 0
    worst_abs = int(np.argmax(diff)) if diff.size else 0
    bound = atol + rtol * np.abs(ref.astype(np.float64))
    violations = int(np.count_nonzero(both & (diff > bound))) + int(np.count_nonzero(nan_c & ~nan_r))
    max_ulp = int(ulps.max()) if ulps.size else 0
    max_abs = float(diff.max()) if diff.size else 0.0
    return ParityStats(
        numel=int(cand.size),
        max_abs=max_abs,
        sum_abs=float(diff.sum()),
        max_ulp=max_ulp,
        ulp_histogram=ulp_histogram(ulps[both]),
        equal=int(np.count_nonzero(cand == ref) + np.count_nonzero(nan_c & nan_r)),
        nan_candidate=int(nan_c.sum()),
        nan_reference=int(nan_r.sum()),
        inf_candidate=int(inf_c.sum()),
        inf_reference=int(inf_r.sum()),
        tolerance_violations=violations,
        nonfinite_mismatch=int(nonfinite.sum()),
        worst_ulp=_location(image, worst_ulp, cand.shape, cand, ref) if max_ulp > 0 else None,
        worst_abs=_location(image, worst_abs, cand.shape, cand, ref) if max_abs > 0 else None,
        shapes=[image],
    )


def combine(stats: list[ParityStats]) -> ParityStats:
    """Aggregate per-probe stats: maxima of maxima, sums of counts, the worst location overall."""
    if not stats:
        raise ValueError("nothing to combine")
    worst_ulp = max(stats, key=lambda s: s.max_ulp)
    worst_abs = max(stats, key=lambda s: s.max_abs)
    return ParityStats(
        numel=sum(s.numel for s in stats),
        max_abs=worst_abs.max_abs,
        sum_abs=sum(s.sum_abs for s in stats),
        max_ulp=worst_ulp.max_ulp,
        ulp_histogram=[sum(col) for col in zip(*(s.ulp_histogram for s in stats), strict=True)],
        equal=sum(s.equal for s in stats),
        nan_candidate=sum(s.nan_candidate for s in stats),
        nan_reference=sum(s.nan_reference for s in stats),
        inf_candidate=sum(s.inf_candidate for s in stats),
        inf_reference=sum(s.inf_reference for s in stats),
        tolerance_violations=sum(s.tolerance_violations for s in stats),
        nonfinite_mismatch=sum(s.nonfinite_mismatch for s in stats),
        worst_ulp=worst_ulp.worst_ulp,
        worst_abs=worst_abs.worst_abs,
        shapes=[shape for s in stats for shape in s.shapes],
    )
