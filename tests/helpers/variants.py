"""Deliberately wrong variants, loaded by specs as ``tests.helpers.variants:...`` to prove gates can fail."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from preprocgate.geometry import Geometry
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
