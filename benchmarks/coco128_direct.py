"""COCO128 accuracy of the real YOLO detectors, evaluated directly: no preprocgate code at all.

This is the independent check of the gate's adapters and variants (the acceptance of the COCO128 gates asks the
gate's cv2 variant to agree with it within 0.005 AP). Everything is written again here, plainly, from the
reference implementations: the letterbox (Ultralytics ``LetterBox``; YOLOX ``preproc``), ONNX Runtime one image at
a time, box decoding, a plain greedy NMS loop, mask decoding as Ultralytics' validator does it
(``process_mask_native`` then ``scale_image``), and pycocotools.

    python benchmarks/coco128_direct.py [--model yolov8n-seg|yolox|both] [--limit N] [--out results.json]

Data: ``$PREPROCGATE_DATA`` (default ``../shared/data`` from the repository root). Runs on the CPU in about a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

ROOT = Path(__file__).resolve().parent.parent
CONF, IOU, MAX_DET, MASK_THRESHOLD = 0.001, 0.7, 300, 0.5


def letterbox_centred(image: np.ndarray, size: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Ultralytics ``LetterBox(auto=False, scaleup=True, center=True)``: returns the canvas, r and (top, left)."""
    h, w = image.shape[:2]
    r = min(size / h, size / w)
    new_w, new_h = round(w * r), round(h * r)
    dw, dh = (size - new_w) / 2, (size - new_h) / 2
    if (w, h) != (new_w, new_h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    canvas = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return canvas, r, (top, left)


def letterbox_top_left(image: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """YOLOX ``preproc``: int(h·r) × int(w·r) at the top-left of a 114 canvas."""
    h, w = image.shape[:2]
    r = min(size / h, size / w)
    resized = cv2.resize(image, (int(w * r), int(h * r)), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((size, size, 3), 114, dtype=np.uint8)
    canvas[: resized.shape[0], : resized.shape[1]] = resized
    return canvas, r


def iou_one(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], others[:, 0])
    y1 = np.maximum(box[1], others[:, 1])
    x2 = np.minimum(box[2], others[:, 2])
    y2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / (area + areas - inter)


def greedy_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> list[int]:
    """Class-aware greedy NMS, a plain loop: highest score first, drop same-class boxes with IoU > IOU."""
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    suppressed = np.zeros(len(order), dtype=bool)
    for rank, i in enumerate(order):
        if suppressed[rank]:
            continue
        kept.append(int(i))
        if len(kept) == MAX_DET:
            break
        rest = order[rank + 1 :]
        hit = (iou_one(boxes[i], boxes[rest]) > IOU) & (classes[rest] == classes[i])
        suppressed[rank + 1 :] |= hit
    return kept


def candidates(boxes_xyxy: np.ndarray, class_scores: np.ndarray) -> tuple[np.ndarray, ...]:
    """Multi-label candidates as Ultralytics' validator takes them: every (box, class) with score > CONF."""
    rows, cls = np.nonzero(class_scores > CONF)
    return rows, cls, class_scores[rows, cls]


def yolov8_seg(session: ort.InferenceSession, image: np.ndarray) -> list[tuple]:
    """(category index, score, xyxy box in source pixels, bool mask at source size) per detection."""
    size = session.get_inputs()[0].shape[-1]
    canvas, r, (top, left) = letterbox_centred(image, size)
    x = canvas[..., ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    pred, protos = session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(x)})
    pred = pred[0].T  # 2100 × 116
    xywh, class_scores, coeffs = pred[:, :4], pred[:, 4:84], pred[:, 84:]
    boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
    rows, cls, scores = candidates(boxes, class_scores)
    keep = greedy_nms(boxes[rows], scores, cls)
    rows, cls, scores = rows[keep], cls[keep], scores[keep]
    canvas_boxes = boxes[rows]
    # process_mask_native: coefficients · protos (logits), upsampled bilinearly to the canvas, cropped to the box,
    # > 0 (the same as sigmoid > 0.5)
    c, mh, mw = protos.shape[1:]
    logits = (coeffs[rows] @ protos[0].reshape(c, -1)).reshape(-1, mh, mw)
    h, w = image.shape[:2]
    out = []
    ys, xs = np.arange(size)[:, None], np.arange(size)[None, :]
    for k in range(len(rows)):
        up = cv2.resize(logits[k], (size, size), interpolation=cv2.INTER_LINEAR)
        x1, y1, x2, y2 = canvas_boxes[k]
        inside = (xs >= x1) & (xs < x2) & (ys >= y1) & (ys < y2)
        mask = ((up > 0) & inside).astype(np.uint8)
        # scale_image: remove the padding (Ultralytics crops [top : size − top], [left : size − left]), resize
        mask = cv2.resize(mask[top : size - top, left : size - left], (w, h), interpolation=cv2.INTER_LINEAR)
        box = np.array([(x1 - left) / r, (y1 - top) / r, (x2 - left) / r, (y2 - top) / r])
        box = np.clip(box, 0, [w, h, w, h])
        out.append((int(cls[k]), float(scores[k]), box, mask.astype(bool)))
    return out


def yolox(session: ort.InferenceSession, image: np.ndarray) -> list[tuple]:
    size = session.get_inputs()[0].shape[-1]
    canvas, r = letterbox_top_left(image, size)
    x = canvas.transpose(2, 0, 1)[None].astype(np.float32)  # BGR, 0-255
    pred = session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(x)})[0][0]
    grids, strides = [], []
    for stride in (8, 16, 32):
        n = size // stride
        yv, xv = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        grids.append(np.stack([xv, yv], -1).reshape(-1, 2))
        strides.append(np.full((n * n, 1), stride))
    grid, stride = np.concatenate(grids), np.concatenate(strides)
    centre = (pred[:, :2] + grid) * stride
    wh = np.exp(pred[:, 2:4]) * stride
    boxes = np.concatenate([centre - wh / 2, centre + wh / 2], axis=1)
    class_scores = pred[:, 4:5] * pred[:, 5:]  # objectness × class probability (both already sigmoided)
    rows, cls, scores = candidates(boxes, class_scores)
    keep = greedy_nms(boxes[rows], scores, cls)
    h, w = image.shape[:2]
    out = []
    for i in keep:
        box = np.clip(boxes[rows[i]] / r, 0, [w, h, w, h])
        out.append((int(cls[i]), float(scores[i]), box, None))
    return out


