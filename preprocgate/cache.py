"""Content-addressed caches: detection dumps, parity results, and results computed from dumps.

A dump key digests everything that can change a variant's detections (model file hash, dataset manifest, variant
implementation, version and params, input config, device, precision, preprocgate version). Parts are written
as batches finish, so an interrupted run resumes where it stopped; ``complete.json`` marks a finished dump.

The cache heals itself: every file is checked when read, and one that is damaged (truncated, edited, written by
something else) is deleted and its content recomputed, with a note in the report. A damaged cache can cost
time, never a wrong verdict or a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from preprocgate.fileio import atomic_write_bytes, atomic_write_json
from preprocgate.functional.bootstrap import Interval
from preprocgate.functional.matching import DiffStats
from preprocgate.functional.parity import Location, ParityStats
from preprocgate.hashing import digest_json, results_json
from preprocgate.results import PairResult
from preprocgate.spec import ParityThresholds


def _read_json(path: Path) -> tuple[bool, Any]:
    """(True, data) for a readable JSON file, (False, None) when absent, raise ValueError when damaged."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False, None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"unreadable ({exc})") from exc
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not JSON ({exc})") from exc


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return _number(value) and math.isfinite(value)


def valid_record(record: Any, image_id: int) -> bool:
    """A COCO result record as :func:`preprocgate.functional.coco.to_results` writes it."""
    if not isinstance(record, dict) or record.get("image_id") != image_id:
        return False
    if not isinstance(record.get("category_id"), int) or not _finite(record.get("score")):
        return False
    bbox = record.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_finite(v) for v in bbox)):
        return False
    rle = record.get("segmentation")
    return rle is None or (isinstance(rle, dict) and isinstance(rle.get("counts"), str) and "size" in rle)


def parse_part(data: Any) -> dict[int, list[dict]]:
    """Results by image id from a part's JSON; ValueError when it is not a part this package wrote."""
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise ValueError("no results object")
    out: dict[int, list[dict]] = {}
    for key, records in data["results"].items():
        if not key.isdigit() or not isinstance(records, list):
            raise ValueError(f"entry {key[:20]!r} is not an image id with a list of detections")
        image_id = int(key)
        if not all(valid_record(r, image_id) for r in records):
            raise ValueError(f"image {image_id}: a detection is malformed")
        out[image_id] = records
    return out


_PART = re.compile(r"part-[^/\\]+\.json")  # a part file's name, never a path elsewhere


def part_texts(results: dict[int, list[dict]], escaped: dict[int, Sequence[bytes]] | None = None) -> dict[int, bytes]:
    """Each image's records as a part file holds them (compact JSON, ASCII bytes), which the dump's digest hashes
    too (:class:`preprocgate.keys.DumpDigest`). ``escaped``: by image, what :func:`results_json` takes."""
    escaped = escaped or {}
    return {i: results_json(records, escaped.get(i), allow_nan=True) for i, records in results.items()}


