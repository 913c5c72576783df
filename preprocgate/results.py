"""Result objects: every number a run measured, kept whole so that the report only formats, never recomputes.

A :class:`GateResult` is truthy when the gate passed. A gate with no checks did not pass: comparing
nothing is a failure, not a success.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from preprocgate.functional.parity import ParityStats
from preprocgate.spec import ParityThresholds

SCHEMA_VERSION = 1


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
    notes: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

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
        return {"schema_version": SCHEMA_VERSION, "passed": self.passed, **data}
