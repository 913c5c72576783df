"""Pictures stage: gathers what the report's PNGs show and draws them into the cache, keyed by what they are
drawn from, so that a warm run with unchanged inputs only finds them (no matplotlib import, no variant rerun).

- each parity pair whose outputs differ: its worst probes (largest ULP distance, then |Δ|), both variants rerun
  on just those images;
- each detection diff pair that disagrees: the photos where the detections disagree most, with both variants'
  boxes and masks.

The report writer copies the PNGs beside the report (:func:`preprocgate.report.render.write_reports`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from preprocgate.data.coco import CocoDataset
from preprocgate.errors import MissingDependencyError
from preprocgate.fileio import atomic_write_bytes
from preprocgate.functional.matching import image_disagreement
from preprocgate.keys import picture_key
from preprocgate.results import DiffResult, PairResult, Picture
from preprocgate.stages.dump import Dump
from preprocgate.stages.probe import ParityProbeStage, ProbeImage

WORST = 3
"""Probes or photos per picture: enough to see a pattern, small enough to read on a phone."""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


class PicturesStage:
    def __init__(self, cache_dir: Path, gate: str, source_order: str) -> None:
        self.root = cache_dir / "pictures"
        self.gate = gate
        self.source_order = source_order
        self.pictures: list[Picture] = []
        self.notes: list[str] = []

    def _picture(self, kind: str, subject: str, title: str, key: str, draw) -> None:
        """The cached PNG under ``key``, drawn by ``draw()`` when absent."""
        path = self.root / f"{key}.png"
        if not path.is_file():
            try:
                atomic_write_bytes(path, draw())  # empty: drawn from these inputs, nothing to show
            except MissingDependencyError as exc:
                if not self.notes:
                    self.notes.append(f"Pictures skipped: {exc}.")
                return
        if path.stat().st_size == 0:
            return
        name = f"{self.gate}-pictures/{kind}-{_slug(subject.replace(' vs ', '-vs-'))}.png"
        self.pictures.append(Picture(kind, subject, title, name, str(path)))

    def parity(
        self, pairs: list[PairResult], keys: list[str], probes: list[ProbeImage], stage: ParityProbeStage
    ) -> None:
        by_name = {p.name: p for p in probes}
        for pair, key in zip(pairs, keys, strict=True):
            ranked = sorted(pair.per_probe, key=lambda s: (-s.max_ulp, -s.max_abs, s.shapes[0]))
            worst = [by_name[s.shapes[0]] for s in ranked[:WORST] if s.max_ulp > 0 and s.shapes[0] in by_name]
            if not worst:
                continue  # bit for bit equal: nothing to show

            def draw(pair: PairResult = pair, worst: list[ProbeImage] = worst) -> bytes:
                from preprocgate.report.pictures import ProbeView, parity_picture

                cand, ref = stage.outputs(pair.candidate, worst), stage.outputs(pair.reference, worst)
                views = [ProbeView(p.name, self._rgb(p.image), c, r) for p, c, r in zip(worst, cand, ref, strict=True)]
                return parity_picture(f"{pair.label}: the {len(worst)} probes with the largest ULP distance", views)

            title = f"the {len(worst)} probes with the largest ULP distance: absolute difference and ULP heatmaps"
            self._picture(
                "parity",
                pair.label,
                title,
                picture_key("parity", {"pair": pair.label, "result": key, "worst": WORST}),
                draw,
            )

    def detections(self, diffs: list[DiffResult], dumps: dict[str, Dump], dataset: CocoDataset) -> None:
        for diff in diffs:
            reference, candidate = dumps[diff.reference], dumps[diff.candidate]
            if reference.digest == candidate.digest:
                continue  # the same detections everywhere: nothing to show

            def draw(diff: DiffResult = diff, reference: Dump = reference, candidate: Dump = candidate) -> bytes:
                from preprocgate.report.pictures import DetectionView, detection_picture

                ref, cand = reference.results, candidate.results  # read here: a cached picture needs no records
                worst = _most_disagreeing(diff, ref, cand)
                if not worst:
                    return b""  # the dumps differ only below the score threshold
                names = {r.id: r.file_name for r in dataset.records}
                images = dataset.decode([i for i, _, _ in worst])
                views = [
                    DetectionView(names[i], images[i][..., ::-1], ref[i], cand[i], lr, lc, diff.score_threshold)
                    for i, lr, lc in worst
                    if i in images
                ]
                title = f"{diff.label}: the {len(views)} photos where detections disagree most"
                return detection_picture(title, diff.reference, diff.candidate, views)

            inputs = {
                "pair": diff.label,  # in the title: two pairs with the same dumps still get their own picture
                "reference": reference.digest,
                "candidate": candidate.digest,
                "dataset": dataset.manifest,
                "score": diff.score_threshold,
                "iou": diff.iou_threshold,
                "worst": WORST,
            }
            title = "photos with the largest disagreement: both variants' boxes and masks"
            self._picture("detections", diff.label, title, picture_key("detections", inputs), draw)

    def _rgb(self, image: np.ndarray) -> np.ndarray:
        return image[..., ::-1] if self.source_order == "BGR" and image.ndim == 3 else image


def _most_disagreeing(
    diff: DiffResult, ref: dict[int, list[dict]], cand: dict[int, list[dict]]
) -> list[tuple[int, set[int], set[int]]]:
    """(image id, unmatched reference, unmatched candidate indices) of the WORST images that disagree most."""
    scored = []
    for image_id in sorted(set(ref) & set(cand)):
        score, lost_r, lost_c = image_disagreement(
            ref[image_id], cand[image_id], diff.score_threshold, diff.iou_threshold
        )
        if score > 1e-6:  # a matched pair's IoU of 1 - 1e-16 is no disagreement
            scored.append((-score, image_id, lost_r, lost_c))
    return [(i, lr, lc) for _, i, lr, lc in sorted(scored, key=lambda t: (t[0], t[1]))[:WORST]]
