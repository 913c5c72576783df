"""The embedded demo dataset: a deterministic COCO-format instance-segmentation set, generated on first use.

Images are non-square (300–700 px a side) with gradient, texture and noise backgrounds; objects of four
classes are filled polygons with shading and a per-class colour prior, drawn in sequence so later ones occlude
earlier ones. Each
annotation is the *visible* part of its object, stored as compressed RLE (exact, unlike a re-traced polygon).
Every sample is a pure function of (seed, split, index): the training script draws from the same generator
on the fly, and the gate evaluates on the same val images the model never saw.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from preprocgate.data import synthetic

GENERATOR_VERSION = 2
CATEGORIES = [
    {"id": 1, "name": "disc", "supercategory": "shape"},
    {"id": 2, "name": "box", "supercategory": "shape"},
    {"id": 3, "name": "triangle", "supercategory": "shape"},
    {"id": 4, "name": "star", "supercategory": "shape"},
]
SPLITS = {"train": 0, "val": 1}
JPEG_QUALITY = 92
# BGR colour priors per class (red discs, blue boxes, green triangles, yellow stars), as real classes have
# typical colours: a preprocessing path that swaps R and B then costs accuracy, as it would in production.
CLASS_COLORS = {1: (40, 40, 200), 2: (200, 70, 40), 3: (50, 180, 50), 4: (40, 200, 220)}
COLOR_PRIOR = 0.85


@dataclass(frozen=True)
class Instance:
    category_id: int
    mask: np.ndarray  # bool H×W, visible part


def _polygon(rng: np.random.Generator, category: int, cx: float, cy: float, r: float) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi)
    if category == 1:  # disc, slightly elliptic
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        pts = np.stack([r * np.cos(t), r * rng.uniform(0.7, 1.0) * np.sin(t)], axis=1)
    elif category == 2:  # box with random aspect
        a = rng.uniform(0.5, 1.0)
        pts = np.array([[-r, -r * a], [r, -r * a], [r, r * a], [-r, r * a]])
    elif category == 3:  # triangle
        t = np.array([0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(-0.3, 0.3, 3)
        pts = np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
    else:  # five-pointed star
        t = np.linspace(0, 2 * np.pi, 10, endpoint=False)
        radius = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        pts = np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return pts @ rot.T + np.array([cx, cy])


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = 0.6 * synthetic.gradient(rng, h, w) + 0.4 * synthetic.texture(rng, h, w)
    return base + rng.normal(0, 6, (h, w, 3))


def render(seed: int, split: str, index: int) -> tuple[np.ndarray, list[Instance]]:
    """One sample: a BGR uint8 image and its visible instances."""
    rng = np.random.default_rng([GENERATOR_VERSION, seed, SPLITS[split], index])
    h, w = (int(v) for v in rng.integers(300, 701, 2))
    image = _background(rng, h, w)
    yy, xx = np.mgrid[0:h, 0:w]
    drawn: list[tuple[int, np.ndarray]] = []
    for _ in range(int(rng.integers(2, 9))):
        category = int(rng.integers(1, len(CATEGORIES) + 1))
        r = rng.uniform(0.04, 0.22) * min(h, w)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.round(_polygon(rng, category, cx, cy, r)).astype(np.int32)], 1)
        full = mask.astype(bool)
        if full.sum() < 100:
            continue
        if rng.random() < COLOR_PRIOR:
            color = np.asarray(CLASS_COLORS[category], float) + rng.uniform(-35, 35, 3)
        else:
            color = rng.uniform(0, 255, 3)
        shade = rng.uniform(-40, 40) * ((xx - cx) + (yy - cy)) / (2 * r)
        image[full] = np.clip(color[None, :] + shade[full][:, None], 0, 255)
        drawn = [(c, m & ~full) for c, m in drawn]
        drawn.append((category, full))
    image = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
    instances = [Instance(c, m) for c, m in drawn if m.sum() >= 64]
    return image, instances


def annotation(instance: Instance, image_id: int, ann_id: int) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(instance.mask.astype(np.uint8)))
    x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": instance.category_id,
        "segmentation": {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")},
        "area": float(mask_utils.area(rle)),
        "bbox": [x, y, w, h],
        "iscrowd": 0,
    }


@dataclass(frozen=True)
class CocoPaths:
    images: Path
    annotations: Path


def _write_sample(args: tuple[Path, int, str, int]) -> tuple[dict, list[dict]]:
    images_dir, seed, split, index = args
    image, instances = render(seed, split, index)
    name = f"{split}_{index:05d}.jpg"
    cv2.imwrite(str(images_dir / name), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    info = {"id": index + 1, "file_name": name, "height": image.shape[0], "width": image.shape[1]}
    return info, [annotation(inst, index + 1, 0) for inst in instances]


def generate(root: Path, split: str, count: int, seed: int = 0, workers: int = 1) -> CocoPaths:
    """Write ``count`` samples as JPEG images plus ``instances_<split>.json`` under ``root``.

    ``workers`` > 1 renders in processes; the files are the same either way (samples are pure functions).
    """
    images_dir = root / split
    images_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(images_dir, seed, split, index) for index in range(count)]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            samples = list(pool.map(_write_sample, jobs, chunksize=16))
    else:
        samples = [_write_sample(job) for job in jobs]
    images, annotations = [], []
    for info, anns in samples:
        images.append(info)
        annotations += [{**a, "id": len(annotations) + j + 1} for j, a in enumerate(anns)]
    ann_path = root / f"instances_{split}.json"
    ann_path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": CATEGORIES}))
    return CocoPaths(images_dir, ann_path)


def ensure(cache_dir: Path, split: str = "val", count: int = 100, seed: int = 0) -> CocoPaths:
    """The demo split in the cache, generated once; a complete folder appears atomically (rename)."""
    final = cache_dir / "datasets" / f"demo-v{GENERATOR_VERSION}-seed{seed}-{split}{count}"
    if not (final / f"instances_{split}.json").exists():
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
        try:
            generate(tmp, split, count, seed)
            try:
                tmp.rename(final)
            except OSError:  # another process finished first
                if not (final / f"instances_{split}.json").exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return CocoPaths(final / split, final / f"instances_{split}.json")
