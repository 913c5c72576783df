"""RF-DETR (the ``rfdetr`` package) on the variant's tensor, with the package's own postprocess, on three backends.

The network is built from the package's bundled configuration with ``pretrain_weights=None`` and the local
checkpoint's state dict is loaded into it: constructing an RF-DETR class any other way looks its weights up in
Roboflow's registry and downloads them, and this adapter must never reach the network. Whatever backend runs the
network, its raw outputs (normalised cxcywh boxes, class logits, mask logits) go through ``rfdetr``'s
``PostProcess``: sigmoid, top-k over queries × classes, boxes to xyxy pixels at the original image size, masks
upsampled bilinearly to that size and thresholded at 0. So the backends differ only in how the network ran. With a
letterbox or keep-ratio ``input.resize`` it scales to the canvas instead, and the image's geometry maps the boxes
and the (already thresholded) masks back to the original image.

Backends (``backend`` param):

- ``torch``: the LWDETR module in its export mode (the graph ONNX and TensorRT compile), fp32 on CPU or CUDA,
  fp16 on CUDA; with ``cuda_graphs: true`` (CUDA only; off by default though timed faster, docs/rfdetr.md) the
  forward is captured as a CUDA graph per input shape and replayed, batches padded to ``max_batch``
  (:mod:`preprocgate.models.cuda_graph`).
- ``onnxruntime``: an ONNX export of the same checkpoint (``onnx_file``, or exported into ``engine_cache`` on first
  use with the package's own exporter), fp32, CPU or CUDA provider.
- ``tensorrt``: an engine built from that ONNX file (:mod:`preprocgate.models.tensorrt_engine`; untested here).

Class indices are returned as labels: RF-DETR's COCO checkpoints have 91 logit slots indexed by COCO category id,
so they *are* COCO category ids. A fine-tuned checkpoint numbers its classes in its own order: map them with
``label_map``.
"""

from __future__ import annotations

import argparse
import functools
import os
import pickle
import tempfile
import types
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from preprocgate.errors import MissingDependencyError, RunError, UserError
from preprocgate.functional.masks import UpsampledMasks
from preprocgate.functional.transfer import to_device
from preprocgate.geometry import Geometry
from preprocgate.hashing import digest_json, file_sha256
from preprocgate.models.base import Detections, ModelAdapter, map_labels, rescale
from preprocgate.models.cuda_graph import CapturedForward

BACKENDS = ("torch", "onnxruntime", "tensorrt")
ONNX_OPSET = 17
Outputs = tuple[torch.Tensor, ...]  # boxes (N×Q×4 cxcywh in [0, 1]), logits (N×Q×C), masks (N×Q×h×w) if any


def _import_rfdetr() -> Any:
    try:
        import rfdetr
    except ImportError as exc:
        raise MissingDependencyError("rfdetr", "rfdetr") from exc
    return rfdetr


