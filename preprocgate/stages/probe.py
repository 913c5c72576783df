"""Parity probe: run every variant of a pair on the same probe images and measure how far apart they land."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from preprocgate.data import synthetic
from preprocgate.errors import UserError
from preprocgate.functional.parity import ParityStats, combine, parity_stats
from preprocgate.results import PairResult
from preprocgate.spec import ParityProbe
from preprocgate.variants import Preprocessor

Size = tuple[int, int]


@dataclass(frozen=True)
class ProbeImage:
    """A decoded image in the gate's source channel order, and the output size it is probed at."""

    name: str
    image: np.ndarray
    output: Size


def read_image(path: Path, source_order: str) -> np.ndarray:
    """Decode like production code does (OpenCV, BGR), converted to the gate's declared source order."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"{path}: cannot decode image")
    return image if source_order == "BGR" else np.ascontiguousarray(image[..., ::-1])


def probe_images(
    config: ParityProbe, files: Sequence[Path], default_output: Size, source_order: str
) -> list[ProbeImage]:
    probes: list[ProbeImage] = []
    synth = config.images.synthetic
    if synth is not None:
        for case in config.images.sweep:
            h, w = case.source
            out = case.output or default_output
            for gen in synth.generators:
                name = f"{gen}:{h}x{w}->{out[0]}x{out[1]}"
                probes.append(ProbeImage(name, synthetic.make(gen, synth.seed, h, w), out))
    for path in files:
        probes.append(ProbeImage(path.name, read_image(path, source_order), default_output))
    return probes


class ParityProbeStage:
    """Computes each variant's output once per probe, then the parity stats of every declared pair."""

    def __init__(self, config: ParityProbe, variants: dict[str, Preprocessor]) -> None:
        self.config = config
        self.variants = variants

    def outputs(self, name: str, probes: Sequence[ProbeImage]) -> list[np.ndarray]:
        variant = self.variants[name]
        results: list[np.ndarray | None] = [None] * len(probes)
        by_size: dict[Size, list[int]] = {}
        for i, probe in enumerate(probes):
            by_size.setdefault(probe.output, []).append(i)
        for size, indices in by_size.items():
            with torch.inference_mode():
                out = variant([probes[i].image for i in indices], size).cpu().numpy()
            for j, i in enumerate(indices):
                results[i] = out[j]
        return results  # type: ignore[return-value]

    def run(self, probes: Sequence[ProbeImage]) -> list[PairResult]:
        needed = {n for pair in self.config.pairs for n in (pair.candidate, pair.reference)}
        outputs: dict[str, list[np.ndarray]] = {}
        for name in sorted(needed):
            outputs[name] = self.outputs(name, probes)
        results = []
        for pair in self.config.pairs:
            t = pair.thresholds
            per_probe: list[ParityStats] = [
                parity_stats(c, r, probe.name, atol=t.atol or 0.0, rtol=t.rtol or 0.0)
                for c, r, probe in zip(outputs[pair.candidate], outputs[pair.reference], probes, strict=True)
            ]
            results.append(PairResult(pair.candidate, pair.reference, t, combine(per_probe), per_probe))
        return results
