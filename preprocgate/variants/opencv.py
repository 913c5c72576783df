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
        pad = self.config.resize.pad_value  # RGB; the uint8 canvas is drawn in the source order
        if pad is not None and self.config.source_order == "BGR":
            pad = pad[::-1]
        scale = np.float32(self.config.pixel_scale)
        out = np.empty((len(batch), 3, height, width), dtype=np.float32)
        for i, image in enumerate(batch):
            # as Ultralytics' LetterBox: no resize call when the content keeps the source size
            if image.shape[:2] != (ch, cw):
                image = cv2.resize(image, (cw, ch), interpolation=self.interpolation)
            zero_pad = not geometry.is_stretch and pad is None  # pad: mean, 0 after normalising (Detectron2)
            if not geometry.is_stretch and pad is not None:  # paste on the pad colour, then normalise all
                canvas = np.empty((height, width, 3), dtype=np.uint8)
                canvas[...] = pad
                canvas[top : top + ch, left : left + cw] = image
                image = canvas
            if self.swap_channels:
                image = image[..., ::-1]
            x = ((image.astype(np.float32) / scale - self.mean) / self.std).transpose(2, 0, 1)
            if zero_pad:
                out[i] = 0
                out[i, :, top : top + ch, left : left + cw] = x
            else:
                out[i] = x
        return torch.from_numpy(out).to(self.device)
