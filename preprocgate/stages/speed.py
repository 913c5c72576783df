"""Speed probe: median preprocessing time per image for each variant, on the run's device."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from preprocgate.data import synthetic
from preprocgate.results import Timing
from preprocgate.spec import SpeedProbe
from preprocgate.timing import work
from preprocgate.variants import Preprocessor
from preprocgate.variants.arena import ImageArena


class SpeedProbeStage:
    """Times ``variant(images)`` end to end: from uint8 host arrays to the normalised tensor on the device.

    The images are held as the dump stage holds decoded images, back to back in an
    :class:`~preprocgate.variants.arena.ImageArena` (page-locked for a GPU), so that the probe times the call the
    dumps make."""

    def __init__(self, config: SpeedProbe, output: tuple[int, int], device_name: str) -> None:
        self.config = config
        self.output = output
        self.device_name = device_name
        self._images: dict[str, list[np.ndarray]] = {}  # by device type: one arena for every variant

    def images(self, device: torch.device) -> list[np.ndarray]:
        """The probe's batch, in an arena for ``device``'s kind of host memory."""
        if device.type not in self._images:
            h, w = self.config.source
            made = [synthetic.make("natural", i, h, w) for i in range(self.config.batch)]
            # a slab of the batch's size: the probe holds one batch
            self._images[device.type] = ImageArena(pinned=device.type == "cuda", slab_bytes=0).hold(made)
        return self._images[device.type]

    def time(self, name: str, variant: Preprocessor) -> Timing:
        h, w = self.config.source
        images = self.images(variant.device)
        samples = []
        output = self.output
        with torch.inference_mode(), work():  # the loop times the variant and nothing else
            for i in range(self.config.warmup + self.config.repeats):
                start = time.perf_counter()
                output = tuple(variant(images).shape[2:])  # the canvas: keep_ratio's follows the source
                variant.synchronize()
                if i >= self.config.warmup:
                    samples.append((time.perf_counter() - start) / len(images))
        return Timing(
            variant=name,
            median_s=statistics.median(samples),
            min_s=min(samples),
            repeats=self.config.repeats,
            batch=self.config.batch,
            source=(h, w),
            output=output,  # type: ignore[arg-type]
            device=self.device_name,
        )
