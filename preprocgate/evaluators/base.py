"""What an evaluator computes: COCO summary metrics per IoU type, on a given set of images."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import ClassVar

# COCOeval.stats indices of the metrics a gate can threshold
METRICS = {"AP": 0, "AP50": 1, "AP75": 2, "APs": 3, "APm": 4, "APl": 5, "AR100": 8}


class Evaluator(ABC):
    """Loads ground truth once; evaluates any number of result sets against it."""

    package: ClassVar[str] = ""  # the distribution that computes the numbers; its version keys cached metrics

    def __init__(self, annotations: Path) -> None:
        self.annotations = annotations

    @property
    def identity(self) -> str:
        """Class and package version: a new evaluator release re-evaluates instead of reusing cached metrics."""
        try:
            found = version(self.package) if self.package else "unversioned"
        except PackageNotFoundError:
            found = "unknown"
        return f"{type(self).__module__}.{type(self).__qualname__}/{self.package}=={found}"

    @abstractmethod
    def evaluate(self, results: list[dict], iou_type: str, image_ids: Sequence[int]) -> dict[str, float]:
        """``{"AP": .., "AP50": .., ...}`` for ``iou_type`` in {"bbox", "segm"} over ``image_ids``."""
