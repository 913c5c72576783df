"""The Triton variant's direct launch (``_Launch``): after one launch through the JIT it records what the JIT
passes to the compiled kernel's launcher and then calls the launcher itself with each call's tensors.

No GPU here, so the JIT and the compiled kernel are stand-ins that behave as Triton's do (3.x: the JIT binds the
arguments, looks the kernel up, calls ``kernel.run(grid..., stream, function, metadata, launch metadata, hooks,
*args)``; ``run`` is a property over ``_run`` in newer releases, a plain attribute in older ones). The GPU figures
(host time per call) are benchmarks/kernel_cuda.py's."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from preprocgate.variants.triton_fused import _Launch


class HookChain:
    def __init__(self) -> None:
        self.calls: list[Any] = []


class PropertyKernel:
    """Newer Triton: ``run`` is a property over ``_run``."""

    def __init__(self, launcher: Any) -> None:
        self._run = launcher
        self.function, self.packed_metadata = "fn", "meta"

    @property
    def run(self) -> Any:
        return self._run


class AttributeKernel:
    """Older Triton: ``run`` is an attribute."""

    def __init__(self, launcher: Any) -> None:
        self.run = launcher
        self.function, self.packed_metadata = "fn", "meta"


class FakeJIT:
    def __init__(self, kernel_type: type, copies: bool = False) -> None:
        self.launches: list[tuple] = []  # what reached the launcher
        self.jit_calls = 0
        self.hooks = (HookChain(), HookChain())
        self.kernel = kernel_type(lambda *call: self.launches.append(call))
        self.copies = copies  # a JIT that hands the launcher other objects than the caller's: not recordable

    def warmup(self, *args: Any, grid: tuple, **kwargs: Any) -> Any:
        return self.kernel

    def __getitem__(self, grid: tuple) -> Any:
        def launch(*args: Any, **kwargs: Any) -> Any:
            self.jit_calls += 1
            bound = [list(a) if self.copies and isinstance(a, list) else a for a in args] + list(kwargs.values())
            kernel = self.kernel
            kernel.run(*grid, 7, kernel.function, kernel.packed_metadata, {"meta": 1}, *self.hooks, *bound)
            return self.kernel

        return launch


def _launch(jit: FakeJIT) -> _Launch:
    plan = _Launch(jit, (4, 5, 6), (1, 2.5), {"BLOCK": 128}, {"num_warps": 1}, direct=True)
    plan.stream = lambda device: 9  # type: ignore[method-assign]
    return plan


@pytest.mark.parametrize("kernel_type", [PropertyKernel, AttributeKernel])
def test_calls_after_the_second_go_straight_to_the_launcher_with_their_tensors(kernel_type: type) -> None:
    jit = FakeJIT(kernel_type)
    plan = _launch(jit)
    tensors = [(torch.zeros(1), torch.ones(1)) for _ in range(4)]
    for src, dst in tensors:
        plan(src, dst)
    assert jit.jit_calls == 2 and plan.fast is not None
    assert len(jit.launches) == 4
    for (src, dst), call in zip(tensors, jit.launches, strict=True):
        assert call[:3] == (4, 5, 6) and call[4:6] == ("fn", "meta")
        args = call[9:]
        assert args[0] is src and args[1] is dst and args[2:] == (1, 2.5, 128, 1)
    assert jit.launches[-1][3] == 9  # the caller's current stream, not the recorded one
    assert jit.launches[-1][6] is None  # launch metadata is for hooks only
    assert isinstance(PropertyKernel.run, property) and jit.kernel.run is not None  # launcher restored


def test_a_launch_hook_sends_calls_through_the_jit() -> None:
    jit = FakeJIT(PropertyKernel)
    plan = _launch(jit)
    for _ in range(3):
        plan(torch.zeros(1), torch.ones(1))
    assert jit.jit_calls == 2
    jit.hooks[0].calls.append(print)  # a profiler installs an enter hook
    plan(torch.zeros(1), torch.ones(1))
    assert jit.jit_calls == 3 and jit.launches[-1][6] == {"meta": 1}


def test_an_unrecordable_launch_stays_on_the_jit() -> None:
    jit = FakeJIT(PropertyKernel, copies=True)
    plan = _Launch(jit, (1, 1, 1), (), {}, {}, direct=True)
    for _ in range(4):
        plan([1], [2])  # the JIT passes copies: the caller's objects are not found among the arguments
    assert plan.fast is None and not plan.direct
    assert jit.jit_calls == 4 and len(jit.launches) == 4
