"""Parity probe: run every variant of a pair on the same probe images and measure how far apart they land."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from preprocgate.cache import ParityCache
from preprocgate.data import synthetic
from preprocgate.errors import UserError
from preprocgate.functional.parity import ParityStats, combine, parity_stats
from preprocgate.keys import parity_key
from preprocgate.results import PairResult
from preprocgate.spec import ParityPair, ParityProbe
from preprocgate.timing import work
from preprocgate.types import Size
from preprocgate.variants import Preprocessor


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

    def __init__(
        self,
        config: ParityProbe,
        variants: dict[str, Preprocessor],
        cache: ParityCache | None = None,
        key_base: dict | None = None,
    ) -> None:
        """With a cache, a pair whose variants (``key_base``: :func:`preprocgate.keys.parity_base`), probe images
        and device did not change is read back instead of recomputed."""
        self.config = config
        self.variants = variants
        self.cache = cache
        self.key_base = key_base or {}
        self.keys: list[str] = []  # each pair's result key, once run: what its pictures are drawn from

    def outputs(self, name: str, probes: Sequence[ProbeImage]) -> list[np.ndarray]:
        variant = self.variants[name]
        results: list[np.ndarray | None] = [None] * len(probes)
        by_size: dict[Size, list[int]] = {}
        for i, probe in enumerate(probes):
            by_size.setdefault(probe.output, []).append(i)
        for size, indices in by_size.items():
            with torch.inference_mode():
                with work():
                    tensor = variant([probes[i].image for i in indices], size)
                    variant.synchronize()
                out = tensor.cpu().numpy()
            for j, i in enumerate(indices):
                results[i] = out[j]
        return results  # type: ignore[return-value]

    def _key(self, pair: ParityPair, probes_digest: str) -> str:
        return parity_key(self.key_base, pair.candidate, pair.reference, pair.thresholds.model_dump(), probes_digest)

    def run(self, probes: Sequence[ProbeImage]) -> list[PairResult]:
        h = hashlib.sha256()
        for probe in probes:
            h.update(f"{probe.name}:{probe.image.shape}:{probe.output}".encode())
            h.update(np.ascontiguousarray(probe.image).tobytes())
        keys = self.keys = [self._key(pair, h.hexdigest()) for pair in self.config.pairs]
        found = {k: self.cache.load(k) for k in keys} if self.cache else {}
        missing = [pair for pair, k in zip(self.config.pairs, keys, strict=True) if found.get(k) is None]
        needed = {n for pair in missing for n in (pair.candidate, pair.reference)}
        outputs = {name: self.outputs(name, probes) for name in sorted(needed)}
        results = []
        for pair, key in zip(self.config.pairs, keys, strict=True):
            if found.get(key) is not None:
                results.append(found[key])
                continue
            t = pair.thresholds
            per_probe: list[ParityStats] = [
                parity_stats(c, r, probe.name, atol=t.atol or 0.0, rtol=t.rtol or 0.0)
                for c, r, probe in zip(outputs[pair.candidate], outputs[pair.reference], probes, strict=True)
            ]
            result = PairResult(pair.candidate, pair.reference, t, combine(per_probe), per_probe)
            if self.cache:
                self.cache.save(key, result)
            results.append(result)
        return results
