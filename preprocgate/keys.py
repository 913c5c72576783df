"""Every cache key, built in one place: what each cached thing depends on is read here, not across stages.

A key is the digest of canonical JSON over everything that can change the cached value. Changing the shape of
any key below orphans what is cached under the old one (recomputed, never misread), so shapes change only
with the arithmetic they guard.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from preprocgate.hashing import digest_json, results_json


def variant_identity(impl: str, params: dict[str, Any], cls: type, version: str) -> dict[str, Any]:
    """What names a variant's arithmetic: its spec (impl, params) and its class and version."""
    return {"impl": impl, "params": params, "class": cls.__qualname__, "version": version}


def parity_base(variants: dict[str, dict], input_config: dict, device_class: str, versions: dict) -> dict[str, Any]:
    """What every parity pair of a run shares: the variants' identities, the input config, device and versions."""
    return {"variants": variants, "input": input_config, "device": device_class, "versions": versions}


def parity_key(base: dict[str, Any], candidate: str, reference: str, thresholds: dict, probes: str) -> str:
    """One pair's parity result: both variants' identities, its thresholds and the probe images' digest."""
    identities = base.get("variants", {})
    return digest_json(
        {
            **{k: v for k, v in base.items() if k != "variants"},
            "candidate": identities.get(candidate, candidate),
            "reference": identities.get(reference, reference),
            "thresholds": thresholds,
            "probes": probes,
        }
    )


def dump_base(
    model: dict, dataset: str, input_config: dict, device_class: str, batch_size: int, version: str
) -> dict[str, Any]:
    """What every dump of a run shares: model identity, dataset manifest, input config, device, batch size."""
    return {
        "model": model,
        "dataset": dataset,
        "input": input_config,
        "device": device_class,
        "batch_size": batch_size,
        "preprocgate": version,
    }


def dump_key(base: dict[str, Any], variant: dict[str, Any]) -> str:
    """One variant's detection dump."""
    return digest_json({**base, "variant": variant})


def metrics_base(dataset: str, backend: str, evaluator: str) -> dict[str, Any]:
    """What every evaluation of a run shares: the ground truth (dataset manifest) and the evaluator."""
    return {"dataset": dataset, "backend": backend, "evaluator": evaluator}


def metrics_key(base: dict[str, Any], dump_digest: str, iou_types: Sequence[str], images: Sequence[int]) -> str:
    """One dump's COCO metrics over the given images."""
    return digest_json({**base, "dump": dump_digest, "iou_types": list(iou_types), "images": images})


def intervals_key(
    base: dict[str, Any],
    reference: str,
    candidate: str,
    metrics: Sequence[str],
    images: Sequence[int],
    bootstrap: dict[str, Any],
) -> str:
    """One pair of dumps' bootstrap intervals against the ground truth ``base`` names (:func:`metrics_base`)."""
    return digest_json({**base, "intervals": [reference, candidate, list(metrics), list(images), bootstrap]})


class DumpDigest:
    """:func:`dump_digest` fed image by image in id order, each image's records as their compact JSON text (a
    part file's, so the writer encodes each record once for both): the digest of canonical JSON over
    ``[[id, records], ...]``, streamed instead of built as one string (gigabytes for a COCO-scale dump of masks).
    An image out of order breaks it (:attr:`ok` False): the caller then digests the whole dump."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256(b"[")
        self.ids: list[int] = []
        self.ok = True

    def add(self, image_id: int, records_json: bytes) -> None:
        """``records_json``: :func:`preprocgate.hashing.results_json`'s bytes, hashed where they are (no copy)."""
        if self.ids and image_id <= self.ids[-1]:
            self.ok = False
        if self.ok:
            self._hash.update(f"{',' if self.ids else ''}[{image_id},".encode())
            self._hash.update(records_json)
            self._hash.update(b"]")
            self.ids.append(image_id)

    def add_part(self, texts: dict[int, bytes]) -> None:
        """A part's images (:func:`preprocgate.cache.part_texts`), in id order."""
        for image_id in sorted(texts):
            self.add(image_id, texts[image_id])

    def hexdigest(self) -> str:
        final = self._hash.copy()
        final.update(b"]")
        return final.hexdigest()


def dump_digest(results: dict[int, list[dict]]) -> str:
    """Digest of a dump: equal detections give equal digests, whatever order images finished in. The same as
    ``digest_json([[id, results[id]] for id in sorted(results)])``, streamed (:class:`DumpDigest`)."""
    digest = DumpDigest()
    for image_id in sorted(results):
        digest.add(image_id, results_json(results[image_id], default=str))
    return digest.hexdigest()


DIFF_VERSION = 1
"""Bump when ``diff_dumps`` gives other statistics for the same dumps: cached diffs are then recomputed."""


def diff_key(reference: str, candidate: str, score: float, iou: float, images: Sequence[int]) -> str:
    """One pair of dumps' detection diff (by their digests) at the given thresholds."""
    return digest_json(
        {"diff": DIFF_VERSION, "reference": reference, "candidate": candidate, "score": score, "iou": iou,
         "images": list(images)}
    )  # fmt: skip


PICTURES_VERSION = 1
"""Bump when the pictures change for the same inputs (layout, colours): cached PNGs are then redrawn."""


def picture_key(kind: str, inputs: dict[str, Any]) -> str:
    """A picture: its kind and everything it is drawn from (a parity result's key, two dump digests, ...)."""
    return digest_json({"picture": kind, "version": PICTURES_VERSION, **inputs})
