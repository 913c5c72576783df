"""The YOLO-family adapters on the real exports and photos, against a plain decode written out in the test."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from preprocgate.errors import UserError
from preprocgate.geometry import Geometry, letterbox
from preprocgate.models import MODELS
from preprocgate.models.yolo import COCO80_TO_COCO, UltralyticsAdapter, YoloxAdapter
from tests.helpers.realdata import COCO128, requires_data
from tests.helpers.realdata import MODELS as MODEL_DIR
from tests.test_nms import reference_nms

pytestmark = requires_data
CPU = torch.device("cpu")
PHOTOS = ("000000000025.jpg", "000000000036.jpg")  # landscape 426×640 (odd padding) and portrait 640×481


def letterboxed(
    name: str, size: int, align: str, rounding: str, rgb: bool, scale: float
) -> tuple[torch.Tensor, Geometry]:
    """The photo placed on the canvas by its geometry (cv2 resize, 114 pad), as the exports expect."""
    image = cv2.imread(str(COCO128 / "val2017" / name), cv2.IMREAD_COLOR)
    g = letterbox(image.shape[:2], (size, size), align, rounding)
    canvas = np.full((size, size, 3), 114, np.uint8)
    (top, left), (h, w) = g.offset, g.content
    canvas[top : top + h, left : left + w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    if rgb:
        canvas = canvas[..., ::-1]
    return torch.from_numpy(canvas.transpose(2, 0, 1).copy()).float()[None] / scale, g


@pytest.fixture(scope="module")
def seg() -> UltralyticsAdapter:
    return UltralyticsAdapter(CPU, file=MODEL_DIR / "yolov8n-seg_int8.onnx")


@pytest.fixture(scope="module")
def yolox() -> YoloxAdapter:
    return YoloxAdapter(CPU, file=MODEL_DIR / "yolox_nano.onnx")


def test_registered() -> None:
    assert MODELS.get("ultralytics") is UltralyticsAdapter and MODELS.get("yolox") is YoloxAdapter


def test_ultralytics_segment_equals_a_plain_decode(seg: UltralyticsAdapter) -> None:
    x, g = letterboxed(PHOTOS[0], 320, "center", "round", rgb=True, scale=255)
    det = seg(x, [g])[0]
    pred, protos = (np.asarray(o) for o in seg.session.run(None, {seg.input_name: x.numpy()}))
    p = pred[0].T
    boxes = np.concatenate([p[:, :2] - p[:, 2:4] / 2, p[:, :2] + p[:, 2:4] / 2], 1)
    rows, cls = np.nonzero(p[:, 4:84] > 0.001)
    kept = reference_nms(torch.from_numpy(boxes[rows]), torch.from_numpy(p[rows, 4 + cls]), torch.from_numpy(cls), 0.7)
    kept = kept[:300]
    assert len(det) == len(kept) > 10
    np.testing.assert_array_equal(det.scores, p[rows[kept], 4 + cls[kept]])
    np.testing.assert_array_equal(det.labels, np.array(COCO80_TO_COCO)[cls[kept]])
    (top, left), r = g.offset, 1 / g.inverse[0]
    expected = (boxes[rows[kept]] - [left, top, left, top]) / r
    np.testing.assert_allclose(det.boxes, np.clip(expected, 0, [640, 426, 640, 426]), rtol=0, atol=1e-3)
    # masks of the best and the last detection, one at a time: logits, bilinear ×4, box crop, > 0, unpad, resize
    assert det.masks.shape == (len(kept), 426, 640)
    for k in (0, len(kept) - 1):
        logits = p[rows[kept[k]], 84:] @ protos[0].reshape(32, -1)
        up = cv2.resize(logits.reshape(80, 80), (320, 320), interpolation=cv2.INTER_LINEAR)
        x1, y1, x2, y2 = boxes[rows[kept[k]]]
        ys, xs = np.mgrid[:320, :320]
        binary = ((up > 0) & (xs >= x1) & (xs < x2) & (ys >= y1) & (ys < y2)).astype(np.uint8)
        mask = cv2.resize(binary[top : top + 213], (640, 426), interpolation=cv2.INTER_LINEAR).astype(bool)
        assert (mask != det.masks[k]).mean() < 1e-3  # cv2 vs torch bilinear for the ×4 upsampling of logits
        assert mask.sum() == 0 or (mask & det.masks[k]).sum() / mask.sum() > 0.99


def test_batch_equals_single_images(seg: UltralyticsAdapter) -> None:
    """The export has batch 1: a batch of two runs image by image with each image's own geometry."""
    (a, ga), (b, gb) = (letterboxed(n, 320, "center", "round", True, 255) for n in PHOTOS)
    both = seg(torch.cat([a, b]), [ga, gb])
    for got, alone in zip(both, [seg(a, [ga])[0], seg(b, [gb])[0]], strict=True):
        assert np.array_equal(got.boxes, alone.boxes) and np.array_equal(got.masks, alone.masks)
    assert both[1].masks.shape[1:] == (640, 481)


