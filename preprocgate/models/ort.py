"""An ONNX model on ONNX Runtime (CPU or CUDA provider), one image per run as detection exports take.

Outputs are read by name (``boxes``, ``labels``, ``scores``, optional ``masks`` by default; rename them with
``outputs``), in the same torchvision-style layout the torch adapter expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from preprocgate.errors import MissingDependencyError, RunError, UserError
from preprocgate.geometry import Geometry
from preprocgate.hashing import digest_json, file_sha256
from preprocgate.models.base import Detections, ModelAdapter, map_labels, rescale

DEFAULT_OUTPUTS = {"boxes": "boxes", "labels": "labels", "scores": "scores", "masks": "masks"}


def open_session(path: Path, device: torch.device, threads: int = 0) -> tuple[Any, str]:
    """An ONNX Runtime session on the run's device (CUDA provider first on a CUDA device), and ORT's version."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise MissingDependencyError("onnxruntime", "onnx") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    ort.set_default_logger_severity(3)  # shape-inference warnings of detection exports are noise to users
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.type == "cuda" else ["CPUExecutionProvider"]
    try:
        return ort.InferenceSession(str(path), options, providers=providers), ort.__version__
    except Exception as exc:  # ORT raises its own exception types from C++
        raise RunError(f"{path}: ONNX Runtime cannot load the model: {exc}") from exc


class OnnxRuntimeAdapter(ModelAdapter):
    """ONNX Runtime session over an exported detector (fp32)."""

    def __init__(
        self,
        device: torch.device,
        precision: str = "fp32",
        *,
        file: Path,
        outputs: dict[str, str] | None = None,
        label_map: dict[int, int] | None = None,
        mask_threshold: float = 0.5,
        threads: int = 0,
    ) -> None:
        super().__init__(device, precision)
        if precision != "fp32":
            raise UserError("the onnxruntime adapter runs the exported model as is: precision must be fp32")
        self.path = Path(file)
        self.outputs = {**DEFAULT_OUTPUTS, **(outputs or {})}
        self.label_map = {int(k): int(v) for k, v in (label_map or {}).items()}
        self.mask_threshold = mask_threshold
        self.session, self.ort_version = open_session(self.path, device, threads)
        self.input_name = self.session.get_inputs()[0].name
        names = {o.name for o in self.session.get_outputs()}
        missing = [v for k, v in self.outputs.items() if k != "masks" and v not in names]
        if missing:
            raise UserError(f"{self.path}: model has no output(s) {missing}; it has {sorted(names)}")
        self.has_masks = self.outputs["masks"] in names

    @property
    def identity(self) -> dict[str, str]:
        return {
            "adapter": f"onnxruntime/{self.version}",
            "model_sha256": file_sha256(self.path),
            "config": digest_json([self.outputs, self.label_map, self.mask_threshold]),
            "onnxruntime": self.ort_version,
            "provider": self.session.get_providers()[0],
        }

    def __call__(self, batch: torch.Tensor, geometries: Sequence[Geometry]) -> list[Detections]:
        names = [self.outputs[k] for k in ("boxes", "labels", "scores")]
        if self.has_masks:
            names.append(self.outputs["masks"])
        results = []
        for image, geometry in zip(batch, geometries, strict=True):
            x = image[None].detach().float().cpu().numpy()
            out = self.session.run(names, {self.input_name: x})
            boxes, labels, scores = (torch.from_numpy(np.asarray(o)) for o in out[:3])
            masks = torch.from_numpy(np.asarray(out[3])) if self.has_masks else None
            mapped = map_labels(labels, self.label_map)
            results.append(rescale(boxes, scores, mapped, masks, geometry, self.mask_threshold))
        return results
