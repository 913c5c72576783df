"""Detection diff stage: pair every declared (candidate, reference) dump with the study's greedy matching.

Diffs are cached by the two dumps' digests and the thresholds: a warm run computes none, and so reads no dump."""

from __future__ import annotations

import dataclasses

from preprocgate.cache import ResultCache, diff_stats
from preprocgate.functional.matching import diff_dumps
from preprocgate.keys import diff_key
from preprocgate.results import DiffResult
from preprocgate.spec import DiffSpec
from preprocgate.stages.dump import Dump


class DiffStage:
    def __init__(self, config: DiffSpec, cache: ResultCache | None = None) -> None:
        self.config = config
        self.cache = cache

    def run(self, candidate: Dump, reference: Dump) -> DiffResult:
        score, iou = self.config.score_threshold, self.config.iou_threshold
        key = diff_key(reference.digest, candidate.digest, score, iou, reference.image_ids)
        stats = self.cache.load(key, diff_stats) if self.cache else None
        if stats is None:
            stats = diff_dumps(reference.results, candidate.results, score, iou)
            if self.cache:
                self.cache.save(key, dataclasses.asdict(stats))
        return DiffResult(candidate.variant, reference.variant, score, iou, stats)
