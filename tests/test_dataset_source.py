"""Datasets read from fsspec URLs (a real HTTP server on 127.0.0.1, memory://, file://) give what the local
folder gives: the same records, manifest, unusable images, dumps and metrics, and share the cache with it."""

from __future__ import annotations

import importlib.util
import json
import pickle
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import fsspec
import pytest

from preprocgate.data import demo
from preprocgate.data.coco import CocoDataset, load_coco, read_image
from preprocgate.data.source import RemoteImages, annotations_at, images_at
from preprocgate.errors import RunError
from preprocgate.stages.ray_executor import DumpWorker, ImageRef
from tests.helpers.gates import detection_gate, invoke, write_gate
from tests.helpers.http_folder import served
from tests.helpers.models import CountingOnnx
from tests.helpers.realdata import COCO128, requires_data

IMAGES = 5
SECRET = "hunter2pass"  # a password written into a URL: never shown


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> demo.CocoPaths:
    """The demo set with one image that does not decode and one missing: ``val/`` and ``instances_val.json``."""
    paths = demo.generate(tmp_path_factory.mktemp("data"), "val", IMAGES, seed=3)
    files = sorted(paths.images.iterdir())
    files[1].write_bytes(b"\xff\xd8\xff not really a jpeg")
    files[3].unlink()
    return paths


@pytest.fixture(scope="module")
def url(folder: demo.CocoPaths) -> Iterator[str]:
    with served(folder.images.parent) as base:
        yield base.replace("http://", f"http://reader:{SECRET}@")


def load(images: str, annotations: str, cache: Path, keep_bytes: bool = True) -> CocoDataset:
    path, name = annotations_at(annotations, Path("/"), cache)
    return load_coco(images_at(images, Path("/")), path, name=name, keep_bytes=keep_bytes)


def summary(dataset: CocoDataset) -> tuple:
    return (
        dataset.records,
        dataset.manifest,
        dataset.corrupt,
        {r.id: dataset.sha256(r.id) for r in dataset.records},
    )


def test_http_dataset_equals_the_local_folder(folder: demo.CocoPaths, url: str, tmp_path: Path) -> None:
    local = load(str(folder.images), str(folder.annotations), tmp_path)
    remote = load(f"{url}/val", f"{url}/instances_val.json", tmp_path)
    assert summary(remote) == summary(local)
    assert len(local.records) == IMAGES and set(local.corrupt.values()) == {"file missing or unreadable"}
    ids = [r.id for r in local.records]
    first, second = local.decode(ids), remote.decode(ids)
    assert sorted(first) == sorted(second) and all((first[i] == second[i]).all() for i in first)
    assert local.corrupt == remote.corrupt and len(local.corrupt) == 2  # decoding found the broken JPEG too
    assert SECRET not in str(remote.images) and str(remote.images).startswith("http://***@127.0.0.1:")


@requires_data
def test_http_coco128_has_the_local_manifest(tmp_path: Path) -> None:
    with served(COCO128) as base:
        remote = load(f"{base}/val2017", f"{base}/annotations/instances_val2017.json", tmp_path, keep_bytes=False)
    local = load(str(COCO128 / "val2017"), str(COCO128 / "annotations" / "instances_val2017.json"), tmp_path)
    assert summary(remote) == summary(local) and len(local.records) == 128


def test_driver_without_bytes_rereads_and_checks_digests(folder: demo.CocoPaths, tmp_path: Path) -> None:
    images = tmp_path / "val"
    shutil.copytree(folder.images, images)
    kept = load(str(images), str(folder.annotations), tmp_path)
    dropped = load(f"file://{images}", str(folder.annotations), tmp_path, keep_bytes=False)
    assert dropped._bytes == {} and summary(dropped) == summary(kept)  # digests kept, bytes not
    ids = [r.id for r in kept.records]
    assert {i: a.tobytes() for i, a in dropped.decode(ids).items()} == {
        i: a.tobytes() for i, a in kept.decode(ids).items()
    }
    first = kept.valid[0]
    (images / first.file_name).write_bytes((images / kept.valid[1].file_name).read_bytes())
    with pytest.raises(RunError, match="other bytes"):
        dropped.decode([first.id])


def test_memory_url(folder: demo.CocoPaths, tmp_path: Path) -> None:
    memory = fsspec.filesystem("memory")
    for file in folder.images.iterdir():
        memory.pipe_file(f"/pg-test/val/{file.name}", file.read_bytes())
    memory.pipe_file("/pg-test/instances_val.json", folder.annotations.read_bytes())
    try:
        remote = load("memory://pg-test/val", "memory://pg-test/instances_val.json", tmp_path)
    finally:
        memory.rm("/pg-test", recursive=True)
    assert summary(remote) == summary(load(str(folder.images), str(folder.annotations), tmp_path))


