"""The variant contract shared by built-in and third-party preprocessing paths."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from preprocgate.errors import RunError, UserError
from preprocgate.plugins import check_params
from preprocgate.spec import InputSpec
from preprocgate.types import Size


class Preprocessor(ABC):
    """One preprocessing path.

    Subclasses implement :meth:`run_batch` for a stack of same-shape images; :meth:`__call__` groups a list of
    images of any shapes into such stacks, so every implementation batches as much as the data allows.
    ``version`` names the arithmetic: bump it whenever outputs may change, since caches key on it.
    """

    version: ClassVar[str] = "1"

    def __init__(self, config: InputSpec, device: torch.device) -> None:
        self.config = config
        self.device = device
        self.mean = np.asarray(config.mean, dtype=np.float32)
        self.std = np.asarray(config.std, dtype=np.float32)

    @property
    def description(self) -> str:
        """One line for reports: what this path computes (arithmetic choices included)."""
        return (type(self).__doc__ or type(self).__name__).strip().splitlines()[0]

    @abstractmethod
    def run_batch(self, batch: np.ndarray, size: Size) -> torch.Tensor:
        """``batch``: uint8 N×H×W×3 in ``config.source_order``; returns float32 N×3×size on ``self.device``."""

    def __call__(self, images: Sequence[np.ndarray], size: Size | None = None) -> torch.Tensor:
        size = tuple(size or self.config.size)  # type: ignore[assignment]
        out = torch.empty((len(images), 3, *size), dtype=torch.float32, device=self.device)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(images):
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise RunError(f"image {i}: expected uint8 H×W×3, got {image.dtype} {image.shape}")
            groups.setdefault(image.shape, []).append(i)
        for indices in groups.values():
            batch = np.stack([images[i] for i in indices])
            result = self.run_batch(batch, size)
            if result.shape != (len(indices), 3, *size) or result.dtype != torch.float32:
                raise RunError(
                    f"{type(self).__name__} returned {tuple(result.shape)} {result.dtype}, "
                    f"expected {(len(indices), 3, *size)} float32"
                )
            out[torch.as_tensor(indices, device=self.device)] = result.to(self.device)
        return out

    def synchronize(self) -> None:
        """Wait for queued device work, so that timings measure it."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


VariantFactory = Callable[..., Preprocessor]


def build_variant(
    factory: VariantFactory, config: InputSpec, device: torch.device, params: dict[str, Any]
) -> Preprocessor:
    problem = check_params(factory, params)
    if problem:
        raise UserError(f"bad params: {problem}")
    variant = factory(config, device, **params)
    if not callable(variant):
        raise RunError(f"{factory!r} did not return a callable preprocessor")
    return variant