def evaluate(name: str, model: Path, data: Path, limit: int | None) -> dict:
    annotations = data / "coco128" / "annotations" / "instances_val2017.json"
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(annotations))
    categories = sorted(coco.getCatIds())  # COCO-80 index → COCO category id, by ascending id
    image_ids = sorted(coco.getImgIds())[:limit]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    infer = yolov8_seg if name == "yolov8n-seg" else yolox
    results = []
    start = time.perf_counter()
    for image_id in image_ids:
        info = coco.loadImgs(image_id)[0]
        image = cv2.imread(str(data / "coco128" / "val2017" / info["file_name"]), cv2.IMREAD_COLOR)
        for cls, score, box, mask in infer(session, image):
            record = {
                "image_id": image_id,
                "category_id": categories[cls],
                "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])],
                "score": score,
            }
            if mask is not None:
                rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
                record["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
            results.append(record)
    seconds = time.perf_counter() - start
    figures = {"model": model.name, "images": len(image_ids), "detections": len(results), "seconds": seconds}
    for iou_type in ("bbox", "segm") if name == "yolov8n-seg" else ("bbox",):
        with contextlib.redirect_stdout(io.StringIO()):
            dt = coco.loadRes(results)
            ev = COCOeval(coco, dt, iou_type)
            ev.params.imgIds = image_ids
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        figures[iou_type] = {"AP": ev.stats[0], "AP50": ev.stats[1], "AP75": ev.stats[2]}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["yolov8n-seg", "yolox", "both"], default="both")
    parser.add_argument("--limit", type=int, default=None, help="the first N images by id (default: all 128)")
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    data = Path(os.environ.get("PREPROCGATE_DATA") or ROOT.parent / "shared" / "data")
    files = {"yolov8n-seg": "yolov8n-seg_int8.onnx", "yolox": "yolox_nano.onnx"}
    names = list(files) if args.model == "both" else [args.model]
    figures = {n: evaluate(n, data / "models" / files[n], data, args.limit) for n in names}
    for name, f in figures.items():
        aps = "  ".join(f"{t} AP {f[t]['AP']:.4f} AP50 {f[t]['AP50']:.4f}" for t in ("bbox", "segm") if t in f)
        print(f"{name}: {f['images']} images, {f['detections']} detections: {aps}")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
