"""The production numpy path: cv2.resize on uint8, pasted on the padded canvas, then float normalisation."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from preprocgate.geometry import Geometry
from preprocgate.spec import InputSpec
from preprocgate.variants.base import Preprocessor


class OpenCVResize(Preprocessor):
    """cv2.resize INTER_LINEAR on uint8, pasted on the pad colour → target order → / pixel_scale → (x − mean) / std."""

    version = "1"

    def __init__(self, config: InputSpec, device: torch.device, interpolation: str = "linear") -> None:
        super().__init__(config, device)
        flags = {"linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST, "area": cv2.INTER_AREA}
        if interpolation not in flags:
            raise ValueError(f"interpolation must be one of {sorted(flags)}")
        self.interpolation = flags[interpolation]

    def run_batch(self, batch: np.ndarray, geometry: Geometry) -> torch.Tensor:
        height, width = geometry.canvas
        (ch, cw), (top, left) = geometry.content, geometry.offset
        # the canvas is drawn in the source order, so the pad colour (RGB in the spec) is turned into it
        pad = np.asarray(self.config.resize.pad_value, dtype=np.uint8)
        pad = pad[::-1] if self.config.source_order == "BGR" else pad
        scale = np.float32(self.config.pixel_scale)
        out = np.empty((len(batch), 3, height, width), dtype=np.float32)
        for i, image in enumerate(batch):
            # as Ultralytics' LetterBox: no resize call when the content keeps the source size
            if image.shape[:2] != (ch, cw):
                image = cv2.resize(image, (cw, ch), interpolation=self.interpolation)
            if geometry.is_stretch:
                canvas = image
            else:
                canvas = np.empty((height, width, 3), dtype=np.uint8)
                canvas[...] = pad
                canvas[top : top + ch, left : left + cw] = image
            if self.swap_channels:
                canvas = canvas[..., ::-1]
            x = canvas.astype(np.float32) / scale
            out[i] = ((x - self.mean) / self.std).transpose(2, 0, 1)
        return torch.from_numpy(out).to(self.device)
