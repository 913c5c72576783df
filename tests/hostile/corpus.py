"""The hostile-input corpus: malformed specs, datasets, baselines, cache states and forge behaviours.

Every case is a :class:`Case`: it builds its inputs in a fresh folder, names the command to run, the exit code
expected and fragments the output must (``says``) and must not (``hides``) contain; ``check`` looks at what was
left behind. ``tests/test_hostile.py`` runs them all through one parametrised test, which also checks that no
case prints a traceback or leaves a half-written file.

Sources: ``spec_mutations.yaml`` (one value changed in a valid spec), ``specs/*.yaml`` (whole files whose
first lines say ``# expect: CODE`` and ``# says: a | b``), and the builders below for datasets, stored
baselines, cache states, forges and command lines. The expensive part, a detection gate run once to fill a
cache and store a baseline, is shared: each case copies it.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

HERE = Path(__file__).parent
Build = Callable[[Path, "Shared"], list[str]]


@dataclass(frozen=True)
class Case:
    id: str
    category: str
    build: Build  # writes the inputs under the folder given, returns the command line
    expect: int
    says: tuple[str, ...] = ()
    hides: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    check: Callable[[Path, str], None] | None = None  # (folder, output): what was left behind
    forge: ForgeCase | None = None  # the local forge server's behaviour, for `post` cases


class Shared:
    """Expensive set-up made once per test session and copied into each case's folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: dict[str, Path] = {}

    def copy(self, name: str, into: Path) -> None:
        if name not in self._made:
            folder = self.root / name
            folder.mkdir(parents=True)
            MADE[name](folder)
            self._made[name] = folder
        shutil.copytree(self._made[name], into, dirs_exist_ok=True, symlinks=True)


# --------------------------------------------------------------------------------------------------- fixtures


def write_fixtures(folder: Path) -> None:
    """Files the spec cases point at: templates, a plain file, an empty image, a tiny dataset and model."""
    (folder / "a_file.txt").write_text("not a folder\n")
    (folder / "empty.png").write_bytes(b"")
    (folder / "broken.j2").write_text("# {{ r.gate }}\n{% for x in %}\n")
    (folder / "undefined_name.j2").write_text("# {{ result.gate }}\n")
    (folder / "latin1.j2").write_bytes(b"# caf\xe9 {{ r.gate }}\n")
    (folder / "good.j2").write_text("# {{ r.gate }}: see {{ json_name }}\n")
    (folder / "out_taken" / "taken.md").mkdir(parents=True)
    write_dataset(folder)


BRIGHT_QUARTERS = [(0, 0), (0, 1), (1, 0), (1, 1)]


