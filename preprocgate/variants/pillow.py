"""The classic training-time path: Pillow's ``Image.resize(BILINEAR)`` on uint8, then float normalisation.

Pillow's bilinear filter widens its support with the downscale factor (an antialiasing triangle filter) and
computes in fixed point on uint8, rounding to uint8 after each of its two passes; neither cv2 nor torch computes
that, which makes this path the reference for models trained on PIL images (docs/arithmetic.md).
"""

from __future__ import annotations

import numpy as np
import torch

from preprocgate.errors import MissingDependencyError
from preprocgate.spec import InputSpec
from preprocgate.variants.opencv import OpenCVResize


class PillowResize(OpenCVResize):
    """PIL Image.resize BILINEAR on uint8, pasted on the pad colour → target order → / scale → (x − mean) / std."""

    version = "1"
    interpolations = ("pillow_bilinear",)

    def __init__(self, config: InputSpec, device: torch.device) -> None:
        super().__init__(config, device, interpolation="linear")
        try:
            from PIL import Image
        except ImportError as exc:
            raise MissingDependencyError("pillow", "pillow") from exc
        self.image = Image

    def resize(self, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        # channels resample independently, so the source order does not matter; the array is H×W×3 uint8: RGB mode
        resized = self.image.fromarray(np.ascontiguousarray(image)).resize(size[::-1], self.image.Resampling.BILINEAR)
        return np.asarray(resized)
