"""COCO evaluation of every variant's dump on the same images, through the chosen evaluator backend, and the
paired bootstrap intervals of the gated deltas (always from pycocotools' per-image matching)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from preprocgate.cache import ResultCache, intervals_parser, metrics_parser
from preprocgate.evaluators import EVALUATORS, METRICS
from preprocgate.evaluators.cocoeval import PycocotoolsEvaluator
from preprocgate.functional.bootstrap import ImageEvals, Interval, paired_bootstrap
from preprocgate.keys import intervals_key, metrics_base, metrics_key
from preprocgate.spec import BootstrapSpec
from preprocgate.stages.dump import Dump
from preprocgate.timing import work


def _records(dump: Dump, iou_type: str) -> list[dict]:
    """segm sees only detections that carry a mask."""
    records = dump.records
    return records if iou_type == "bbox" else [r for r in records if "segmentation" in r]


class EvaluateStage:
    """Metrics are computed once per dump digest (bit-exact variants share them) and, with a cache, once per
    (digest, ground truth, evaluator version, images): an unchanged rerun evaluates nothing. Bootstrap intervals
    likewise, per pair of digests: a warm run reads no dump for them."""

    def __init__(
        self,
        backend: str,
        annotations: Path,
        iou_types: Sequence[str],
        cache: ResultCache | None = None,
        dataset: str = "",
    ) -> None:
        """``dataset``: the dataset's manifest, which names the ground truth in cache keys."""
        self.annotations = annotations
        self.evaluator = EVALUATORS.get(backend)(annotations)
        self.iou_types = list(iou_types)
        self.cache = cache
        self.key_base = metrics_base(dataset, backend, self.evaluator.identity)
        self._metrics: dict[str, dict[str, dict[str, float]]] = {}
        self._reference: PycocotoolsEvaluator | None = None
        self._image_evals: dict[tuple[str, str], ImageEvals] = {}
        self._intervals: dict[str, dict[str, Interval]] = {}

    def run(self, dump: Dump, image_ids: Sequence[int]) -> dict[str, dict[str, float]]:
        key = metrics_key(self.key_base, dump.digest, self.iou_types, image_ids)
        if key not in self._metrics:
            found = self.cache.load(key, metrics_parser(self.iou_types, tuple(METRICS))) if self.cache else None
            if found is None:
                found = {t: self._evaluate(_records(dump, t), t, image_ids) for t in self.iou_types}
                if self.cache:
                    self.cache.save(key, found)
            self._metrics[key] = found
        return self._metrics[key]

    def _evaluate(self, records: list[dict], iou_type: str, image_ids: Sequence[int]) -> dict[str, float]:
        with work():
            return self.evaluator.evaluate(records, iou_type, image_ids)

    def _evals(self, dump: Dump, iou_type: str, image_ids: Sequence[int]) -> ImageEvals:
        """Per-image matches, once per dump digest (identical dumps, e.g. bit-exact variants, share them)."""
        if self._reference is None:
            self._reference = PycocotoolsEvaluator(self.annotations)
        key = (dump.digest, iou_type)
        if key not in self._image_evals:
            records = _records(dump, iou_type)
            with work():  # pycocotools' per-image matching: the evaluator's computation, as in run
                self._image_evals[key] = self._reference.image_evals(records, iou_type, image_ids)
        return self._image_evals[key]

    def intervals(
        self, reference: Dump, candidate: Dump, metrics: Sequence[str], image_ids: Sequence[int], config: BootstrapSpec
    ) -> dict[str, Interval]:
        """``{"bbox.AP": Interval, ...}`` for candidate − reference over paired image resamples; once per pair of
        dump digests (a bit-exact variant shares the intervals of the one it reproduces)."""
        if reference.digest == candidate.digest:  # identical detections: every resample gives Δ = 0
            return {m: Interval(0.0, 0.0, config.confidence, config.resamples) for m in metrics}
        key = intervals_key(self.key_base, reference.digest, candidate.digest, metrics, image_ids, config.model_dump())
        if key not in self._intervals:
            found = self.cache.load(key, intervals_parser(metrics)) if self.cache else None
            if found is None:
                found = self._compute_intervals(reference, candidate, metrics, image_ids, config)
                if self.cache:
                    self.cache.save(key, {m: dataclasses.astuple(i) for m, i in found.items()})
            self._intervals[key] = found
        return self._intervals[key]

    def _compute_intervals(
        self, reference: Dump, candidate: Dump, metrics: Sequence[str], image_ids: Sequence[int], config: BootstrapSpec
    ) -> dict[str, Interval]:
        out: dict[str, Interval] = {}
        for iou_type in self.iou_types:
            wanted = [m.split(".")[1] for m in metrics if m.startswith(f"{iou_type}.")]
            if not wanted:
                continue
            found = paired_bootstrap(
                self._evals(reference, iou_type, image_ids),
                self._evals(candidate, iou_type, image_ids),
                wanted,
                config.resamples,
                config.seed,
                config.confidence,
            )
            out.update({f"{iou_type}.{m}": interval for m, interval in found.items()})
        return out