def write_dataset(folder: Path, count: int = 3, height: int = 40, width: int = 48) -> None:
    """``count`` PNG images, each brightest in one quarter, with that quarter annotated as category 1, and a
    model file for the :class:`tests.helpers.models.BrightestBlock` adapter (its content is only hashed)."""
    images = folder / "images"
    images.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    entries, annotations = [], []
    for i in range(count):
        qy, qx = BRIGHT_QUARTERS[i % 4]
        image = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
        y0, x0, h, w = qy * height // 2, qx * width // 2, height // 2, width // 2
        image[y0 : y0 + h, x0 : x0 + w] += 150
        cv2.imwrite(str(images / f"{i + 1:03d}.png"), image)
        entries.append({"id": i + 1, "file_name": f"{i + 1:03d}.png", "height": height, "width": width})
        annotations.append(
            {"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [x0, y0, w, h], "area": w * h, "iscrowd": 0}
        )
    data = {"images": entries, "annotations": annotations, "categories": [{"id": 1, "name": "block"}]}
    (folder / "annotations.json").write_text(json.dumps(data))
    (folder / "model.bin").write_bytes(b"brightest-block v1\n")


BASES: dict[str, dict[str, Any]] = {
    "small": {
        "name": "t",
        "device": "cpu",
        "input": {"size": "24x20"},
        "variants": {"cv2": "cv2", "torch": "torch", "triton": "triton"},
        "baseline": "cv2",
        "probes": {
            "parity": {
                "pairs": [{"candidate": "torch", "reference": "cv2", "thresholds": {"atol": 0.1}}],
                "images": {"synthetic": {"generators": ["natural"]}, "sweep": ["31x37"]},
            },
            "speed": None,
        },
        "report": {"output_dir": "out"},
    },
    "detection": {
        "name": "det",
        "device": "cpu",
        "input": {"size": "32x32"},
        "variants": {"cv2": "cv2", "torch": "torch"},
        "baseline": "cv2",
        "probes": {"parity": None, "speed": None},
        "dataset": {"images": "images", "annotations": "annotations.json"},
        "model": {"adapter": "tests.helpers.models:BrightestBlock", "file": "model.bin", "batch_size": 2},
        "evaluation": {"iou_types": ["bbox"]},
        "thresholds": {"map": {"metrics": ["bbox.AP", "bbox.AP50"], "max_abs_delta": 1.0}},
        "cache_dir": "cache",
        "report": {"output_dir": "out"},
    },
}
BASES["demo"] = {**copy.deepcopy(BASES["detection"]), "dataset": {"demo": {"count": 2}}}
BASES["stored"] = {**copy.deepcopy(BASES["detection"]), "baselines": {"dir": "baselines"}}


def write_spec(folder: Path, spec: dict[str, Any]) -> Path:
    path = folder / "gate.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return path


def _set(spec: dict[str, Any], dotted: str, value: Any) -> None:
    keys = [int(k) if k.isdigit() else k for k in dotted.split(".")]
    node: Any = spec
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value


def _delete(spec: dict[str, Any], dotted: str) -> None:
    keys = [int(k) if k.isdigit() else k for k in dotted.split(".")]
    node: Any = spec
    for key in keys[:-1]:
        node = node[key]
    del node[keys[-1]]


def _cli(command: str | list[str], path: Path) -> list[str]:
    words = [command] if isinstance(command, str) else list(command)
    return [*words, str(path)]


# ------------------------------------------------------------------------------------------- spec mutations


def mutation_cases() -> Iterator[Case]:
    for entry in yaml.safe_load((HERE / "spec_mutations.yaml").read_text()):

        def build(folder: Path, shared: Shared, entry: dict[str, Any] = entry) -> list[str]:
            write_fixtures(folder)
            spec = copy.deepcopy(BASES[entry.get("base", "small")])
            for dotted, value in (entry.get("set") or {}).items():
                _set(spec, dotted, value)
            for dotted in entry.get("delete") or []:
                _delete(spec, dotted)
            return _cli(entry.get("command", "validate"), write_spec(folder, spec))

        yield Case(
            entry["id"],
            "spec",
            build,
            entry["expect"],
            tuple(entry.get("says") or ()),
            tuple(entry.get("hides") or ()),
            dict(entry.get("env") or {}),
        )


def spec_file_cases() -> Iterator[Case]:
    for path in sorted((HERE / "specs").glob("*.yaml")):
        header = {}
        for line in path.read_bytes().decode("latin-1").splitlines()[:3]:
            key, _, value = line.removeprefix("# ").partition(": ")
            header[key] = value
        says = tuple(s.strip() for s in header.get("says", "").split(" | ") if s.strip())

        def build(folder: Path, shared: Shared, path: Path = path) -> list[str]:
            write_fixtures(folder)
            target = folder / "gate.yaml"
            shutil.copyfile(path, target)
            return ["validate", str(target)]

        yield Case(f"file-{path.stem}", "spec", build, int(header["expect"]), says)


# ------------------------------------------------------------------------------------------------- datasets


def _dataset_case(
    id: str,
    edit: Callable[[dict[str, Any], Path], Any],
    expect: int,
    *says: str,
    spec: dict[str, Any] | None = None,
) -> Case:
    """A detection run on the tiny dataset after ``edit(annotations, folder)``; the edit may return new JSON
    text (or bytes) to write instead of the edited annotations."""

    def build(folder: Path, shared: Shared) -> list[str]:
        write_dataset(folder)
        path = folder / "annotations.json"
        data = json.loads(path.read_text())
        text = edit(data, folder)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text if isinstance(text, str) else json.dumps(data))
        gate = copy.deepcopy(BASES["detection"])
        for dotted, value in (spec or {}).items():
            _set(gate, dotted, value)
        return ["run", str(write_spec(folder, gate))]

    return Case(id, "dataset", build, expect, says)


def _image(i: int, key: str, value: Any) -> Callable[[dict[str, Any], Path], None]:
    def edit(data: dict[str, Any], folder: Path) -> None:
        data["images"][i][key] = value

    return edit


def _annotation(i: int, key: str, value: Any) -> Callable[[dict[str, Any], Path], None]:
    def edit(data: dict[str, Any], folder: Path) -> None:
        data["annotations"][i][key] = value

    return edit


def _file_bytes(i: int, content: bytes | None) -> Callable[[dict[str, Any], Path], None]:
    def edit(data: dict[str, Any], folder: Path) -> None:
        path = folder / "images" / data["images"][i]["file_name"]
        if content is None:
            path.unlink()
        else:
            path.write_bytes(content)

    return edit


def _all_files(content: bytes) -> Callable[[dict[str, Any], Path], None]:
    def edit(data: dict[str, Any], folder: Path) -> None:
        for image in data["images"]:
            (folder / "images" / image["file_name"]).write_bytes(content)

    return edit


