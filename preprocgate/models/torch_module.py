"""A PyTorch nn.Module built by ``module:factory`` plus a local weights file; never downloads anything.

The module takes the preprocessed batch (N×3×H×W) and returns one torchvision-style dict per image: ``boxes``
(xyxy, input pixels), ``scores``, ``labels`` and optionally ``masks`` (probabilities, K×1×H×W or K×H×W).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from preprocgate.errors import RunError, UserError
from preprocgate.geometry import Geometry
from preprocgate.hashing import digest_json, file_sha256
from preprocgate.models.base import Detections, ModelAdapter, rescale
from preprocgate.registry import import_target


class TorchModuleAdapter(ModelAdapter):
    """torch nn.Module from module:factory + local weights (fp32 or fp16)."""

    def __init__(
        self,
        device: torch.device,
        precision: str = "fp32",
        *,
        factory: str,
        file: Path,
        factory_params: dict[str, Any] | None = None,
        label_map: dict[int, int] | None = None,
        mask_threshold: float = 0.5,
    ) -> None:
        super().__init__(device, precision)
        if precision not in ("fp32", "fp16"):
            raise UserError(f"precision {precision!r}: the torch adapter runs fp32 or fp16")
        if precision == "fp16" and device.type != "cuda":
            raise UserError("precision fp16 needs a CUDA device")
        self.factory, self.weights = factory, Path(file)
        self.factory_params = factory_params or {}
        self.label_map = {int(k): int(v) for k, v in (label_map or {}).items()}
        self.mask_threshold = mask_threshold
        build = import_target(factory)
        model = build(**self.factory_params)  # type: ignore[operator]
        try:
            state = torch.load(self.weights, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError) as exc:
            raise RunError(f"{self.weights}: cannot load weights: {exc}") from exc
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise RunError(f"{self.weights}: weights do not fit {factory}: {str(exc).splitlines()[0]}") from exc
        model.eval().to(device)
        self.model = model.half() if precision == "fp16" else model

    @property
    def identity(self) -> dict[str, str]:
        return {
            "adapter": f"torch/{self.version}",
            "weights_sha256": file_sha256(self.weights),
            "config": digest_json(
                [self.factory, self.factory_params, self.label_map, self.mask_threshold, self.precision]
            ),
            "torch": torch.__version__,
        }

    def __call__(self, batch: torch.Tensor, geometries: Sequence[Geometry]) -> list[Detections]:
        dtype = torch.float16 if self.precision == "fp16" else torch.float32
        with torch.inference_mode():
            outputs = self.model(batch.to(self.device, dtype))
            return [
                rescale(
                    out["boxes"],
                    out["scores"],
                    self._labels(out["labels"]),
                    out.get("masks"),
                    geometry,
                    self.mask_threshold,
                )
                for out, geometry in zip(outputs, geometries, strict=True)
            ]

    def _labels(self, labels: torch.Tensor) -> np.ndarray:
        raw = labels.cpu().numpy().astype(np.int64)
        return np.array([self.label_map.get(int(x), int(x)) for x in raw], dtype=np.int64)
