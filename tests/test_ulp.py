import numpy as np
import pytest

from preprocgate.functional.ulp import ulp_distance, ulp_histogram

f32 = np.float32
TINY = np.finfo(np.float32).smallest_subnormal


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (1.0, 1.0, 0),
        (1.0, np.nextafter(f32(1), f32(2)), 1),
        (1.0, 2.0, 2**23),  # one binade: 2^23 floats in [1, 2)
        (0.0, -0.0, 0),  # signed zeros are equal
        (TINY, -TINY, 2),  # across zero: -tiny, 0, +tiny
        (-1.0, -np.nextafter(f32(1), f32(2)), 1),
        (-1.0, 1.0, 2 * 0x3F800000),  # bit pattern of 1.0 on each side of zero
    ],
)
def test_ulp_distance_hand_computed(a: float, b: float, expected: int) -> None:
    got = ulp_distance(np.array([a], dtype=f32), np.array([b], dtype=f32))
    assert got.tolist() == [expected]
    assert ulp_distance(np.array([b], dtype=f32), np.array([a], dtype=f32)).tolist() == [expected]


def test_histogram_bins_are_inclusive_ranges() -> None:
    ulps = np.array([0, 0, 1, 2, 4, 5, 16, 17, 256, 257, 10**9])
    assert ulp_histogram(ulps) == [2, 1, 2, 2, 2, 2]
