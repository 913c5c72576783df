"""The rfdetr adapter end to end on a randomly initialised RF-DETR seg-nano, on the CPU, with the network blocked.

Needs ``rfdetr`` and torchvision, which the main CI venv lacks: there the module is skipped. CI's second step
installs them and sets PREPROCGATE_REQUIRE_RFDETR=1, which turns a failed import into a failure instead of a skip.
A checkpoint is 135 MB: it is built in a temporary folder, never committed. A forward pass costs about a second
per image on two cores, so the tests use three small images and share one checkpoint, one torch adapter and one
ONNX export.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

if os.environ.get("PREPROCGATE_REQUIRE_RFDETR") == "1":
    import rfdetr
    import torchvision
else:
    reason = "needs rfdetr and torchvision (pip install '.[rfdetr]'); CI runs it in .venv-rfdetr, see .ci/run"
    torchvision = pytest.importorskip("torchvision", reason=reason)
    rfdetr = pytest.importorskip("rfdetr", reason=reason)

from preprocgate.cli import cli
from preprocgate.data import demo
from preprocgate.errors import UserError
from preprocgate.functional.masks import UpsampledMasks
from preprocgate.geometry import Geometry, plan_batch
from preprocgate.models import MODELS
from preprocgate.models.rfdetr import RFDETRAdapter
from preprocgate.spec import InputSpec
from preprocgate.variants import VARIANTS, build_variant
from tests.helpers.gates import write_gate

pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # rfdetr's ONNX export traces
CPU = torch.device("cpu")
SIZE = (312, 312)


def stretched(images: list[np.ndarray], size: tuple[int, int] = SIZE) -> list[Geometry]:
    return plan_batch([im.shape[:2] for im in images], size)


# ONNX Runtime vs torch on the same fp32 tensor, measured at 0 px, 1e-7 and ~3e-6 of mask pixels on x86 CPUs:
# the bounds leave room for other CPUs' kernels while still catching a wrong output order or a lost postprocess.
BOX_ATOL_PX = 0.01
SCORE_ATOL = 1e-5
MASK_MISMATCH = 1e-3


@pytest.fixture(scope="module", autouse=True)
def _no_network() -> Any:
    """Building, loading and exporting must never reach the network (the package downloads weights by default)."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the rfdetr adapter attempted a network connection")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        yield


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random seg-nano checkpoint in the released format, named like the registry's file (no lookup may follow)."""
    torch.manual_seed(0)
    model = rfdetr.RFDETRSegNano(pretrain_weights=None, device="cpu")
    path = tmp_path_factory.mktemp("ckpt") / "rf-detr-seg-nano.pt"
    args = argparse.Namespace(num_classes=90, class_names=["person", "bicycle"])
    torch.save({"model": model.model.model.state_dict(), "args": args}, path)
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> demo.CocoPaths:
    return demo.generate(tmp_path_factory.mktemp("demo"), "val", 3, seed=0)


@pytest.fixture(scope="module")
def images(dataset: demo.CocoPaths) -> list[np.ndarray]:
    import cv2

    return [cv2.imread(str(p)) for p in sorted(dataset.images.iterdir())]


@pytest.fixture(scope="module")
def batch(images: list[np.ndarray]) -> torch.Tensor:
    variant = build_variant(VARIANTS.get("torch"), InputSpec(size=SIZE), CPU, {})
    return variant(images)


@pytest.fixture(scope="module")
def torch_adapter(checkpoint: Path) -> RFDETRAdapter:
    return RFDETRAdapter(CPU, file=checkpoint, score_threshold=0.05)


def test_registered_as_rfdetr() -> None:
    assert MODELS.get("rfdetr") is RFDETRAdapter


