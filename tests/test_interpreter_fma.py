"""Triton's CPU interpreter rounds ``tl.fma`` once after ensure_exact_fma, as the GPU does: before Triton 3.9 it
rounded twice, and the fused kernel then differed from torch on the CPU (preprocgate/variants/interpreter.py)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from preprocgate.variants.triton_fused import load_kernel

load_kernel(torch.device("cpu"))  # the interpreter, before the module below defines its probe kernel
from preprocgate.variants import interpreter  # noqa: E402


def correctly_rounded(x: np.float32, y: np.float32, z: np.float32) -> np.float32:
    """x·y + z rounded once to float32, from exact rational arithmetic (round half to even)."""
    exact = Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z))
    near = np.float32(float(exact))
    candidates = [near, np.nextafter(near, np.float32(np.inf)), np.nextafter(near, np.float32(-np.inf))]
    distance = {c: abs(Fraction(float(c)) - exact) for c in candidates}
    best = min(distance.values())
    tied = [c for c in candidates if distance[c] == best]
    return min(tied, key=lambda c: int(np.array(c).view(np.uint32)) & 1)


# x, y, z where the float64 sum lands exactly halfway between two float32 values and the exact sum does not:
# (1 + 2⁻¹⁵) · 2⁻²⁴(1 − 2⁻¹⁵) + (1 + 2⁻²³) is 1 + 2⁻²³ + 2⁻²⁴ − 2⁻⁵⁴, whose float64 rounding is the midpoint
# (rounded to even: 1 + 2⁻²², wrong), and the probe's tie
DOUBLE_ROUNDING = [
    (1 + 2**-15, 2**-24 * (1 - 2**-15), 1 + 2**-23),
    (-(1 + 2**-15), 2**-24 * (1 - 2**-15), -(1 + 2**-23)),
    (1 + 2**-12, 1 + 2**-12, -(1 + 2**-11)),
]


@pytest.mark.parametrize(("x", "y", "z"), DOUBLE_ROUNDING)
def test_fma_float32_rounds_once_where_float64_rounds_twice(x: float, y: float, z: float) -> None:
    x32, y32, z32 = np.float32(x), np.float32(y), np.float32(z)
    assert (float(x32), float(y32), float(z32)) == (x, y, z)  # the operands are float32 values
    expected = correctly_rounded(x32, y32, z32)
    got = interpreter.fma_float32(np.array([x32]), np.array([y32]), np.array([z32]))[0]
    assert got == expected
    naive = np.float32(np.float64(x32) * np.float64(y32) + np.float64(z32))
    assert naive != expected or z == -(1 + 2**-11)  # float64 then float32 is wrong there


def test_fma_float32_equals_exact_rounding_on_random_operands() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    x = (rng.standard_normal(n) * 2.0 ** rng.integers(-30, 30, n)).astype(np.float32)
    y = (rng.standard_normal(n) * 2.0 ** rng.integers(-30, 30, n)).astype(np.float32)
    z = (-(x.astype(np.float64) * y) * (1 + rng.standard_normal(n) * 1e-6)).astype(np.float32)  # cancellation
    z[::3] = rng.standard_normal(len(z[::3])).astype(np.float32)
    got = interpreter.fma_float32(x, y, z)
    expected = np.array([correctly_rounded(*t) for t in zip(x, y, z, strict=True)], np.float32)
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_an_interpreter_that_rounds_twice_is_given_the_exact_fma(monkeypatch: pytest.MonkeyPatch) -> None:
    """Triton 3.8's ``create_fma`` (``x * y + z`` in float32) is replaced; the kernel then matches torch."""
    from triton.runtime.interpreter import InterpreterBuilder, TensorHandle

    def twice(self, x, y, z):  # type: ignore[no-untyped-def]
        return TensorHandle(x.data * y.data + z.data, z.dtype.scalar)

    monkeypatch.setattr(InterpreterBuilder, "create_fma", twice)
    interpreter.ensure_exact_fma.cache_clear()
    assert not interpreter._fma_is_exact()
    try:
        interpreter.ensure_exact_fma()
        assert interpreter._fma_is_exact()
        from preprocgate.data.synthetic import make
        from preprocgate.spec import InputSpec
        from preprocgate.variants.torch_interpolate import TorchInterpolate
        from preprocgate.variants.triton_fused import TritonFused

        config, cpu = InputSpec(size="24x20"), torch.device("cpu")
        batch = [make("natural", 0, 37, 53)]
        assert torch.equal(TritonFused(config, cpu)(batch), TorchInterpolate(config, cpu)(batch))
    finally:
        interpreter.ensure_exact_fma.cache_clear()
