"""The variant contract shared by built-in and third-party preprocessing paths."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from preprocgate.errors import RunError, UserError
from preprocgate.functional.transfer import to_device
from preprocgate.geometry import Geometry, plan_batch
from preprocgate.plugins import check_params
from preprocgate.spec import InputSpec
from preprocgate.types import Size
from preprocgate.variants.staging import Staging


class Preprocessor(ABC):
    """One preprocessing path.

    Subclasses implement :meth:`run_batch` for a stack of same-shape images; :meth:`__call__` plans where every
    image lands (:func:`preprocgate.geometry.plan_batch`, from ``config.resize``) and groups a list of images of
    any shapes into such stacks, so every implementation batches as much as the data allows and all of them draw
    the same canvas. ``version`` names the arithmetic: bump it whenever outputs may change, since caches key on it.
    ``interpolations`` lists the ``input.interpolation`` modes the path implements (``config.interpolation``).
    """

    version: ClassVar[str] = "1"
    # the input.interpolation modes this path computes; the spec refuses the others at validate time (exit 2)
    interpolations: ClassVar[tuple[str, ...]] = ("bilinear",)
    # whether run_batch hands the batch it is given, unchanged, to :meth:`upload`: then __call__ starts that upload
    # while it is still stacking the images, and the copy on the host overlaps the one to the device. Ignored for
    # a subclass that overrides run_batch (it may change the batch first; see __init__); one that changes the
    # batch in another method before the upload must set it False
    uploads: ClassVar[bool] = False

    def __init__(self, config: InputSpec, device: torch.device) -> None:
        self.config = config
        self.device = device
        self.mean = np.asarray(config.mean, dtype=np.float32)
        self.std = np.asarray(config.std, dtype=np.float32)
        # where :meth:`__call__` stacks each batch and :meth:`upload` copies it from (page-locked on CUDA)
        self.staging = Staging(device)
        owner = _owner(type(self), "uploads")
        self._prefetch = self.uploads and type(self).run_batch is vars(owner).get("run_batch")
        # a subclass that changes run_batch but not run_ragged (a plug-in's own twist on a built-in path) is
        # called by shape groups: the inherited run_ragged would leave its change out
        self._ragged = issubclass(_owner(type(self), "run_ragged"), _owner(type(self), "run_batch"))

    @property
    def description(self) -> str:
        """One line for reports: what this path computes (arithmetic choices included)."""
        return (type(self).__doc__ or type(self).__name__).strip().splitlines()[0]

    @property
    def swap_channels(self) -> bool:
        """Whether the source order differs from the order the model expects."""
        return self.config.source_order != self.config.target_order

    @property
    def pad_value(self) -> tuple[int, int, int] | None:
        """The pad colour in uint8 units, in ``config.target_order`` (the spec gives it in RGB); None where the
        pad is 0 in the normalised output (``pad: mean``, how Detectron2 pads)."""
        pad = self.config.resize.pad_value
        return pad[::-1] if pad is not None and self.config.target_order == "BGR" else pad  # type: ignore[return-value]

    @abstractmethod
    def run_batch(self, batch: np.ndarray, geometry: Geometry) -> torch.Tensor:
        """``batch``: uint8 N×H×W×3 in ``config.source_order``, all placed by ``geometry``; returns float32
        N×3×``geometry.canvas`` on ``self.device``: the content region (``geometry.offset``, ``geometry.content``)
        holds the resized image, normalised; the rest holds :attr:`pad_value` normalised alike, or 0 where that
        is None."""

    def run_ragged(self, images: Sequence[np.ndarray], geometries: Sequence[Geometry]) -> torch.Tensor | None:
        """Images of several shapes (``geometries[i]`` places ``images[i]``; one canvas) in one go, for a path
        that can do better than one :meth:`run_batch` per shape group (a set of photos is nearly one shape per
        image); the same values :meth:`run_batch` gives each. None: this path, or this batch, goes by shape
        groups (the default). Not called for a subclass that overrides :meth:`run_batch` without overriding
        this too."""
        return None

    def plan(self, images: Sequence[np.ndarray], size: Size | None = None) -> list[Geometry]:
        """Where each image lands: ``size`` (default ``config.size``) under ``config.resize``, one shared canvas."""
        size = tuple(size or self.config.size)  # type: ignore[assignment]
        return plan_batch([image.shape[:2] for image in images], size, self.config.resize)

    def __call__(self, images: Sequence[np.ndarray], size: Size | None = None) -> torch.Tensor:
        for i, image in enumerate(images):
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise RunError(f"image {i}: expected uint8 H×W×3, got {image.dtype} {image.shape}")
        geometries = self.plan(images, size)
        if not geometries:
            return torch.empty((0, 3, *(size or self.config.size)), dtype=torch.float32, device=self.device)
        canvas = geometries[0].canvas
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(images):
            groups.setdefault(image.shape, []).append(i)
        if len(groups) == 1:  # one stack in input order: run_batch's tensor is the answer, no copy into another
            batch = self.staging.stack(images, prefetch=self._prefetch)
            return self._checked(self.run_batch(batch, geometries[0]), len(images), canvas)
        ragged = self.run_ragged(images, geometries) if self._ragged else None
        if ragged is not None:
            return self._checked(ragged, len(images), canvas)
        out = torch.empty((len(images), 3, *canvas), dtype=torch.float32, device=self.device)
        for indices in groups.values():
            batch = self.staging.stack([images[i] for i in indices], prefetch=self._prefetch)
            result = self._checked(self.run_batch(batch, geometries[indices[0]]), len(indices), canvas)
            out[to_device(torch.as_tensor(indices), self.device)] = result
        return out

    def upload(self, batch: np.ndarray) -> torch.Tensor:
        """``batch`` on the device: the batch :meth:`run_batch` was given goes without a bounce buffer and
        without holding the host (:class:`~preprocgate.variants.staging.Staging`); any other array as usual."""
        return self.staging.upload(batch)

    def _checked(self, result: torch.Tensor, n: int, canvas: Size) -> torch.Tensor:
        if result.shape != (n, 3, *canvas) or result.dtype != torch.float32:
            raise RunError(
                f"{type(self).__name__} returned {tuple(result.shape)} {result.dtype}, "
                f"expected {(n, 3, *canvas)} float32"
            )
        return result.to(self.device).contiguous()  # as the stacked output always was

    def synchronize(self) -> None:
        """Wait for the work this thread queued on the device (its current stream), so that timings measure it.

        The current stream, not the whole device: a dump may run its masks' encoding on a stream of its own in
        another thread (the local executor's ``encode_stream``), and a device-wide wait after each call would
        make the inferring thread wait for that encoding too, undoing the overlap. A variant that works on a
        stream of its own must order its output on the current stream (``Stream.wait_stream``), as any torch
        code handing a tensor to the caller must."""
        if self.device.type == "cuda":
            torch.cuda.current_stream(self.device).synchronize()


def _owner(cls: type, name: str) -> type:
    """The class in ``cls``'s MRO that defines ``name``."""
    return next(c for c in cls.__mro__ if name in vars(c))


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
