"""YOLO-family detectors exported to ONNX without NMS: Ultralytics detect/segment and YOLOX, on ONNX Runtime.

Both take the raw head output and do what the reference validators do after the network, vectorised in torch on
the run's device (no Python loop per detection):

1. **candidates** (``multi_label: true``, Ultralytics' validation setting): every (box, class) pair whose class
   score is > ``conf``, so one box may compete under several classes; ``false`` keeps each box's best class only
   (Ultralytics' predict mode, YOLOX's own evaluation). At most ``max_nms`` candidates, the highest scores, go on.
2. **class-aware greedy NMS** at IoU > ``iou`` (:func:`preprocgate.functional.nms.batched_nms`), keeping the
   ``max_det`` best.
3. **back to the source image** through each image's :class:`~preprocgate.geometry.Geometry` (letterbox offset
   removed, divided by the scale, clipped), and class indices through the COCO-80 → COCO category-id table (or
   ``label_map``).

Defaults are Ultralytics' validation defaults: ``conf`` 0.001, ``iou`` 0.7, ``max_det`` 300, ``max_nms`` 30000,
``multi_label`` true, ``mask_threshold`` 0.5. YOLOX's own COCO evaluation uses conf 0.01, IoU 0.65, one label per
box and no cap: set them as params to reproduce it.

**Ultralytics** (``ultralytics``): output ``[1, 4 + C (+ M), N]``: cx, cy, w, h in input pixels, C class
probabilities (already sigmoided), and for segment exports M mask coefficients with a second output, the prototypes
``[1, M, h, w]``. Masks follow the validator's ``process_mask_native`` then ``scale_image``: logits =
coefficients · prototypes; upsampled bilinearly to the input size; zeroed outside the box (``x1 ≤ x < x2``,
``y1 ≤ y < y2`` in input pixels); ``sigmoid > mask_threshold``; then the padding is cropped and the binary mask
resized bilinearly to the source and thresholded at 0.5 (:func:`preprocgate.models.base.rescale`).

**YOLOX** (``yolox``): output ``[1, N, 5 + C]``, the raw grid of strides 8, 16 and 32: ``(x, y) = ((dx, dy) + cell)
· stride``, ``(w, h) = exp(dw, dh) · stride``; objectness and class probabilities are already sigmoided in the
export (checked on ``yolox_nano.onnx``: all in [0, 1], exact zeros present), and a candidate's score is
objectness × class probability. YOLOX takes BGR in 0–255 with a top-left letterbox: say so in ``input``.

The exports have a fixed batch of 1: the session runs image by image, everything after it is vectorised per image.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from preprocgate.errors import RunError, UserError
from preprocgate.functional.nms import batched_nms
from preprocgate.geometry import Geometry
from preprocgate.hashing import digest_json, file_sha256
from preprocgate.models.base import Detections, ModelAdapter, rescale
from preprocgate.models.ort import open_session

# COCO-80 class index → COCO category id (ids 1..90 without the ten COCO never annotated)
COCO80_TO_COCO = [i for i in range(1, 91) if i not in {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}]


class YoloAdapter(ModelAdapter):
    """Shared by the YOLO exports: the session, the candidate/NMS parameters and the per-image loop."""

    name: ClassVar[str] = "yolo"

    def __init__(
        self,
        device: torch.device,
        precision: str = "fp32",
        *,
        file: Path,
        conf: float = 0.001,
        iou: float = 0.7,
        max_det: int = 300,
        max_nms: int = 30000,
        multi_label: bool = True,
        mask_threshold: float = 0.5,
        label_map: dict[int, int] | None = None,
        threads: int = 0,
    ) -> None:
        super().__init__(device, precision)
        if precision != "fp32":
            raise UserError(f"the {self.name} adapter runs the ONNX export as is: precision must be fp32")
        for key, value in (("conf", conf), ("iou", iou)):
            if not 0 <= value <= 1:
                raise UserError(f"params.{key}: {value} is not within [0, 1]")
        if not 0 < mask_threshold < 1:
            raise UserError(f"params.mask_threshold: {mask_threshold} must lie strictly between 0 and 1")
        for key, value in (("max_det", max_det), ("max_nms", max_nms)):
            if not isinstance(value, int) or value < 1:
                raise UserError(f"params.{key}: {value!r} is not a positive integer")
        self.path = Path(file)
        self.conf, self.iou, self.max_det, self.max_nms = float(conf), float(iou), max_det, max_nms
        self.multi_label, self.mask_threshold = bool(multi_label), float(mask_threshold)
        self.label_map = {int(k): int(v) for k, v in (label_map or {}).items()}
        self._table = np.zeros(0, dtype=np.int64)
        self.session, self.ort_version = open_session(self.path, device, threads)
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.input_size = tuple(model_input.shape[-2:])
        self.outputs = self.session.get_outputs()
        self._check_outputs()

    @abstractmethod
    def _check_outputs(self) -> None:
        """Raise a UserError naming the file when the export's outputs are not this family's."""

    @property
    def identity(self) -> dict[str, str]:
        settings = [self.conf, self.iou, self.max_det, self.max_nms, self.multi_label, self.mask_threshold]
        return {
            "adapter": f"{self.name}/{self.version}",
            "model_sha256": file_sha256(self.path),
            "config": digest_json([*settings, self.label_map]),
            "onnxruntime": self.ort_version,
            "provider": self.session.get_providers()[0],
        }

    def __call__(self, batch: torch.Tensor, geometries: Sequence[Geometry]) -> list[Detections]:
        size = tuple(batch.shape[-2:])
        if all(isinstance(s, int) for s in self.input_size) and size != self.input_size:
            raise UserError(
                f"input.size {size[0]}x{size[1]}: {self.path.name} takes "
                f"{self.input_size[0]}x{self.input_size[1]} (a fixed-size export)"
            )
        results = []
        for image, geometry in zip(batch, geometries, strict=True):
            x = image[None].detach().float().cpu().numpy()
            try:
                out = self.session.run(None, {self.input_name: x})
            except Exception as exc:  # ORT raises its own exception types from C++
                raise RunError(f"{self.path}: ONNX Runtime failed: {exc}") from exc
            results.append(self.postprocess([torch.from_numpy(o).to(self.device) for o in out], geometry))
        return results

    @abstractmethod
    def postprocess(self, outputs: list[torch.Tensor], geometry: Geometry) -> Detections:
        """One image's raw outputs (on the run's device) → its detections in source pixels."""

    def select(self, boxes: torch.Tensor, class_scores: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Candidates then NMS: (row of each kept box in ``boxes``, its class index, its score), best first."""
        if self.multi_label:
            rows, classes = (class_scores > self.conf).nonzero(as_tuple=True)
            scores = class_scores[rows, classes]
        else:
            scores, classes = class_scores.max(1)
            rows = (scores > self.conf).nonzero()[:, 0]
            scores, classes = scores[rows], classes[rows]
        if len(scores) > self.max_nms:
            top = torch.sort(scores, descending=True, stable=True).indices[: self.max_nms]
            rows, classes, scores = rows[top], classes[top], scores[top]
        keep = batched_nms(boxes[rows], scores, classes, self.iou, self.max_det)
        return rows[keep], classes[keep], scores[keep]

    def cells(self) -> int | None:
        """Grid positions of strides 8, 16 and 32 at the export's input size (None for a dynamic size)."""
        h, w = self.input_size
        if not (isinstance(h, int) and isinstance(w, int)):
            return None
        return sum((h // s) * (w // s) for s in (8, 16, 32))

    def labels(self, classes: torch.Tensor, num_classes: int) -> np.ndarray:
        """Dataset category ids: ``label_map`` where given, else COCO's id for a COCO-80 index, else the index."""
        if len(self._table) != num_classes:
            default = COCO80_TO_COCO if num_classes == len(COCO80_TO_COCO) else list(range(num_classes))
            self._table = np.asarray([self.label_map.get(i, default[i]) for i in range(num_classes)], dtype=np.int64)
        return self._table[classes.cpu().numpy()]


def xywh_to_xyxy(xywh: torch.Tensor) -> torch.Tensor:
    half = xywh[:, 2:] / 2
    return torch.cat([xywh[:, :2] - half, xywh[:, :2] + half], 1)


class UltralyticsAdapter(YoloAdapter):
    """Ultralytics YOLO detect/segment ONNX export (no NMS inside): [1, 4+C(+M), N] (+ prototypes [1, M, h, w])."""

    name = "ultralytics"
    version = "1"

    def _check_outputs(self) -> None:
        head = self.outputs[0].shape
        anchors = self.cells()
        if len(head) != 3 or len(self.outputs) > 2 or (anchors is not None and head[2] not in (anchors, None)):
            raise UserError(
                f"{self.path}: not an Ultralytics detect/segment export without NMS "
                f"(expected [1, 4+C(+M), {anchors or 'N'}] and optional prototypes; outputs are "
                f"{[o.shape for o in self.outputs]})"
            )
        self.has_masks = len(self.outputs) == 2

    def postprocess(self, outputs: list[torch.Tensor], geometry: Geometry) -> Detections:
        pred = outputs[0][0].T.float()  # N × (4 + C + M)
        mask_dim = outputs[1].shape[1] if self.has_masks else 0
        classes_end = pred.shape[1] - mask_dim
        boxes = xywh_to_xyxy(pred[:, :4])
        rows, classes, scores = self.select(boxes, pred[:, 4:classes_end])
        kept = boxes[rows]
        masks = None
        if self.has_masks:
            masks = self.masks(outputs[1][0].float(), pred[rows, classes_end:], kept, geometry.canvas)
        return rescale(kept, scores, self.labels(classes, classes_end - 4), masks, geometry)

    def masks(
        self, protos: torch.Tensor, coefficients: torch.Tensor, boxes: torch.Tensor, canvas: tuple[int, int]
    ) -> torch.Tensor:
        """Binary K×H×W masks on the canvas (``process_mask_native``): logits up to the canvas, box crop, threshold."""
        m, h, w = protos.shape
        logits = (coefficients @ protos.reshape(m, h * w)).reshape(-1, 1, h, w)
        if len(logits):
            logits = F.interpolate(logits, size=canvas, mode="bilinear", align_corners=False)
        else:
            logits = logits.new_zeros((0, 1, *canvas))
        logits = logits[:, 0]
        cols = torch.arange(canvas[1], device=boxes.device, dtype=boxes.dtype)[None, None, :]
        rows = torch.arange(canvas[0], device=boxes.device, dtype=boxes.dtype)[None, :, None]
        x1, y1, x2, y2 = (boxes[:, i, None, None] for i in range(4))
        inside = (cols >= x1) & (cols < x2) & (rows >= y1) & (rows < y2)
        threshold = math.log(self.mask_threshold / (1 - self.mask_threshold))  # sigmoid(x) > t ⇔ x > logit(t)
        return inside & (logits > threshold)


class YoloxAdapter(YoloAdapter):
    """YOLOX ONNX export: the raw [1, N, 5+C] grid of strides 8/16/32 (objectness and classes sigmoided)."""

    name = "yolox"
    version = "1"

    def _check_outputs(self) -> None:
        head = self.outputs[0].shape
        cells = self.cells()
        if len(self.outputs) != 1 or len(head) != 3 or (cells is not None and head[1] not in (cells, None)):
            raise UserError(
                f"{self.path}: not a YOLOX export with a raw stride 8/16/32 grid (expected [1, {cells}, 5+C]; "
                f"outputs are {[o.shape for o in self.outputs]})"
            )

    def grid(self, size: tuple[int, int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Cell corners (x, y) and strides of every grid position, in the export's order (stride 8 first)."""
        cells, strides = [], []
        for stride in (8, 16, 32):
            ny, nx = size[0] // stride, size[1] // stride
            y, x = torch.meshgrid(torch.arange(ny, device=device), torch.arange(nx, device=device), indexing="ij")
            cells.append(torch.stack([x, y], -1).reshape(-1, 2))
            strides.append(torch.full((ny * nx, 1), stride, device=device))
        return torch.cat(cells).float(), torch.cat(strides).float()

    def postprocess(self, outputs: list[torch.Tensor], geometry: Geometry) -> Detections:
        pred = outputs[0][0].float()  # N × (5 + C)
        cells, strides = self.grid(geometry.canvas, pred.device)
        if len(cells) != len(pred):
            raise RunError(f"{self.path}: {len(pred)} grid rows, expected {len(cells)} for {geometry.canvas}")
        centre = (pred[:, :2] + cells) * strides
        wh = pred[:, 2:4].exp() * strides
        boxes = torch.cat([centre - wh / 2, centre + wh / 2], 1)
        rows, classes, scores = self.select(boxes, pred[:, 4:5] * pred[:, 5:])
        return rescale(boxes[rows], scores, self.labels(classes, pred.shape[1] - 5), None, geometry)
