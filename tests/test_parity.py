import numpy as np
import pytest

from preprocgate.functional.parity import combine, parity_stats

f32 = np.float32


def _pair() -> tuple[np.ndarray, np.ndarray]:
    ref = np.zeros((3, 2, 2), dtype=f32)
    ref[0, 0, 0] = 1.0
    cand = ref.copy()
    cand[0, 0, 0] = np.nextafter(f32(1), f32(2))  # 1 ULP, abs 2^-23
    cand[2, 1, 0] = 0.5  # abs 0.5 from 0.0: the worst element
    return cand, ref


def test_stats_hand_computed() -> None:
    cand, ref = _pair()
    s = parity_stats(cand, ref, "img")
    assert s.numel == 12
    assert s.max_abs == 0.5
    assert s.mean_abs == pytest.approx((0.5 + 2**-23) / 12)
    assert s.equal == 10 and s.equal_fraction == pytest.approx(10 / 12)
    assert s.max_ulp == 0x3F000000  # bit pattern of 0.5: its distance from +0
    assert s.ulp_histogram == [10, 1, 0, 0, 0, 1]
    assert (s.worst_abs.channel, s.worst_abs.y, s.worst_abs.x) == (2, 1, 0)
    assert (s.worst_abs.candidate, s.worst_abs.reference) == (0.5, 0.0)
    assert s.worst_ulp == s.worst_abs
    assert s.nonfinite_mismatch == 0


def test_tolerance_counts_elements_outside_atol_plus_rtol() -> None:
    cand, ref = _pair()
    assert parity_stats(cand, ref, "i", atol=0.4).tolerance_violations == 1
    assert parity_stats(cand, ref, "i", atol=0.5).tolerance_violations == 0
    assert parity_stats(cand, ref, "i", atol=1e-9).tolerance_violations == 2
    assert parity_stats(cand, ref, "i", atol=1e-9, rtol=1e-6).tolerance_violations == 1


def test_equal_outputs_have_no_worst_element() -> None:
    x = np.arange(12, dtype=f32).reshape(3, 2, 2)
    s = parity_stats(x, x.copy(), "i")
    assert (s.max_abs, s.max_ulp, s.equal_fraction, s.worst_ulp) == (0.0, 0, 1.0, None)


def test_nan_and_inf_are_counted_and_flagged() -> None:
    ref = np.ones((3, 1, 2), dtype=f32)
    cand = ref.copy()
    cand[0, 0, 0] = np.nan
    cand[1, 0, 1] = np.inf
    s = parity_stats(cand, ref, "i")
    assert (s.nan_candidate, s.inf_candidate, s.nan_reference, s.inf_reference) == (1, 1, 0, 0)
    assert s.nonfinite_mismatch == 2
    both_nan = parity_stats(np.full((3, 1, 1), np.nan, f32), np.full((3, 1, 1), np.nan, f32), "i")
    assert both_nan.nonfinite_mismatch == 0 and both_nan.equal_fraction == 1.0


def test_combine_takes_maxima_and_sums() -> None:
    cand, ref = _pair()
    a = parity_stats(cand, ref, "a")
    b = parity_stats(ref, ref.copy(), "b")
    total = combine([b, a])
    assert total.numel == 24 and total.equal == 22
    assert total.max_abs == 0.5 and total.max_ulp == a.max_ulp
    assert total.worst_abs.image == "a"
    assert total.ulp_histogram == [22, 1, 0, 0, 0, 1]
    assert total.mean_abs == pytest.approx(a.sum_abs / 24)
