"""Stored baselines: ``baselines/<gate>.json`` in the repository, heavy dump artifacts outside it.

The JSON is meant to be read in a pull-request diff: sorted keys, floats at six decimals, one value per line,
so an update shows exactly what moved. Its provenance says what the numbers depend on; a stored baseline is
*stale* when the spec's result-affecting sections, the model file, the dataset or the environment key
differ from the run's, and the run then fails naming which one (CI never creates a baseline silently).

Per-image dumps are artifacts named by their digest: kept in the cache folder and, when the spec names an
fsspec URL, copied to that store, from which a fresh CI machine restores them.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from preprocgate.errors import RunError, UserError
from preprocgate.fileio import atomic_write_bytes, atomic_write_text
from preprocgate.hashing import digest_json
from preprocgate.keys import dump_digest
from preprocgate.spec import Gate, GateSpec

BASELINE_SCHEMA_VERSION = 1
"""Version of the stored baseline file (baselines/<gate>.json); the results JSON has its own."""
PROVENANCE_KEYS = ("spec", "model", "dataset", "environment")
_WHAT = {
    "spec": "the spec's result-affecting sections",
    "model": "the model file",
    "dataset": "the dataset",
    "environment": "the environment key",
}


def spec_digest(spec: GateSpec) -> str:
    """What of a spec can change results: not paths, thresholds, reports or descriptions."""
    data: dict[str, Any] = spec.model_dump(mode="json", include={"variants", "evaluation"})
    data["input"] = spec.input.identity()
    if spec.model is not None:
        data["model"] = spec.model.model_dump(mode="json", exclude={"file"})
    if spec.dataset is not None:
        data["dataset"] = spec.dataset.model_dump(mode="json", include={"demo", "limit", "image_ids"})
    return digest_json(data)


def _stable(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {str(k): _stable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_stable(v) for v in value]
    return value


def dumps_stable(data: dict[str, Any]) -> str:
    return json.dumps(_stable(data), indent=2, sort_keys=True) + "\n"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Count = Annotated[int, Field(ge=0)]


class StoredDump(_Strict):
    key: Hex64
    digest: Hex64
    images: Count
    detections: Count


class StoredVariant(_Strict):
    metrics: dict[str, dict[str, float]]
    dump: StoredDump


class StoredFile(BaseModel):
    """The schema of ``baselines/<gate>.json``: what :meth:`Baseline.to_json` writes."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1]
    gate: Annotated[str, Field(strict=True, min_length=1)]
    provenance: dict[str, Any]
    variants: dict[str, StoredVariant]
    parity: dict[str, dict[str, float | int | None]]

    @field_validator("provenance")
    @classmethod
    def _provenance(cls, value: dict[str, Any]) -> dict[str, Any]:
        missing = [k for k in PROVENANCE_KEYS if not isinstance(value.get(k), str)]
        if missing:
            raise ValueError(f"provenance lacks {', '.join(missing)}")
        return value

    @field_validator("variants")
    @classmethod
    def _finite(cls, value: dict[str, StoredVariant]) -> dict[str, StoredVariant]:
        for name, entry in value.items():
            for iou_type, metrics in entry.metrics.items():
                bad = [m for m, v in metrics.items() if not math.isfinite(v)]
                if bad:
                    raise ValueError(f"{name}.metrics.{iou_type}.{bad[0]} is not a finite number")
        return value


@dataclass
class Baseline:
    gate: str
    provenance: dict[str, Any]
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    parity: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": BASELINE_SCHEMA_VERSION,
            "gate": self.gate,
            "provenance": self.provenance,
            "variants": self.variants,
            "parity": self.parity,
        }

    @classmethod
    def load(cls, path: Path) -> Baseline | None:
        """The stored baseline, or None when there is none; a file that does not match the schema is a UserError
        naming the first wrong entry (an edited or truncated baseline must not silently gate less)."""
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise UserError(f"{path}: not a preprocgate baseline ({exc})") from exc
        if not isinstance(data, dict) or data.get("schema_version") != BASELINE_SCHEMA_VERSION:
            found = data.get("schema_version") if isinstance(data, dict) else None
            raise UserError(
                f"{path}: not a preprocgate baseline (schema_version {found!r}, expected {BASELINE_SCHEMA_VERSION})"
            )
        try:
            stored = StoredFile.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "<root>"
            raise UserError(f"{path}: not a preprocgate baseline ({where}: {first['msg']})") from None
        return cls(
            stored.gate,
            data["provenance"],
            {name: entry.model_dump() for name, entry in stored.variants.items()},
            {label: dict(values) for label, values in stored.parity.items()},
        )

    def save(self, path: Path) -> None:
        atomic_write_text(path, dumps_stable(self.to_json()))

    def stale_reasons(self, current: dict[str, str], fallback: dict[str, str]) -> list[str]:
        """Which provenance entries differ (an environment may be accepted through the spec's fallback)."""
        reasons = []
        for key in PROVENANCE_KEYS:
            stored, now = self.provenance.get(key), current[key]
            if stored == now or (key == "environment" and fallback.get(now) == stored):
                continue
            reasons.append(f"{_WHAT[key]} changed ({key}: stored {str(stored)[:16]}, now {str(now)[:16]})")
        return reasons