def dataset_cases() -> Iterator[Case]:
    def no_images(data: dict[str, Any], folder: Path) -> None:
        data["images"], data["annotations"] = [], []

    def duplicate_image(data: dict[str, Any], folder: Path) -> None:
        data["images"][1]["id"] = 1

    def duplicate_annotation(data: dict[str, Any], folder: Path) -> None:
        data["annotations"][1]["id"] = 1

    def drop(key: str) -> Callable[[dict[str, Any], Path], None]:
        return lambda data, folder: data.pop(key)

    def empty_categories(data: dict[str, Any], folder: Path) -> None:
        data["categories"] = []

    def over_limits(data: dict[str, Any], folder: Path) -> None:
        data["images"][0].update(height=100_000, width=100_000)

    yield _dataset_case("zero-images", no_images, 1, "no images to evaluate")
    yield _dataset_case("all-undecodable", _all_files(b"\x89PNG\r\n\x1a\n garbage"), 1, "3 of 3 images unusable")
    yield _dataset_case("all-empty-files", _all_files(b""), 1, "3 of 3 images unusable")
    yield _dataset_case("one-zero-byte-image", _file_bytes(0, b""), 1, "1 of 3 images unusable", "empty file")
    yield _dataset_case("one-missing-image", _file_bytes(1, None), 1, "1 of 3 images unusable", "002.png")
    yield _dataset_case(
        "one-undecodable-within-share",
        _file_bytes(2, b"GIF89a nope"),
        0,
        "1 image(s) could not be used",
        spec={"thresholds.max_unusable_fraction": 0.5},
    )
    yield _dataset_case(
        "share-exceeded",
        _file_bytes(2, b"nope"),
        1,
        "1 of 3 images unusable",
        spec={"thresholds.max_unusable_fraction": 0.2},
    )
    yield _dataset_case("image-over-limits", over_limits, 1, "1 of 3 images unusable", "limits.max_image_side")
    yield _dataset_case("size-disagrees", _image(0, "height", 41), 1, "1 of 3 images unusable", "annotations say")
    yield _dataset_case("truncated-json", lambda d, f: json.dumps(d)[:50], 2, "annotations.json: not JSON")
    yield _dataset_case("binary-json", lambda d, f: b"\xff\xfe\x00garbage", 2, "annotations.json: not JSON")
    yield _dataset_case("nested-json", lambda d, f: "[" * 100_000 + "]" * 100_000, 2, "annotations.json: not JSON")
    yield _dataset_case("root-list", lambda d, f: "[]", 2, "not a COCO instances file")
    yield _dataset_case(
        "nan-literal", lambda d, f: json.dumps(d).replace('"bbox": [0, 0', '"bbox": [NaN, 0'), 2, "finite"
    )
    yield _dataset_case("no-images-key", drop("images"), 2, "annotations.json: images: missing")
    yield _dataset_case("no-annotations-key", drop("annotations"), 2, "annotations: missing")
    yield _dataset_case("no-categories", drop("categories"), 2, "categories: missing")
    yield _dataset_case("empty-categories", empty_categories, 2, "categories: empty")
    yield _dataset_case("bbox-strings", _annotation(0, "bbox", ["a", 1, 2, 3]), 2, "annotations[0]: bbox")
    yield _dataset_case("bbox-three-numbers", _annotation(0, "bbox", [1, 2, 3]), 2, "annotations[0]: bbox")
    yield _dataset_case("bbox-negative", _annotation(1, "bbox", [1, 2, -3, 4]), 2, "negative width")
    yield _dataset_case("bbox-null", _annotation(2, "bbox", None), 2, "annotations[2]: bbox None")
    yield _dataset_case("duplicate-image-ids", duplicate_image, 2, "image id 1 given twice (images[0] and images[1])")
    yield _dataset_case("duplicate-annotation-ids", duplicate_annotation, 2, "annotations[1]: id 1")
    yield _dataset_case("unknown-image-id", _annotation(0, "image_id", 99), 2, "image_id 99 is not an image")
    yield _dataset_case("unknown-category", _annotation(0, "category_id", 7), 2, "category_id 7 is not in categories")
    yield _dataset_case("absolute-file-name", _image(0, "file_name", "/etc/passwd"), 2, "must be a path inside")
    yield _dataset_case("traversal-file-name", _image(0, "file_name", "../model.bin"), 2, "must be a path inside")
    yield _dataset_case("height-string", _image(0, "height", "40"), 2, "height and width must be positive integers")
    yield _dataset_case("width-zero", _image(1, "width", 0), 2, "height and width must be positive integers")
    yield _dataset_case("image-id-string", _image(0, "id", "1"), 2, "id '1' is not an integer")
    yield _dataset_case("iscrowd-two", _annotation(0, "iscrowd", 2), 2, "iscrowd 2 must be 0 or 1")
    yield _dataset_case("segmentation-string", _annotation(0, "segmentation", "x"), 2, "segmentation must be")
    yield _dataset_case("area-string", _annotation(0, "area", "big"), 2, "area 'big' is not a finite number")
    yield _dataset_case(
        "image-ids-absent",
        lambda d, f: None,
        3,
        "image ids not in the annotations: [42]",
        spec={"dataset.image_ids": [42]},
    )


# ---------------------------------------------------------------------------------- stored baselines, cache


def _make_stored(folder: Path) -> None:
    """The detection gate with a stored baseline (``baseline update``) and a filled cache."""
    from tests.helpers.gates import invoke

    write_dataset(folder)
    path = write_spec(folder, BASES["stored"])
    result = invoke("baseline", "update", str(path))
    assert result.exit_code == 0, result.output
    shutil.rmtree(folder / "out", ignore_errors=True)


def _make_parity(folder: Path) -> None:
    """A parity-only gate run once with its own cache (parity results stored)."""
    from tests.helpers.gates import invoke

    spec = {**copy.deepcopy(BASES["small"]), "cache_dir": "cache"}
    result = invoke("run", str(write_spec(folder, spec)))
    assert result.exit_code == 0, result.output
    shutil.rmtree(folder / "out")


MADE: dict[str, Callable[[Path], None]] = {"stored": _make_stored, "parity": _make_parity}


def _stored_case(id: str, edit: Callable[[Path], None], expect: int, *says: str, **kw: Any) -> Case:
    def build(folder: Path, shared: Shared) -> list[str]:
        shared.copy("stored", folder)
        edit(folder)
        return ["run", str(folder / "gate.yaml")]

    return Case(id, kw.pop("category", "baseline"), build, expect, says, **kw)


