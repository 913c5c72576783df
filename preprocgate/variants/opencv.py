"""The production numpy path: cv2.resize on uint8, then float normalisation on the CPU."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from preprocgate.spec import InputSpec
from preprocgate.variants.base import Preprocessor, Size


class OpenCVResize(Preprocessor):
    """cv2.resize INTER_LINEAR on uint8 → RGB → /255 → (x − mean) / std, numpy float32 on the CPU."""

    version = "1"

    def __init__(self, config: InputSpec, device: torch.device, interpolation: str = "linear") -> None:
        super().__init__(config, device)
        flags = {"linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST, "area": cv2.INTER_AREA}
        if interpolation not in flags:
            raise ValueError(f"interpolation must be one of {sorted(flags)}")
        self.interpolation = flags[interpolation]

    def run_batch(self, batch: np.ndarray, size: Size) -> torch.Tensor:
        height, width = size
        out = np.empty((len(batch), 3, height, width), dtype=np.float32)
        for i, image in enumerate(batch):
            resized = cv2.resize(image, (width, height), interpolation=self.interpolation)
            if self.config.source_order == "BGR":
                resized = resized[..., ::-1]
            x = resized.astype(np.float32) / np.float32(255)
            out[i] = ((x - self.mean) / self.std).transpose(2, 0, 1)
        return torch.from_numpy(out).to(self.device)
