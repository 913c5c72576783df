"""Sharded dumps merge into exactly the results of a single-process run (CPU here; one process per GPU there)."""

import json
import re
import sys
from pathlib import Path

import pytest

from preprocgate.data import demo
from preprocgate.scaleout import parse_shard
from tests.helpers.gates import coco_dataset, detection_gate, invoke, write_gate


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> demo.CocoPaths:
    return demo.generate(tmp_path_factory.mktemp("demo"), "val", 5, seed=1)


def gate(folder: Path, data: demo.CocoPaths) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    spec = detection_gate(
        coco_dataset(data), name="sharded", probes={"speed": None}, thresholds={"map": {"max_abs_delta": 1.0}}
    )
    spec["model"].update(adapter="onnxruntime", batch_size=2)  # real adapter: shard processes import it
    return write_gate(folder, spec)


def outcome(folder: Path) -> tuple[dict, dict]:
    data = json.loads((folder / "out" / "sharded.json").read_text())
    return data["metrics"], {d["variant"]: d["digest"] for d in data["dumps"]}


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory, dataset: demo.CocoPaths) -> tuple[dict, dict]:
    folder = tmp_path_factory.mktemp("single")
    assert invoke("run", str(gate(folder, dataset))).exit_code == 0
    return outcome(folder)


def test_shards_then_merge_equal_a_single_run(tmp_path: Path, dataset: demo.CocoPaths, single: tuple) -> None:
    path = gate(tmp_path, dataset)
    for i in range(3):
        result = invoke("run", str(path), "--shard", f"{i}/3")
        assert result.exit_code == 0 and f"shard {i}/3" in result.output
    assert not (tmp_path / "out").exists()  # shards only fill the cache
    merged = invoke("merge", str(path))
    assert merged.exit_code == 0, merged.output
    assert outcome(tmp_path) == single


def test_merge_names_a_missing_shard(tmp_path: Path, dataset: demo.CocoPaths) -> None:
    path = gate(tmp_path, dataset)
    assert invoke("run", str(path), "--shard", "0/2").exit_code == 0
    result = invoke("merge", str(path))
    assert result.exit_code == 3 and "images have no dump" in result.output and "--shard i/N" in result.output


def test_processes_run_shards_in_parallel_and_merge(tmp_path: Path, dataset: demo.CocoPaths, single: tuple) -> None:
    result = invoke("run", str(gate(tmp_path, dataset)), "--processes", "2", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert outcome(tmp_path) == single
    # one combined view: each shard's stages, relabelled, in the parent's log; no advice to run `merge`
    for i in range(2):
        assert re.search(rf"^shard {i}/2: dump: cv2: done \d+ in ", result.stderr, re.M), result.stderr
    assert "then run `merge`" not in result.output


@pytest.mark.parametrize("bad", ["2/2", "x/3", "1"])
def test_bad_shard_spec(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_shard(bad)


@pytest.mark.parametrize(("images", "count", "batch"), [(10, 3, 4), (5, 3, 2), (7, 4, 1), (2, 3, 4)])
def test_shards_split_whole_batches_and_cover_every_image_once(images: int, count: int, batch: int) -> None:
    """Every batch a shard infers is a batch of the single-process run: GPU results may depend on composition."""
    ids = list(range(100, 100 + images))
    single_batches = [ids[i : i + batch] for i in range(0, images, batch)]
    parts = [parse_shard(f"{i}/{count}").select(ids, batch) for i in range(count)]
    assert [i for part in parts for i in part] == ids
    sharded_batches = [part[i : i + batch] for part in parts for i in range(0, len(part), batch)]
    assert sharded_batches == single_batches


def test_ray_executor_without_ray_names_the_extra(
    tmp_path: Path, dataset: demo.CocoPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as where the extra is not installed
    result = invoke("run", str(gate(tmp_path, dataset)), "--executor", "ray")
    assert result.exit_code == 3, result.output
    assert "ray is not installed; run: pip install 'preprocgate[ray]'" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--executor", "rya"], "did you mean 'ray'?"),
        (["--executor", "local", "--ray-address", "auto"], "needs --executor ray"),
        (["--processes", "2", "--executor", "ray"], "not both"),
    ],
)
def test_executor_option_mistakes_exit_2(tmp_path: Path, dataset: demo.CocoPaths, args: list, message: str) -> None:
    result = invoke("run", str(gate(tmp_path, dataset)), *args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_spec_executor_is_checked(tmp_path: Path, dataset: demo.CocoPaths) -> None:
    path = gate(tmp_path, dataset)
    text = path.read_text()
    path.write_text(text + "executor: ray\n")
    assert invoke("validate", str(path)).exit_code == 0
    path.write_text(text + "executor: {kind: rya, params: {address: auto}}\n")
    result = invoke("validate", str(path))
    assert result.exit_code == 2 and "executor.kind" in result.output and "'ray'" in result.output, result.output
