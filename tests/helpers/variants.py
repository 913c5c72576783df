"""Deliberately wrong variants, loaded by specs as ``tests.helpers.variants:...`` to prove gates can fail."""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from preprocgate.geometry import Geometry, stretch
from preprocgate.spec import InputSpec
from preprocgate.variants.opencv import OpenCVResize
from preprocgate.variants.torch_interpolate import TorchInterpolate


class NearestResize(TorchInterpolate):
    """torch chain with nearest-neighbour resize instead of bilinear."""

    def resize(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(x, size=size, mode="nearest")


class SwappedChannels(TorchInterpolate):
    """torch chain that forgets the channel swap between source and target order."""

    def run_batch(self, batch: np.ndarray, geometry: Geometry) -> torch.Tensor:
        return super().run_batch(np.ascontiguousarray(batch[..., ::-1]), geometry)


class CountingTorch(TorchInterpolate):
    """The torch chain, counting the images it preprocessed (cache hits must not call it)."""

    images = 0

    def run_batch(self, batch: np.ndarray, geometry: Geometry) -> torch.Tensor:
        type(self).images += len(batch)
        return super().run_batch(batch, geometry)


def needs_missing_extra(config: object, device: torch.device) -> TorchInterpolate:
    """A plug-in variant whose optional dependency is absent, as the Triton variant is without triton."""
    from preprocgate.errors import MissingDependencyError

    raise MissingDependencyError("somepackage", "someextra")


class CvSwapped(OpenCVResize):
    """The production cv2 path fed RGB where it expects the decoder's BGR (channels swapped)."""

    def run_batch(self, batch: np.ndarray, geometry: Geometry) -> torch.Tensor:
        return super().run_batch(np.ascontiguousarray(batch[..., ::-1]), geometry)


class CvStretched(OpenCVResize):
    """The production cv2 path stretching the image over the canvas where the spec letterboxes it."""

    def run_batch(self, batch: np.ndarray, geometry: Geometry) -> torch.Tensor:
        return super().run_batch(batch, stretch(geometry.source, geometry.canvas))


class CvZeroPad(OpenCVResize):
    """The production cv2 path padding with 0 instead of the spec's pad colour."""

    def __init__(self, config: InputSpec, device: torch.device) -> None:
        resize = config.resize.model_copy(update={"pad": (0, 0, 0)})
        super().__init__(config.model_copy(update={"resize": resize}), device)


class OneUlpOff(TorchInterpolate):
    """The torch chain with every 97th output element moved up by one representable float (1 ULP): invisible
    to the eye and to a tolerance, a failure for a bit-exact pair."""

    def run_batch(self, batch: np.ndarray, geometry: Geometry) -> torch.Tensor:
        out = super().run_batch(batch, geometry).contiguous()
        flat = out.view(-1)
        flat[::97] = torch.nextafter(flat[::97], torch.tensor(float("inf"), dtype=out.dtype, device=out.device))
        return out


class SlowTorch(TorchInterpolate):
    """The torch chain, ``SLEEP`` seconds slower per call of ``run_batch`` (``slept``: in all): time spent inside
    a variant."""

    SLEEP = 0.2
    slept = 0.0

    def run_batch(self, batch: np.ndarray, geometry: Geometry) -> torch.Tensor:
        time.sleep(self.SLEEP)
        type(self).slept += self.SLEEP
        return super().run_batch(batch, geometry)