def test_yolox_equals_a_plain_decode(yolox: YoloxAdapter) -> None:
    x, g = letterboxed(PHOTOS[1], 416, "top_left", "floor", rgb=False, scale=1)
    det = yolox(x, [g])[0]
    pred = np.asarray(yolox.session.run(None, {yolox.input_name: x.numpy()})[0][0])
    assert pred[:, 4:].min() >= 0 and pred[:, 4:].max() <= 1  # objectness and classes come sigmoided
    rows_out = []
    i = 0
    for stride in (8, 16, 32):
        n = 416 // stride
        for gy in range(n):
            for gx in range(n):
                dx, dy, dw, dh = pred[i, :4]
                cx, cy, w, h = (dx + gx) * stride, (dy + gy) * stride, np.exp(dw) * stride, np.exp(dh) * stride
                rows_out.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
                i += 1
    boxes = np.array(rows_out, dtype=np.float32)
    scores = pred[:, 4:5] * pred[:, 5:]
    rows, cls = np.nonzero(scores > 0.001)
    kept = reference_nms(torch.from_numpy(boxes[rows]), torch.from_numpy(scores[rows, cls]), torch.from_numpy(cls), 0.7)
    kept = kept[:300]
    assert len(det) == len(kept) > 10
    np.testing.assert_array_equal(det.scores, scores[rows[kept], cls[kept]])
    np.testing.assert_allclose(det.boxes, np.clip(boxes[rows[kept]] * g.inverse[0], 0, [481, 640, 481, 640]), atol=1e-3)


def test_single_label_keeps_one_class_per_box(yolox: YoloxAdapter) -> None:
    x, g = letterboxed(PHOTOS[1], 416, "top_left", "floor", rgb=False, scale=1)
    single = YoloxAdapter(CPU, file=MODEL_DIR / "yolox_nano.onnx", multi_label=False, max_det=1000)
    boxes = single(x, [g])[0].boxes
    assert len(np.unique(boxes, axis=0)) == len(boxes)
    multi = yolox(x, [g])[0].boxes
    assert len(np.unique(multi, axis=0)) < len(multi)  # some box kept under two classes


def test_clear_errors(seg: UltralyticsAdapter) -> None:
    with pytest.raises(UserError, match="not an Ultralytics"):
        UltralyticsAdapter(CPU, file=MODEL_DIR / "yolox_nano.onnx")
    with pytest.raises(UserError, match="not a YOLOX export"):
        YoloxAdapter(CPU, file=MODEL_DIR / "yolov8n_int8.onnx")
    with pytest.raises(UserError, match="takes 320x320"):
        seg(torch.zeros(1, 3, 416, 416), [letterbox((480, 640), (416, 416))])
    with pytest.raises(UserError, match=r"params\.iou"):
        UltralyticsAdapter(CPU, file=MODEL_DIR / "yolov8n_int8.onnx", iou=1.5)
    with pytest.raises(UserError, match="precision must be fp32"):
        UltralyticsAdapter(CPU, "fp16", file=MODEL_DIR / "yolov8n_int8.onnx")


def test_detect_export_has_no_masks() -> None:
    x, g = letterboxed(PHOTOS[0], 320, "center", "round", rgb=True, scale=255)
    det = UltralyticsAdapter(CPU, file=MODEL_DIR / "yolov8n_int8.onnx")(x, [g])[0]
    assert det.masks is None and len(det) > 10
