"""The training-time reference: F.interpolate on float tensors, as torchvision-style pipelines do."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from preprocgate.geometry import Geometry
from preprocgate.spec import InputSpec
from preprocgate.variants.base import Preprocessor

# input.interpolation → F.interpolate's mode and antialias flag
MODES = {
    "bilinear": ("bilinear", False),
    "bilinear_antialias": ("bilinear", True),
    "nearest": ("nearest", False),
    "nearest-exact": ("nearest-exact", False),
}


class TorchInterpolate(Preprocessor):
    """F.interpolate (the mode; align_corners=False) on float NCHW, pasted on the pad → / scale → (x − mean) / std."""

    version = "1"
    interpolations = tuple(MODES)
    uploads = True

    def __init__(self, config: InputSpec, device: torch.device, antialias: bool = False) -> None:
        """``antialias``: force torch's antialiasing kernel with ``interpolation: bilinear`` (the older spelling
        of ``bilinear_antialias``)."""
        super().__init__(config, device)
        self.mode, mode_antialias = MODES[config.interpolation]
        if antialias and self.mode != "bilinear":
            raise ValueError(f"antialias applies to bilinear only, not to {config.interpolation}")
        self.antialias = bool(antialias) or mode_antialias
        shape = (1, 3, 1, 1)
        self.mean_t = torch.tensor(self.mean, device=device).reshape(shape)
        self.std_t = torch.tensor(self.std, device=device).reshape(shape)
        pad = self.pad_value
        # pad: mean → the canvas is 0 after normalising, so the normalised content goes on zeros
        self.pad_t = torch.tensor(pad or (0, 0, 0), dtype=torch.float32, device=device).reshape(shape)

    def to_float(self, batch: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 N×H×W×3 in the source order (host, or already on the device) → float32 contiguous N×3×H×W in the
        target order."""
        x = (self.upload(batch) if isinstance(batch, np.ndarray) else batch).permute(0, 3, 1, 2)
        if self.swap_channels:
            x = x.flip(1)
        # contiguous NCHW, as ToTensor produces: torch picks its kernel (and arithmetic) by memory format.
        return x.float().contiguous()

    def resize(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.mode != "bilinear":  # torch refuses align_corners for the nearest modes
            return F.interpolate(x, size=size, mode=self.mode)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=self.antialias)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x / self.config.pixel_scale - self.mean_t) / self.std_t

    def place(self, x: torch.Tensor, geometry: Geometry) -> torch.Tensor:
        """Paste the content on a float32 canvas of :attr:`pad_t` (an exact copy)."""
        (top, left), (ch, cw) = geometry.offset, geometry.content
        canvas = self.pad_t.expand(len(x), 3, *geometry.canvas).contiguous()
        canvas[:, :, top : top + ch, left : left + cw] = x
        return canvas

    def run_batch(self, batch: np.ndarray, geometry: Geometry) -> torch.Tensor:
        return self.forward(self.to_float(batch), geometry)

    def run_ragged(self, images: Sequence[np.ndarray], geometries: Sequence[Geometry]) -> torch.Tensor:
        """The batch's images of every size in one upload (:meth:`Staging.pack`), then the chain on each (torch
        has no ragged interpolate), the results joined once: by shape groups each image was an upload and a
        scatter into the output of its own. Same values: the same chain on the same tensors."""
        src, offsets = self.staging.pack(images)
        return torch.cat(
            [
                self.forward(self.to_float(src[at : at + image.nbytes].view(1, *image.shape)), geometry)
                for image, at, geometry in zip(images, offsets, geometries, strict=True)
            ]
        )

    def forward(self, x: torch.Tensor, geometry: Geometry) -> torch.Tensor:
        """The chain on a float32 N×3×H×W tensor in the target order, already on the device."""
        x = self.resize(x, geometry.content)
        if geometry.is_stretch:
            return self.normalize(x)
        if self.pad_value is None:
            return self.place(self.normalize(x), geometry)
        return self.normalize(self.place(x, geometry))
