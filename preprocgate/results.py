"""Result objects: every number a run measured, kept whole so that the report only formats, never recomputes.

A :class:`GateResult` is truthy when the gate passed. A gate with no checks did not pass: comparing
nothing is a failure, not a success.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from preprocgate.functional.bootstrap import Interval
from preprocgate.functional.matching import DiffStats
from preprocgate.functional.parity import ParityStats
from preprocgate.spec import ParityThresholds
from preprocgate.timing import StageSplit

RESULTS_SCHEMA_VERSION = 1
"""Version of the results JSON (reports/<gate>.json); the stored baseline file has its own."""


@dataclass(frozen=True)
class CheckResult:
    """One gated comparison: ``FAILED | parity | triton vs torch | max ULP 3 > 0``."""

    kind: str
    subject: str
    metric: str
    threshold: str
    measured: str
    passed: bool

    def line(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        return f"{verdict} | {self.kind} | {self.subject} | {self.metric} {self.measured} (threshold {self.threshold})"


@dataclass(frozen=True)
class PairResult:
    candidate: str
    reference: str
    thresholds: ParityThresholds
    total: ParityStats
    per_probe: list[ParityStats]

    @property
    def label(self) -> str:
        return f"{self.candidate} vs {self.reference}"


@dataclass(frozen=True)
class Timing:
    """Median preprocessing time per image, host-to-device copy included (inputs start as numpy arrays)."""

    variant: str
    median_s: float
    min_s: float
    repeats: int
    batch: int
    source: tuple[int, int]
    output: tuple[int, int]
    device: str


@dataclass(frozen=True)
class DumpSummary:
    """Where a variant's detections came from: computed now, or read from the cache under ``key``."""

    variant: str
    key: str
    digest: str
    images: int
    detections: int
    cached_images: int
    computed_images: int
    seconds: float


@dataclass(frozen=True)
class DiffResult:
    candidate: str
    reference: str
    score_threshold: float
    iou_threshold: float
    stats: DiffStats

    @property
    def label(self) -> str:
        return f"{self.candidate} vs {self.reference}"


@dataclass(frozen=True)
class Picture:
    """A PNG written beside the report (``file``: relative to the report's folder)."""

    kind: str  # "parity" or "detection"
    subject: str  # the pair, e.g. "triton vs torch"
    title: str
    file: str
    source: str = ""  # where the run drew it (the cache); the report writer copies it to ``file``


@dataclass
class DatasetSummary:
    source: str
    images: int
    evaluated: int
    manifest: str
    corrupt: list[dict[str, str]] = field(default_factory=list)


@dataclass
class GateResult:
    gate: str
    description: str
    spec_path: str
    device: str
    baseline: str
    variants: dict[str, str]
    checks: list[CheckResult] = field(default_factory=list)
    parity: list[PairResult] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)
    probes: list[str] = field(default_factory=list)
    dataset: DatasetSummary | None = None
    model: dict[str, str] = field(default_factory=dict)
    dumps: list[DumpSummary] = field(default_factory=list)
    metrics: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    diffs: list[DiffResult] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_overhead: dict[str, StageSplit] = field(default_factory=dict)  # the stages whose work was counted
    environment: dict[str, str] = field(default_factory=dict)
    stored_deltas: dict[str, dict[str, float]] = field(default_factory=dict)
    intervals: dict[str, dict[str, Interval]] = field(default_factory=dict)
    noise_floor: dict[str, float] = field(default_factory=dict)
    gated_metrics: list[str] = field(default_factory=list)  # "bbox.AP", ... (thresholds.map.metrics)
    map_bound: float | None = None  # thresholds.map.max_abs_delta
    pictures: list[Picture] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    error: str | None = None  # the run stopped on this error: the gate neither passed nor failed a check

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.checks) and all(c.passed for c in self.checks)

    @classmethod
    def errored(cls, gate: str, description: str, spec_path: str, baseline: str, error: str) -> GateResult:
        """The result of a run that stopped on ``error`` after its checks began: written as a report and JUnit
        like any other, so that CI has something to show and post."""
        import datetime

        from preprocgate.version import __version__

        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        provenance = {"versions": {"preprocgate": __version__}, "commit": None, "device": "", "date": date}
        return cls(gate, description, spec_path, "", baseline, {}, provenance=provenance, error=error)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["thresholds_note"] = "ULP distances are element-wise and sign-aware; see docs/metrics.md"
        for pair, raw in zip(self.parity, data["parity"], strict=True):
            raw["thresholds"] = pair.thresholds.model_dump()
            for stats, raw_stats in zip([pair.total, *pair.per_probe], [raw["total"], *raw["per_probe"]], strict=True):
                raw_stats["mean_abs"] = stats.mean_abs
                raw_stats["equal_fraction"] = stats.equal_fraction
        for diff, raw in zip(self.diffs, data["diffs"], strict=True):
            raw["stats"].update(
                matched_fraction=diff.stats.matched_fraction,
                unmatched_reference=diff.stats.unmatched_reference,
                unmatched_candidate=diff.stats.unmatched_candidate,
            )
        return {"schema_version": RESULTS_SCHEMA_VERSION, "passed": self.passed, **data}

    def delta(self, variant: str, iou_type: str, metric: str) -> float:
        """variant − baseline for one metric (the report's Δ columns)."""
        return self.metrics[variant][iou_type][metric] - self.metrics[self.baseline][iou_type][metric]
