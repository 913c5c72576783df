"""The training-time reference: F.interpolate on float tensors, as torchvision-style pipelines do."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from preprocgate.spec import InputSpec
from preprocgate.variants.base import Preprocessor, Size


class TorchInterpolate(Preprocessor):
    """F.interpolate bilinear (align_corners=False) on float NCHW → /255 → (x − mean) / std."""

    version = "1"

    def __init__(self, config: InputSpec, device: torch.device, antialias: bool = False) -> None:
        super().__init__(config, device)
        self.antialias = bool(antialias)
        shape = (1, 3, 1, 1)
        self.mean_t = torch.tensor(self.mean, device=device).reshape(shape)
        self.std_t = torch.tensor(self.std, device=device).reshape(shape)

    def run_batch(self, batch: np.ndarray, size: Size) -> torch.Tensor:
        x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2)
        if self.config.source_order == "BGR":
            x = x.flip(1)
        # contiguous NCHW, as ToTensor produces: torch picks its kernel (and arithmetic) by memory format.
        x = x.float().contiguous()
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=self.antialias)
        return (x / 255 - self.mean_t) / self.std_t
