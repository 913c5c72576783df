"""The ray executor on a real Ray cluster, started as users start one (``ray start --head``): its dumps, digests and
metrics equal a local run's, also when a worker is killed mid-run or a dump resumes with a batch missing.

Needs the ``ray`` extra: skipped without it, unless PREPROCGATE_REQUIRE_RAY=1 (CI's Ray step) makes that a failure.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from preprocgate.data import demo
from preprocgate.data.coco import load_coco
from preprocgate.errors import RunError
from preprocgate.spec import load_gate
from preprocgate.stages import detection, ray_executor
from preprocgate.stages.dump import Recipe, shape_groups
from preprocgate.stages.ray_executor import RayExecutor, _BatchFlow, _Lanes
from preprocgate.variants import arena
from preprocgate.variants.arena import ImageArena
from tests.helpers.gates import DEMO_MODEL, coco_dataset, detection_gate, invoke, write_gate
from tests.helpers.http_folder import served

if os.environ.get("PREPROCGATE_REQUIRE_RAY") != "1":
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'preprocgate[ray]')")

IMAGES, BATCH = 8, 2  # four batches a dump: two for each worker


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A two-CPU head node (two one-CPU workers), stopped with ``ray stop`` at the end. Token authentication is
    off on both sides: Ray turns it on for a new cluster when ~/.ray/auth_token exists (an earlier local
    ``ray.init()`` writes one), but a driver only sends the token with RAY_AUTH_MODE=token (docs/scale-out.md)."""
    ray = Path(sys.executable).with_name("ray")
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = tmp_path_factory.mktemp("ray")
    start = [str(ray), "start", "--head", "--num-cpus", "2", "--port", str(port), "--node-ip-address", "127.0.0.1"]
    start += ["--include-dashboard=false", "--disable-usage-stats", "--temp-dir", str(temp)]
    subprocess.run(start, check=True, capture_output=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(ray), "stop"], check=True, capture_output=True)
        if saved is None:
            del os.environ["RAY_AUTH_MODE"]
        else:
            os.environ["RAY_AUTH_MODE"] = saved


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> demo.CocoPaths:
    return demo.generate(tmp_path_factory.mktemp("demo"), "val", IMAGES, seed=2)


def gate(
    folder: Path, data: demo.CocoPaths, executor: dict | None = None, thresholds_unusable: bool = False, **model: object
) -> Path:
    """The scaled gate; ``thresholds_unusable``: an unusable image does not fail it."""
    folder.mkdir(parents=True, exist_ok=True)
    thresholds: dict = {
        "map": {"max_abs_delta": 1.0},
        **({"max_unusable_fraction": 0.5} if thresholds_unusable else {}),
    }
    spec = detection_gate(coco_dataset(data), name="scaled", probes={"speed": None}, thresholds=thresholds)
    spec["model"].update({"adapter": "onnxruntime", "batch_size": BATCH, **model})
    if executor is not None:
        spec["executor"] = executor
    return write_gate(folder, spec)


def outcome(folder: Path) -> tuple[dict, dict, dict]:
    """Metrics, dump digests, and every detection record by variant."""
    data = json.loads((folder / "out" / "scaled.json").read_text())
    records = {}
    for d in data["dumps"]:
        parts = sorted((folder / "cache" / "dumps" / d["key"][:2] / d["key"]).glob("part-*.json"))
        records[d["variant"]] = {k: v for p in parts for k, v in json.loads(p.read_text())["results"].items()}
    return data["metrics"], {d["variant"]: d["digest"] for d in data["dumps"]}, records


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, dataset: demo.CocoPaths) -> tuple[dict, dict, dict]:
    folder = tmp_path_factory.mktemp("local")
    result = invoke("run", str(gate(folder, dataset)))
    assert result.exit_code == 0, result.output
    return outcome(folder)


def computed(folder: Path) -> dict[str, int]:
    data = json.loads((folder / "out" / "scaled.json").read_text())
    return {d["variant"]: d["computed_images"] for d in data["dumps"]}


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory, cluster: str, dataset: demo.CocoPaths) -> Path:
    """A run on the cluster's two workers, as a user joins one: ``--executor ray --ray-address ADDR``."""
    folder = tmp_path_factory.mktemp("ray-run")
    result = invoke("run", str(gate(folder, dataset)), "--executor", "ray", "--ray-address", cluster, "--progress")
    assert result.exit_code == 0, result.output
    # the workers' batches reach the driver's progress display (stderr, mixed into the output here): each dump's
    # count is only advanced by the parts the workers return
    assert result.output.count(f": done {IMAGES} in ") == 2, result.output
    return folder


