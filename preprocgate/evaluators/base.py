"""What an evaluator computes: COCO summary metrics per IoU type, on a given set of images."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

# COCOeval.stats indices of the metrics a gate can threshold
METRICS = {"AP": 0, "AP50": 1, "AP75": 2, "APs": 3, "APm": 4, "APl": 5, "AR100": 8}


class Evaluator(ABC):
    """Loads ground truth once; evaluates any number of result sets against it."""

    def __init__(self, annotations: Path) -> None:
        self.annotations = annotations

    @abstractmethod
    def evaluate(self, results: list[dict], iou_type: str, image_ids: Sequence[int]) -> dict[str, float]:
        """``{"AP": .., "AP50": .., ...}`` for ``iou_type`` in {"bbox", "segm"} over ``image_ids``."""