class DumpCache:
    def __init__(self, root: Path) -> None:
        self.root = root / "dumps"
        self.notes: list[str] = []

    def folder(self, key: str) -> Path:
        return self.root / key[:2] / key

    def _discard(self, path: Path, why: str) -> None:
        path.unlink(missing_ok=True)
        self.notes.append(f"Cache file {path.name} of dump {path.parent.name[:12]} was damaged ({why}): recomputed.")

    def complete(self, key: str) -> dict[str, Any] | None:
        """The marker of a finished dump, or None (absent, or damaged and discarded)."""
        marker = self.folder(key) / "complete.json"
        try:
            found, data = _read_json(marker)
            if not found:
                return None
            corrupt = data.get("corrupt", {}) if isinstance(data, dict) else None
            if not isinstance(data, dict) or not isinstance(data.get("images"), int) or not isinstance(corrupt, dict):
                raise ValueError("not a completion marker")
            if not all(k.isdigit() and isinstance(v, str) for k, v in corrupt.items()):
                raise ValueError("malformed list of unusable images")
        except ValueError as exc:
            self._discard(marker, str(exc))
            return None
        return data

    def discard_marker(self, key: str, why: str) -> None:
        """A marker whose parts no longer cover the dump: drop it so the missing images are recomputed."""
        self._discard(self.folder(key) / "complete.json", why)

    def load_parts(self, key: str) -> dict[int, list[dict]]:
        """Results by image id from every valid part already written (a resumed or complete dump)."""
        out: dict[int, list[dict]] = {}
        folder = self.folder(key)
        if not folder.exists():
            return out
        for part in sorted(folder.glob("part-*.json")):
            try:
                found, data = _read_json(part)
                if found:
                    out.update(parse_part(data))
            except ValueError as exc:
                self._discard(part, str(exc))
        return out

    def write_texts(self, key: str, name: str, texts: dict[int, bytes]) -> None:
        """A part file from its images' records as JSON text (:func:`part_texts`), byte for byte
        ``atomic_write_json(path, {"results": ...}, compact=True)``, each text written from where it lies, not
        joined into one copy first. ``name`` carries the writer (a shard tag) so that parallel writers never
        collide. The step that holds the GIL least (writing, syncing): a writer runs it on a thread of its own
        while the next part is encoded."""
        pieces = [b'{"results":{']
        for n, i in enumerate(sorted(texts, key=str)):  # json.dumps sorts the keys as str
            pieces += (b',"' if n else b'"', str(i).encode(), b'":', texts[i])
        pieces.append(b"}}\n")
        atomic_write_bytes(self.folder(key) / f"part-{name}.json", pieces)

    def mark_complete(
        self, key: str, variant: str, digest: str, detections: int, ids: list[int], corrupt: dict[str, str]
    ) -> None:
        """Mark a dump finished, with what a later run needs to use it without reading it: its digest, its
        detection count, the images it covers (as a digest) and its part files' sizes."""
        parts = {p.name: p.stat().st_size for p in sorted(self.folder(key).glob("part-*.json"))}
        info = {
            "variant": variant,
            "images": len(ids),
            "corrupt": corrupt,
            "digest": digest,
            "detections": detections,
            "ids": digest_json(ids),
            "parts": parts,
        }
        atomic_write_json(self.folder(key) / "complete.json", info)

    def intact(self, key: str, marker: dict[str, Any], ids: list[int]) -> tuple[str, int] | None:
        """(digest, detections) of a finished dump whose parts are all there at their recorded sizes and whose
        images are ``ids``: usable unread. None where the marker predates these fields or anything differs (a
        part deleted or rewritten, other images): the parts are then read and checked as before."""
        digest, detections, parts = marker.get("digest"), marker.get("detections"), marker.get("parts")
        if not (isinstance(digest, str) and isinstance(detections, int) and isinstance(parts, dict) and parts):
            return None
        if marker.get("ids") != digest_json(ids):
            return None
        folder = self.folder(key)
        for name, size in parts.items():
            try:
                if not (isinstance(name, str) and _PART.fullmatch(name)) or (folder / name).stat().st_size != size:
                    return None
            except OSError:
                return None
        return digest, detections


class ResultCache:
    """Small JSON results (evaluation metrics, parity results) by a key over everything that determines them, so
    a rerun with unchanged inputs skips the work that dominates it at COCO scale."""

    def __init__(self, root: Path, kind: str) -> None:
        self.root = root / kind
        self.notes: list[str] = []

    def load(self, key: str, parse: Callable[[Any], Any | None] | None = None) -> Any | None:
        """The stored value (through ``parse``, which returns None for content it rejects), or None when absent;
        a damaged entry is deleted, to be recomputed and overwritten."""
        path = self.root / f"{key}.json"
        try:
            found, data = _read_json(path)
            if not found:
                return None
            if not isinstance(data, dict) or "value" not in data:
                raise ValueError("no value")
            value = parse(data["value"]) if parse is not None else data["value"]
            if value is None:
                raise ValueError("unexpected content")
        except ValueError as exc:
            path.unlink(missing_ok=True)
            self.notes.append(f"Cached {self.root.name} result {key[:12]} was damaged ({exc}): recomputed.")
            return None
        return value

    def save(self, key: str, value: Any) -> None:
        atomic_write_json(self.root / f"{key}.json", {"value": value})


