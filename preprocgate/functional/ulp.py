"""Element-wise ULP distance between float32 arrays.

The distance is sign-aware: float32 bit patterns are mapped onto one ordered integer line (``-0.0`` and ``+0.0``
both to 0), so the distance between two values is the number of representable floats between them, also across
zero. Near zero a tiny absolute error spans many ULPs (the spacing of floats shrinks towards zero), which is why
reports show absolute error next to it.
"""

from __future__ import annotations

import numpy as np

ULP_BINS: tuple[tuple[int, int | None], ...] = ((0, 0), (1, 1), (2, 4), (5, 16), (17, 256), (257, None))
ULP_BIN_LABELS = ("0", "1", "2–4", "5–16", "17–256", ">256")


def ordered_int(x: np.ndarray) -> np.ndarray:
    """float32 → int64 keys with the same order as the floats (NaN excluded by the caller)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.int32).astype(np.int64)
    return np.where(bits >= 0, bits, -(bits & 0x7FFFFFFF))


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|ordered(a) − ordered(b)| element-wise, as int64; meaningless where either side is NaN."""
    return np.abs(ordered_int(a) - ordered_int(b))


def ulp_histogram(ulps: np.ndarray) -> list[int]:
    """Counts in the bins 0, 1, 2–4, 5–16, 17–256, >256."""
    edges = [lo for lo, _ in ULP_BINS] + [np.iinfo(np.int64).max]
    counts, _ = np.histogram(ulps, bins=np.asarray(edges, dtype=np.float64))
    return [int(c) for c in counts]
