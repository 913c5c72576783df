"""The Triton variant's direct launch (``_Launch``): after one launch through the JIT it records (over two more)
what the JIT passes to the compiled kernel's launcher, and what the launcher passes to its C launch function,
and then calls the deepest level it could record itself with each call's tensor addresses and stream.

No GPU here, so the JIT and the compiled kernel are stand-ins that behave as Triton's do (3.x: the JIT binds the
arguments, looks the kernel up, calls ``kernel.run(grid..., stream, function, metadata, launch metadata, hooks,
*args)``; ``run`` is a property over ``_run`` in newer releases, a plain attribute in older ones; newer launchers
are Python objects that allocate scratch space, then call their C ``launch``). The GPU figures (host time per
call) are benchmarks/kernel_cuda.py's."""

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


class Launcher:
    """Newer Triton's launcher: a Python ``__call__`` that allocates scratch space (a buffer per call when the
    kernel needs one: ``scratch``), then calls the C ``launch`` with the flags and scratch inserted."""

    def __init__(self, sink: Any, scratch: bool = False) -> None:
        self.launch = sink
        self.scratch = scratch
        self.python_calls = 0

    def __call__(self, gx: int, gy: int, gz: int, stream: int, function: Any, *rest: Any) -> None:
        self.python_calls += 1
        buffer = torch.zeros(2) if self.scratch else None
        self.launch(gx, gy, gz, stream, function, False, False, buffer, None, *rest)


class FakeJIT:
    def __init__(self, kernel_type: type, copies: bool = False, launcher: Launcher | None = None) -> None:
        self.launches: list[tuple] = []  # what reached the launcher (or its C launch)
        self.jit_calls = 0
        self.hooks = (HookChain(), HookChain())
        self.launcher = launcher
        if launcher is not None:
            launcher.launch = lambda *call: self.launches.append(call)
        self.kernel = kernel_type(launcher or (lambda *call: self.launches.append(call)))
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


TABLE = torch.arange(4.0)  # one of the plan's own tensors (the separable modes' tables)


def _launch(jit: FakeJIT) -> _Launch:
    plan = _Launch(jit, (4, 5, 6), (1, 2.5, TABLE), {"BLOCK": 128}, {"num_warps": 1}, direct=True)
    plan.stream = lambda device: 9  # type: ignore[method-assign]
    return plan


@pytest.mark.parametrize("kernel_type", [PropertyKernel, AttributeKernel])
def test_calls_after_the_second_go_straight_to_the_launcher_with_their_tensors(kernel_type: type) -> None:
    jit = FakeJIT(kernel_type)
    plan = _launch(jit)
    tensors = [(torch.zeros(1), torch.ones(1)) for _ in range(4)]
    for src, dst in tensors:
        plan(src, dst)
    # the second call records two launches through the JIT (the same arguments twice: nothing made per call)
    assert jit.jit_calls == 3 and plan.fast is not None
    assert len(jit.launches) == 5
    for i, ((src, dst), call) in enumerate(
        zip([tensors[0], *tensors[1:2] * 2, *tensors[2:]], jit.launches, strict=True)
    ):
        assert call[:3] == (4, 5, 6) and call[4:6] == ("fn", "meta")
        args = call[9:]
        if i < 3:  # through the JIT: the tensors themselves
            assert args[0] is src and args[1] is dst and args[4] is TABLE
        else:  # direct: every tensor as its address, which Triton's launchers take as is
            assert args[:2] == (src.data_ptr(), dst.data_ptr()) and args[4] == TABLE.data_ptr()
        assert args[2:4] == (1, 2.5) and args[5:] == (128, 1)
    assert jit.launches[-1][3] == 9  # the caller's current stream, not the recorded one
    assert jit.launches[-1][6] is None  # launch metadata is for hooks only
    assert isinstance(PropertyKernel.run, property) and jit.kernel.run is not None  # launcher restored


