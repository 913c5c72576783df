"""Dumps, cache, resume, evaluation and corrupt images through the whole gate, with the committed demo model."""

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from preprocgate.data import demo
from preprocgate.evaluators.cocoeval import PycocotoolsEvaluator
from tests.helpers.gates import DEMO_MODEL as MODEL
from tests.helpers.gates import coco_dataset, detection_gate, invoke, write_gate
from tests.helpers.models import CountingOnnx


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> demo.CocoPaths:
    return demo.generate(tmp_path_factory.mktemp("demo"), "val", 6, seed=0)


def detection_gate_file(tmp: Path, data: demo.CocoPaths, variants: dict[str, Any], **extra: Any) -> Path:
    spec = detection_gate(coco_dataset(data), variants=variants)
    spec.update(extra)  # may replace the dataset section too
    return write_gate(tmp, spec)


def run(path: Path):
    return invoke("run", str(path))


def count_evaluations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    evaluate = PycocotoolsEvaluator.evaluate

    def counted(self: PycocotoolsEvaluator, results: list[dict], iou_type: str, image_ids: Any) -> dict:
        calls.append(iou_type)
        return evaluate(self, results, iou_type, image_ids)

    monkeypatch.setattr(PycocotoolsEvaluator, "evaluate", counted)
    return calls


