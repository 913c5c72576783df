"""Adapters for tests: count calls (cache hits must not call the model), fail on demand (resume), kill their
process (a lost Ray worker)."""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from preprocgate.errors import RunError
from preprocgate.geometry import Geometry
from preprocgate.hashing import file_sha256
from preprocgate.models.base import Detections, ModelAdapter
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


class BrightestBlock(ModelAdapter):
    """A tiny deterministic detector for tests about the plumbing around a model (caches, baselines, hostile
    datasets): one box per image over the brightest quarter of the preprocessed input, scored by its mean.
    Any change of the input tensor moves the box or the score, so variants that differ give different dumps."""

    def __init__(self, device: torch.device, precision: str = "fp32", *, file: Path, category: int = 1) -> None:
        super().__init__(device, precision)
        self.file_digest = file_sha256(file)
        self.category = category

    @property
    def identity(self) -> dict[str, str]:
        return {"adapter": "BrightestBlock", "file": self.file_digest, "category": str(self.category)}

    def __call__(self, batch: torch.Tensor, geometries: Sequence[Geometry]) -> list[Detections]:
        out = []
        for image, geometry in zip(batch.float().cpu(), geometries, strict=True):
            _, h, w = image.shape
            quarters = [(y, x) for y in (0, h // 2) for x in (0, w // 2)]
            means = [float(image[:, y : y + h // 2, x : x + w // 2].mean()) for y, x in quarters]
            best = int(np.argmax(means))
            y, x = quarters[best]
            box = geometry.boxes_to_source(np.array([[x, y, x + w // 2, y + h // 2]], np.float64))
            score = np.array([1 / (1 + np.exp(-means[best]))], np.float32)
            out.append(Detections(box.astype(np.float32), score, np.array([self.category], np.int64)))
        return out


class DiesOnce(OnnxRuntimeAdapter):
    """The ONNX Runtime adapter in a process that kills itself (SIGKILL, as a lost node or the OOM killer would)
    on its ``at``-th batch, once per ``marker`` file: the Ray executor must restart the worker and retry the batch."""

    def __init__(self, device: torch.device, precision: str = "fp32", *, file: Path, marker: str, at: int = 2) -> None:
        super().__init__(device, precision, file=file)
        self.marker, self.at, self.calls = Path(marker), at, 0

    def __call__(self, batch: torch.Tensor, geometries: Sequence[Geometry]) -> list[Detections]:
        self.calls += 1
        if self.calls == self.at and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(batch, geometries)