class ArtifactStore:
    """Dump artifacts by digest: the local cache folder first, then an optional fsspec store."""

    def __init__(self, cache_dir: Path, url: str | None) -> None:
        self.local = cache_dir / "artifacts"
        self.url = url.rstrip("/") if url else None

    def _name(self, digest: str) -> str:
        return f"{digest}.json.gz"

    def put(self, digest: str, results: dict[int, list[dict]]) -> None:
        data = gzip.compress(json.dumps({str(k): v for k, v in sorted(results.items())}).encode(), mtime=0)
        path = self.local / self._name(digest)
        if not path.exists():
            atomic_write_bytes(path, data)
        if self.url:
            import fsspec

            with fsspec.open(f"{self.url}/{self._name(digest)}", "wb") as f:
                f.write(data)

    def get(self, digest: str) -> dict[int, list[dict]]:
        """The artifact's results, checked against ``digest``: a truncated or edited artifact is deleted from the
        local folder and raises :class:`DamagedArtifact`, so that nothing is compared with altered detections."""
        from preprocgate.cache import parse_part

        path = self.local / self._name(digest)
        if not path.exists() and self.url:
            import fsspec

            try:
                with fsspec.open(f"{self.url}/{self._name(digest)}", "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                data = None
            if data is not None:
                atomic_write_bytes(path, data)
        if not path.exists():
            where = f"{self.local}" + (f" or {self.url}" if self.url else "")
            raise RunError(
                f"baseline artifact {digest[:16]} is not in {where}; restore the folder, point baselines.store at "
                "the store that holds it, or recreate it with `preprocgate baseline update`"
            )
        try:
            results = parse_part({"results": json.loads(gzip.decompress(path.read_bytes()))})
        except (OSError, EOFError, zlib.error, ValueError, RecursionError) as exc:
            path.unlink(missing_ok=True)
            raise DamagedArtifact(f"baseline artifact {digest[:16]} is damaged ({exc}); deleted") from exc
        if dump_digest(results) != digest:
            path.unlink(missing_ok=True)
            raise DamagedArtifact(f"baseline artifact {digest[:16]} does not match its digest (edited?); deleted")
        return results


class DamagedArtifact(RunError):
    """A stored dump artifact failed its digest check."""


def from_result(result: Any, previous: Baseline | None, only: set[str] | None = None) -> Baseline:
    """The baseline a run implies; with ``only``, just those variants change and the rest is kept.

    A partial update is refused when the provenance moved: numbers measured under two provenances in one
    file would be compared as if they were one.
    """
    provenance = {
        **result.environment,
        "versions": result.provenance.get("versions", {}),
        "commit": result.provenance.get("commit"),
        "date": result.provenance.get("date"),
    }
    variants = {
        d.variant: {
            "metrics": result.metrics[d.variant],
            "dump": {"key": d.key, "digest": d.digest, "images": d.images, "detections": d.detections},
        }
        for d in result.dumps
    }
    parity = {
        p.label: {
            "max_ulp": p.total.max_ulp,
            "max_abs": p.total.max_abs,
            "mean_abs": p.total.mean_abs,
            "equal_fraction": p.total.equal_fraction,
        }
        for p in result.parity
    }
    if not only:
        return Baseline(result.gate, provenance, variants, parity)
    unknown = only - set(variants)
    if unknown:
        raise UserError(f"--variant {', '.join(sorted(unknown))}: not a variant of gate {result.gate}")
    if previous is None:
        raise UserError("--variant updates part of a stored baseline, but none exists yet: update all variants")
    moved = [k for k in PROVENANCE_KEYS if previous.provenance.get(k) != provenance[k]]
    if moved:
        raise UserError(f"{', '.join(_WHAT[k] for k in moved)} changed since the stored baseline: update all variants")
    merged = {**previous.variants, **{v: variants[v] for v in only}}
    return Baseline(result.gate, {**previous.provenance, "date": provenance["date"]}, merged, parity or previous.parity)


def stored_baseline_path(gate: Gate) -> Path:
    """Where the gate's stored baseline lives; a gate without a baselines section has none."""
    if gate.baseline_path is None:
        raise UserError(f"{gate.path}: the gate has no baselines section")
    return gate.baseline_path


def write_baseline(gate: Gate, result: Any, only: set[str] | None = None) -> tuple[Path, list[str]]:
    """Rewrite the stored baseline from a run made in ``RunMode(update_baseline=True)``; returns the file and
    the variants written."""
    path = stored_baseline_path(gate)
    baseline = from_result(result, Baseline.load(path), only)
    baseline.save(path)
    return path, sorted(only or baseline.variants)
