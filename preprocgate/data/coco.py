"""COCO-format datasets: the image list, a content manifest for cache keys, and decoding once per run.

Image bytes are read (and hashed) once; pixels are decoded only when some variant must be computed, in
threads (OpenCV releases the GIL). An image that cannot be decoded, or whose size disagrees with the
annotations, is *corrupt*: it is named in the report and excluded from every variant and from evaluation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from preprocgate.errors import RunError


@dataclass(frozen=True)
class ImageRecord:
    id: int
    file_name: str
    height: int
    width: int


@dataclass
class CocoDataset:
    images_dir: Path
    annotations: Path
    records: list[ImageRecord]
    manifest: str = ""
    _bytes: dict[int, bytes | None] = field(default_factory=dict, repr=False)
    corrupt: dict[int, str] = field(default_factory=dict)

    @property
    def valid(self) -> list[ImageRecord]:
        return [r for r in self.records if r.id not in self.corrupt]

    def decode(self, ids: Sequence[int], workers: int = 4) -> dict[int, np.ndarray]:
        """BGR uint8 images by id; ids that fail are recorded in ``corrupt`` and left out."""
        by_id = {r.id: r for r in self.records}

        def one(image_id: int) -> tuple[int, np.ndarray | None, str]:
            data = self._bytes.get(image_id)
            if data is None:
                return image_id, None, "file missing or unreadable"
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                return image_id, None, "cannot decode"
            rec = by_id[image_id]
            if image.shape[:2] != (rec.height, rec.width):
                return (
                    image_id,
                    None,
                    f"decoded {image.shape[1]}×{image.shape[0]}, annotations say {rec.width}×{rec.height}",
                )
            return image_id, image, ""

        out: dict[int, np.ndarray] = {}
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for image_id, image, reason in pool.map(one, ids):
                if image is None:
                    self.corrupt[image_id] = reason
                else:
                    out[image_id] = image
        return out


def load_coco(
    images_dir: Path, annotations: Path, limit: int | None = None, image_ids: Sequence[int] | None = None
) -> CocoDataset:
    """Select images (all, listed ids, or the first ``limit`` by id) and read their bytes for the manifest."""
    if not annotations.is_file():
        raise RunError(f"{annotations}: annotations file not found")
    if not images_dir.is_dir():
        raise RunError(f"{images_dir}: images folder not found")
    raw = annotations.read_bytes()
    try:
        data = json.loads(raw)
        records = [
            ImageRecord(int(i["id"]), str(i["file_name"]), int(i["height"]), int(i["width"])) for i in data["images"]
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise RunError(f"{annotations}: not a COCO instances file ({exc})") from exc
    records.sort(key=lambda r: r.id)
    if image_ids is not None:
        wanted = set(image_ids)
        missing = wanted - {r.id for r in records}
        if missing:
            raise RunError(f"{annotations}: image ids not in the annotations: {sorted(missing)[:10]}")
        records = [r for r in records if r.id in wanted]
    if limit is not None:
        records = records[:limit]
    dataset = CocoDataset(images_dir, annotations, records)

    def read(rec: ImageRecord) -> tuple[int, bytes | None]:
        try:
            return rec.id, (images_dir / rec.file_name).read_bytes()
        except OSError:
            return rec.id, None

    with ThreadPoolExecutor(max_workers=8) as pool:
        dataset._bytes = dict(pool.map(read, records))
    h = hashlib.sha256(hashlib.sha256(raw).digest())
    for rec in records:
        data_bytes = dataset._bytes[rec.id]
        h.update(f"{rec.id}:{rec.file_name}:".encode())
        h.update(hashlib.sha256(data_bytes).digest() if data_bytes is not None else b"missing")
    dataset.manifest = h.hexdigest()
    for rec in records:
        if dataset._bytes[rec.id] is None:
            dataset.corrupt[rec.id] = "file missing or unreadable"
    return dataset
