"""Detection dumps: every variant's preprocessing, then the same model, on the same decoded images.

An unchanged variant is read from the cache instead of recomputed (its adapter is never called); a
partially written dump resumes from its finished parts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from preprocgate.cache import DumpCache
from preprocgate.data.coco import CocoDataset
from preprocgate.functional.coco import to_results
from preprocgate.hashing import digest_json
from preprocgate.models import ModelAdapter
from preprocgate.variants import Preprocessor


@dataclass(frozen=True)
class Dump:
    """One variant's detections (COCO result records by image id) and where they came from."""

    variant: str
    key: str
    digest: str
    results: dict[int, list[dict]]
    cached_images: int
    computed_images: int
    seconds: float

    @property
    def records(self) -> list[dict]:
        return [r for image_id in sorted(self.results) for r in self.results[image_id]]

    @property
    def detections(self) -> int:
        return sum(len(v) for v in self.results.values())


def dump_digest(results: dict[int, list[dict]]) -> str:
    """Digest of a dump: equal detections give equal digests, whatever order images finished in."""
    return digest_json([[image_id, results[image_id]] for image_id in sorted(results)])


class DumpStage:
    def __init__(
        self,
        cache: DumpCache,
        adapter: ModelAdapter,
        dataset: CocoDataset,
        batch_size: int,
        key_base: dict,
    ) -> None:
        self.cache = cache
        self.adapter = adapter
        self.dataset = dataset
        self.batch_size = batch_size
        self.key_base = key_base
        self._decoded: dict[int, np.ndarray] | None = None

    def key(self, variant_identity: dict) -> str:
        return digest_json({**self.key_base, "variant": variant_identity})

    def images(self) -> dict[int, np.ndarray]:
        """Decoded once per run, on first need, shared by every variant."""
        if self._decoded is None:
            self._decoded = self.dataset.decode([r.id for r in self.dataset.records])
        return self._decoded

    def run(
        self,
        name: str,
        variant: Preprocessor,
        variant_identity: dict,
        tick: Callable[[int], None] = lambda _: None,
    ) -> Dump:
        start = time.perf_counter()
        key = self.key(variant_identity)
        done = self.cache.load_parts(key)
        cached = len(done)
        complete = self.cache.complete(key)
        if complete is not None:  # images found corrupt when this dump was computed stay excluded
            self.dataset.corrupt.update({int(k): v for k, v in complete.get("corrupt", {}).items()})
        else:
            todo = [r.id for r in self.dataset.valid if r.id not in done]
            if todo:
                images = self.images()
                todo = [i for i in todo if i in images]
                first_part = len(list(self.cache.folder(key).glob("part-*.json")))
                for n, lo in enumerate(range(0, len(todo), self.batch_size)):
                    chunk = todo[lo : lo + self.batch_size]
                    batch = [images[i] for i in chunk]
                    with torch.inference_mode():
                        detections = self.adapter(variant(batch), [im.shape[:2] for im in batch])
                    part = {i: to_results(i, d) for i, d in zip(chunk, detections, strict=True)}
                    self.cache.write_part(key, first_part + n, part)
                    done.update(part)
                    tick(len(chunk))
            corrupt = {str(k): v for k, v in sorted(self.dataset.corrupt.items())}
            self.cache.mark_complete(key, {"variant": name, "images": len(done), "corrupt": corrupt})
        results = {r.id: done[r.id] for r in self.dataset.valid if r.id in done}
        return Dump(
            variant=name,
            key=key,
            digest=dump_digest(results),
            results=results,
            cached_images=min(cached, len(results)),
            computed_images=len(results) - min(cached, len(results)),
            seconds=time.perf_counter() - start,
        )
