"""Deterministic GateResults for report tests: the numbers a demo-like run measures, with nothing that varies
by machine (device, versions and date are fixed), so that golden files are the same everywhere."""

from __future__ import annotations

import numpy as np

from preprocgate.functional.bootstrap import Interval
from preprocgate.functional.matching import DiffStats
from preprocgate.functional.parity import combine, parity_stats
from preprocgate.results import (
    CheckResult,
    DatasetSummary,
    DiffResult,
    DumpSummary,
    GateResult,
    PairResult,
    Picture,
    Timing,
)
from preprocgate.spec import ParityThresholds
from preprocgate.stages.compare import map_checks, matched_check, parity_checks
from preprocgate.timing import StageSplit

METRIC_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100")


def _pair(candidate: str, reference: str, thresholds: ParityThresholds, ulps: int, probes: int = 3) -> PairResult:
    rng = np.random.default_rng(0)
    per = []
    for i in range(probes):
        ref = rng.normal(size=(3, 8, 8)).astype(np.float32)
        cand = ref.copy()
        if ulps:  # move some elements by a few representable floats
            flat = cand.reshape(-1)
            for step in range(1, ulps + 1):
                flat[step * 7 % flat.size] = np.nextafter(flat[step * 7 % flat.size], np.float32(np.inf))
        per.append(parity_stats(cand, ref, f"natural:{40 + i}x{30 + i}->32x32", atol=thresholds.atol or 0.0))
    return PairResult(candidate, reference, thresholds, combine(per), per)


def _metrics(shift: float, reverse: bool) -> dict[str, dict[str, float]]:
    """COCO metrics; ``reverse`` gives them in another order, as a cache read back may."""
    out = {}
    for t, base in (("bbox", 0.68), ("segm", 0.69)):
        names = METRIC_NAMES[::-1] if reverse else METRIC_NAMES
        out[t] = {m: round(base - 0.05 * METRIC_NAMES.index(m) + shift * (1 + METRIC_NAMES.index(m)), 6) for m in names}
    return out


def demo_like(failing: bool = False, reverse: bool = False) -> GateResult:
    """Three variants, two parity pairs, metrics, intervals, diffs; ``failing``: the triton path is 1 ULP off and
    its accuracy moved beyond a tight bound, and the stored baseline is stale."""
    metrics = {
        "cv2": _metrics(0.0, reverse),
        "torch": _metrics(0.0002, reverse),
        "triton": _metrics(-0.006 if failing else 0.0002, reverse),
    }
    gated = ["bbox.AP", "bbox.AP50", "segm.AP"]
    from preprocgate.spec import MapThresholds, Thresholds

    thresholds = Thresholds(map=MapThresholds(metrics=gated, max_abs_delta=0.002 if failing else 0.01))
    intervals = {
        v: {ref: Interval(-0.004 + i * 0.001, 0.003 + i * 0.001, 0.95, 1000) for i, ref in enumerate(gated)}
        for v in ("torch", "triton")
    }
    parity = [
        _pair("triton", "torch", ParityThresholds(max_ulp=0), ulps=1 if failing else 0),
        _pair("torch", "cv2", ParityThresholds(atol=0.05), ulps=20),
    ]
    diffs = [
        DiffResult(
            c,
            r,
            0.4,
            0.5,
            DiffStats(
                283,
                282 if c != "triton" or not failing else 250,
                282 if c != "triton" or not failing else 240,
                0.00213,
                0.00944,
                0.0292,
                0.9935,
                0.9877,
                0.9867,
                0.9489,
                0.992908,
            ),
        )
        for c, r in (("triton", "cv2"), ("torch", "cv2"))
    ]
    checks = [c for p in parity for c in parity_checks(p)]
    checks += map_checks(metrics, intervals, "cv2", thresholds)
    checks += [matched_check(d, 0.9) for d in diffs]
    if failing:
        fix = "update with: preprocgate baseline update gates/demo.yaml"
        checks.insert(
            0,
            CheckResult(
                "baseline", "baselines/demo.json", "stored baseline", "current", f"stale: model changed; {fix}", False
            ),
        )
    device = "CPU x86_64 (test machine)"
    return GateResult(
        gate="demo",
        description="cv2.resize (production) vs F.interpolate (training) vs the fused Triton kernel.",
        spec_path="gates/demo.yaml",
        device=device,
        baseline="cv2",
        variants={
            "cv2": "cv2.resize INTER_LINEAR on uint8",
            "torch": "F.interpolate bilinear",
            "triton": "fused kernel",
        },
        checks=checks,
        parity=parity,
        timings=[
            Timing(v, 0.002 * (i + 1), 0.0018 * (i + 1), 5, 1, (480, 640), (320, 320), device)
            for i, v in enumerate(("cv2", "torch", "triton"))
        ],
        probes=[s.shapes[0] for s in parity[0].per_probe],
        dataset=DatasetSummary("demo val (40 images, seed 0)", 40, 40, "manifest"),
        dumps=[DumpSummary(v, "k", "0123456789abcdef", 40, 830, 0, 40, 3.2) for v in ("cv2", "torch", "triton")],
        metrics=metrics,
        diffs=diffs,
        stage_seconds={"parity probe": 1.2, "dump cv2": 3.2},
        stage_overhead={"parity probe": StageSplit.of(1.2, 0.9), "dump cv2": StageSplit.of(3.2, 2.4)},
        intervals=intervals,
        gated_metrics=gated,
        map_bound=thresholds.map.max_abs_delta,
        pictures=[
            Picture(
                "parity",
                "triton vs torch",
                "worst probes: |Δ| and ULP heatmaps",
                "demo-pictures/parity-triton-vs-torch.png",
            ),
            Picture(
                "detection",
                "triton vs cv2",
                "largest disagreements: both variants' detections",
                "demo-pictures/detections-triton-vs-cv2.png",
            ),
        ],
        provenance={
            "versions": {"preprocgate": "0.1.0", "torch": "2.13.0"},
            "device": device,
            "commit": None,
            "date": "2026-01-01T00:00:00Z",
        },
        duration_s=12.5,
    )
