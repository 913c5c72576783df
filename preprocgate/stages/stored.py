"""Compare a run with its stored baseline (the file baselines/<gate>.json, not the in-run baseline variant):
staleness, reuse of the stored dump of the baseline variant, Δ of every variant against its stored metrics."""

from __future__ import annotations

from pathlib import Path

from preprocgate.baseline import ArtifactStore, Baseline, DamagedArtifact
from preprocgate.numbers import signed
from preprocgate.results import CheckResult
from preprocgate.spec import BaselineSpec
from preprocgate.stages.dump import Dump


class StoredBaselineStage:
    """Loads ``baselines/<gate>.json`` and turns missing or stale ones into failing checks with the fix."""

    def __init__(self, config: BaselineSpec, path: Path, store: ArtifactStore, update_command: str) -> None:
        self.config = config
        self.path = path
        self.store = store
        self.update_command = update_command
        self.stored = Baseline.load(path)
        self.valid: Baseline | None = None
        self.notes: list[str] = []

    def check(self, current: dict[str, str]) -> list[CheckResult]:
        fix = f"update with: {self.update_command}"
        if self.stored is None:
            return [CheckResult("baseline", str(self.path), "stored baseline", "present", f"missing; {fix}", False)]
        reasons = self.stored.stale_reasons(current, self.config.fallback)
        if reasons:
            return [
                CheckResult("baseline", str(self.path), "stored baseline", "current", f"stale: {r}; {fix}", False)
                for r in reasons
            ]
        self.valid = self.stored
        return []

    def reusable(self, variant: str, key: str) -> Dump | None:
        """The stored dump of ``variant`` when it was made under the same cache key (same everything)."""
        entry = self.valid.variants.get(variant, {}).get("dump") if self.valid else None
        if not entry or entry.get("key") != key:
            return None
        try:
            results = self.store.get(entry["digest"])
        except DamagedArtifact as exc:  # the dump is recomputed under the same key: same detections, if any
            self.notes.append(f"{exc}: the {variant} dump was recomputed instead.")
            return None
        return Dump.of(variant, key, results, len(results), 0, 0.0, digest=entry["digest"])

    def deltas(
        self, metrics: dict[str, dict[str, dict[str, float]]]
    ) -> tuple[list[CheckResult], dict[str, dict[str, float]]]:
        """Every variant against its own stored metrics, with the baselines section's thresholds: the checks and
        the deltas (variant → ``"bbox.AP"`` → Δ) the report shows beside the in-run ones."""
        if self.valid is None:
            return [], {}
        bound = self.config.map.max_abs_delta
        fix = f"update with: {self.update_command}"
        checks, deltas = [], {}
        for variant, measured in metrics.items():
            stored = self.valid.variants.get(variant, {}).get("metrics")
            if stored is None:  # a gated variant missing from the file must fail, not silently gate less
                missing = f"missing from {self.path.name}; {fix}"
                checks.append(
                    CheckResult("baseline", f"{variant} vs stored", "stored entry", "present", missing, False)
                )
                continue
            for ref in self.config.map.metrics:
                iou_type, metric = ref.split(".")
                if iou_type not in measured:  # not evaluated in this run (evaluation.iou_types)
                    continue
                if metric not in stored.get(iou_type, {}):
                    missing = f"missing from {self.path.name}; {fix}"
                    subject = f"{variant} vs stored"
                    checks.append(CheckResult("baseline", subject, f"Δ {iou_type} {metric}", "present", missing, False))
                    continue
                delta = measured[iou_type][metric] - stored[iou_type][metric]
                deltas.setdefault(variant, {})[ref] = delta
                checks.append(
                    CheckResult(
                        "baseline",
                        f"{variant} vs stored",
                        f"Δ {iou_type} {metric}",
                        f"|Δ| ≤ {bound:g}",
                        signed(delta),
                        abs(delta) <= bound + 1e-12,
                    )
                )
        return checks, deltas