def test_torch_backend_boxes_and_masks_at_original_size(
    torch_adapter: RFDETRAdapter, images: list[np.ndarray], batch: torch.Tensor
) -> None:
    sizes = [im.shape[:2] for im in images]
    dets = torch_adapter(batch, stretched(images))
    assert len(dets) == len(images)
    assert torch_adapter.identity["backend"] == "torch" and torch_adapter.identity["rfdetr"] == version("rfdetr")
    for det, (h, w) in zip(dets, sizes, strict=True):
        k = len(det)
        assert 0 < k <= 100  # seg-nano selects its top 100 query × class pairs; random weights score ~0.05-0.1
        assert det.boxes.shape == (k, 4) and det.boxes.dtype == np.float32
        assert (det.boxes[:, 0::2] >= 0).all() and (det.boxes[:, 0::2] <= w).all()
        assert (det.boxes[:, 1::2] >= 0).all() and (det.boxes[:, 1::2] <= h).all()
        assert (det.boxes[:, 2:] >= det.boxes[:, :2]).all()
        assert det.masks is not None and det.masks.shape == (k, h, w) and det.masks.dtype == torch.bool
        assert (det.scores > 0.05).all() and (np.diff(det.scores) <= 0).all()
        assert det.labels.dtype == np.int64 and ((det.labels >= 0) & (det.labels <= 90)).all()


def test_torch_backend_equals_the_packages_own_forward_and_postprocess(
    torch_adapter: RFDETRAdapter, checkpoint: Path, images: list[np.ndarray], batch: torch.Tensor
) -> None:
    """The adapter is rfdetr's model.model.model + model.model.postprocess on the variant's tensor, nothing else."""
    model = rfdetr.RFDETRSegNano(pretrain_weights=None, device="cpu")
    model.model.model.load_state_dict(torch.load(checkpoint, weights_only=False)["model"])
    model.model.model.eval()
    sizes = [im.shape[:2] for im in images]
    with torch.inference_mode():
        out = model.model.model(batch)
        expected = model.model.postprocess(out, torch.tensor(sizes), score_threshold=0.05)
    for det, ref in zip(torch_adapter(batch, stretched(images)), expected, strict=True):
        np.testing.assert_array_equal(det.boxes, ref["boxes"].numpy())
        np.testing.assert_array_equal(det.scores, ref["scores"].numpy())
        np.testing.assert_array_equal(det.labels, ref["labels"].numpy())  # COCO category ids, unmapped
        assert torch.equal(det.masks, ref["masks"][:, 0])


def test_without_a_threshold_the_batch_s_selection_goes_to_the_host_ahead_of_the_masks(
    checkpoint: Path, images: list[np.ndarray], batch: torch.Tensor
) -> None:
    """With every selected row kept (no score threshold, how the gate dumps for evaluation), the adapter reads the
    batch's scores, labels and boxes from the copies started before the masks' resize (on a GPU the wait is then
    for the network, not the masks), and the masks' resize takes the sizes from the host: still exactly rfdetr's
    own postprocess, whose every row comes back."""
    adapter = RFDETRAdapter(CPU, file=checkpoint)
    sizes = [im.shape[:2] for im in images]
    with torch.inference_mode():
        boxes, logits, masks = (o.float() for o in adapter.runner(batch))
        raw = {"pred_boxes": boxes, "pred_logits": logits, "pred_masks": masks}
        expected = rfdetr.models.PostProcess(num_select=adapter.num_select)(raw, torch.tensor(sizes))
    got = adapter(batch, stretched(images))
    assert adapter.postprocess.selection is not None  # the columns came from the early copies
    for det, ref, (h, w) in zip(got, expected, sizes, strict=True):
        assert len(det) == adapter.num_select
        np.testing.assert_array_equal(det.boxes, ref["boxes"].numpy())
        np.testing.assert_array_equal(det.scores, ref["scores"].numpy())
        np.testing.assert_array_equal(det.labels, ref["labels"].numpy())
        assert det.labels.dtype == np.int64 and det.masks.shape == (len(det), h, w)
        assert isinstance(det.masks, UpsampledMasks)  # drawn by the RLE as it reads them, or where needed
        assert torch.equal(det.masks.drawn(), ref["masks"][:, 0])
    thresholded = RFDETRAdapter(CPU, file=checkpoint, score_threshold=0.05)
    thresholded(batch, stretched(images))
    assert thresholded.postprocess.selection is None  # per-image filtering: the columns come from the results


