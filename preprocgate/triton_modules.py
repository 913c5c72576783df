"""Importing a module of Triton kernels so that it runs where the gate runs: compiled on CUDA, in Triton's
interpreter on the CPU (CI's machines have no GPU). Triton reads ``TRITON_INTERPRET`` when a kernel is decorated,
that is when its module is first imported, and the setting holds for the whole process."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import torch

from preprocgate.errors import MissingDependencyError, RunError


def import_kernels(module: str, device: torch.device) -> ModuleType:
    """``module`` imported for ``device``: ``TRITON_INTERPRET=1`` set first off CUDA; on CUDA a process that set
    it (a CPU run before) is refused with a clear error rather than running the interpreter on the GPU's data."""
    if device.type != "cuda":
        os.environ.setdefault("TRITON_INTERPRET", "1")
    elif interpreted():
        raise RunError("TRITON_INTERPRET=1 is set but the gate runs on CUDA; unset it to run the compiled kernel")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError("triton", "triton") from exc


def interpreted() -> bool:
    """Whether this process runs Triton's kernels in its interpreter."""
    return os.environ.get("TRITON_INTERPRET") == "1"
