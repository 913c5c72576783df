"""The CUDA geometry sweep script runs end to end in its quick CPU mode, so a GPU run does not fail on a typo."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "geometry_cuda.py"


def test_geometry_sweep_quick_mode_writes_a_passing_result(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("geometry_cuda", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "result.json"
    assert module.main(["--device", "cpu", "--quick", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["passed"] is True and data["quick"] is True
    assert set(data["summary"]) == set(module.QUICK_MODES)
    assert all(
        m["cases"] > 0 and m["elements"] > 0 and m["mismatching_elements"] == 0 for m in data["summary"].values()
    )
    assert data["control"]["mismatching_elements"] > 0  # the count can fail
    assert {row["launch"] if isinstance(row["launch"], str) else "custom" for row in data["sweep"]} == {
        "default",
        "custom",
    }
    kernels = data["timings"]["kernels"]
    assert {k["mode"] for k in kernels} == {"letterbox", "stretch"} and all(
        k["bit_exact_vs_torch_chain"] for k in kernels
    )
    assert data["timings"]["copy_GB/s"] > 0 and data["timings"]["tuning"]
    # every new interpolation, and Pillow's uint8 values, counted (and zero) in the geometries of the quick sweep
    interp = data["interpolation"]
    assert set(interp["summary"]) == {*module.INTERPOLATIONS, "pillow_bilinear (uint8 values)"}
    assert all(m["elements"] > 0 and m["mismatching_elements"] == 0 for m in interp["summary"].values())
    assert {row["geometry"] for row in interp["sweep"]} == set(module.QUICK_INTERP_GEOMETRIES)
    speed = {(k["interpolation"], k["geometry"]): k for k in data["timings"]["interpolations"]}
    assert len(speed) == 2 * (len(module.INTERPOLATIONS) + 1)
    assert all(k["bit_exact_vs_reference"] for k in speed.values())
    # a 1.33× downscale: the separable filters gather more source bytes than nearest's one tap per output pixel
    nearest, antialias = speed[("nearest", "stretch")], speed[("bilinear_antialias", "stretch")]
    assert antialias["gathered_source_bytes"] > 4 * nearest["gathered_source_bytes"] > 0