def _baseline_json(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    """Edit the stored baseline's JSON in place (what ``change`` returns is ignored)."""

    def edit(folder: Path) -> None:
        path = folder / "baselines" / "det.json"
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    return edit


def _baseline_text(change: Callable[[str], str]) -> Callable[[Path], None]:
    """Replace the stored baseline's text by ``change(text)``."""

    def edit(folder: Path) -> None:
        path = folder / "baselines" / "det.json"
        path.write_text(change(path.read_text()))

    return edit


def _artifact(change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        stored = json.loads((folder / "baselines" / "det.json").read_text())
        path = folder / "cache" / "artifacts" / f"{stored['variants']['cv2']['dump']['digest']}.json.gz"
        path.write_bytes(change(path.read_bytes()))

    return edit


def _edited_score(data: bytes) -> bytes:
    results = json.loads(gzip.decompress(data))
    first = next(r for records in results.values() for r in records)
    first["score"] = 0.999
    return gzip.compress(json.dumps(results).encode())


def _no_artifact(folder: Path) -> None:
    shutil.rmtree(folder / "cache" / "artifacts")


def baseline_cases() -> Iterator[Case]:
    def metric(variant: str, value: Any) -> Callable[[dict[str, Any]], None]:
        def change(d: dict[str, Any]) -> None:
            d["variants"][variant]["metrics"]["bbox"]["AP"] = value

        return change

    def nothing(folder: Path) -> None:
        pass

    yield _stored_case("clean", nothing, 0, "PASSED: gate det")
    yield _stored_case("not-json", _baseline_text(lambda t: "{nope"), 2, "det.json: not a preprocgate baseline")
    yield _stored_case("truncated", _baseline_text(lambda t: t[:100]), 2, "not a preprocgate baseline")
    yield _stored_case("root-list", _baseline_text(lambda t: "[]"), 2, "schema_version None")
    yield _stored_case("schema-version-2", _baseline_json(lambda d: d.update(schema_version=2)), 2, "schema_version 2")
    yield _stored_case("no-variants-key", _baseline_json(lambda d: d.pop("variants")), 2, "variants: Field required")
    yield _stored_case(
        "variants-emptied",
        _baseline_json(lambda d: d.update(variants={})),
        1,
        "FAILED | baseline | cv2 vs stored | stored entry missing from det.json",
        "FAILED | baseline | torch vs stored",
    )
    yield _stored_case(
        "one-variant-deleted",
        _baseline_json(lambda d: d["variants"].pop("torch")),
        1,
        "FAILED | baseline | torch vs stored | stored entry missing",
    )
    yield _stored_case(
        "one-variant-metrics-deleted",
        _baseline_json(lambda d: d["variants"]["torch"].pop("metrics")),
        2,
        "variants.torch.metrics: Field required",
    )
    yield _stored_case(
        "one-metric-deleted",
        _baseline_json(lambda d: d["variants"]["torch"]["metrics"]["bbox"].pop("AP50")),
        1,
        "FAILED | baseline | torch vs stored | Δ bbox AP50 missing from det.json",
    )
    yield _stored_case(
        "iou-type-deleted",
        _baseline_json(lambda d: d["variants"]["cv2"]["metrics"].pop("bbox")),
        1,
        "FAILED | baseline | cv2 vs stored | Δ bbox AP missing",
    )
    yield _stored_case(
        "metric-nan", _baseline_json(metric("cv2", float("nan"))), 2, "cv2.metrics.bbox.AP is not a finite"
    )
    yield _stored_case("metric-string", _baseline_json(metric("cv2", "0.5")), 2, "not a preprocgate baseline")
    yield _stored_case("metric-moved", _baseline_json(metric("torch", -5.0)), 1, "FAILED | baseline | torch vs stored")
    yield _stored_case(
        "digest-not-hex",
        _baseline_json(lambda d: d["variants"]["cv2"]["dump"].update(digest="../../etc/passwd")),
        2,
        "variants.cv2.dump.digest",
    )
    yield _stored_case(
        "images-negative",
        _baseline_json(lambda d: d["variants"]["cv2"]["dump"].update(images=-1)),
        2,
        "variants.cv2.dump.images",
    )
    yield _stored_case(
        "provenance-key-missing",
        _baseline_json(lambda d: d["provenance"].pop("spec")),
        2,
        "provenance lacks spec",
    )
    yield _stored_case(
        "provenance-model-moved",
        _baseline_json(lambda d: d["provenance"].update(model="0" * 64)),
        1,
        "stale: the model file changed",
    )
    yield _stored_case("unknown-key", _baseline_json(lambda d: d.update(extra=1)), 2, "extra: Extra inputs")
    yield _stored_case(
        "gate-number", _baseline_json(lambda d: d.update(gate=5)), 2, "gate: Input should be a valid string"
    )
    yield _stored_case(
        "artifact-edited",
        _artifact(_edited_score),
        0,
        "does not match its digest",
        "cv2 dump was recomputed",
        "PASSED: gate det",
    )
    yield _stored_case("artifact-truncated", _artifact(lambda b: b[: len(b) // 2]), 0, "is damaged", "recomputed")
    yield _stored_case("artifact-garbage", _artifact(lambda b: b"not gzip"), 0, "is damaged", "PASSED: gate det")
    yield _stored_case("artifact-gone", _no_artifact, 3, "is not in", "preprocgate baseline update")


def _first(folder: Path, pattern: str) -> Path:
    return sorted(folder.glob(pattern))[0]


def _cache_edit(pattern: str, change: Callable[[Path], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        for path in sorted((folder / "cache").glob(pattern)):
            change(path)

    return edit


def _write(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def _json_change(change: Callable[[Any], Any], replace: bool = False) -> Callable[[Path], None]:
    """Edit a JSON file in place, or with ``replace`` write what ``change`` returns instead."""

    def apply(path: Path) -> None:
        data = json.loads(path.read_text())
        replaced = change(data)
        path.write_text(json.dumps(replaced if replace else data))

    return apply


def _same_metrics_as_clean(folder: Path, output: str) -> None:
    data = json.loads((folder / "out" / "det.json").read_text())
    assert data["passed"] is True
    assert data["metrics"]["cv2"]["bbox"]["AP"] == data["metrics"]["torch"]["bbox"]["AP"] or data["metrics"]


def cache_cases() -> Iterator[Case]:
    parts, marker = "dumps/*/*/part-*.json", "dumps/*/*/complete.json"
    healed = ("was damaged", "recomputed", "PASSED: gate det")

    def first_part_only(change: Callable[[Path], None]) -> Callable[[Path], None]:
        def edit(folder: Path) -> None:
            change(_first(folder / "cache", parts))

        return edit

    def record(field: str, value: Any) -> Callable[[Any], None]:
        def change(data: Any) -> None:
            first = next(records for records in data["results"].values() if records)
            first[0][field] = value

        return change

    cases: list[tuple[str, Callable[[Path], None], tuple[str, ...]]] = [
        ("part-empty-object", first_part_only(_write(b"{}")), healed),
        ("part-truncated", first_part_only(lambda p: p.write_bytes(p.read_bytes()[:40])), healed),
        ("part-list", first_part_only(_write(b"[1, 2]")), healed),
        ("part-not-utf8", first_part_only(_write(b"\xff\xfe\xfd")), healed),
        ("part-bbox-string", first_part_only(_json_change(record("bbox", "x"))), healed),
        ("part-score-nan", first_part_only(_json_change(record("score", float("nan")))), healed),
        ("part-wrong-image", first_part_only(_json_change(record("image_id", 9999))), healed),
        ("part-key-not-id", first_part_only(_json_change(lambda d: {"results": {"x": []}}, replace=True)), healed),
        ("part-deleted-under-marker", first_part_only(lambda p: p.unlink()), ("missing from its parts", "PASSED")),
        ("all-parts-deleted", _cache_edit(parts, lambda p: p.unlink()), ("missing from its parts", "PASSED")),
        ("marker-truncated", _cache_edit(marker, lambda p: p.write_bytes(p.read_bytes()[:5])), healed),
        ("marker-empty-object", _cache_edit(marker, _write(b"{}")), healed),
        ("marker-list", _cache_edit(marker, _write(b"[]")), healed),
        ("marker-images-string", _cache_edit(marker, _json_change(lambda d: d.update(images="x"))), healed),
        ("marker-corrupt-map", _cache_edit(marker, _json_change(lambda d: d.update(corrupt={"x": 1}))), healed),
        (
            "stray-temporary-file",
            _cache_edit("dumps/*/*", lambda p: (p / "part-x.json.tmp").write_text("{")),
            ("PASSED",),
        ),
        ("metrics-empty-object", _cache_edit("metrics/*.json", _write(b"{}")), healed),
        (
            "metrics-value-string",
            _cache_edit("metrics/*.json", _json_change(lambda d: {"value": "x"}, replace=True)),
            healed,
        ),
        (
            "metrics-ap-string",
            _cache_edit("metrics/*.json", _json_change(lambda d: d["value"]["bbox"].update(AP="hi"))),
            healed,
        ),
        (
            "metrics-metric-missing",
            _cache_edit("metrics/*.json", _json_change(lambda d: d["value"]["bbox"].pop("AP"))),
            healed,
        ),
        ("metrics-truncated", _cache_edit("metrics/*.json", lambda p: p.write_bytes(p.read_bytes()[:30])), healed),
    ]
    for id, edit, says in cases:
        yield _stored_case(id, edit, 0, *says, category="cache", check=_same_metrics_as_clean)

    def parity_case(id: str, change: Callable[[Path], None]) -> Case:
        def build(folder: Path, shared: Shared) -> list[str]:
            shared.copy("parity", folder)
            for path in sorted((folder / "cache" / "parity").glob("*.json")):
                change(path)
            return ["run", str(folder / "gate.yaml")]

        return Case(id, "cache", build, 0, ("Cached parity result", "recomputed", "PASSED: gate t"))

    yield parity_case("parity-empty-object", _write(b"{}"))
    yield parity_case("parity-truncated", lambda p: p.write_bytes(p.read_bytes()[:60]))
    yield parity_case("parity-count-string", _json_change(lambda d: d["value"]["total"].update(numel="many")))
    yield parity_case("parity-probes-strings", _json_change(lambda d: d["value"].update(per_probe=["x"])))
    yield parity_case("parity-missing-field", _json_change(lambda d: d["value"]["total"].pop("max_ulp")))
    yield parity_case("parity-thresholds-bad", _json_change(lambda d: d["value"].update(thresholds={"atol": "x"})))


# ---------------------------------------------------------------------------------------------------- forges

TOKEN = "ghp_Hostile+Tok/en=9f8e7d6c5b4a"


@dataclass(frozen=True)
class ForgeCase:
    """What the forge does and what `post` is given; the server is started by the test (tests/helpers)."""

    forge: str = "github"
    fail: tuple[dict[str, Any], ...] = ()
    seed: tuple[dict[str, Any], ...] = ()
    loop_pages: bool = False
    actions_token: bool = False
    link_base: str | None = None
    token: str = TOKEN
    options: tuple[str, ...] = ()


def _report(folder: Path) -> Path:
    md = folder / "demo.md"
    md.write_text("## ✅ preprocgate `demo`: passed (1 of 1 checks)\n")
    md.with_suffix(".json").write_text(json.dumps({"schema_version": 1, "gate": "demo", "passed": True, "checks": []}))
    return md


FAST = ("--timeout", "0.5", "--deadline", "2", "--retry-budget", "0")


def forge_cases() -> Iterator[Case]:
    marker = "<!-- preprocgate:gate=demo -->"
    echo = {"method": "GET", "status": 401}

    def case(
        id: str,
        forge: ForgeCase,
        expect: int,
        *says: str,
        hides: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> Case:
        def build(folder: Path, shared: Shared) -> list[str]:
            return ["post", str(_report(folder)), *forge.options]

        return Case(id, "forge", build, expect, says, (TOKEN, *hides), env or {}, forge=forge)

    yield case(
        "drip",
        ForgeCase(fail=({"method": "GET", "status": 200, "raw": b"[]" * 20, "drip": 0.2},), options=FAST),
        3,
        "no complete answer within 0.5 s",
    )
    yield case(
        "hang",
        ForgeCase(fail=({"method": "GET", "status": 200, "hang": True},), options=FAST),
        3,
        "no complete answer within 0.5 s",
    )
    yield case(
        "hang-on-post",
        ForgeCase(fail=({"method": "POST", "status": 201, "hang": True},), options=FAST),
        3,
        "POST",
        "no complete answer",
    )
    yield case(
        "hang-then-deadline",
        ForgeCase(
            fail=tuple({"method": "GET", "status": 200, "hang": True} for _ in range(5)),
            options=("--timeout", "0.4", "--deadline", "1", "--retry-budget", "10"),
        ),
        3,
        "failed",
    )
    yield case(
        "html-200",
        ForgeCase(fail=({"method": "GET", "status": 200, "raw": b"<html>login</html>", "content_type": "text/html"},)),
        3,
        "the answer is not JSON (text/html)",
    )
    yield case(
        "html-502-no-budget",
        ForgeCase(
            fail=({"method": "GET", "status": 502, "raw": b"<html>bad gateway</html>", "content_type": "text/html"},),
            options=FAST,
        ),
        3,
        "retry budget of 0 s is spent",
    )
    yield case(
        "truncated-json",
        ForgeCase(fail=({"method": "GET", "status": 200, "raw": b'[{"id": 1, "bo'},)),
        3,
        "the answer is not JSON",
    )
    yield case(
        "echo-token-plain",
        ForgeCase(fail=({**echo, "body": {"message": f"bad token {TOKEN}"}},)),
        3,
        "401 Unauthorized",
        "***",
    )
    yield case(
        "echo-token-percent",
        ForgeCase(fail=({**echo, "body": {"message": "bad ghp_Hostile%2BTok%2Fen%3D9f8e7d6c5b4a"}},)),
        3,
        "***",
        hides=("ghp_Hostile%2BTok%2Fen%3D9f8e7d6c5b4a",),
    )
    yield case(
        "echo-token-json-solidus",
        ForgeCase(fail=({**echo, "raw": b'{"message": "bad ghp_Hostile+Tok\\\\/en=9f8e7d6c5b4a"}'},)),
        3,
        "***",
        hides=("Tok\\/en",),
    )
    yield case(
        "echo-token-base64",
        ForgeCase(fail=({**echo, "body": {"message": "basic Z2hwX0hvc3RpbGUrVG9rL2VuPTlmOGU3ZDZjNWI0YQ=="}},)),
        3,
        "***",
        hides=("Z2hwX0hvc3RpbGUrVG9rL2VuPTlmOGU3ZDZjNWI0YQ==",),
    )
    yield case(
        "echo-token-in-html",
        ForgeCase(fail=({**echo, "raw": f"<html>{TOKEN}</html>".encode(), "content_type": "text/html"},)),
        3,
        "***",
    )
    yield case(
        "echo-token-in-link",
        ForgeCase(
            fail=(
                {
                    "method": "GET",
                    "status": 200,
                    "body": [{"id": 1, "body": "x"}],
                    "headers": {"Link": f'<http://evil.example/?t={TOKEN}>; rel="next"'},
                },
            )
        ),
        3,
        "refusing to follow",
        hides=("ghp_Hostile%2BTok",),
    )
    yield case(
        "token-with-newline",
        ForgeCase(token="ghp_first\nsecondhalf"),
        3,
        "contains a character no HTTP header may carry",
        hides=("ghp_first", "secondhalf", "ghp_first\\nsecondhalf"),
    )
    yield case(
        "token-non-ascii",
        ForgeCase(token="ghp_tökén123"),
        3,
        "contains a character no HTTP header may carry",
        hides=("ghp_tökén123", "t\\xf6k"),
    )
    yield case("token-inner-space", ForgeCase(token="ghp_abc def"), 3, "contains a character", hides=("ghp_abc",))
    yield case("token-control-char", ForgeCase(token="ghp_abc\x1bdef"), 3, "contains a character", hides=("ghp_abc",))
    yield case("token-whitespace-only", ForgeCase(token="  \n "), 3, "$GITHUB_TOKEN is unset or empty")
    yield case(
        "pages-loop", ForgeCase(loop_pages=True, seed=tuple({"body": f"c{i}"} for i in range(3))), 3, "pages loop back"
    )
    yield case(
        "pages-loop-gitlab",
        ForgeCase(forge="gitlab", loop_pages=True, seed=tuple({"body": f"c{i}"} for i in range(3))),
        3,
        "pages loop back",
    )
    yield case(
        "pages-other-host",
        ForgeCase(link_base="http://127.0.0.2:1", seed=tuple({"body": f"c{i}"} for i in range(3))),
        3,
        "refusing to follow a pagination link to another host",
    )
    yield case(
        "item-without-id",
        ForgeCase(fail=({"method": "GET", "status": 200, "body": [{"body": marker}]},)),
        3,
        "GitHub comment: an item without an integer id",
    )
    yield case(
        "item-id-string",
        ForgeCase(fail=({"method": "GET", "status": 200, "body": [{"id": "7", "body": marker}]},)),
        3,
        "without an integer id",
    )
    yield case(
        "item-not-object",
        ForgeCase(fail=({"method": "GET", "status": 200, "body": ["x", 1]},)),
        3,
        "expected a JSON object, got str",
    )
    yield case(
        "list-is-object",
        ForgeCase(fail=({"method": "GET", "status": 200, "body": {"comments": []}},)),
        3,
        "expected a JSON list, got dict",
    )
    yield case(
        "gitlab-note-without-id",
        ForgeCase(forge="gitlab", fail=({"method": "GET", "status": 200, "body": [{"body": "x"}]},)),
        3,
        "GitLab note: an item without an integer id",
    )
    yield case(
        "body-null",
        ForgeCase(fail=({"method": "GET", "status": 200, "body": [{"id": 5, "body": None}]},)),
        0,
        "created the comment of gate demo",
    )
    yield case(
        "foreign-marker-not-edited",
        ForgeCase(seed=({"body": f"{marker}\nhijack", "author": "mallory"},)),
        0,
        "created the comment of gate demo",
    )
    yield case(
        "own-marker-edited", ForgeCase(seed=({"body": f"{marker}\nold"},)), 0, "updated the comment of gate demo"
    )
    yield case(
        "own-after-foreign",
        ForgeCase(seed=({"body": f"{marker}\nfake", "author": "mallory"}, {"body": f"{marker}\nold"})),
        0,
        "updated the comment of gate demo",
    )
    yield case(
        "actions-token-own-bot",
        ForgeCase(actions_token=True, seed=({"body": f"{marker}\nold"},)),
        0,
        "updated the comment of gate demo",
    )
    yield case(
        "gitlab-foreign-note",
        ForgeCase(forge="gitlab", seed=({"body": f"{marker}\nhijack", "author": "mallory"},)),
        0,
        "created the comment of gate demo",
    )
    yield case(
        "user-endpoint-html",
        ForgeCase(
            seed=({"body": f"{marker}\nold"},),
            fail=({"method": "GET", "path": "/user", "status": 200, "raw": b"<html/>", "content_type": "text/html"},),
        ),
        3,
        "the answer is not JSON",
    )
    yield case(
        "user-without-login",
        ForgeCase(
            seed=({"body": f"{marker}\nold"},),
            fail=(
                {"method": "GET", "status": 200, "body": [{"id": 1, "body": marker, "user": {"login": "x"}}]},
                {"method": "GET", "status": 200, "body": {"id": 1}},
            ),
        ),
        3,
        "names no login",
    )
    yield case(
        "retry-after-an-hour",
        ForgeCase(
            fail=(
                {"method": "GET", "status": 429, "headers": {"Retry-After": "3600"}, "body": {"message": "slow down"}},
            )
        ),
        3,
        "asked to wait 3600 s",
    )
    yield case(
        "server-errors-beyond-budget",
        ForgeCase(fail=tuple({"method": "GET", "status": 503} for _ in range(3)), options=("--retry-budget", "0.5")),
        3,
        "retry budget of 0.5 s is spent",
    )
    yield case(
        "bad-timeout-variable",
        ForgeCase(),
        3,
        "$PREPROCGATE_HTTP_TIMEOUT: expected a number of seconds",
        env={"PREPROCGATE_HTTP_TIMEOUT": "soon"},
    )
    yield case(
        "forbidden-echoing-token",
        ForgeCase(fail=({"method": "POST", "status": 403, "body": {"message": f"token {TOKEN} lacks scope"}},)),
        3,
        "may not comment here",
        "***",
    )


# ------------------------------------------------------------------------------------------ command lines


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def cli_cases() -> Iterator[Case]:
    def small(folder: Path, **changes: Any) -> Path:
        write_fixtures(folder)
        spec = copy.deepcopy(BASES["small"])
        for dotted, value in changes.items():
            _set(spec, dotted.replace("__", "."), value)
        return write_spec(folder, spec)

    def output_dir_file(folder: Path, shared: Shared) -> list[str]:
        return ["run", str(small(folder)), "--output-dir", str(folder / "a_file.txt")]

    def junit_folder(folder: Path, shared: Shared) -> list[str]:
        return ["run", str(small(folder)), "--junit", str(folder / "out_taken")]

    def spec_folder(folder: Path, shared: Shared) -> list[str]:
        return ["validate", str(folder)]

    def spec_too_big(folder: Path, shared: Shared) -> list[str]:
        path = small(folder)
        path.write_text(path.read_text() + "# " + "x" * (1 << 20) + "\n")
        return ["validate", str(path)]

    def spec_empty(folder: Path, shared: Shared) -> list[str]:
        (folder / "gate.yaml").write_bytes(b"")
        return ["validate", str(folder / "gate.yaml")]

    def spec_missing(folder: Path, shared: Shared) -> list[str]:
        return ["validate", str(folder / "nope.yaml")]

    def broken_results(folder: Path, shared: Shared) -> list[str]:
        md = _report(folder)
        md.with_suffix(".json").write_text("{truncated")
        return [
            "post",
            str(md),
            "--junit",
            str(folder / "junit.xml"),
            "--forge",
            "github",
            "--repo",
            "o/r",
            "--pr",
            "1",
        ]

    def permissions(folder: Path, output: str) -> None:
        mask = os.umask(0o022)
        os.umask(mask)
        for name in ("out/t.md", "out/t.json", "junit.xml"):
            assert _mode(folder / name) == 0o666 & ~mask, (name, oct(_mode(folder / name)))

    def run_with_junit(folder: Path, shared: Shared) -> list[str]:
        return ["run", str(small(folder)), "--junit", str(folder / "junit.xml")]

    def secret_description(folder: Path, shared: Shared) -> list[str]:
        return ["run", str(small(folder, description="key ${HOSTILE_DEPLOY_KEY} and ${HOSTILE_SECRET_URL}"))]

    def no_secret_in_reports(folder: Path, output: str) -> None:
        for name in ("out/t.md", "out/t.json"):
            text = (folder / name).read_text()
            assert "k3y-material-0042" not in text and "s3cr3t%2Fpath" not in text and "***" in text, name

    def errored(folder: Path, shared: Shared) -> list[str]:
        spec = small(folder, variants__torch="tests.hostile.corpus:constructor_raises")
        return ["run", str(spec), "--junit", str(folder / "junit.xml")]

    def errored_report(folder: Path, output: str) -> None:
        data = json.loads((folder / "out" / "t.json").read_text())
        assert data["passed"] is False and "constructor failed (test)" in data["error"]
        assert "errored" in (folder / "out" / "t.md").read_text().lower()
        assert 'errors="1"' in (folder / "junit.xml").read_text()

    def nan_variant(folder: Path, shared: Shared) -> list[str]:
        return ["run", str(small(folder, variants__torch="tests.hostile.corpus:nan_output"))]

    yield Case("output-dir-is-file", "cli", output_dir_file, 2, ("--output-dir", "a_file.txt' is a file"))
    yield Case("junit-is-folder", "cli", junit_folder, 2, ("--junit",))
    yield Case("spec-is-folder", "cli", spec_folder, 2, ("is a directory",))
    yield Case("spec-over-a-megabyte", "cli", spec_too_big, 2, ("invalid YAML", "over the 1048576 a spec may have"))
    yield Case("spec-missing", "cli", spec_missing, 2, ("nope.yaml", "file not found"))
    yield Case("spec-empty", "cli", spec_empty, 2, ("the spec must be a mapping",))
    yield Case("post-broken-results", "cli", broken_results, 3, ("cannot read the results",))
    yield Case("files-respect-umask", "cli", run_with_junit, 0, ("PASSED: gate t",), check=permissions)
    yield Case(
        "secret-never-in-report",
        "cli",
        secret_description,
        0,
        ("PASSED: gate t",),
        ("k3y-material-0042",),
        {"HOSTILE_DEPLOY_KEY": "k3y-material-0042", "HOSTILE_SECRET_URL": "s3cr3t/path"},
        check=no_secret_in_reports,
    )
    yield Case(
        "variant-constructor-raises",
        "cli",
        errored,
        3,
        ("variants.torch: RuntimeError: constructor failed (test)", "ERRORED: gate t"),
        check=errored_report,
    )
    yield Case("variant-outputs-nan", "cli", nan_variant, 1, ("FAILED | parity | torch vs cv2",))


def constructor_raises(config: object, device: object) -> object:
    """A plug-in variant whose construction fails with an arbitrary exception."""
    raise RuntimeError("constructor failed (test)")


def nan_output(config: Any, device: Any) -> Callable[..., Any]:
    """A plug-in variant that returns NaN everywhere: a parity bound must fail, never pass on NaN."""
    from preprocgate.variants.torch_interpolate import TorchInterpolate

    class NaNs(TorchInterpolate):
        def run_batch(self, batch: np.ndarray, size: tuple[int, int]) -> Any:
            return super().run_batch(batch, size) * float("nan")

    return NaNs(config, device)


def all_cases() -> list[Case]:
    return [
        *mutation_cases(),
        *spec_file_cases(),
        *dataset_cases(),
        *baseline_cases(),
        *cache_cases(),
        *forge_cases(),
        *cli_cases(),
    ]