def test_gate_end_to_end_then_from_cache(
    tmp_path: Path, dataset: demo.CocoPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    evaluations = count_evaluations(monkeypatch)
    path = detection_gate_file(
        tmp_path, dataset, {"cv2": "cv2", "torch": "torch"}, thresholds={"map": {"max_abs_delta": 0.05}}
    )
    first = run(path)
    assert first.exit_code == 0, first.output
    assert CountingOnnx.images_run == 12  # 6 images × 2 variants
    assert sorted(evaluations) == ["bbox", "bbox", "segm", "segm"]
    data = json.loads((tmp_path / "out" / "det.json").read_text())
    assert set(data["metrics"]) == {"cv2", "torch"}
    assert data["metrics"]["torch"]["bbox"]["AP"] > 0.4 and data["metrics"]["torch"]["segm"]["AP"] > 0.4
    assert data["dataset"]["evaluated"] == 6 and data["dataset"]["corrupt"] == []
    assert len(data["checks"]) == 6 and all(c["kind"] == "accuracy" for c in data["checks"])
    md = (tmp_path / "out" / "det.md").read_text()
    assert "### Detection accuracy (6 images)" in md and "### Detection diff" in md
    digests = {d["variant"]: d["digest"] for d in data["dumps"]}

    CountingOnnx.images_run = 0
    evaluations.clear()
    reads, diffs = count_part_reads_and_diffs(monkeypatch)
    second = run(path)
    assert second.exit_code == 0
    assert CountingOnnx.images_run == 0  # every dump came from the cache: the model was not called
    assert evaluations == []  # and every variant's metrics too
    # nor were the dumps read: their digests and counts are in the completion markers, the diff is cached
    assert reads == [] and diffs == []
    again = json.loads((tmp_path / "out" / "det.json").read_text())
    assert {d["variant"]: d["digest"] for d in again["dumps"]} == digests
    assert again["metrics"] == data["metrics"] and again["diffs"] == data["diffs"]
    assert [d["detections"] for d in again["dumps"]] == [d["detections"] for d in data["dumps"]]
    assert all(d["cached_images"] == 6 and d["computed_images"] == 0 for d in again["dumps"])

    # a marker from before these fields: the parts are read once and the marker completed for the next run
    for marker in (tmp_path / "cache").glob("dumps/*/*/complete.json"):
        old = json.loads(marker.read_text())
        marker.write_text(json.dumps({k: old[k] for k in ("variant", "images", "corrupt")}))
    third = run(path)
    assert third.exit_code == 0 and len(reads) == 2 and diffs == []
    reread = json.loads((tmp_path / "out" / "det.json").read_text())
    assert reread["metrics"] == data["metrics"]
    # digested from the parts read back: the first run's, which its writer streamed as it wrote them
    assert {d["variant"]: d["digest"] for d in reread["dumps"]} == digests
    run(path)
    assert len(reads) == 2


def test_bootstrap_intervals_are_cached_with_the_metrics(
    tmp_path: Path, dataset: demo.CocoPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm run with a bootstrap resamples nothing and reads no dump: the intervals are cached by both dumps'
    digests and the ground truth, like the metrics."""
    from preprocgate.stages import evaluate

    resampled: list[int] = []
    paired = evaluate.paired_bootstrap

    def counted(*args: Any) -> Any:
        resampled.append(1)
        return paired(*args)

    monkeypatch.setattr(evaluate, "paired_bootstrap", counted)
    path = detection_gate_file(
        tmp_path,
        dataset,
        {"cv2": "cv2", "torch": "torch"},
        thresholds={"map": {"max_abs_delta": 0.05, "metrics": ["bbox.AP"]}},
        bootstrap={"resamples": 50},
    )
    first = run(path)
    assert first.exit_code == 0, first.output
    intervals = json.loads((tmp_path / "out" / "det.json").read_text())["intervals"]
    assert resampled == [1] and set(intervals) == {"torch"}
    reads, _ = count_part_reads_and_diffs(monkeypatch)
    second = run(path)
    assert second.exit_code == 0 and resampled == [1] and reads == []
    assert json.loads((tmp_path / "out" / "det.json").read_text())["intervals"] == intervals


def count_part_reads_and_diffs(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[int]]:
    from preprocgate.cache import DumpCache
    from preprocgate.stages import diff

    reads: list[str] = []
    diffs: list[int] = []
    load_parts, diff_dumps = DumpCache.load_parts, diff.diff_dumps

    def counted_load(self: DumpCache, key: str) -> dict:
        reads.append(key)
        return load_parts(self, key)

    def counted_diff(*args: Any) -> Any:
        diffs.append(1)
        return diff_dumps(*args)

    monkeypatch.setattr(DumpCache, "load_parts", counted_load)
    monkeypatch.setattr(diff, "diff_dumps", counted_diff)
    return reads, diffs


def test_identical_dumps_are_evaluated_once(
    tmp_path: Path, dataset: demo.CocoPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    evaluations = count_evaluations(monkeypatch)
    path = detection_gate_file(tmp_path, dataset, {"a": "torch", "b": "torch"}, baseline="a", thresholds={"map": {}})
    result = run(path)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / "det.json").read_text())
    assert data["dumps"][0]["digest"] == data["dumps"][1]["digest"]
    assert data["metrics"]["a"] == data["metrics"]["b"] and sorted(evaluations) == ["bbox", "segm"]
    assert len(list((tmp_path / "cache" / "metrics").glob("*.json"))) == 1  # one digest, one cached entry


def test_interrupted_dump_resumes(tmp_path: Path, dataset: demo.CocoPaths) -> None:
    path = detection_gate_file(tmp_path, dataset, {"cv2": "cv2"}, thresholds={"map": None, "min_matched_fraction": 0.0})
    CountingOnnx.fail_after = 4  # the second batch of 4 fails
    failed = run(path)
    assert failed.exit_code == 3 and "interrupted (test)" in failed.output
    CountingOnnx.fail_after, CountingOnnx.images_run = None, 0
    resumed = run(path)
    assert resumed.exit_code == 1, resumed.output  # one variant: no diff pair, hence no check at all
    assert CountingOnnx.images_run == 2  # only the images the first run did not finish
    data = json.loads((tmp_path / "out" / "det.json").read_text())
    assert data["dumps"][0]["cached_images"] == 4 and data["dumps"][0]["computed_images"] == 2


def test_swapped_channels_fail_on_map(tmp_path: Path, dataset: demo.CocoPaths) -> None:
    variants = {"cv2": "cv2", "swapped": "tests.helpers.variants:SwappedChannels"}
    path = detection_gate_file(
        tmp_path, dataset, variants, thresholds={"map": {"metrics": ["bbox.AP"], "max_abs_delta": 0.05}}
    )
    result = run(path)
    assert result.exit_code == 1, result.output
    assert "FAILED | accuracy | swapped vs cv2 | Δ bbox AP -0." in result.output


def test_corrupt_and_missing_images_are_excluded_from_every_variant(tmp_path: Path, dataset: demo.CocoPaths) -> None:
    images = tmp_path / "images"
    shutil.copytree(dataset.images, images)
    files = sorted(images.iterdir())
    files[1].write_bytes(b"\xff\xd8\xff not really a jpeg")
    files[3].unlink()
    path = detection_gate_file(
        tmp_path,
        dataset,
        {"cv2": "cv2", "torch": "torch"},
        dataset={"images": str(images), "annotations": str(dataset.annotations)},
        thresholds={"map": {"max_abs_delta": 1.0}, "max_unusable_fraction": 0.5},  # default 0: any fails the gate
    )
    result = run(path)
    assert result.exit_code == 0, result.output
    assert "2 image(s) could not be used" in result.output
    data = json.loads((tmp_path / "out" / "det.json").read_text())
    assert data["dataset"]["evaluated"] == 4
    assert {c["file"]: c["reason"] for c in data["dataset"]["corrupt"]} == {
        files[1].name: "cannot decode",
        files[3].name: "file missing or unreadable",
    }
    assert all(d["images"] == 4 for d in data["dumps"])
    assert CountingOnnx.images_run == 8
    md = (tmp_path / "out" / "det.md").read_text()
    assert "2 image(s) excluded from every variant" in md and files[1].name in md


def test_missing_model_file_is_found_before_running(tmp_path: Path, dataset: demo.CocoPaths) -> None:
    path = detection_gate_file(tmp_path, dataset, {"cv2": "cv2"})
    spec = path.read_text().replace(str(MODEL), "nope/model.onnx")
    path.write_text(spec)
    result = run(path)
    assert result.exit_code == 2 and "model.file:" in result.output and "not found" in result.output


def test_batches_decode_while_earlier_ones_infer_with_the_batches_of_the_usable_images(
    tmp_path: Path, dataset: demo.CocoPaths
) -> None:
    """A dump's batches come as their images decode (the rest decoding ahead), and are the consecutive batches of
    the usable images whichever turn out unusable on the way; a later variant's dump decodes nothing again."""
    from preprocgate.data.coco import load_coco
    from preprocgate.stages.dump import DumpStage, batches

    images = tmp_path / "images"
    shutil.copytree(dataset.images, images)
    files = sorted(images.iterdir())
    files[2].write_bytes(b"not an image")
    coco = load_coco(images, dataset.annotations)
    ids = [r.id for r in coco.records]
    stage = DumpStage(None, None, coco, 2, {}, None)  # type: ignore[arg-type]
    first = list(stage.decoded_batches(ids))
    usable = [i for n, i in enumerate(ids) if n != 2]
    assert [chunk for chunk, _ in first] == batches(usable, 2) and list(coco.corrupt) == [ids[2]]
    assert all(len(chunk) == len(imgs) and all(im.ndim == 3 for im in imgs) for chunk, imgs in first)
    decoded = stage.times.seconds["decode"]
    again = list(stage.decoded_batches(ids))
    assert [chunk for chunk, _ in again] == batches(usable, 2) and stage.times.seconds["decode"] == decoded
    assert all(a is b for (_, x), (_, y) in zip(first, again, strict=True) for a, b in zip(x, y, strict=True))
