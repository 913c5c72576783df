"""The training-time reference: F.interpolate on float tensors, as torchvision-style pipelines do."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from preprocgate.geometry import Geometry
from preprocgate.spec import InputSpec
from preprocgate.variants.base import Preprocessor


class TorchInterpolate(Preprocessor):
    """F.interpolate bilinear (align_corners=False) on float NCHW, pasted on the pad → / scale → (x − mean) / std."""

    version = "1"

    def __init__(self, config: InputSpec, device: torch.device, antialias: bool = False) -> None:
        super().__init__(config, device)
        self.antialias = bool(antialias)
        shape = (1, 3, 1, 1)
        self.mean_t = torch.tensor(self.mean, device=device).reshape(shape)
        self.std_t = torch.tensor(self.std, device=device).reshape(shape)
        self.pad_t = torch.tensor(self.pad_value, dtype=torch.float32, device=device).reshape(shape)

    def to_float(self, batch: np.ndarray) -> torch.Tensor:
        """uint8 N×H×W×3 in the source order → float32 contiguous N×3×H×W in the target order."""
        x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2)
        if self.swap_channels:
            x = x.flip(1)
        # contiguous NCHW, as ToTensor produces: torch picks its kernel (and arithmetic) by memory format.
        return x.float().contiguous()

    def resize(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=self.antialias)

    def place(self, x: torch.Tensor, geometry: Geometry) -> torch.Tensor:
        """Resize to the content size and paste on a canvas of the pad value (0–255 units), both float32."""
        x = self.resize(x, geometry.content)
        if geometry.is_stretch:
            return x
        (top, left), (ch, cw) = geometry.offset, geometry.content
        canvas = self.pad_t.expand(len(x), 3, *geometry.canvas).contiguous()
        canvas[:, :, top : top + ch, left : left + cw] = x
        return canvas

    def run_batch(self, batch: np.ndarray, geometry: Geometry) -> torch.Tensor:
        x = self.place(self.to_float(batch), geometry)
        return (x / self.config.pixel_scale - self.mean_t) / self.std_t
