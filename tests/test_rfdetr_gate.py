"""gates/rfdetr.yaml and the rfdetr adapter's checks that need neither the rfdetr package nor a model (main CI venv).

The adapter itself runs in tests/test_rfdetr.py, in CI's second venv.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

from preprocgate.cli import cli
from preprocgate.errors import MissingDependencyError, RunError, UserError
from preprocgate.models.rfdetr import RFDETRAdapter, load_checkpoint, run_in_chunks
from preprocgate.spec import load_gate
from tests.helpers.gates import write_gate

ROOT = Path(__file__).resolve().parents[1]
GATE = ROOT / "gates" / "rfdetr.yaml"
VARIABLES = ("COCO_VAL_IMAGES", "COCO_VAL_ANNOTATIONS", "RFDETR_CHECKPOINT", "RFDETR_BACKEND", "RFDETR_ONNX")
CPU = torch.device("cpu")


def test_rfdetr_gate_validates_without_data_and_states_the_study() -> None:
    spec = load_gate(GATE, env={}, check_inputs=False).spec
    assert spec.input.size == (312, 312) and spec.input.source_order == "BGR"
    assert list(spec.variants) == ["cv2", "torch", "triton"] and spec.baseline == "cv2"
    assert spec.probes.parity is not None
    gated = [p for p in spec.probes.parity.pairs if not p.thresholds.is_empty]
    assert [(p.candidate, p.reference, p.thresholds.max_ulp) for p in gated] == [("triton", "torch", 1)]
    assert spec.thresholds.map is not None and spec.thresholds.map.max_abs_delta == 0.002
    metrics = {f"{t}.{m}" for t in ("bbox", "segm") for m in ("AP", "AP50", "AP75")}
    assert set(spec.thresholds.map.metrics) == metrics
    assert spec.diff.score_threshold == 0.4
    assert spec.model is not None and spec.model.adapter == "rfdetr"
    assert spec.model.params["score_threshold"] == 0.05 and spec.model.params["model_class"] == "RFDETRSegNano"


def test_rfdetr_gate_takes_its_paths_and_backend_from_the_environment(tmp_path: Path) -> None:
    env = {
        "COCO_VAL_IMAGES": str(tmp_path / "val2017"),
        "COCO_VAL_ANNOTATIONS": str(tmp_path / "instances_val2017.json"),
        "RFDETR_CHECKPOINT": str(tmp_path / "ck.pt"),
        "RFDETR_BACKEND": "onnxruntime",
        "RFDETR_ONNX": str(tmp_path / "m.onnx"),
    }
    gate = load_gate(GATE, env=env, check_inputs=False)
    assert gate.spec.dataset is not None and gate.spec.model is not None
    assert gate.path_to(gate.spec.dataset.images) == tmp_path / "val2017"  # type: ignore[arg-type]
    assert gate.path_to(gate.spec.model.file) == tmp_path / "ck.pt"
    assert gate.spec.model.params["backend"] == "onnxruntime"
    assert gate.spec.model.params["onnx_file"] == str(tmp_path / "m.onnx")


def _offline_gate(tmp_path: Path, **sections: Any) -> Path:
    spec: dict[str, Any] = {
        "name": "env",
        "device": "cpu",
        "input": {"size": "48x48"},
        "variants": {"cv2": "cv2"},
        "baseline": "cv2",
        "probes": {"parity": None, "speed": None},
        "cache_dir": "cache",
        "report": {"output_dir": "out"},
        **sections,
    }
    return write_gate(tmp_path, spec)


def test_missing_dataset_names_the_variables_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PG_IMAGES", "PG_ANNOTATIONS"):
        monkeypatch.delenv(name, raising=False)
    dataset = {"images": "${PG_IMAGES:-coco/val2017}", "annotations": "${PG_ANNOTATIONS:-coco/instances.json}"}
    path = _offline_gate(tmp_path, dataset=dataset, model={"adapter": "rfdetr", "file": "ck.pt"})
    result = CliRunner().invoke(cli, ["run", str(path)])
    assert result.exit_code == 2  # found when the spec loads, before any work
    assert f"dataset.annotations: file {tmp_path / 'coco' / 'instances.json'} not found" in result.output
    assert "the spec reads it from: PG_ANNOTATIONS" in result.output
    assert "the spec reads it from: PG_IMAGES" in result.output


def test_missing_checkpoint_names_the_variable_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PG_CHECKPOINT", raising=False)
    model = {"adapter": "rfdetr", "file": "${PG_CHECKPOINT:-weights/rf-detr-seg-nano.pt}"}
    path = _offline_gate(tmp_path, dataset={"demo": {"count": 1}}, model=model)
    result = CliRunner().invoke(cli, ["run", str(path)])
    assert result.exit_code == 2
    assert f"model.file: file {tmp_path / 'weights' / 'rf-detr-seg-nano.pt'} not found" in result.output
    assert "reads it from: PG_CHECKPOINT" in result.output


def test_a_literal_path_gets_no_variable_hint(tmp_path: Path) -> None:
    path = _offline_gate(tmp_path, dataset={"demo": {"count": 1}}, model={"adapter": "rfdetr", "file": "ck.pt"})
    result = CliRunner().invoke(cli, ["run", str(path)])
    assert result.exit_code == 2 and "not found" in result.output and "environment" not in result.output
    assert CliRunner().invoke(cli, ["validate", "--spec-only", str(path)]).exit_code == 0


@pytest.mark.parametrize(
    ("params", "device", "precision", "message"),
    [
        ({"backend": "openvino"}, "cpu", "fp32", "expected one of torch, onnxruntime, tensorrt"),
        ({}, "cpu", "fp16", "fp16 needs a CUDA device"),
        ({"backend": "onnxruntime"}, "cpu", "fp16", "precision must be fp32"),
        ({"backend": "tensorrt"}, "cpu", "fp32", "tensorrt backend needs a CUDA device"),
        ({"onnx_file": "exports/m.onnx"}, "cpu", "fp32", "params.onnx_file: 'exports/m.onnx' must be an absolute"),
        ({"engine_cache": "cache"}, "cpu", "fp32", "params.engine_cache: 'cache' must be an absolute path"),
    ],
)
def test_bad_params_fail_before_anything_is_built(
    tmp_path: Path, params: dict[str, Any], device: str, precision: str, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        RFDETRAdapter(torch.device(device), precision, file=tmp_path / "ck.pt", **params)


def test_a_missing_onnx_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RunError, match=r"params\.onnx_file: .*nope\.onnx not found"):
        RFDETRAdapter(CPU, file=tmp_path / "ck.pt", backend="onnxruntime", onnx_file=str(tmp_path / "nope.onnx"))


@pytest.mark.skipif(importlib.util.find_spec("rfdetr") is not None, reason="rfdetr is installed here")
def test_without_rfdetr_the_error_names_the_extra(tmp_path: Path) -> None:
    with pytest.raises(MissingDependencyError, match=r"pip install 'preprocgate\[rfdetr\]'"):
        RFDETRAdapter(CPU, file=tmp_path / "ck.pt")


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here")
def test_without_tensorrt_the_error_says_what_to_install() -> None:
    from preprocgate.models.tensorrt_engine import import_tensorrt

    with pytest.raises(MissingDependencyError, match="tensorrt is not installed; run: pip install tensorrt"):
        import_tensorrt()


def _weights() -> dict[str, torch.Tensor]:
    return {"class_embed.bias": torch.zeros(91), "class_embed.weight": torch.ones(91, 4)}


@pytest.mark.parametrize(
    "checkpoint",
    [
        {"model": _weights(), "args": argparse.Namespace(num_classes=90, class_names=["person"])},  # released
        {"state_dict": {f"model._orig_mod.{k}": v for k, v in _weights().items()}, "epoch": 3},  # Lightning
        _weights(),  # a bare state dict
    ],
    ids=["released", "lightning", "bare"],
)
def test_checkpoint_formats(tmp_path: Path, checkpoint: dict[str, Any]) -> None:
    torch.save(checkpoint, tmp_path / "ck.pt")
    state = load_checkpoint(tmp_path / "ck.pt")
    assert set(state) == set(_weights()) and state["class_embed.bias"].shape == (91,)


def test_checkpoint_that_is_not_rfdetr(tmp_path: Path) -> None:
    torch.save({"model": {"fc.weight": torch.zeros(2)}}, tmp_path / "other.pt")
    with pytest.raises(RunError, match="not an RF-DETR checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RunError, match="cannot load the checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_static_batches_are_padded_and_trimmed() -> None:
    seen = []

    def run(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        seen.append(len(x))
        return (x * 2, x.sum(dim=(1, 2, 3)))

    x = torch.arange(6 * 3 * 2 * 2, dtype=torch.float32).reshape(6, 3, 2, 2)
    doubled, sums = run_in_chunks(x, 4, True, run)
    assert seen == [4, 4] and torch.equal(doubled, x * 2) and torch.equal(sums, x.sum(dim=(1, 2, 3)))
    seen.clear()
    assert len(run_in_chunks(x, 6, False, run)[0]) == 6 and seen == [6]
