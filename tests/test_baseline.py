"""The stored-baseline life cycle, artifact stores, and noise-vs-regression reporting."""

import json
import shutil
from pathlib import Path

import fsspec
import pytest

from preprocgate.baseline import ArtifactStore, Baseline, dumps_stable
from preprocgate.stages.dump import dump_digest
from tests.helpers.gates import DEMO_MODEL as MODEL
from tests.helpers.gates import detection_gate, invoke, write_gate
from tests.helpers.models import CountingOnnx


def gate(tmp: Path, model: Path = MODEL, **extra: object) -> Path:
    defaults = {"thresholds": {"map": {"max_abs_delta": 0.05}}, "baselines": {"dir": "baselines"}}
    dataset = extra.pop("dataset", {"demo": {"count": 4}})
    spec = detection_gate(dataset, name="life", probes={"speed": None}, **{**defaults, **extra})
    spec["model"]["file"] = str(model)
    return write_gate(tmp, spec)


def test_life_cycle(tmp_path: Path) -> None:
    path = gate(tmp_path)
    stored = tmp_path / "baselines" / "life.json"

    first = invoke("run", str(path))  # no baseline: a clear failure, and nothing created
    assert first.exit_code == 1
    assert "stored baseline missing; update with: preprocgate baseline update" in first.output
    assert not stored.exists()

    assert invoke("baseline", "update", str(path)).exit_code == 0
    data = json.loads(stored.read_text())
    assert set(data["variants"]) == {"cv2", "torch"}
    assert data["provenance"]["environment"].startswith("cpu-") and data["provenance"]["environment"].endswith("-fp32")
    assert stored.read_text() == dumps_stable(data)  # stable format: rewriting changes nothing

    passed = invoke("run", str(path))
    assert passed.exit_code == 0, passed.output
    report = json.loads((tmp_path / "out" / "life.json").read_text())
    assert {c["subject"] for c in report["checks"] if c["kind"] == "baseline"} == {"cv2 vs stored", "torch vs stored"}

    # with a matching baseline the baseline variant comes from its stored artifact, even with the dump cache gone
    shutil.rmtree(tmp_path / "cache" / "dumps")
    CountingOnnx.images_run = 0
    reused = invoke("run", str(path))
    assert reused.exit_code == 0
    assert CountingOnnx.images_run == 4  # torch's 4 images only: cv2's adapter was never called

    # new weights: the same model plus an unknown protobuf field (field 127 = 1), a different file hash
    changed = tmp_path / "model.onnx"
    changed.write_bytes(MODEL.read_bytes() + b"\xf8\x07\x01")
    stale_path = gate(tmp_path, model=changed)
    stale = invoke("run", str(stale_path))
    assert stale.exit_code == 1
    assert "stale: the model file changed (model: stored 8b467d27" in stale.output
    assert f"update with: preprocgate baseline update {stale_path}" in stale.output

    assert invoke("run", str(stale_path), "--update-baseline").exit_code == 0
    assert invoke("run", str(stale_path)).exit_code == 0
    assert json.loads(stored.read_text())["provenance"]["model"] != data["provenance"]["model"]


def test_partial_update_keeps_other_variants_and_refuses_moved_provenance(tmp_path: Path) -> None:
    path = gate(tmp_path)
    assert invoke("baseline", "update", str(path)).exit_code == 0
    stored = tmp_path / "baselines" / "life.json"
    before = json.loads(stored.read_text())
    before["variants"]["cv2"]["metrics"]["bbox"]["AP"] = 0.123
    stored.write_text(json.dumps(before))
    assert invoke("baseline", "update", str(path), "--variant", "torch").exit_code == 0
    after = json.loads(stored.read_text())
    assert after["variants"]["cv2"]["metrics"]["bbox"]["AP"] == 0.123  # untouched
    assert "cv2" in invoke("baseline", "show", str(path)).output
    moved = gate(tmp_path, dataset={"demo": {"count": 3}})
    refused = invoke("baseline", "update", str(moved), "--variant", "torch")
    assert refused.exit_code == 2 and "the dataset changed since the stored baseline" in refused.output


def test_environment_fallback_accepts_a_named_key(tmp_path: Path) -> None:
    path = gate(tmp_path)
    assert invoke("baseline", "update", str(path)).exit_code == 0
    stored = tmp_path / "baselines" / "life.json"
    data = json.loads(stored.read_text())
    current = data["provenance"]["environment"]
    data["provenance"]["environment"] = "cuda-sm90-fp32"
    stored.write_text(json.dumps(data))
    assert "the environment key changed" in invoke("run", str(path)).output
    fallback = gate(tmp_path, baselines={"dir": "baselines", "fallback": {current: "cuda-sm90-fp32"}})
    assert invoke("run", str(fallback)).exit_code == 0


@pytest.mark.parametrize("url", ["memory://preprocgate-test", "file://{tmp}/store"])
def test_artifact_store_round_trip(tmp_path: Path, url: str) -> None:
    url = url.format(tmp=tmp_path)
    results = {2: [{"image_id": 2, "category_id": 1, "bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.5}], 1: []}
    digest = dump_digest(results)
    ArtifactStore(tmp_path / "a", url).put(digest, results)
    fresh = ArtifactStore(tmp_path / "b", url)  # another machine: empty local cache, same store
    assert fresh.get(digest) == results
    assert (tmp_path / "b" / "artifacts" / f"{digest}.json.gz").exists()  # restored into the local cache
    assert fsspec.filesystem(url.split("://")[0]).exists(f"{url.split('://')[1]}/{digest}.json.gz")


def test_missing_artifact_says_how_to_restore(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"not in .* or memory://nowhere; restore the folder"):
        ArtifactStore(tmp_path, "memory://nowhere").get("missing")


def test_bootstrap_noise_floor_and_interval_thresholds(tmp_path: Path) -> None:
    path = gate(
        tmp_path,
        thresholds={"map": {"metrics": ["bbox.AP"], "max_abs_delta": 0.0001, "apply_to": "interval"}},
        bootstrap={"resamples": 50, "seed": 1},
        noise_floor={"batch_size": 3},
        baselines=None,
    )
    result = invoke("run", str(path))
    data = json.loads((tmp_path / "out" / "life.json").read_text())
    interval = data["intervals"]["torch"]["bbox.AP"]
    delta = data["metrics"]["torch"]["bbox"]["AP"] - data["metrics"]["cv2"]["bbox"]["AP"]
    assert interval["low"] <= delta <= interval["high"] or interval["low"] == interval["high"]
    assert data["noise_floor"]["bbox.AP"] == 0.0  # the CPU run is deterministic across batch sizes
    check = next(c for c in data["checks"] if c["kind"] == "accuracy")
    crosses = interval["low"] <= 0.0001 and interval["high"] >= -0.0001
    assert check["passed"] == crosses and result.exit_code == (0 if crosses else 1)
    md = (tmp_path / "out" / "life.md").read_text()
    assert "Noise or regression?" in md and "noise floor (cv2 rerun)" in md


def test_baseline_file_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(Exception, match="not a preprocgate baseline"):
        Baseline.load(bad)