def load_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The network's state dict from an RF-DETR checkpoint, read without unpickling arbitrary objects.

    Released and trained checkpoints hold the weights under ``model`` next to an ``args`` namespace (allowed here
    as ``rfdetr``'s own safe loader allows it); PyTorch Lightning checkpoints hold them under ``state_dict`` with a
    ``model.`` prefix; a bare state dict is accepted as is.
    """
    try:
        with torch.serialization.safe_globals([argparse.Namespace, types.SimpleNamespace]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError) as exc:
        raise RunError(f"{path}: cannot load the checkpoint: {str(exc).splitlines()[0]}") from exc
    if not isinstance(checkpoint, dict):
        raise RunError(f"{path}: not an RF-DETR checkpoint (a {type(checkpoint).__name__}, not a dict)")
    if "model" in checkpoint:
        checkpoint = checkpoint["model"]
    elif "state_dict" in checkpoint:
        prefix = "model."
        checkpoint = {
            k[len(prefix) :].removeprefix("_orig_mod."): v
            for k, v in checkpoint["state_dict"].items()
            if k.startswith(prefix)
        }
    if "class_embed.bias" not in checkpoint:
        raise RunError(f"{path}: not an RF-DETR checkpoint (no class_embed.bias among its weights)")
    return checkpoint


def build_model(model_class: str, state: dict[str, torch.Tensor]) -> Any:
    """An ``rfdetr`` model object of ``model_class`` on the CPU holding ``state``, built without any download.

    The class count comes from the checkpoint (its class head has one slot more than classes), so fine-tuned
    checkpoints load into a head of the right size.
    """
    rfdetr = _import_rfdetr()
    cls = getattr(rfdetr, model_class, None)
    if not (isinstance(cls, type) and issubclass(cls, rfdetr.RFDETR)):
        raise UserError(f"model_class {model_class!r} is not an RF-DETR model class of rfdetr (e.g. RFDETRSegNano)")
    num_classes = int(state["class_embed.bias"].shape[0]) - 1
    try:
        model = cls(pretrain_weights=None, device="cpu", num_classes=num_classes)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise UserError(f"rfdetr.{model_class}: {exc}") from exc
    except OSError as exc:  # the deprecated patch-14 classes fetch DINOv2 from Hugging Face while being built
        raise RunError(f"rfdetr.{model_class} cannot be built offline ({exc}); use a current class") from exc
    try:
        model.model.model.load_state_dict(state)
    except RuntimeError as exc:
        raise RunError(f"the checkpoint does not fit rfdetr.{model_class}: {str(exc).splitlines()[0]}") from exc
    return model


def export_onnx(model: Any, path: Path) -> None:
    """Write ``model``'s ONNX export (dynamic batch, opset 17) to ``path`` with the package's exporter, atomically."""
    import importlib.util

    if importlib.util.find_spec("onnx") is None:
        raise MissingDependencyError("onnx", "")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=path.parent) as tmp:
        written = model.export(
            output_dir=tmp, format="onnx", opset_version=ONNX_OPSET, dynamic_batch=True, verbose=False
        )
        os.replace(written, path)


def check_backend(backend: str, device: torch.device, precision: str) -> None:
    """Refuse a backend, device and precision that cannot go together, before anything heavy is built."""
    if backend not in BACKENDS:
        raise UserError(f"params.backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend == "torch" and precision == "fp16" and device.type != "cuda":
        raise UserError("precision fp16 needs a CUDA device (the torch backend runs fp16 on CUDA only)")
    if backend == "onnxruntime" and precision != "fp32":
        raise UserError("the onnxruntime backend runs the fp32 export: precision must be fp32")
    if backend == "tensorrt" and device.type != "cuda":
        raise UserError("the tensorrt backend needs a CUDA device")


def default_cache() -> Path:
    """Where exported ONNX files and TensorRT engines go when ``engine_cache`` is not given."""
    return Path(os.environ.get("PREPROCGATE_CACHE") or Path.home() / ".cache" / "preprocgate") / "rfdetr"


def run_in_chunks(x: torch.Tensor, size: int, pad: bool, run: Callable[[torch.Tensor], Outputs]) -> Outputs:
    """``run`` on at most ``size`` images at a time; with ``pad`` a short chunk is padded (static-batch graphs)."""
    parts = []
    for lo in range(0, len(x), size):
        chunk = x[lo : lo + size]
        n = len(chunk)
        if pad and n < size:
            chunk = torch.cat([chunk, chunk.new_zeros((size - n, *chunk.shape[1:]))])
        parts.append([o[:n] for o in run(chunk)])
    return tuple(torch.cat(outs) for outs in zip(*parts, strict=True))


class TorchBackend:
    """The LWDETR module in export mode (``forward_export``, the graph the exports compile), fp32 or fp16.

    ``graph_batch``: replay the forward as a CUDA graph captured for batches of that size
    (:class:`~preprocgate.models.cuda_graph.CapturedForward`), smaller batches padded to it; None runs it eagerly."""

    def __init__(self, net: nn.Module, device: torch.device, precision: str, graph_batch: int | None = None) -> None:
        self.device = device
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        net.eval()
        net.export()  # type: ignore[operator]
        self.net = net.to(device=device, dtype=self.dtype)
        self.graph_batch = graph_batch
        if graph_batch is not None:  # rfdetr's own switch: its transformer keeps shape tensors on the GPU for capture
            getattr(getattr(net, "transformer", None), "enable_cuda_graph_capture", lambda: None)()
        self.graphs: dict[tuple[int, ...], CapturedForward] = {}
        self.identity = {"torch": torch.__version__}

    def __call__(self, x: torch.Tensor) -> Outputs:
        x = x.to(self.device, self.dtype)
        if self.graph_batch is None:
            return tuple(self.net(x))
        return run_in_chunks(x, self.graph_batch, pad=True, run=self._replay)

    def _replay(self, x: torch.Tensor) -> Outputs:
        key = tuple(x.shape)
        if key not in self.graphs:
            self.graphs[key] = CapturedForward(lambda t: tuple(self.net(t)), x)
        return self.graphs[key](x)


class OnnxRuntimeBackend:
    """An ONNX export on ONNX Runtime (fp32); outputs in RF-DETR's export order: dets, labels[, masks]."""

    def __init__(self, path: Path, device: torch.device, threads: int) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingDependencyError("onnxruntime", "onnx") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda":
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # ORT raises its own exception types from C++
            raise RunError(f"{path}: ONNX Runtime cannot load the model: {exc}") from exc
        self.input = self.session.get_inputs()[0]
        self.static_batch = self.input.shape[0] if isinstance(self.input.shape[0], int) else None
        self.identity = {
            "onnx_sha256": file_sha256(path),
            "onnxruntime": ort.__version__,
            "provider": self.session.get_providers()[0],
        }

    def __call__(self, x: torch.Tensor) -> Outputs:
        def run(chunk: torch.Tensor) -> Outputs:
            out = self.session.run(None, {self.input.name: chunk.detach().float().cpu().numpy()})
            return tuple(torch.from_numpy(np.asarray(o)) for o in out)

        return run_in_chunks(x, self.static_batch or len(x), self.static_batch is not None, run)


class TensorRTBackend:
    """A TensorRT engine built from the ONNX export (see :mod:`preprocgate.models.tensorrt_engine`: untested)."""

    def __init__(self, path: Path, device: torch.device, precision: str, cache: Path, max_batch: int) -> None:
        from preprocgate.models.tensorrt_engine import TensorRTEngine

        self.engine = TensorRTEngine(path, device, precision, cache, max_batch)
        self.identity = {"onnx_sha256": file_sha256(path), **self.engine.identity}

    def __call__(self, x: torch.Tensor) -> Outputs:
        return run_in_chunks(x, self.engine.max_batch, self.engine.static_batch is not None, self.engine)


class RFDETRAdapter(ModelAdapter):
    """RF-DETR from a local checkpoint; torch, ONNX Runtime or TensorRT backend; rfdetr's own postprocess."""

    def __init__(
        self,
        device: torch.device,
        precision: str = "fp32",
        *,
        file: Path,
        backend: str = "torch",
        model_class: str = "RFDETRSegNano",
        onnx_file: str | None = None,
        engine_cache: str | None = None,
        num_select: int | None = None,
        score_threshold: float | None = None,
        label_map: dict[int, int] | None = None,
        max_batch: int = 8,
        threads: int = 0,
        cuda_graphs: bool = False,
    ) -> None:
        super().__init__(device, precision)
        check_backend(backend, device, precision)
        if cuda_graphs and (backend != "torch" or device.type != "cuda"):
            raise UserError("cuda_graphs: the torch backend on a CUDA device only")
        self.graph_batch = max_batch if cuda_graphs else None
        self.cache = _absolute("engine_cache", engine_cache) or default_cache()
        onnx_path = _absolute("onnx_file", onnx_file)
        if onnx_path is not None and not onnx_path.is_file():
            raise RunError(f"params.onnx_file: {onnx_path} not found")
        _import_rfdetr()
        self.checkpoint, self.backend, self.model_class = Path(file), backend, model_class
        self.rfdetr_version = version("rfdetr")
        model = build_model(model_class, load_checkpoint(self.checkpoint))
        config = model.model_config
        self.block = config.patch_size * config.num_windows  # the network takes sides divisible by this
        self.resolution = (config.resolution, config.resolution)  # the exports are traced at this size
        self.num_select = num_select or config.num_select
        self.postprocess = _postprocess_class()(num_select=self.num_select)
        self.score_threshold = score_threshold
        self.label_map = {int(k): int(v) for k, v in (label_map or {}).items()}
        self.runner: TorchBackend | OnnxRuntimeBackend | TensorRTBackend
        if backend == "torch":
            self.runner = TorchBackend(model.model.model, device, precision, self.graph_batch)
            return
        onnx_path = onnx_path or self._exported(model)
        del model  # the network runs from the ONNX file from here on
        if backend == "onnxruntime":
            self.runner = OnnxRuntimeBackend(onnx_path, device, threads)
        else:
            self.runner = TensorRTBackend(onnx_path, device, precision, self.cache, max_batch)

    def _exported(self, model: Any) -> Path:
        """The checkpoint's ONNX export in the cache, exported on first use (keyed by everything that shapes it)."""
        key = digest_json(
            [file_sha256(self.checkpoint), self.model_class, self.rfdetr_version, torch.__version__, ONNX_OPSET]
        )
        path = self.cache / "onnx" / f"{self.model_class}-{key[:16]}.onnx"
        if not path.is_file():
            export_onnx(model, path)
        return path

    @property
    def identity(self) -> dict[str, str]:
        return {
            "adapter": f"rfdetr/{self.version}",
            "checkpoint_sha256": file_sha256(self.checkpoint),
            "model_class": self.model_class,
            "backend": self.backend,
            "config": digest_json(
                [self.num_select, self.score_threshold, self.label_map, self.precision]
                + (["cuda_graphs", self.graph_batch] if self.graph_batch else [])  # eager runs keep their keys
            ),
            "rfdetr": self.rfdetr_version,
            **self.runner.identity,
        }

    def __call__(self, batch: torch.Tensor, geometries: Sequence[Geometry]) -> list[Detections]:
        with torch.inference_mode():
            return self.launch(batch, geometries)()

    def launch(self, batch: torch.Tensor, geometries: Sequence[Geometry]) -> Callable[[], list[Detections]]:
        """The forward and the postprocess queued; the call returned waits for the batch's boxes, scores and
        labels on the host (:class:`_Selection`: not for the masks' kernels queued behind them) and makes the
        detections."""
        size = tuple(batch.shape[-2:])
        if self.backend == "torch":
            if size[0] % self.block or size[1] % self.block:
                raise UserError(
                    f"input.size {size[0]}x{size[1]}: {self.model_class} needs sides divisible by {self.block}"
                )
        elif size != self.resolution:
            raise UserError(
                f"input.size {size[0]}x{size[1]}: the {self.backend} backend runs the export traced at "
                f"{self.resolution[0]}x{self.resolution[1]}"
            )
        with torch.inference_mode():
            boxes, logits, *masks = (o.float() for o in self.runner(batch))
            raw = {"pred_boxes": boxes, "pred_logits": logits}
            if masks:
                raw["pred_masks"] = masks[0]
            # PostProcess scales to a target size: the source for a stretch (its own mapping, exactly), else the
            # canvas, from which the geometry maps boxes and masks back to the source
            targets = torch.tensor([list(g.source if g.is_stretch else g.canvas) for g in geometries])
            self.postprocess.host_sizes, self.postprocess.selection = targets, None
            self.postprocess.upsampled = all(g.is_stretch for g in geometries)  # else the geometry maps drawn masks
            sizes = to_device(targets, boxes.device)  # not waiting for the forward
            results = self.postprocess(raw, sizes, score_threshold=self.score_threshold)
            selection = self.postprocess.selection  # the next launch sets its own

        def detections() -> list[Detections]:
            columns = selection.columns() if selection is not None else _host_columns(results)
            return [self._detections(r, g, c) for r, g, c in zip(results, geometries, columns, strict=True)]

        return detections

    def _detections(self, result: dict[str, torch.Tensor], geometry: Geometry, host: HostColumns) -> Detections:
        boxes, scores, labels = host
        # PostProcess applies the threshold before upsampling masks, not to box-only models: filter here for both,
        # in float32 as torch compares a float32 tensor with a Python number
        keep = None if self.score_threshold is None else np.flatnonzero(scores > np.float32(self.score_threshold))
        if keep is not None:
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        mapped = map_labels(labels, self.label_map)
        masks = result.get("masks")
        on_device = None  # the kept rows' indices where the device tensors are still needed
        if keep is not None and (masks is not None or not geometry.is_stretch):
            on_device = torch.from_numpy(keep).to(result["scores"].device)
        if masks is not None and on_device is not None:
            masks = masks.index_select(0, on_device)
        if not geometry.is_stretch:
            kept = masks[:, 0].float() if masks is not None else None  # thresholded at the canvas already
            device_boxes = result["boxes"] if on_device is None else result["boxes"].index_select(0, on_device)
            return rescale(device_boxes, torch.from_numpy(scores), mapped, kept, geometry)
        if isinstance(masks, torch.Tensor):
            masks = masks[:, 0]
        return Detections(boxes=boxes, scores=scores, labels=mapped, masks=masks)


HostColumns = tuple[np.ndarray, np.ndarray, np.ndarray]


class _Selection:
    """The batch's selected scores, labels and boxes (B×K, B×K, B×K×4) on their way to the host: copies queued
    into page-locked memory right behind the selection, ahead of the masks' resize."""

    def __init__(self, scores: torch.Tensor, labels: torch.Tensor, boxes: torch.Tensor) -> None:
        self.done: torch.cuda.Event | None = None
        tensors = (scores.float(), labels, boxes.float())
        if scores.device.type != "cuda":
            self.host = tuple(t.cpu() for t in tensors)
            return
        self.host = tuple(
            torch.empty(t.shape, dtype=t.dtype, pin_memory=True).copy_(t, non_blocking=True) for t in tensors
        )
        self.done = torch.cuda.Event()
        self.done.record(torch.cuda.current_stream(scores.device))

    def columns(self) -> list[HostColumns]:
        """Each image's columns, as :func:`_host_columns` gives them, once the copies have landed: the wait is
        for the network and the selection, not for the masks' resize queued after them."""
        if self.done is not None:
            self.done.synchronize()
        scores, labels, boxes = (t.numpy() for t in self.host)
        return [(boxes[i], scores[i], labels[i].astype(np.int64)) for i in range(len(scores))]


@functools.cache
def _postprocess_class() -> type:
    """rfdetr's ``PostProcess`` (imported on first use, as rfdetr is) without its waits for the GPU and with fewer
    calls from Python, its values unchanged (tests/test_rfdetr.py compares the two).

    - The masks' resize reads the target sizes from ``host_sizes``: rfdetr reads them back from the device
      (``target_sizes.tolist()``), a copy queued behind the whole forward.
    - Where no score threshold filters each image's rows (the filter's ``nonzero`` waits anyway), the batch's
      selection starts for the host (``selection``, a :class:`_Selection`) before the masks are resized: the
      caller then waits for the network, not for the resize of every mask to its photo's size, which the dump
      leaves on the GPU for its encoder (RF-DETR seg: 100 masks an image). The batch's masks are then picked in
      one call and each photo's resized in as few as fit ``MASK_ELEMENTS`` (:func:`_resized_masks`): the
      dump's inferring thread is bound by the calls it makes from Python, and rfdetr makes about 20 an image.
      With ``upsampled`` (the adapter sets it for a stretch: no geometry maps the masks back) they are not
      drawn at all but handed over as :class:`~preprocgate.functional.masks.UpsampledMasks`, which the GPU RLE
      draws as it reads them, or anything else draws exactly as rfdetr does.

    The overridden step is private to rfdetr: where a version lacks it, neither change applies and the values
    are still rfdetr's."""
    from rfdetr.models import PostProcess

    class BatchPostProcess(PostProcess):
        host_sizes: torch.Tensor | None = None
        selection: _Selection | None = None
        upsampled = False  # the masks handed over undrawn (UpsampledMasks) where they are not filtered

        def _postprocess_masks(  # type: ignore[override]
            self,
            out_masks: torch.Tensor,
            scores: torch.Tensor,
            labels: torch.Tensor,
            boxes: torch.Tensor,
            topk_boxes: torch.Tensor,
            target_sizes: torch.Tensor,
            upsample_masks_to_image_size: bool = True,
            **kwargs: Any,
        ) -> list[dict[str, torch.Tensor]]:
            sizes = target_sizes if self.host_sizes is None else self.host_sizes
            if kwargs.get("score_threshold") is not None or not upsample_masks_to_image_size:
                return super()._postprocess_masks(
                    out_masks, scores, labels, boxes, topk_boxes, sizes, upsample_masks_to_image_size, **kwargs
                )
            self.selection = _Selection(scores, labels, boxes)
            if self.upsampled:
                chosen = _picked(out_masks, topk_boxes)
                masks = [UpsampledMasks(m, h, w) for m, (h, w) in zip(chosen, sizes.tolist(), strict=True)]
            else:
                masks = _resized_masks(out_masks, topk_boxes, sizes.tolist())
            return [
                {"scores": s, "labels": c, "boxes": b, "masks": m}
                for s, c, b, m in zip(scores, labels, boxes, masks, strict=True)
            ]

    return BatchPostProcess


def _resized_masks(logits: torch.Tensor, picked: torch.Tensor, sizes: list[list[int]]) -> list[torch.Tensor]:
    """Each image's picked mask logits (``logits`` B×Q×h×w, ``picked`` B×K query indices) resized bilinearly to its
    size and thresholded at 0, K×1×H×W bool: rfdetr's masks (:meth:`UpsampledMasks.drawn`)."""
    chosen = _picked(logits, picked)
    return [UpsampledMasks(m, h, w).drawn()[:, None] for m, (h, w) in zip(chosen, sizes, strict=True)]


def _picked(logits: torch.Tensor, picked: torch.Tensor) -> torch.Tensor:
    """The picked masks' logits, B×K×h×w, in one call for the batch."""
    batch, queries = logits.shape[:2]
    rows = picked + torch.arange(batch, device=picked.device)[:, None] * queries
    return logits.flatten(0, 1).index_select(0, rows.flatten()).unflatten(0, picked.shape)


def _host_columns(results: Sequence[dict[str, torch.Tensor]]) -> list[HostColumns]:
    """Each image's boxes (float32), scores (float32) and labels (int64) on the host, brought over for the whole
    batch at once: three transfers and their waits a batch, where one image at a time took three each (24 host
    synchronisations for a batch of 8 on the dump's inferring thread)."""
    if not results:
        return []
    splits = np.cumsum([len(r["scores"]) for r in results])[:-1]
    boxes = torch.cat([r["boxes"].float() for r in results]).cpu().numpy()
    scores = torch.cat([r["scores"].float() for r in results]).cpu().numpy()
    labels = torch.cat([r["labels"] for r in results]).cpu().numpy().astype(np.int64)
    return list(zip(np.split(boxes, splits), np.split(scores, splits), np.split(labels, splits), strict=True))


def _absolute(name: str, value: str | None) -> Path | None:
    """A path param: empty means unset (``${VAR:-}`` in a spec); relative paths are refused, as nothing anchors them
    (only ``model.file`` is resolved against the spec's folder)."""
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute():
        raise UserError(f"params.{name}: {value!r} must be an absolute path")
    return path
