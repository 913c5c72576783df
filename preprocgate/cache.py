"""Content-addressed caches: detection dumps, parity results, and results computed from dumps.

A dump key digests everything that can change a variant's detections (model file hash, dataset manifest, variant
implementation, version and params, input config, device, precision, preprocgate version). Parts are written
as batches finish, so an interrupted run resumes where it stopped; ``complete.json`` marks a finished dump.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from preprocgate.fileio import atomic_write_json
from preprocgate.functional.parity import Location, ParityStats
from preprocgate.results import PairResult
from preprocgate.spec import ParityThresholds


class DumpCache:
    def __init__(self, root: Path) -> None:
        self.root = root / "dumps"

    def folder(self, key: str) -> Path:
        return self.root / key[:2] / key

    def complete(self, key: str) -> dict[str, Any] | None:
        marker = self.folder(key) / "complete.json"
        if not marker.exists():
            return None
        return json.loads(marker.read_text())

    def load_parts(self, key: str) -> dict[int, list[dict]]:
        """Results by image id from every part already written (a resumed or complete dump)."""
        out: dict[int, list[dict]] = {}
        folder = self.folder(key)
        if not folder.exists():
            return out
        for part in sorted(folder.glob("part-*.json")):
            try:
                data = json.loads(part.read_text())
            except ValueError:  # not ours: parts are written atomically; recompute its images
                continue
            out.update({int(k): v for k, v in data["results"].items()})
        return out

    def write_part(self, key: str, name: str, results: dict[int, list[dict]]) -> None:
        """``name`` carries the writer (a shard tag) so that parallel writers never collide."""
        path = self.folder(key) / f"part-{name}.json"
        atomic_write_json(path, {"results": {str(k): v for k, v in results.items()}})

    def mark_complete(self, key: str, info: dict[str, Any]) -> None:
        atomic_write_json(self.folder(key) / "complete.json", info)


class ResultCache:
    """Small JSON results (evaluation metrics, parity results) by a key over everything that determines them, so
    a rerun with unchanged inputs skips the work that dominates it at COCO scale."""

    def __init__(self, root: Path, kind: str) -> None:
        self.root = root / kind

    def load(self, key: str) -> Any | None:
        try:
            return json.loads((self.root / f"{key}.json").read_text())["value"]
        except (OSError, ValueError, KeyError):  # absent or unreadable: recompute and overwrite
            return None

    def save(self, key: str, value: Any) -> None:
        atomic_write_json(self.root / f"{key}.json", {"value": value})


class ParityCache:
    """Parity results of a pair, by a key over both variants' identities, the probe images and the device."""

    def __init__(self, root: Path) -> None:
        self.store = ResultCache(root, "parity")

    def load(self, key: str) -> PairResult | None:
        data = self.store.load(key)
        if data is None:
            return None
        try:
            return PairResult(
                data["candidate"],
                data["reference"],
                ParityThresholds.model_validate(data["thresholds"]),
                _stats(data["total"]),
                [_stats(s) for s in data["per_probe"]],
            )
        except (ValueError, KeyError, TypeError):  # written by another version: recompute and overwrite
            return None

    def save(self, key: str, result: PairResult) -> None:
        data = dataclasses.asdict(result)
        data["thresholds"] = result.thresholds.model_dump()
        self.store.save(key, data)


def _stats(data: dict[str, Any]) -> ParityStats:
    where = {k: Location(**data[k]) if data.get(k) else None for k in ("worst_ulp", "worst_abs")}
    return ParityStats(**{**data, **where})