def test_ray_worker_reads_the_url_it_was_given(folder: demo.CocoPaths, url: str, tmp_path: Path) -> None:
    """What crosses to a worker is the URL (pickled without an open client); the worker reads and checks it."""
    dataset = load(str(folder.images), str(folder.annotations), tmp_path)
    source = pickle.loads(pickle.dumps(images_at(f"{url}/val", Path("/"))))
    assert isinstance(source, RemoteImages) and source.url == f"{url}/val"
    worker = SimpleNamespace(setup=SimpleNamespace(images=source))
    image, reason = DumpWorker._read(worker, ImageRef(dataset.valid[0], dataset.sha256(dataset.valid[0].id)))
    assert reason == "" and (image == dataset.decode([dataset.valid[0].id])[dataset.valid[0].id]).all()
    missing = next(r for r in dataset.records if dataset.corrupt.get(r.id) == "file missing or unreadable")
    assert DumpWorker._read(worker, ImageRef(missing, None)) == (None, "file missing or unreadable")
    with pytest.raises(RunError, match="other bytes"):
        read_image(source, dataset.valid[0], dataset.sha256(dataset.valid[1].id))


def gate_file(folder: Path, images: str, annotations: str, cache: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    spec = detection_gate({"images": images, "annotations": annotations}, variants={"cv2": "cv2"})
    spec["cache_dir"] = str(cache)
    spec["thresholds"] = {"map": None, "min_matched_fraction": 0.0, "max_unusable_fraction": 0.5}
    return write_gate(folder, spec)


def outcome(folder: Path) -> tuple[dict, dict, list, str]:
    data = json.loads((folder / "out" / "det.json").read_text())
    dataset = data["dataset"]
    return data["metrics"], {d["variant"]: d["digest"] for d in data["dumps"]}, dataset["corrupt"], dataset["manifest"]


def test_gate_from_http_equals_local_and_shares_its_cache(
    folder: demo.CocoPaths, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images, annotations = f"{url}/val", f"{url}/instances_val.json"
    remote = gate_file(tmp_path / "remote", images, annotations, tmp_path / "cache-remote")
    result = invoke("run", str(remote))
    assert result.exit_code == 1, result.output  # one variant: nothing compared, no check passes
    assert CountingOnnx.images_run == IMAGES - 2  # the two unusable images are excluded
    local = gate_file(tmp_path / "local", str(folder.images), str(folder.annotations), tmp_path / "cache")
    assert invoke("run", str(local)).exit_code == 1
    assert outcome(tmp_path / "remote") == outcome(tmp_path / "local")
    assert outcome(tmp_path / "local")[2] != []  # the unusable images are in both reports

    CountingOnnx.images_run = 0
    monkeypatch.setenv("PG_TEST_DATASET", url)  # ${VAR} in a URL, as in a path
    again = gate_file(tmp_path / "again", "${PG_TEST_DATASET}/val", annotations, tmp_path / "cache")  # local's cache
    result = invoke("run", str(again))
    assert result.exit_code == 1 and CountingOnnx.images_run == 0  # every dump came from the local run's
    assert outcome(tmp_path / "again") == outcome(tmp_path / "local")
    report = (tmp_path / "again" / "out" / "det.json").read_text() + (tmp_path / "again" / "out" / "det.md").read_text()
    assert SECRET not in report + result.output and "http://***@127.0.0.1:" in report


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line_error(tmp_path: Path, images: str, annotations: str) -> str:
    result = invoke("run", str(gate_file(tmp_path, images, annotations, tmp_path / "cache")))
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output and SECRET not in result.output
    report = tmp_path / "out" / "det.md"
    assert not report.exists() or SECRET not in report.read_text()
    (line,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    return line


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed")
def test_missing_backend_names_the_key_and_the_package(folder: demo.CocoPaths, tmp_path: Path) -> None:
    line = one_line_error(tmp_path, f"s3://reader:{SECRET}@bucket/val", str(folder.annotations))
    assert "dataset.images: s3://***@bucket/val: s3fs is not installed; run: pip install s3fs" in line


def test_unknown_protocol(folder: demo.CocoPaths, tmp_path: Path) -> None:
    line = one_line_error(tmp_path, str(folder.images), "nosuch://host/instances.json")
    assert "dataset.annotations: nosuch://host/instances.json: no fsspec backend for nosuch://" in line


def test_unreachable_or_missing_annotations_url(folder: demo.CocoPaths, url: str, tmp_path: Path) -> None:
    down = f"http://reader:{SECRET}@127.0.0.1:{closed_port()}/instances_val.json?sig=abc"
    line = one_line_error(tmp_path / "down", str(folder.images), down)
    assert "annotations cannot be read" in line and "ClientConnectorError" in line
    assert "http://***@127.0.0.1:" in line and "?***" in line and "sig=abc" not in line
    line = one_line_error(tmp_path / "missing", str(folder.images), f"{url}/nothing.json")
    assert line.endswith("/nothing.json: annotations file not found") and "dataset: http://***@" in line


def test_images_host_down_is_one_error_not_every_image_unusable(folder: demo.CocoPaths, tmp_path: Path) -> None:
    line = one_line_error(tmp_path, f"http://127.0.0.1:{closed_port()}/val", str(folder.annotations))
    assert f"none of the {IMAGES} images could be read" in line and "ClientConnectorError" in line
