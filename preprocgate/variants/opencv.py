"""The production numpy path: cv2.resize on uint8, pasted on the padded canvas, then float normalisation (each
uint8 level's float32 value computed once and looked up: the same floats, :func:`normalising_tables`).

cv2 has no flag equal to torch's antialiasing or to Pillow's resize: for those modes the variant takes the closest
one (INTER_AREA when the content shrinks, INTER_LINEAR otherwise) and is *not* exact; it is what a production
cv2 path would run, which is the point of comparing it with the training-time reference.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch

from preprocgate.geometry import Geometry
from preprocgate.spec import INTERPOLATIONS, InputSpec
from preprocgate.variants.base import Preprocessor
from preprocgate.variants.staging import Staging

FLAGS = {
    "linear": cv2.INTER_LINEAR,
    "nearest": cv2.INTER_NEAREST,
    "nearest_exact": cv2.INTER_NEAREST_EXACT,
    "area": cv2.INTER_AREA,
}
# input.interpolation → cv2 flag; None: INTER_AREA on a downscale, INTER_LINEAR otherwise (not exact)
_CLOSEST = {
    "bilinear": cv2.INTER_LINEAR,  # cv2's fixed-point bilinear: within one uint8 level of torch's
    "nearest": cv2.INTER_NEAREST,  # floor(dst · in/out), as torch's "nearest"
    "nearest-exact": cv2.INTER_NEAREST_EXACT,  # floor((dst + 0.5) · in/out), as torch's "nearest-exact"
    "bilinear_antialias": None,
    "pillow_bilinear": None,
}


_THREADS = min(8, os.cpu_count() or 1)  # images of a batch at once (8: a usual batch)


class OpenCVResize(Preprocessor):
    """cv2.resize (closest flag) on uint8, pasted on the pad colour → target order → / scale → (x − mean) / std."""

    version = "1"
    interpolations = INTERPOLATIONS

    def __init__(self, config: InputSpec, device: torch.device, interpolation: str | None = None) -> None:
        """``interpolation``: a cv2 flag name (linear, nearest, nearest_exact, area) that overrides the one chosen
        from ``input.interpolation``: a production path that resizes differently from the reference."""
        super().__init__(config, device)
        if interpolation is not None and interpolation not in FLAGS:
            raise ValueError(f"interpolation must be one of {sorted(FLAGS)}")
        self.interpolation = FLAGS[interpolation] if interpolation else _CLOSEST[config.interpolation]
        # the float result (4 bytes a value where the image has 1) is written into page-locked memory too where
        # the upload copies it; on the CPU the tensor would be the reused buffer, rewritten by the next call
        self.result_staging = Staging(device, slots=2 if device.type == "cuda" else 0)
        self._pool: ThreadPoolExecutor | None = None
        self._tables = normalising_tables(config.pixel_scale, self.mean, self.std)
        # the source channel each output channel is looked up from
        self._sources = (2, 1, 0) if self.swap_channels else (0, 1, 2)

    def flag(self, source: tuple[int, int], content: tuple[int, int]) -> int:
        if self.interpolation is not None:
            return self.interpolation
        shrinks = content[0] < source[0] or content[1] < source[1]
        return cv2.INTER_AREA if shrinks else cv2.INTER_LINEAR

    def resize(self, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """uint8 H×W×3 → uint8 ``size`` (height, width)×3."""
        return cv2.resize(image, size[::-1], interpolation=self.flag(image.shape[:2], size))

    def run_batch(self, batch: np.ndarray, geometry: Geometry) -> torch.Tensor:
        return self._each(batch, [geometry] * len(batch))

    def run_ragged(self, images: Sequence[np.ndarray], geometries: Sequence[Geometry]) -> torch.Tensor:
        """Every image of the batch on the pool and in one upload, whatever their sizes: a batch of photos is
        nearly one size an image, and by shape groups each was a call on one thread, an upload and a scatter of
        its own. Same values."""
        return self._each(images, geometries)

    def _each(self, images: Sequence[np.ndarray], geometries: Sequence[Geometry]) -> torch.Tensor:
        """Each image on a thread of a pool (cv2 and numpy release the GIL): the images of a batch are
        independent, and one thread left the dump stage's cv2 variant the slowest of three. Same values."""
        out = self.result_staging.empty((len(images), 3, *geometries[0].canvas), np.float32)
        if len(images) == 1:
            self._one(images[0], out[0], geometries[0])
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(_THREADS, thread_name_prefix="preprocgate-cv2")
            for _ in self._pool.map(lambda i: self._one(images[i], out[i], geometries[i]), range(len(images))):
                pass
        return self.result_staging.upload(out)

    def _one(self, image: np.ndarray, out: np.ndarray, geometry: Geometry) -> None:
        """One image into its 3×canvas slot of the batch."""
        height, width = geometry.canvas
        (ch, cw), (top, left) = geometry.content, geometry.offset
        pad = self.config.resize.pad_value  # RGB; the uint8 canvas is drawn in the source order
        if pad is not None and self.config.source_order == "BGR":
            pad = pad[::-1]
        # as Ultralytics' LetterBox: no resize call when the content keeps the source size
        if image.shape[:2] != (ch, cw):
            image = self.resize(image, (ch, cw))
        zero_pad = not geometry.is_stretch and pad is None  # pad: mean, 0 after normalising (Detectron2)
        if not geometry.is_stretch and pad is not None:  # paste on the pad colour, then normalise all
            canvas = np.empty((height, width, 3), dtype=np.uint8)
            canvas[...] = pad
            canvas[top : top + ch, left : left + cw] = image
            image = canvas
        channels = cv2.split(image)
        if zero_pad:
            out[...] = 0
        for c, source in enumerate(self._sources):
            if zero_pad:
                out[c, top : top + ch, left : left + cw] = cv2.LUT(channels[source], self._tables[c])
            else:
                cv2.LUT(channels[source], self._tables[c], dst=out[c])


def normalising_tables(pixel_scale: float, mean: np.ndarray, std: np.ndarray) -> list[np.ndarray]:
    """Per output channel, the float32 value of each uint8 level: ``(level / pixel_scale − mean) / std`` computed
    with numpy's float32 arithmetic, as the production path computes it on every pixel. Looking the levels up
    (``cv2.LUT``, written straight into the batch's slot) gives those values bit for bit, since each depends on
    its level alone, at a tenth of the time: the per-pixel float passes and their temporaries (megabytes an
    image, allocated and freed by every thread of the pool) made the cv2 variant's batch the slowest of three."""
    levels = np.arange(256, dtype=np.float32)[:, None]
    table = (levels / np.float32(pixel_scale) - mean) / std
    return [np.ascontiguousarray(table[:, c]).reshape(1, 256) for c in range(3)]
