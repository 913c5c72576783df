"""COCOeval through pycocotools, or through faster-coco-eval's drop-in classes."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from preprocgate.errors import MissingDependencyError, RunError
from preprocgate.evaluators.base import METRICS, Evaluator
from preprocgate.functional.bootstrap import ImageEvals, from_cocoeval


class PycocotoolsEvaluator(Evaluator):
    """The reference implementation (pycocotools COCOeval)."""

    package = "pycocotools"

    def __init__(self, annotations: Path) -> None:
        super().__init__(annotations)
        self.coco_cls, self.eval_cls = self._classes()
        with contextlib.redirect_stdout(io.StringIO()):
            self.gt = self.coco_cls(str(annotations))

    def _classes(self) -> tuple[Any, Any]:
        try:
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval
        except ImportError as exc:
            raise MissingDependencyError("pycocotools", "") from exc
        return COCO, COCOeval

    def _run(self, results: list[dict], iou_type: str, image_ids: Sequence[int], summarize: bool) -> Any:
        with contextlib.redirect_stdout(io.StringIO()):
            dt = self.gt.loadRes(_copies(results))
            ev = self.eval_cls(self.gt, dt, iou_type)
            ev.params.imgIds = sorted(image_ids)
            ev.evaluate()
            if summarize:
                ev.accumulate()
                ev.summarize()
        return ev

    def evaluate(self, results: list[dict], iou_type: str, image_ids: Sequence[int]) -> dict[str, float]:
        if not results:  # loadRes rejects an empty list; no detections score 0 everywhere
            return dict.fromkeys(METRICS, 0.0)
        ev = self._run(results, iou_type, image_ids, summarize=True)
        return {name: float(ev.stats[i]) for name, i in METRICS.items()}

    def image_evals(self, results: list[dict], iou_type: str, image_ids: Sequence[int]) -> ImageEvals:
        """Per-image matches (COCOeval.evalImgs) for the bootstrap."""
        if not results:
            raise RunError("a dump without detections has no bootstrap interval")
        return from_cocoeval(self._run(results, iou_type, image_ids, summarize=False))


def _copies(results: list[dict]) -> list[dict]:
    """loadRes adds keys (id, area, bbox) to each record, never inside one: copying the records, not the masks'
    RLE strings, keeps the caller's dump unchanged at a fraction of a deep copy's cost."""
    return [{**r, "segmentation": dict(r["segmentation"])} if "segmentation" in r else dict(r) for r in results]


class FasterCocoEvaluator(PycocotoolsEvaluator):
    """faster-coco-eval: C++ evaluation, same statistics (a test checks equality on the demo)."""

    package = "faster-coco-eval"

    def _classes(self) -> tuple[Any, Any]:
        try:
            from faster_coco_eval import COCO, COCOeval_faster
        except ImportError as exc:
            raise MissingDependencyError("faster-coco-eval", "fast-eval") from exc
        return COCO, COCOeval_faster
