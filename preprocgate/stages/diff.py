"""Detection diff stage: pair every declared (candidate, reference) dump with the study's greedy matching."""

from __future__ import annotations

from preprocgate.functional.matching import diff_dumps
from preprocgate.results import DiffResult
from preprocgate.spec import DiffSpec
from preprocgate.stages.dump import Dump


class DiffStage:
    def __init__(self, config: DiffSpec) -> None:
        self.config = config

    def run(self, candidate: Dump, reference: Dump) -> DiffResult:
        stats = diff_dumps(reference.results, candidate.results, self.config.score_threshold, self.config.iou_threshold)
        return DiffResult(
            candidate.variant, reference.variant, self.config.score_threshold, self.config.iou_threshold, stats
        )