def test_two_workers_equal_a_local_run(scaled: Path, local: tuple) -> None:
    assert outcome(scaled) == local
    assert computed(scaled) == {"cv2": IMAGES, "torch": IMAGES}
    # the driver wrote one part per batch, named by its first image (batches may finish in any order)
    parts = [p.name for p in scaled.glob("cache/dumps/*/*/part-*.json")]
    assert len(parts) == 2 * IMAGES // BATCH and all(name.startswith("part-all-i") for name in parts)
    # the workers did the dumps' work: the driver's wall time there has no split; the evaluation's is its own
    split = json.loads((scaled / "out" / "scaled.json").read_text())["stage_overhead"]
    assert "evaluate" in split and not any(stage.startswith("dump ") for stage in split)


def test_workers_read_the_images_from_a_url(
    tmp_path: Path, cluster: str, dataset: demo.CocoPaths, local: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dataset served over HTTP: the driver hashes it and keeps no bytes, the workers fetch what they infer.
    With the spec's ``concurrency: 2`` (each worker infers a batch while it encodes the last; the other tests run
    the default, 1, their calls in turn)."""
    loaded: list = []
    original = detection.load_coco

    def load_coco(*args: Any, **kwargs: Any) -> Any:
        loaded.append(original(*args, **kwargs))
        return loaded[-1]

    monkeypatch.setattr(detection, "load_coco", load_coco)
    with served(dataset.images.parent) as base:
        urls = demo.CocoPaths(f"{base}/val", f"{base}/instances_val.json")  # type: ignore[arg-type]
        path = gate(tmp_path, urls, executor={"kind": "ray", "params": {"concurrency": 2}})
        result = invoke("run", str(path), "--executor", "ray", "--ray-address", cluster)
    assert result.exit_code == 0, result.output
    assert outcome(tmp_path) == local and computed(tmp_path) == {"cv2": IMAGES, "torch": IMAGES}
    report = json.loads((tmp_path / "out" / "scaled.json").read_text())["dataset"]
    assert report["source"] == f"{base}/instances_val.json"
    (driver,) = loaded
    assert driver._bytes == {} and len(driver._digests) == IMAGES  # digests for the workers' checks, no pixels


@pytest.mark.parametrize("in_flight", [4, 1])
def test_an_unusable_image_shifts_the_batches_as_in_a_local_run(
    tmp_path: Path, cluster: str, dataset: demo.CocoPaths, in_flight: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers decode ahead while the first dump infers, and a batch is sent only once its images are known:
    an undecodable third image shifts every later batch as a local run shifts it, so that one batch holds images
    two workers decoded (the one it is sent to reads the other's image itself). With one call in flight per
    worker, every later decode and batch is sent as an earlier one returns."""
    monkeypatch.setattr(ray_executor, "IN_FLIGHT", in_flight)
    monkeypatch.setattr(ray_executor, "DECODES_AHEAD", min(in_flight, 2))
    monkeypatch.setattr(ray_executor, "DECODE_BATCHES", 1 if in_flight == 1 else 2)
    images = tmp_path / "images"
    shutil.copytree(dataset.images, images)
    sorted(images.iterdir())[2].write_bytes(b"not an image")
    broken = demo.CocoPaths(images, dataset.annotations)
    monkeypatch.setattr(ray_executor, "STREAM_WINDOW", 1)  # a streamed worker decodes one batch ahead
    streamed = {"image_memory_gb": 0}  # no image kept for the next variant: each decodes them again
    runs = {}
    for name, executor in (
        ("local", None),
        ("ray", {"kind": "ray", "params": {"address": cluster}}),
        ("ray-streamed", {"kind": "ray", "params": {"address": cluster, **streamed}}),
        ("local-streamed", {"kind": "local", "params": streamed}),
    ):
        path = gate(tmp_path / name, broken, executor, thresholds_unusable=True)
        result = invoke("run", str(path))
        assert result.exit_code == 0, result.output
        runs[name] = outcome(tmp_path / name)
        assert computed(tmp_path / name) == {"cv2": IMAGES - 1, "torch": IMAGES - 1}
    assert runs["ray"] == runs["local"] == runs["ray-streamed"] == runs["local-streamed"]


