"""The real YOLOv8n-seg gate on the first 32 real photos of COCO128: it passes as shipped, and it fails each of four
preprocessing regressions planted in the production (cv2) path beside the faithful variants.

Swapped channels and a stretch where the model expects a letterbox move mAP far beyond the bound; padding with 0
and nearest resizing move it less than the faithful torch path itself does on 32 photos (measured: Δ bbox AP +0.002
and −0.002 against torch's +0.007), so it is the matched fraction that catches them (91% and 89% against torch's
97%; the numbers of every variant are in benchmarks/RESULTS.md).

One run of the gate with the four regressions added computes every dump; the run of the gate file as shipped then
reads the faithful variants' dumps from the same cache and adds its parity probe and bootstrap.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from preprocgate.cli import cli
from preprocgate.spec import load_gate
from tests.helpers.gates import write_gate
from tests.helpers.realdata import DATA, ROOT, requires_data

pytestmark = requires_data
GATE = ROOT / "gates" / "coco128-yolov8n-seg.yaml"
LIMIT = 32
FAITHFUL = ("torch", "triton")
REGRESSIONS: dict[str, Any] = {
    "swapped": "tests.helpers.variants:CvSwapped",  # RGB fed where BGR is expected
    "stretched": "tests.helpers.variants:CvStretched",  # stretched where the model expects letterbox
    "zero_pad": "tests.helpers.variants:CvZeroPad",  # pads with 0 instead of 114
    "nearest": {"impl": "cv2", "params": {"interpolation": "nearest"}},  # INTER_NEAREST instead of INTER_LINEAR
}
FAILS_MAP = {"swapped", "stretched"}  # the others stay within the ΔmAP bound: see the module docstring


@pytest.fixture(scope="module")
def environment() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREPROCGATE_DATA", str(DATA))  # absolute: the specs below are written outside gates/
        mp.setenv("PREPROCGATE_COCO128_LIMIT", str(LIMIT))
        mp.setenv("PREPROCGATE_DEVICE", "cpu")
        yield


def run(spec: Path, out: Path) -> tuple[int, dict]:
    result = CliRunner().invoke(cli, ["run", str(spec), "--output-dir", str(out)])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(next(out.glob("*.json")).read_text())


@pytest.fixture(scope="module")
def planted(environment: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict]:
    """The shipped gate plus the four regressions; detections only (the shipped run below covers parity)."""
    spec = yaml.safe_load(GATE.read_text(encoding="utf-8"))
    spec["variants"].update(REGRESSIONS)
    spec["probes"] = {"parity": None, "speed": None}
    spec["bootstrap"] = None
    folder = tmp_path_factory.mktemp("planted")
    return run(write_gate(folder, spec), folder / "out")


@pytest.fixture(scope="module")
def shipped(planted: tuple[int, dict], tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict]:
    return run(GATE, tmp_path_factory.mktemp("shipped"))


def checks_of(result: dict, variant: str) -> list[dict]:
    return [c for c in result["checks"] if c["subject"].startswith(f"{variant} vs ")]


@pytest.mark.parametrize("variant", list(REGRESSIONS))
def test_each_planted_regression_fails(planted: tuple[int, dict], variant: str) -> None:
    code, result = planted
    assert code == 1 and not result["passed"]
    failed = {c["kind"] for c in checks_of(result, variant) if not c["passed"]}
    assert "diff" in failed, f"{variant}: matched fraction passed: {checks_of(result, variant)}"
    assert ("accuracy" in failed) == (variant in FAILS_MAP), checks_of(result, variant)


def test_faithful_variants_pass_beside_the_regressions(planted: tuple[int, dict]) -> None:
    _, result = planted
    assert result["dataset"]["evaluated"] == LIMIT
    for variant in FAITHFUL:
        checks = checks_of(result, variant)
        assert checks and all(c["passed"] for c in checks), checks


def test_shipped_gate_passes_on_the_subset(shipped: tuple[int, dict]) -> None:
    code, result = shipped
    assert code == 0 and result["passed"], [c for c in result["checks"] if not c["passed"]]
    assert result["model"]["adapter"] == "ultralytics/1" and set(result["metrics"]["cv2"]) == {"bbox", "segm"}
    ulp = [c for c in result["checks"] if c["subject"] == "triton vs torch" and c["metric"] == "max ULP"]
    assert [c["measured"] for c in ulp] == ["0"]  # the fused kernel, pad pixels included, on the real photos
    assert {d["variant"]: d["computed_images"] for d in result["dumps"]} == {"cv2": 0, "torch": 0, "triton": 0}
    assert {d["variant"]: d["digest"] for d in result["dumps"]}["triton"] == next(
        d["digest"] for d in result["dumps"] if d["variant"] == "torch"
    )
    assert set(result["intervals"]) == set(FAITHFUL)


def test_yolox_gate_is_valid(environment: None) -> None:
    """Its dumps are not run in CI (the figures are in benchmarks/RESULTS.md); its spec must stay loadable."""
    gate = load_gate(ROOT / "gates" / "coco128-yolox.yaml")
    assert gate.spec.input.resize.align == "top_left" and gate.spec.input.resize.content_rounding == "floor"
    assert (gate.spec.input.target_order, gate.spec.input.pixel_scale) == ("BGR", 1)
    assert gate.spec.dataset is not None and gate.spec.dataset.limit == LIMIT
