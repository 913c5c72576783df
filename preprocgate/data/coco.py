"""COCO-format datasets: the image list, a content manifest for cache keys, and decoding once per run.

Image bytes are read (and hashed) once, from a local folder or an fsspec URL (:mod:`preprocgate.data.source`);
pixels are decoded only when some variant must be computed, in threads (OpenCV releases the GIL). An image that
cannot be decoded, or whose size disagrees with the annotations, is *corrupt*: it is named in the report and
excluded from every variant and from evaluation.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from preprocgate.data.source import ImageSource, LocalImages
from preprocgate.errors import RunError, UserError


@dataclass(frozen=True)
class ImageRecord:
    id: int
    file_name: str
    height: int
    width: int


@dataclass
class CocoDataset:
    """``annotations``: a local file (a URL's is fetched into the cache). ``_bytes``: each image's bytes as read
    for the manifest, when the caller decodes here (:func:`load_coco`'s ``keep_bytes``); else decoding reads the
    image again from ``images`` and checks it against ``_digests``."""

    images: ImageSource
    annotations: Path
    records: list[ImageRecord]
    manifest: str = ""
    _bytes: dict[int, bytes | None] = field(default_factory=dict, repr=False)
    _digests: dict[int, str | None] = field(default_factory=dict, repr=False)
    corrupt: dict[int, str] = field(default_factory=dict)

    @property
    def valid(self) -> list[ImageRecord]:
        return [r for r in self.records if r.id not in self.corrupt]

    def decode(self, ids: Sequence[int], workers: int = 4) -> dict[int, np.ndarray]:
        """BGR uint8 images by id; ids that fail are recorded in ``corrupt`` and left out."""
        return {i: image for i, image in self.decode_each(ids, workers) if image is not None}

    def decode_each(
        self,
        ids: Sequence[int],
        workers: int = 4,
        place: Callable[[int, np.ndarray], np.ndarray] | None = None,
        ahead: int | None = None,
    ) -> Iterator[tuple[int, np.ndarray | None]]:
        """The images of ``ids`` in that order, each as soon as it is decoded (the rest decode ahead in threads,
        which OpenCV lets run beside the caller's Python); one that fails is recorded in ``corrupt`` and comes
        as None. ``place(id, image)``: the array to keep for a usable image (e.g. a copy in an image arena), called in
        the decoding thread. ``ahead``: the most images read or decoded and not yet taken (default: all of them,
        for a caller that keeps every image anyway); a caller that drops each image once used bounds its memory
        with it."""
        by_id = {r.id: r for r in self.records}

        def one(i: int) -> tuple[int, np.ndarray | None, str]:
            if i in self._bytes:
                image, reason = decode_image(self._bytes[i], by_id[i])
            else:
                image, reason = read_image(self.images, by_id[i], self._digests.get(i))
            if place is not None and image is not None:
                image = place(i, image)
            return i, image, reason

        pool = ThreadPoolExecutor(max_workers=workers)
        rest = iter(ids)
        first = len(ids) if ahead is None else max(1, ahead)
        queued = deque(pool.submit(one, i) for i in itertools.islice(rest, first))
        try:
            while queued:
                image_id, image, reason = queued.popleft().result()
                queued.extend(pool.submit(one, i) for i in itertools.islice(rest, 1))
                if image is None:
                    self.corrupt[image_id] = reason
                yield image_id, image
        finally:  # a caller that stops early (an error) does not wait for the images it will not use
            pool.shutdown(wait=True, cancel_futures=True)

    def sha256(self, image_id: int) -> str | None:
        """The digest of the bytes read for the manifest: another process reading the file again checks it."""
        return self._digests.get(image_id)


def read_image(images: ImageSource, rec: ImageRecord, sha256: str | None) -> tuple[np.ndarray | None, str]:
    """Read an image again (a Ray worker, or a driver that dropped the bytes) and decode it, after checking that
    these are the bytes hashed for the manifest: the dataset may not change under a run's cache keys."""
    data = images.read(rec.file_name)
    if data is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise RunError(
            f"{rec.file_name}: read other bytes from {images} than were hashed for the dataset manifest; "
            "every node must see the same dataset, unchanged during the run"
        )
    return decode_image(data, rec)


def decode_image(data: bytes | None, rec: ImageRecord) -> tuple[np.ndarray | None, str]:
    """(image, "") or (None, why it is unusable): the one decoding rule, wherever an image is decoded."""
    if data is None:
        return None, "file missing or unreadable"
    if not data:
        return None, "empty file"
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None:
        return None, "cannot decode"
    if image.shape[:2] != (rec.height, rec.width):
        return None, f"decoded {image.shape[1]}×{image.shape[0]}, annotations say {rec.width}×{rec.height}"
    return image, ""


def load_coco(
    images: ImageSource | Path,
    annotations: Path,
    limit: int | None = None,
    image_ids: Sequence[int] | None = None,
    too_large: Callable[[tuple[int, int]], str | None] | None = None,
    *,
    name: str | None = None,
    keep_bytes: bool = True,
) -> CocoDataset:
    """Select images (all, listed ids, or the first ``limit`` by id) and read their bytes for the manifest.

    The annotations are checked here, before any image is read: a malformed file (a box that is not four
    numbers, no categories, an id given twice) is one UserError naming the entry, not a traceback from the
    evaluator after every dump was computed. ``too_large`` says why an image size is over the spec's limits;
    such images are unusable (never decoded). ``name``: the annotations as messages show them (a URL whose copy
    ``annotations`` is). ``keep_bytes``: hold every image's bytes for decoding here; without, each is hashed and
    dropped (a Ray driver, whose workers read the images themselves, holds none of 500k photos)."""
    shown = name or str(annotations)
    if not annotations.is_file():
        raise RunError(f"{shown}: annotations file not found")
    source = LocalImages(images) if isinstance(images, Path) else images
    source.check()
    raw = annotations.read_bytes()
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{shown}: not JSON ({exc})") from exc
    records = check_instances(data, shown)
    records.sort(key=lambda r: r.id)
    if image_ids is not None:
        wanted = set(image_ids)
        missing = wanted - {r.id for r in records}
        if missing:
            raise RunError(f"{shown}: image ids not in the annotations: {sorted(missing)[:10]}")
        records = [r for r in records if r.id in wanted]
    if limit is not None:
        records = records[:limit]
    dataset = CocoDataset(source, annotations, records)
    h = hashlib.sha256(hashlib.sha256(raw).digest())
    read = source.read_many([rec.file_name for rec in records])
    for rec, data_bytes in zip(records, read, strict=True):
        digest = hashlib.sha256(data_bytes).digest() if data_bytes is not None else None
        dataset._digests[rec.id] = digest.hex() if digest is not None else None
        if keep_bytes:
            dataset._bytes[rec.id] = data_bytes
        h.update(f"{rec.id}:{rec.file_name}:".encode())
        h.update(digest if digest is not None else b"missing")
    dataset.manifest = h.hexdigest()
    if records and source.problem and all(d is None for d in dataset._digests.values()):
        raise RunError(f"{source}: none of the {len(records)} images could be read: {source.problem}")
    for rec in records:
        if dataset._digests[rec.id] is None:
            dataset.corrupt[rec.id] = "file missing or unreadable"
        elif too_large and (reason := too_large((rec.height, rec.width))):
            dataset.corrupt[rec.id] = reason
    return dataset


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_instances(data: Any, path: Path | str) -> list[ImageRecord]:
    """The image records of a COCO instances file, after checking what the evaluators rely on."""

    def bad(where: str, why: str) -> UserError:
        return UserError(f"{path}: {where}: {why}")

    if not isinstance(data, dict):
        raise bad("<root>", "not a COCO instances file (expected an object with images, annotations, categories)")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise bad(key, "missing" if key not in data else "must be a list")
    categories: set[int] = set()
    for i, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or not _int(cat.get("id")):
            raise bad(f"categories[{i}]", "needs an integer id")
        categories.add(cat["id"])
    if not categories:
        raise bad("categories", "empty: evaluation needs the categories the annotations use")
    records: list[ImageRecord] = []
    first: dict[int, int] = {}
    for i, image in enumerate(data["images"]):
        where = f"images[{i}]"
        if not isinstance(image, dict):
            raise bad(where, "must be an object")
        image_id, name, h, w = (image.get(k) for k in ("id", "file_name", "height", "width"))
        if not _int(image_id):
            raise bad(where, f"id {image_id!r} is not an integer")
        if image_id in first:
            raise bad(where, f"image id {image_id} given twice (images[{first[image_id]}] and images[{i}])")
        first[image_id] = i
        if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise bad(where, f"file_name {name!r} must be a path inside the images folder")
        if not (_int(h) and _int(w) and h > 0 and w > 0):
            raise bad(where, f"height and width must be positive integers, got {h!r} and {w!r}")
        records.append(ImageRecord(image_id, name, h, w))
    annotation_ids: set[int] = set()
    for i, ann in enumerate(data["annotations"]):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict):
            raise bad(where, "must be an object")
        if not _int(ann.get("id")) or ann["id"] in annotation_ids:
            raise bad(where, f"id {ann.get('id')!r} is not an integer or is given twice")
        annotation_ids.add(ann["id"])
        if ann.get("image_id") not in first:
            raise bad(where, f"image_id {ann.get('image_id')!r} is not an image of the file")
        if ann.get("category_id") not in categories:
            raise bad(where, f"category_id {ann.get('category_id')!r} is not in categories")
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_number(v) for v in bbox)):
            raise bad(where, f"bbox {bbox!r} is not four finite numbers [x, y, w, h]")
        if bbox[2] < 0 or bbox[3] < 0:
            raise bad(where, f"bbox {bbox!r} has a negative width or height")
        if "area" in ann and not _number(ann["area"]):
            raise bad(where, f"area {ann['area']!r} is not a finite number")
        if ann.get("iscrowd", 0) not in (0, 1):
            raise bad(where, f"iscrowd {ann.get('iscrowd')!r} must be 0 or 1")
        segmentation = ann.get("segmentation")
        if segmentation is not None and not isinstance(segmentation, list | dict):
            raise bad(where, "segmentation must be polygons (a list) or RLE (an object)")
    return records
