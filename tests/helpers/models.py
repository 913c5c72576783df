"""Adapters for tests: count calls (cache hits must not call the model) and fail on demand (resume)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from preprocgate.errors import RunError
from preprocgate.geometry import Geometry
from preprocgate.models.base import Detections
from preprocgate.models.ort import OnnxRuntimeAdapter


class CountingOnnx(OnnxRuntimeAdapter):
    """The ONNX Runtime adapter, counting images it ran; ``fail_after`` images, it raises (an interruption)."""

    images_run = 0
    fail_after: int | None = None

    def __call__(self, batch: torch.Tensor, geometries: Sequence[Geometry]) -> list[Detections]:
        cls = type(self)
        if cls.fail_after is not None and cls.images_run >= cls.fail_after:
            raise RunError("interrupted (test)")
        cls.images_run += len(batch)
        return super().__call__(batch, geometries)