def test_a_launcher_with_a_c_launch_is_skipped_and_its_c_launch_called() -> None:
    launcher = Launcher(sink=None)
    jit = FakeJIT(PropertyKernel, launcher=launcher)
    plan = _launch(jit)
    tensors = [(torch.zeros(1), torch.ones(1)) for _ in range(5)]
    for src, dst in tensors:
        plan(src, dst)
    assert launcher.python_calls == 3 and jit.jit_calls == 3  # the rest skipped the launcher's Python
    assert len(jit.launches) == 6 and callable(launcher.launch) and launcher.launch.__name__ == "<lambda>"
    for (src, dst), call in zip(tensors[2:], jit.launches[3:], strict=True):
        assert call[:4] == (4, 5, 6, 9) and call[4:9] == ("fn", False, False, None, None)
        assert call[9] == "meta" and call[10] is None  # launch metadata (made per call) is for hooks only
        assert call[13:] == (src.data_ptr(), dst.data_ptr(), 1, 2.5, TABLE.data_ptr(), 128, 1)


def test_per_call_scratch_keeps_the_launchers_own_call() -> None:
    """A launcher that passes a buffer of its own to its C launch (scratch space, allocated per call) cannot be
    replayed below its ``__call__``: calls go to the launcher, which allocates again each time."""
    launcher = Launcher(sink=None, scratch=True)
    jit = FakeJIT(AttributeKernel, launcher=launcher)
    plan = _launch(jit)
    for _ in range(5):
        plan(torch.zeros(1), torch.ones(1))
    assert jit.jit_calls == 3 and launcher.python_calls == 6 and plan.fast is not None
    assert plan.fast.function is launcher
    scratch = [call[7] for call in jit.launches]
    assert all(isinstance(b, torch.Tensor) for b in scratch) and len({id(b) for b in scratch}) == 6


def test_a_launch_hook_sends_calls_through_the_jit() -> None:
    jit = FakeJIT(PropertyKernel)
    plan = _launch(jit)
    for _ in range(3):
        plan(torch.zeros(1), torch.ones(1))
    assert jit.jit_calls == 3
    jit.hooks[0].calls.append(print)  # a profiler installs an enter hook
    plan(torch.zeros(1), torch.ones(1))
    assert jit.jit_calls == 4 and jit.launches[-1][6] == {"meta": 1}


def test_an_unrecordable_launch_stays_on_the_jit() -> None:
    jit = FakeJIT(PropertyKernel, copies=True)
    plan = _Launch(jit, (1, 1, 1), (), {}, {}, direct=True)
    for _ in range(4):
        plan([1], [2])  # the JIT passes copies: the caller's objects are not found among the arguments
    assert plan.fast is None and not plan.direct
    assert jit.jit_calls == 5 and len(jit.launches) == 5  # 1, 2 for the recording, then 3 through the JIT


def test_a_ragged_launch_s_table_is_a_per_call_tensor_like_the_source_and_output() -> None:
    """A tensor passed after the output (a ragged launch's table) goes after the plan's own arguments, and the
    direct calls put each call's own address there."""
    jit = FakeJIT(PropertyKernel)
    plan = _launch(jit)
    calls = [(torch.zeros(1), torch.ones(1), torch.arange(3)) for _ in range(4)]
    for tensors in calls:
        plan(*tensors)
    assert jit.jit_calls == 3 and plan.fast is not None and plan.fast.at == (9, 10, 14)
    for (src, dst, table), call in zip(calls[2:], jit.launches[3:], strict=True):
        assert call[9:] == (src.data_ptr(), dst.data_ptr(), 1, 2.5, TABLE.data_ptr(), table.data_ptr(), 128, 1)


def test_a_call_s_image_count_is_the_grid_s_third_extent_through_the_jit_and_direct() -> None:
    """A ragged launch covers as many images as the batch has of its choice: one plan, the count per call."""
    jit = FakeJIT(PropertyKernel)
    plan = _launch(jit)
    for images in (3, 5, 2, 7):
        plan(torch.zeros(1), torch.ones(1), images=images)
    assert plan.fast is not None and jit.jit_calls == 3
    assert [call[:3] for call in jit.launches] == [(4, 5, 3), (4, 5, 5), (4, 5, 5), (4, 5, 2), (4, 5, 7)]
    plan(torch.zeros(1), torch.ones(1))
    assert jit.launches[-1][:3] == (4, 5, 6)  # the plan's own
