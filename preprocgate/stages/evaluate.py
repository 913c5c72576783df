"""COCO evaluation of every variant's dump on the same images, through the chosen evaluator backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from preprocgate.evaluators import EVALUATORS
from preprocgate.stages.dump import Dump


class EvaluateStage:
    def __init__(self, backend: str, annotations: Path, iou_types: Sequence[str]) -> None:
        self.evaluator = EVALUATORS.get(backend)(annotations)
        self.iou_types = list(iou_types)

    def run(self, dump: Dump, image_ids: Sequence[int]) -> dict[str, dict[str, float]]:
        """Metrics per IoU type; segm sees only detections that carry a mask."""
        records = dump.records
        return {
            t: self.evaluator.evaluate(
                records if t == "bbox" else [r for r in records if "segmentation" in r], t, image_ids
            )
            for t in self.iou_types
        }