def test_a_streamed_batch_s_images_and_their_slabs_are_dropped_once_inferred(
    tmp_path: Path, dataset: demo.CocoPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker told to release a batch (a dump too large to keep) drops its images and every arena slab no image
    it still holds or decodes lies in; the records are those of a kept batch."""
    monkeypatch.setattr(ImageArena.__init__, "__defaults__", (1, None))  # every shape group a slab of its own
    coco = load_coco(dataset.images, dataset.annotations)
    refs = [ray_executor.ImageRef(r, coco.sha256(r.id)) for r in coco.records]
    ids = [ref.record.id for ref in refs]
    recipe = Recipe("onnxruntime", DEMO_MODEL, "fp32", {}, "cpu", {"cv2": ("cv2", {})})
    spec = load_gate(gate(tmp_path, dataset)).spec
    threads = torch.get_num_threads()  # the worker sets this process's: later runs here must keep theirs
    worker = ray_executor.DumpWorker(ray_executor.WorkerSetup(recipe, spec.input, threads, coco.images))
    gc.collect()
    before = len(arena._SPANS)
    groups = [g for k in range(0, IMAGES, BATCH) for g in shape_groups(refs[k : k + BATCH], ray_executor._shape)]
    assert worker.decode(groups)[0] == {} and set(worker.images) == set(ids)
    assert len(arena._SPANS) - before == len(groups)
    kept = worker.dump("cv2", refs[:BATCH])
    streamed = worker.dump("cv2", refs[:BATCH], release=True)
    assert streamed[0] == kept[0] and set(worker.images) == set(ids[BATCH:])
    gc.collect()
    rest = {worker.slots[i].slab for i in ids[BATCH:]}
    assert len(arena._SPANS) - before == len(rest)  # the first batch's slabs freed, the others' kept
    worker.release(ids[BATCH:])
    gc.collect()
    assert worker.images == {} and worker.slots == {} and len(arena._SPANS) == before


def test_batches_are_released_as_their_images_become_known() -> None:
    flow = _BatchFlow(list(range(10)), 3, corrupt={})
    flow.expect("a", [0, 1, 2, 3])
    flow.expect("b", [4, 5, 6, 7])
    assert flow.ready() == [] and flow.usable(lambda i: True, 3) == [8, 9]  # 8 and 9: held from an earlier dump
    flow.corrupt[5] = "cannot decode"
    flow.arrived("b")  # out of order: nothing before 0–3 is known yet
    assert flow.ready() == [] and flow.usable(lambda i: i > 3, 9) == [4, 6, 7, 8, 9]
    flow.arrived("a")
    assert flow.ready() == [[0, 1, 2], [3, 4, 6], [7, 8, 9]] and flow.ready() == [] and not flow.decoding


def test_lanes_keep_at_most_the_limit_in_flight_per_actor_oldest_first() -> None:
    lanes = _Lanes(2, limit=2)
    sent: list[tuple[int, str]] = []

    def submit(n: int, item: str) -> str:
        sent.append((n, item))
        return f"call-{item}"

    for item in "abc":
        lanes.add(0, item)
    lanes.add(1, "x")
    lanes.send(submit)
    assert sent == [(0, "a"), (0, "b"), (1, "x")] and lanes
    assert lanes.done("call-b") == (0, "b")
    lanes.send(submit)
    assert sent[-1] == (0, "c") and list(lanes.in_flight) == ["call-a", "call-x", "call-c"]
    assert lanes.oldest(0) == "call-a" and lanes.oldest(1) == "call-x"
    for call in ("call-a", "call-x", "call-c"):
        lanes.done(call)
    assert not lanes


def test_a_killed_worker_is_restarted_and_the_run_completes(
    tmp_path: Path, cluster: str, dataset: demo.CocoPaths, local: tuple
) -> None:
    marker = tmp_path / "killed"
    model = {"adapter": "tests.helpers.models:DiesOnce", "params": {"marker": str(marker), "at": 2}}
    path = gate(tmp_path, dataset, **model)
    result = invoke("run", str(path), "--executor", "ray", "--ray-address", cluster)
    assert result.exit_code == 0, result.output
    assert marker.exists()  # a worker process really died (SIGKILL) mid-run
    assert outcome(tmp_path) == local


def test_a_dump_missing_a_batch_resumes_to_the_same_result(
    tmp_path: Path, cluster: str, scaled: Path, local: tuple
) -> None:
    """A driver killed while parts arrive out of order leaves holes: the rerun recomputes exactly those batches."""
    shutil.copytree(scaled / "cache", tmp_path / "cache")
    path = shutil.copy(scaled / "gate.yaml", tmp_path / "gate.yaml")
    folder = next(p.parent for p in (tmp_path / "cache").glob("dumps/*/*/complete.json"))
    (folder / "complete.json").unlink()
    sorted(folder.glob("part-*.json"))[1].unlink()
    result = invoke("run", str(path), "--executor", "ray", "--ray-address", cluster)
    assert result.exit_code == 0, result.output
    assert sorted(computed(tmp_path).values()) == [0, BATCH]
    assert outcome(tmp_path) == local


def test_an_error_on_a_worker_is_one_line_and_exit_3(tmp_path: Path, cluster: str, dataset: demo.CocoPaths) -> None:
    marker = tmp_path / "no-such-folder" / "killed"  # writing it raises on the worker, before any kill
    path = gate(tmp_path, dataset, adapter="tests.helpers.models:DiesOnce", params={"marker": str(marker), "at": 1})
    result = invoke("run", str(path), "--executor", "ray", "--ray-address", cluster)
    assert result.exit_code == 3, result.output
    assert "a Ray worker raised FileNotFoundError:" in result.output and "no-such-folder" in result.output
    assert "Traceback" not in result.output


def test_an_unreachable_address_is_one_line_and_exit_3(tmp_path: Path, dataset: demo.CocoPaths) -> None:
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = invoke("run", str(gate(tmp_path, dataset)), "--ray-address", f"127.0.0.1:{port}")
    assert result.exit_code == 3, result.output
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("concurrency", [0, 3])
def test_concurrency_is_one_or_two(concurrency: int) -> None:
    with pytest.raises(RunError, match=f"concurrency must be 1 or 2, got {concurrency}"):
        RayExecutor(concurrency=concurrency)


def test_niceness_is_checked() -> None:
    with pytest.raises(RunError, match="niceness must be from -20 to 19, got 20"):
        RayExecutor(niceness=20)


def test_workers_per_gpu_share_each_gpu() -> None:
    """Two actors on each GPU, each asking Ray for half of one; CPU runs are unaffected."""
    import torch

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    shared = RayExecutor(workers_per_gpu=2)
    assert shared.actor_options(cuda)["num_gpus"] == 0.5 and "num_gpus" not in shared.actor_options(cpu)
    assert shared.actor_count({"GPU": 3.0, "CPU": 8.0}, cuda) == 6
    assert shared.actor_count({"GPU": 3.0, "CPU": 8.0}, cpu) == 8
    assert RayExecutor().actor_count({"GPU": 3.0}, cuda) == 3
    assert RayExecutor(workers=1, workers_per_gpu=2).actor_count({"GPU": 3.0}, cuda) == 1
    with pytest.raises(RunError, match="the Ray cluster has no GPU to run on"):
        shared.actor_count({"CPU": 8.0}, cuda)
    for bad in (0, 9, 1.5, True, "2"):
        with pytest.raises(RunError, match=r"workers_per_gpu must be a whole number from 1 to 8, got"):
            RayExecutor(workers_per_gpu=bad)  # type: ignore[arg-type]


class _Niceness:
    def get(self) -> int:
        return os.getpriority(os.PRIO_PROCESS, 0)


def test_workers_run_at_the_niceness_asked(cluster: str) -> None:
    """Ray starts workers at niceness 15; the executor's actors run at 0 (a local run's) unless told otherwise."""
    import ray
    import torch

    ray.init(address=cluster, logging_level="WARNING")
    try:
        for niceness, expected in ((None, 15), (0, 0), (5, 5)):
            options = RayExecutor(address=cluster, niceness=niceness).actor_options(torch.device("cpu"))
            probe = ray.remote(**{**options, "num_cpus": 0})(_Niceness).remote()
            assert ray.get(probe.get.remote()) == expected
            ray.kill(probe)
    finally:
        ray.shutdown()