def test_a_batch_launched_before_the_last_one_is_taken_leaves_its_detections_alone(
    checkpoint: Path, images: list[np.ndarray], batch: torch.Tensor
) -> None:
    """The local executor's ``lookahead`` launches the next batch before it takes this one's detections: each
    launch keeps its own selection (the postprocess's state is the latest launch's), so both batches give what
    each gives alone, taken in either order."""
    adapter = RFDETRAdapter(CPU, file=checkpoint)
    halves = [(batch[:2], stretched(images[:2])), (batch[2:], stretched(images[2:]))]
    alone = [adapter(*half) for half in halves]
    first, second = (adapter.launch(*half) for half in halves)
    for got, expected in ((second(), alone[1]), (first(), alone[0])):
        assert len(got) == len(expected)
        for det, ref in zip(got, expected, strict=True):
            np.testing.assert_array_equal(det.boxes, ref.boxes)
            np.testing.assert_array_equal(det.scores, ref.scores)
            assert torch.equal(det.masks.drawn(), ref.masks.drawn())


@pytest.mark.parametrize("elements", [None, 7 * 50 * 40, 1])
def test_each_photo_s_masks_resized_in_few_calls_are_rfdetr_s(monkeypatch: pytest.MonkeyPatch, elements: int) -> None:
    """The batch's masks picked in one call and each photo's resized in as few calls as fit ``MASK_ELEMENTS`` (all
    at once, 7 at a time, one at a time) are rfdetr's, 32 at a time; an image with no rows gets an empty stack."""
    from preprocgate.functional import masks as masks_module
    from preprocgate.models import rfdetr as adapter_module

    if elements is not None:
        monkeypatch.setattr(masks_module, "MASK_ELEMENTS", elements)
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(3, 60, 13, 11, generator=generator)
    picked = torch.randint(0, 60, (3, 45), generator=generator)
    sizes = [[50, 40], [17, 91], [64, 64]]
    expected = rfdetr.models.PostProcess._postprocess_masks(
        logits, picked.float(), picked, torch.zeros(3, 45, 4), picked, torch.tensor(sizes)
    )
    got = adapter_module._resized_masks(logits, picked, sizes)
    for masks, ref in zip(got, expected, strict=True):
        assert masks.dtype == torch.bool and torch.equal(masks, ref["masks"])
    (empty,) = adapter_module._resized_masks(logits[:1], picked[:1, :0], [[5, 6]])
    assert empty.shape == (0, 1, 5, 6) and empty.dtype == torch.bool


def test_letterboxed_detections_are_the_postprocess_filtered_then_mapped_back(
    torch_adapter: RFDETRAdapter, images: list[np.ndarray]
) -> None:
    """Off the stretch path the adapter filters rfdetr's postprocess by its threshold and maps boxes and masks
    from the canvas to the source (``rescale``): the same as filtering the device tensors themselves, although it
    now brings the batch's boxes, scores and labels to the host once and filters there."""
    from preprocgate.models.base import rescale

    config = InputSpec(size=SIZE, resize="letterbox")
    batch = build_variant(VARIANTS.get("torch"), config, CPU, {})(images)
    geometries = plan_batch([im.shape[:2] for im in images], SIZE, config.resize)
    assert not any(g.is_stretch for g in geometries)
    got = torch_adapter(batch, geometries)
    assert sum(len(d.scores) for d in got) > 0
    with torch.inference_mode():
        boxes, logits, masks = (o.float() for o in torch_adapter.runner(batch))
        raw = {"pred_boxes": boxes, "pred_logits": logits, "pred_masks": masks}
        results = torch_adapter.postprocess(
            raw, torch.tensor([list(g.canvas) for g in geometries]), score_threshold=0.05
        )
    for det, r, g in zip(got, results, geometries, strict=True):
        keep = r["scores"] > 0.05
        expected = rescale(
            r["boxes"][keep], r["scores"][keep], r["labels"][keep].numpy(), r["masks"][keep][:, 0].float(), g
        )
        np.testing.assert_array_equal(det.boxes, expected.boxes)
        np.testing.assert_array_equal(det.scores, expected.scores)
        np.testing.assert_array_equal(det.labels, expected.labels)
        assert torch.equal(det.masks, expected.masks)
        assert det.masks.shape[1:] == g.source


