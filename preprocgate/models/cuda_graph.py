"""A network's forward replayed as one CUDA graph: why a small detector's dump need not wait on Python.

A nano detector at batch 8 launches hundreds of small kernels per forward, each costing the host more time than
the GPU spends on it; its fp16 forward measured no faster than fp32 on an H200 (benchmarks/RESULTS.md), the sign
of a forward bound by launches. Captured once per input shape, the whole forward is one replay: the host is free
for the dump's other work (decoding, encoding masks, writing parts) while the GPU runs it.

The graph reads a fixed input buffer and writes fixed output buffers, so each call copies its input in and its
outputs out; batches of another size are padded to the captured one by the caller (every batch then takes the
same graph, so that a rerun or a resumed dump computes each batch as the first run did). A replay runs the
kernels the capture recorded, so its outputs can differ from an eager forward's where a library picks another
kernel under capture (cuBLAS may): the adapter's identity names the mode, and its dumps are cached apart.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from preprocgate.errors import RunError

WARMUP = 3  # eager forwards on a side stream before the capture: cuDNN and cuBLAS choose their kernels there


class CapturedForward:
    """``forward`` captured for inputs shaped like ``example`` (a CUDA tensor), replayed per call."""

    def __init__(self, forward: Callable[[torch.Tensor], tuple[torch.Tensor, ...]], example: torch.Tensor) -> None:
        self.input = example.clone()
        side = torch.cuda.Stream(example.device)
        side.wait_stream(torch.cuda.current_stream(example.device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP):
                forward(self.input)
        torch.cuda.current_stream(example.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        try:
            # thread_local: the dump's other threads (decoding into page-locked memory, encoding masks on a
            # stream of their own) keep calling CUDA while this thread captures
            with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
                self.outputs = tuple(forward(self.input))
        except RuntimeError as exc:  # a host synchronisation or a CPU tensor inside the forward
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RunError(f"cuda_graphs: the forward cannot be captured as a CUDA graph ({why})") from exc

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        self.input.copy_(x)
        self.graph.replay()
        return tuple(o.clone() for o in self.outputs)  # the next replay overwrites the graph's own buffers
