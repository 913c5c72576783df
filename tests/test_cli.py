"""The gate end to end through the CLI: pass, deliberate failures, reports, listings."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from preprocgate.cli import cli
from tests.helpers.gates import small_gate, write_gate


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_gate_passes_and_writes_reports(tmp_path: Path) -> None:
    spec = small_gate()
    spec["probes"]["parity"]["pairs"].append({"candidate": "torch", "reference": "cv2", "thresholds": {"atol": 0.05}})
    spec["probes"]["speed"]["checks"] = [{"candidate": "torch", "reference": "torch", "min_speedup": 0.01}]
    result = _invoke("run", str(write_gate(tmp_path, spec)))
    assert result.exit_code == 0, result.output
    assert "PASSED: gate t" in result.output
    md = (tmp_path / "out" / "t.md").read_text()
    data = json.loads((tmp_path / "out" / "t.json").read_text())
    assert md.startswith("## ✅ preprocgate `t`: passed")
    assert data["schema_version"] == 1 and data["passed"] is True
    pair = data["parity"][0]
    assert (pair["candidate"], pair["total"]["max_ulp"], pair["total"]["equal_fraction"]) == (
        "triton",
        0,
        1.0,
    )
    assert 0.005 < data["parity"][1]["total"]["max_abs"] < 0.05  # the cv2/PyTorch bilinear gap
    assert {t["variant"] for t in data["timings"]} == {"cv2", "torch", "triton"}
    assert len(data["checks"]) == 5 and all(c["passed"] for c in data["checks"])
    assert "torch" in data["provenance"]["versions"]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temporary leftovers


@pytest.mark.parametrize(
    ("impl", "why"),
    [
        ({"impl": "triton", "params": {"arithmetic": "unfused"}}, "FMA order changed"),
        ("tests.helpers.variants:NearestResize", "nearest-neighbour resize"),
        ("tests.helpers.variants:SwappedChannels", "channels swapped"),
    ],
)
def test_perturbed_variant_fails_the_gate(tmp_path: Path, impl: object, why: str) -> None:
    spec = small_gate()
    spec["variants"]["triton"] = impl
    spec["probes"]["speed"] = None
    result = _invoke("run", str(write_gate(tmp_path, spec)))
    assert result.exit_code == 1, (why, result.output)
    assert "FAILED | parity | triton vs torch | max ULP" in result.output
    md = (tmp_path / "out" / "t.md").read_text()
    assert md.startswith("## ❌ preprocgate `t`: failed (1 of 2 checks failed)")
    assert "worst element (by ULP)" in md


@pytest.mark.parametrize(
    ("resize", "speed_output"),
    [
        ({"mode": "letterbox", "align": "top_left", "pad": [0, 114, 255]}, [48, 40]),
        # the speed probe's 60×80 source: shorter side 24 → 24×32, canvas padded to multiples of 16
        ({"mode": "keep_ratio", "short_side": 24, "max_size": 40, "stride": 16}, [32, 32]),
    ],
    ids=["letterbox", "keep_ratio"],
)
def test_gate_passes_in_every_resize_mode(tmp_path: Path, resize: dict, speed_output: list[int]) -> None:
    """Parity probes (sweep cases with their own output size included) and the speed probe in each mode."""
    spec = small_gate()
    spec["input"].update(resize=resize, target_order="BGR")
    spec["probes"]["parity"]["pairs"].append({"candidate": "cv2", "reference": "torch", "thresholds": {"atol": 0.02}})
    result = _invoke("run", str(write_gate(tmp_path, spec)))
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / "t.json").read_text())
    exact, close = data["parity"]
    assert (exact["total"]["max_ulp"], exact["total"]["numel"]) == (0, close["total"]["numel"])
    assert 0.005 < close["total"]["max_abs"] <= 0.02
    assert all(t["output"] == speed_output for t in data["timings"])


def test_gate_without_checks_fails(tmp_path: Path) -> None:
    spec = small_gate()
    spec["probes"]["parity"]["pairs"][0]["thresholds"] = {}
    spec["probes"]["speed"] = None
    result = _invoke("run", str(write_gate(tmp_path, spec)))
    assert result.exit_code == 1
    assert "nothing was gated" in result.output


def test_speed_check_failure(tmp_path: Path) -> None:
    spec = small_gate()
    spec["probes"]["parity"] = None
    spec["probes"]["speed"]["checks"] = [{"candidate": "torch", "reference": "torch", "min_speedup": 1000}]
    result = _invoke("run", str(write_gate(tmp_path, spec)))
    assert result.exit_code == 1 and "FAILED | speed | torch vs torch" in result.output


def test_cuda_requested_without_gpu_is_a_runtime_error(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = _invoke("run", str(write_gate(tmp_path, small_gate())), "--device", "cuda")
    assert result.exit_code == 3 and "CUDA is not available" in result.output
    assert "ERRORED: gate t" in result.output  # the report says why, for CI to post
    assert "errored" in (tmp_path / "out" / "t.md").read_text()


def test_missing_extra_is_one_line_naming_the_install(tmp_path: Path) -> None:
    spec = small_gate()
    spec["variants"]["triton"] = "tests.helpers.variants:needs_missing_extra"
    result = _invoke("run", str(write_gate(tmp_path, spec)))
    assert result.exit_code == 3, result.output
    assert "variants.triton: somepackage is not installed; run: pip install 'preprocgate[someextra]'" in result.output
    assert "Traceback" not in result.output


def test_bad_device_option_is_usage_error(tmp_path: Path) -> None:
    result = _invoke("run", str(write_gate(tmp_path, small_gate())), "--device", "tpu")
    assert result.exit_code == 2 and "--device" in result.output


def test_variants_lists_builtins() -> None:
    result = _invoke("variants")
    assert result.exit_code == 0
    for name in ("cv2", "pillow", "torch", "triton"):
        assert f"\n{name} " in "\n" + result.output
    assert "input.interpolation: pillow_bilinear\n" in result.output  # the pillow variant's only mode


def test_demo_gate_validates() -> None:
    demo = Path(__file__).resolve().parents[1] / "gates" / "demo.yaml"
    result = _invoke("validate", str(demo))
    assert result.exit_code == 0 and "ok: gate demo" in result.output


def test_parity_results_come_from_the_cache_when_nothing_changed(tmp_path: Path) -> None:
    from tests.helpers.variants import CountingTorch

    spec = small_gate(cache_dir="cache")
    spec["variants"]["torch"] = "tests.helpers.variants:CountingTorch"
    spec["probes"]["speed"] = None
    path = write_gate(tmp_path, spec)
    CountingTorch.images = 0
    assert _invoke("run", str(path)).exit_code == 0
    assert CountingTorch.images == 4  # 2 generators × 2 sweep shapes
    first = json.loads((tmp_path / "out" / "t.json").read_text())["parity"]
    assert _invoke("run", str(path)).exit_code == 0
    assert CountingTorch.images == 4  # unchanged: read back, not recomputed
    assert json.loads((tmp_path / "out" / "t.json").read_text())["parity"] == first
    spec["probes"]["parity"]["images"]["synthetic"]["seed"] = 1  # other probe images: recomputed
    write_gate(tmp_path, spec)
    assert _invoke("run", str(path)).exit_code == 0
    assert CountingTorch.images == 8


def test_links_from_the_spec_and_the_command_line(tmp_path: Path) -> None:
    spec = small_gate()
    spec["report"]["links"] = {"CI run": "https://ci.example/runs/7"}
    path = write_gate(tmp_path, spec)
    result = _invoke("run", str(path), "--link", "artifacts=https://ci.example/runs/7/artifacts", "--quiet")
    assert result.exit_code == 0, result.output
    md = (tmp_path / "out" / "t.md").read_text()
    assert "[CI run](https://ci.example/runs/7) · [artifacts](https://ci.example/runs/7/artifacts)" in md
    assert _invoke("run", str(path), "--link", "no-url").exit_code == 2
    spec["report"]["links"] = {"x": "javascript:alert(1)"}
    bad = _invoke("run", str(write_gate(tmp_path, spec)))
    assert bad.exit_code == 2 and "report.links" in bad.output


def test_packaged_demo_gate_is_the_repository_demo_gate() -> None:
    """`preprocgate demo` runs a copy of gates/demo.yaml shipped in the package: the two may differ only in where
    the model file and the reports are, and both must reach the same model file."""
    from preprocgate.demo import GATE
    from preprocgate.spec import load_gate

    clone = load_gate(Path(__file__).resolve().parents[1] / "gates" / "demo.yaml")
    packaged = load_gate(GATE)
    model = packaged.path_to(packaged.spec.model.file)
    assert model == clone.path_to(clone.spec.model.file) and model.parent == GATE.parent and model.is_file()

    def comparable(spec: dict) -> dict:
        return {**spec, "model": {**spec["model"], "file": None}, "report": None}

    assert comparable(packaged.spec.model_dump()) == comparable(clone.spec.model_dump())
    assert packaged.spec.report.output_dir is None  # ./reports of the working directory, not the package folder
    assert packaged.output_dir == Path.cwd() / "reports"


def test_demo_command_prints_the_packaged_gate_and_shares_the_run_options() -> None:
    from preprocgate.demo import GATE

    result = _invoke("demo", "--path")
    assert result.exit_code == 0 and result.output.strip() == str(GATE)
    result = _invoke("demo", "--device", "tpu")
    assert result.exit_code == 2 and "expected auto, cpu, cuda or cuda:N" in result.output


def test_validate_checks_every_gate_given_and_prints_every_problem(tmp_path: Path) -> None:
    good = write_gate(tmp_path, small_gate(name="good"), "good.yaml")
    bad = write_gate(tmp_path, {**small_gate(name="bad"), "baseline": "nope"}, "bad.yaml")
    broken = write_gate(tmp_path, "name: [unclosed\n", "broken.yaml")
    result = _invoke("validate", str(bad), str(good), str(broken))
    assert result.exit_code == 2
    assert "ok: gate good" in result.output
    assert f"error: {bad}" in result.output and "baseline" in result.output
    assert f"error: {broken}" in result.output and "Traceback" not in result.output
    assert _invoke("validate", str(good), str(good)).exit_code == 0