def test_onnxruntime_matches_torch_within_tolerance(
    torch_adapter: RFDETRAdapter,
    checkpoint: Path,
    tmp_path_factory: pytest.TempPathFactory,
    images: list[np.ndarray],
    batch: torch.Tensor,
) -> None:
    cache = tmp_path_factory.mktemp("engines")
    ort_adapter = RFDETRAdapter(
        CPU, file=checkpoint, backend="onnxruntime", engine_cache=str(cache), score_threshold=0.05
    )
    exported = list((cache / "onnx").glob("*.onnx"))
    assert len(exported) == 1 and ort_adapter.identity["onnx_sha256"]
    geometries = stretched(images)
    for got, ref in zip(ort_adapter(batch, geometries), torch_adapter(batch, geometries), strict=True):
        assert len(got) == len(ref)
        np.testing.assert_array_equal(got.labels, ref.labels)
        np.testing.assert_allclose(got.boxes, ref.boxes, atol=BOX_ATOL_PX, rtol=0)
        np.testing.assert_allclose(got.scores, ref.scores, atol=SCORE_ATOL, rtol=0)
        assert got.masks is not None and ref.masks is not None
        assert (got.masks != ref.masks).float().mean() <= MASK_MISMATCH
    # a given onnx_file is used as is: no second export
    again = RFDETRAdapter(CPU, file=checkpoint, backend="onnxruntime", onnx_file=str(exported[0]))
    assert again.identity["onnx_sha256"] == ort_adapter.identity["onnx_sha256"]
    assert list((cache / "onnx").glob("*.onnx")) == exported


def test_label_map_and_num_select(checkpoint: Path, images: list[np.ndarray], batch: torch.Tensor) -> None:
    adapter = RFDETRAdapter(CPU, file=checkpoint, num_select=5, label_map={i: 1000 + i for i in range(91)})
    dets = adapter(batch[:1], stretched(images[:1]))
    assert len(dets[0]) == 5 and (dets[0].labels >= 1000).all()


def test_input_size_must_fit_the_patch_grid(torch_adapter: RFDETRAdapter, images: list[np.ndarray]) -> None:
    from preprocgate.errors import UserError

    with pytest.raises(UserError, match="divisible by 12"):
        torch_adapter(torch.zeros(1, 3, 320, 320), stretched(images[:1], (320, 320)))