def metrics_parser(iou_types: list[str], metric_names: tuple[str, ...]) -> Callable[[Any], Any | None]:
    """Accepts a cached ``{iou_type: {metric: number}}`` only with every metric of every evaluated IoU type."""

    def parse(value: Any) -> Any | None:
        ok = isinstance(value, dict) and all(
            isinstance(value.get(t), dict) and all(_number(value[t].get(m)) for m in metric_names) for t in iou_types
        )
        return value if ok else None

    return parse


def diff_stats(value: Any) -> DiffStats | None:
    """A cached detection diff's statistics, or None when a field is missing or of the wrong kind."""
    if not isinstance(value, dict) or set(value) != {f.name for f in dataclasses.fields(DiffStats)}:
        return None
    counts = ("reference_count", "candidate_count", "matched")
    if not all(isinstance(value[k], int) and not isinstance(value[k], bool) for k in counts):
        return None
    if not all(value[k] is None or _number(value[k]) for k in value if k not in counts):
        return None
    return DiffStats(**value)


def intervals_parser(metrics: Sequence[str]) -> Callable[[Any], dict[str, Interval] | None]:
    """Accepts cached bootstrap intervals ``{metric: [low, high, confidence, resamples]}`` for exactly
    ``metrics``."""

    def parse(value: Any) -> dict[str, Interval] | None:
        if not isinstance(value, dict) or set(value) != set(metrics):
            return None
        out = {}
        for metric, item in value.items():
            if not (isinstance(item, list) and len(item) == 4 and all(_number(v) for v in item[:3])):
                return None
            if not isinstance(item[3], int) or isinstance(item[3], bool):
                return None
            out[metric] = Interval(*item)
        return out

    return parse


_STATS_TYPES = {f.name: f.type for f in dataclasses.fields(ParityStats)}


class ParityCache:
    """Parity results of a pair, by a key over both variants' identities, the probe images and the device."""

    def __init__(self, root: Path) -> None:
        self.store = ResultCache(root, "parity")

    @property
    def notes(self) -> list[str]:
        return self.store.notes

    def load(self, key: str) -> PairResult | None:
        return self.store.load(key, _pair)

    def save(self, key: str, result: PairResult) -> None:
        data = dataclasses.asdict(result)
        data["thresholds"] = result.thresholds.model_dump()
        self.store.save(key, data)


def _pair(data: Any) -> PairResult | None:
    """The PairResult stored as ``data``, or None when any field has the wrong shape."""
    try:
        return PairResult(
            data["candidate"],
            data["reference"],
            ParityThresholds.model_validate(data["thresholds"]),
            _stats(data["total"]),
            [_stats(s) for s in data["per_probe"]],
        )
    except (ValueError, KeyError, TypeError):
        return None


def _stats(data: dict[str, Any]) -> ParityStats:
    """ParityStats from JSON, checking every field's type (a dataclass would take a string for a count)."""
    if not isinstance(data, dict) or set(data) != set(_STATS_TYPES):
        raise ValueError("parity stats fields")
    for name in ("numel", "max_ulp", "equal", "tolerance_violations", "nonfinite_mismatch"):
        if not isinstance(data[name], int) or isinstance(data[name], bool):
            raise ValueError(name)
    for name in ("nan_candidate", "nan_reference", "inf_candidate", "inf_reference"):
        if not isinstance(data[name], int):
            raise ValueError(name)
    if not (_number(data["max_abs"]) and _number(data["sum_abs"])):
        raise ValueError("max_abs")
    if not (isinstance(data["ulp_histogram"], list) and all(isinstance(v, int) for v in data["ulp_histogram"])):
        raise ValueError("ulp_histogram")
    if not (isinstance(data["shapes"], list) and all(isinstance(v, str) for v in data["shapes"])):
        raise ValueError("shapes")
    where = {k: Location(**data[k]) if data.get(k) else None for k in ("worst_ulp", "worst_abs")}
    return ParityStats(**{**data, **where})
