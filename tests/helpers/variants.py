"""Deliberately wrong variants, loaded by specs as ``tests.helpers.variants:...`` to prove gates can fail."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from preprocgate.variants.torch_interpolate import TorchInterpolate


class NearestResize(TorchInterpolate):
    """torch chain with nearest-neighbour resize instead of bilinear."""

    def run_batch(self, batch: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).flip(1).float().contiguous()
        x = F.interpolate(x, size=size, mode="nearest")
        return ((x / 255 - self.mean_t) / self.std_t).to(self.device)


class SwappedChannels(TorchInterpolate):
    """torch chain that forgets the BGR → RGB swap."""

    def run_batch(self, batch: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
        return super().run_batch(np.ascontiguousarray(batch[..., ::-1]), size)


class CountingTorch(TorchInterpolate):
    """The torch chain, counting the images it preprocessed (cache hits must not call it)."""

    images = 0

    def run_batch(self, batch: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
        type(self).images += len(batch)
        return super().run_batch(batch, size)


def needs_missing_extra(config: object, device: torch.device) -> TorchInterpolate:
    """A plug-in variant whose optional dependency is absent, as the Triton variant is without triton."""
    from preprocgate.errors import MissingDependencyError

    raise MissingDependencyError("somepackage", "someextra")