@pytest.mark.parametrize("threshold", [0.05, None])
def test_gate_end_to_end(tmp_path: Path, checkpoint: Path, dataset: demo.CocoPaths, threshold: float | None) -> None:
    """Both variants through the rfdetr adapter, evaluated and diffed; batch 2 over 3 images leaves a short batch.
    Without a threshold every image keeps its 100 rows, their masks handed to the dump undrawn."""
    params = {"score_threshold": threshold} if threshold else {}
    spec: dict[str, Any] = {
        "name": "rf",
        "device": "cpu",
        "input": {"size": "312x312"},
        "variants": {"cv2": "cv2", "torch": "torch"},
        "baseline": "cv2",
        "probes": {"parity": None, "speed": None},
        "dataset": {"images": str(dataset.images), "annotations": str(dataset.annotations)},
        "model": {"adapter": "rfdetr", "file": str(checkpoint), "batch_size": 2, "params": params},
        "thresholds": {"map": {"max_abs_delta": 1.0}},  # random weights: the verdict is not the point
        "cache_dir": "cache",
        "report": {"output_dir": "out"},
    }
    result = CliRunner().invoke(cli, ["run", str(write_gate(tmp_path, spec))])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / "rf.json").read_text())
    assert data["model"]["adapter"] == "rfdetr/1" and data["model"]["model_class"] == "RFDETRSegNano"
    assert [d["images"] for d in data["dumps"]] == [3, 3]
    assert all(d["detections"] > 0 if threshold else d["detections"] == 300 for d in data["dumps"])
    assert set(data["metrics"]["cv2"]) == {"bbox", "segm"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 runs on CUDA only; this machine has no GPU")
def test_torch_fp16_on_cuda_matches_fp32(checkpoint: Path, images: list[np.ndarray], batch: torch.Tensor) -> None:
    cuda = torch.device("cuda")
    fp32 = RFDETRAdapter(cuda, "fp32", file=checkpoint)(batch.to(cuda), stretched(images))
    fp16 = RFDETRAdapter(cuda, "fp16", file=checkpoint)(batch.to(cuda), stretched(images))
    for a, b in zip(fp16, fp32, strict=True):
        assert len(a) == len(b) == 100
        np.testing.assert_allclose(a.scores[:10], b.scores[:10], atol=5e-3)


def test_cuda_graphs_are_refused_where_they_cannot_run(checkpoint: Path) -> None:
    with pytest.raises(UserError, match="cuda_graphs: the torch backend on a CUDA device only"):
        RFDETRAdapter(CPU, file=checkpoint, cuda_graphs=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU; this machine has none")
def test_cuda_graphs_replay_the_forward_for_full_and_padded_batches(
    checkpoint: Path, images: list[np.ndarray], batch: torch.Tensor
) -> None:
    cuda = torch.device("cuda")
    eager = RFDETRAdapter(cuda, file=checkpoint, max_batch=4)
    graphed = RFDETRAdapter(cuda, file=checkpoint, max_batch=4, cuda_graphs=True)
    assert eager.identity["config"] != graphed.identity["config"]  # cached apart
    four = torch.cat([batch, batch[:1]]).to(cuda)  # a full batch, then the three images padded to four
    geometries = stretched([*images, images[0]])
    for x, plan in ((four, geometries), (four[:3], geometries[:3]), (four, geometries)):
        got, want = graphed(x, plan), eager(x, plan)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a.scores, b.scores, atol=SCORE_ATOL)
            np.testing.assert_allclose(a.boxes, b.boxes, atol=BOX_ATOL_PX)
            assert (a.masks.drawn() != b.masks.drawn()).float().mean().item() <= MASK_MISMATCH
    assert list(graphed.runner.graphs) == [(4, 3, *SIZE)]  # one capture, replayed for every call


def test_tensorrt_matches_torch(
    checkpoint: Path, tmp_path: Path, images: list[np.ndarray], batch: torch.Tensor
) -> None:
    """Written for a machine with TensorRT and a GPU; none is available to this project, so it has never run."""
    pytest.importorskip("tensorrt", reason="TensorRT is not installed: the tensorrt backend is untested here")
    if not torch.cuda.is_available():
        pytest.skip("the tensorrt backend needs a CUDA device")
    cuda = torch.device("cuda")
    reference = RFDETRAdapter(cuda, file=checkpoint)(batch.to(cuda), stretched(images))
    engine = RFDETRAdapter(cuda, file=checkpoint, backend="tensorrt", engine_cache=str(tmp_path))
    for got, ref in zip(engine(batch.to(cuda), stretched(images)), reference, strict=True):
        np.testing.assert_array_equal(got.labels[:10], ref.labels[:10])
        np.testing.assert_allclose(got.boxes[:10], ref.boxes[:10], atol=0.5)
    built = list((tmp_path / "tensorrt").glob("*.engine"))
    assert len(built) == 1
    RFDETRAdapter(cuda, file=checkpoint, backend="tensorrt", engine_cache=str(tmp_path))  # reuses the cached engine
    assert list((tmp_path / "tensorrt").glob("*.engine")) == built
