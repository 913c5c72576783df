"""Detections ↔ COCO result records (masks as compressed RLE), the format pycocotools evaluates.

:class:`Detections` lives here, below the model adapters that produce it, so that encoding needs no model code."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from preprocgate.functional import rle
from preprocgate.functional.masks import UpsampledMasks
from preprocgate.hashing import results_json


@dataclass(frozen=True)
class EncodedMasks:
    """Masks already compressed to COCO RLE strings where they were found (:mod:`preprocgate.functional.rle`):
    what a GPU's masks become before they reach the host, a few bytes per run instead of K×H×W bytes.

    ``json``: each string as JSON writes it between its quotes, where the encoder made that beside it
    (:func:`~preprocgate.functional.rle.encode_many_json`: views of its host buffer), for the part file's text
    (:func:`preprocgate.hashing.results_json`'s ``escaped``)."""

    height: int
    width: int
    counts: list[str]
    json: list[bytes | memoryview] | None = None

    @classmethod
    def of(cls, masks: torch.Tensor | UpsampledMasks) -> EncodedMasks:
        return cls(int(masks.shape[1]), int(masks.shape[2]), rle.encode(masks))

    def __len__(self) -> int:
        return len(self.counts)


@dataclass
class Detections:
    """One image's detections; boxes, scores and labels on the host.

    ``masks`` is bool K×H×W at original size, or None. It may stay a tensor on the model's device: encoding it
    to RLE there moves the compressed strings to the host instead of K×H×W bytes (the dump stage replaces it by
    those, an :class:`EncodedMasks`); or not be drawn yet (:class:`~preprocgate.functional.masks.UpsampledMasks`),
    for the GPU RLE to draw as it reads.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | torch.Tensor | UpsampledMasks | EncodedMasks | None = None

    def __len__(self) -> int:
        return len(self.scores)


def encode_masks(masks: np.ndarray | torch.Tensor | UpsampledMasks | EncodedMasks) -> list[dict]:
    """Bool K×H×W masks (host array, tensor on any device, not yet drawn, or already :class:`EncodedMasks`) →
    compressed RLEs with ``counts`` as str (JSON-ready).

    Every path gives pycocotools' own strings: on an accelerator :mod:`preprocgate.functional.rle` computes them
    there; on the host pycocotools' ``encode`` is the faster way.
    """
    if len(masks) == 0:
        return []
    if _on_accelerator(masks):
        masks = EncodedMasks.of(masks)
    if isinstance(masks, UpsampledMasks):
        masks = masks.drawn()
    if isinstance(masks, EncodedMasks):
        return [{"size": [masks.height, masks.width], "counts": c} for c in masks.counts]
    from pycocotools import mask as mask_utils

    masks = masks.numpy() if isinstance(masks, torch.Tensor) else masks
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    return [{"size": [int(s) for s in r["size"]], "counts": r["counts"].decode("ascii")} for r in rles]


def portable(detections: Sequence[Detections]) -> list[Detections]:
    """The detections with masks on an accelerator replaced by their :class:`EncodedMasks`: host-only and small,
    ready for the writer thread, and the device memory of the masks freed at once. A batch's masks are encoded
    together: per image, the encoder's handful of host synchronisations cost more than the network (RF-DETR,
    100 masks an image, benchmarks/RESULTS.md)."""
    out = list(detections)
    on_device = [i for i, d in enumerate(out) if _on_accelerator(d.masks)]
    if on_device:
        tensors = [out[i].masks for i in on_device]
        for i, masks, (counts, texts) in zip(on_device, tensors, rle.encode_many_json(tensors), strict=True):
            encoded = EncodedMasks(int(masks.shape[1]), int(masks.shape[2]), counts, texts)
            out[i] = dataclasses.replace(out[i], masks=encoded)
    return out


def _on_accelerator(masks: object) -> bool:
    return isinstance(masks, torch.Tensor | UpsampledMasks) and masks.device.type != "cpu"


def to_results(image_id: int, det: Detections) -> list[dict]:
    """One COCO result per detection: bbox xywh rounded to 0.01 px, score to 1e-6 (stable JSON digests)."""
    return _records(int(image_id), det, _rounded_columns(det))


def to_results_json(image_id: int, det: Detections) -> tuple[list[dict], bytes]:
    """:func:`to_results` and the part file's text of them (``results_json(records, det.masks.json,
    allow_nan=True)``, byte for byte), made together: the dump's writer thread does this for every image while
    the next batch is inferred, holding the GIL that the inferring thread needs, so its cost is paid twice.

    Where the masks' JSON text came from the GPU (:attr:`EncodedMasks.json`) or there are no masks, each record's
    text is put together from its numbers, all formatted by one ``json.dumps`` call (the same float and NaN
    spellings), instead of copying every record without its mask, encoding them all and splicing the masks back:
    about half the time (benchmarks/dump_overhead.py). Anything else takes :func:`~preprocgate.hashing.results_json`."""
    image_id = int(image_id)
    columns = _rounded_columns(det)
    records = _records(image_id, det, columns)
    masks = det.masks
    if masks is not None and not (isinstance(masks, EncodedMasks) and masks.json is not None):
        return records, results_json(records, allow_nan=True)
    if not records:
        return records, b"[]"
    numbers, labels = columns[0], columns[2]
    tokens = json.dumps(numbers, allow_nan=True, separators=(",", ":")).encode("ascii")[1:-1].split(b",")
    head = b',"image_id":%d,"score":' % image_id
    out = [b"["]
    if masks is None:
        for k, label in enumerate(labels):
            x, y, w, h, score = tokens[5 * k : 5 * k + 5]
            out += (b'{"bbox":[', x, b",", y, b",", w, b",", h, b'],"category_id":%d' % label, head, score, b"},")
    else:  # each mask's text joined once, where it lies: megabytes an image for a noisy model's masks
        size = b'","size":[%d,%d]}},' % (masks.height, masks.width)
        for k, (label, text) in enumerate(zip(labels, masks.json, strict=True)):
            x, y, w, h, score = tokens[5 * k : 5 * k + 5]
            out += (b'{"bbox":[', x, b",", y, b",", w, b",", h, b'],"category_id":%d' % label, head, score)
            out += (b',"segmentation":{"counts":"', text, size)
    out[-1] = out[-1][:-1] + b"]"  # the last record's comma
    return records, b"".join(out)


_EXACT_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))  # widened to float64 exactly, few bits


def _rounded_columns(det: Detections) -> tuple[list[float], int, list[int]]:
    """Every detection's x, y, w, h (rounded to 0.01) and score (to 1e-6) in one flat list, 5 a detection, the
    count, and the labels as ints: the values of :func:`to_results`'s records.

    Python's ``round(v, n)`` (correctly rounded, ties to even, of the value's exact binary expansion) one value at
    a time was a third of the writer's time; here it is vectorised where that is provably the same: a float32
    (or float16) value times 100 or 10⁶ is exact in float64 (24 + 7 and 24 + 20 bits < 53), so ``rint`` rounds
    the exact product as Python rounds the exact value, and the division back is correctly rounded as Python's
    conversion back is. A width ``x1 - x0`` is exact in float64 with at most 25 + (the corners' exponent
    difference) bits, so its product is exact while that difference is at most 21; any other width, and boxes or
    scores in float64, take ``round`` itself."""
    boxes, scores = np.asarray(det.boxes), np.asarray(det.scores)
    labels = [int(v) for v in np.asarray(det.labels).tolist()]
    n = len(scores)
    table = np.empty((n, 5), dtype=np.float64)
    if n and boxes.dtype in _EXACT_DTYPES and scores.dtype in _EXACT_DTYPES:
        corners = boxes[:, :2].astype(np.float64)
        sizes = boxes[:, 2:].astype(np.float64) - corners
        table[:, :2] = np.rint(corners * 100) / 100
        table[:, 2:4] = np.rint(sizes * 100) / 100
        table[:, 4] = np.rint(scores.astype(np.float64) * 1e6) / 1e6
        exponents = np.frexp(boxes.astype(np.float64))[1]
        inexact = (np.abs(exponents[:, 2:] - exponents[:, :2]) > 21) & (boxes[:, 2:] != 0) & (boxes[:, :2] != 0)
        for k, j in zip(*np.nonzero(inexact), strict=True):
            table[k, 2 + j] = round(float(sizes[k, j]), 2)
        return table.ravel().tolist(), n, labels
    values = []
    for (x0, y0, x1, y1), score in zip(boxes.tolist(), scores.tolist(), strict=True):
        values += (round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2), round(score, 6))
    return values, n, labels


def _records(image_id: int, det: Detections, columns: tuple[list[float], int, list[int]]) -> list[dict]:
    values, n, labels = columns
    rles = encode_masks(det.masks) if det.masks is not None else None
    if len(labels) != n or (rles is not None and len(rles) != n):
        raise ValueError(
            f"image {image_id}: {n} scores, {len(labels)} labels, {n if rles is None else len(rles)} masks"
        )
    out = []
    for k, label in enumerate(labels):
        record = {
            "image_id": image_id,
            "category_id": label,
            "bbox": values[5 * k : 5 * k + 4],
            "score": values[5 * k + 4],
        }
        if rles is not None:
            record["segmentation"] = rles[k]
        out.append(record)
    return out
