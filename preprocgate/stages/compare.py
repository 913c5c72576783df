"""Compare measurements with the spec's thresholds, producing one CheckResult per bound."""

from __future__ import annotations

from preprocgate.functional.bootstrap import Interval
from preprocgate.numbers import count, percent, signed
from preprocgate.results import CheckResult, DiffResult, PairResult, Timing
from preprocgate.spec import SpeedCheck, Thresholds


def usable_check(source: str, unusable: dict[str, str], total: int, max_fraction: float) -> CheckResult:
    """At least one image evaluated, and at most ``max_fraction`` of them unusable (``unusable``: file → reason):
    a gate must never pass on images it could not read."""
    if total == 0:
        return CheckResult("dataset", source, "images", "≥ 1 evaluated", "no images to evaluate", False)
    share = len(unusable) / total
    measured = f"{count(len(unusable))} of {count(total)} images unusable ({percent(share)})"
    if unusable:
        listed = "; ".join(f"{name}: {why}" for name, why in list(unusable.items())[:3])
        measured += f": {listed}" + ("; ..." if len(unusable) > 3 else "")
    passed = share <= max_fraction + 1e-12 and len(unusable) < total
    return CheckResult("dataset", source, "usable images", f"≥ 1, unusable ≤ {percent(max_fraction)}", measured, passed)


def parity_checks(pair: PairResult) -> list[CheckResult]:
    t, s = pair.thresholds, pair.total
    checks: list[CheckResult] = []

    def add(metric: str, threshold: str, measured: str, passed: bool) -> None:
        checks.append(CheckResult("parity", pair.label, metric, threshold, measured, passed))

    if t.is_empty:
        return checks
    add("non-finite mismatches", "0", str(s.nonfinite_mismatch), s.nonfinite_mismatch == 0)
    if t.max_ulp is not None:
        add("max ULP", f"≤ {t.max_ulp}", str(s.max_ulp), s.max_ulp <= t.max_ulp)
    if t.atol is not None or t.rtol is not None:
        bound = f"|Δ| ≤ {t.atol or 0:g} + {t.rtol or 0:g}·|ref|"
        add(
            "elements outside tolerance",
            bound,
            f"{count(s.tolerance_violations)} of {count(s.numel)}",
            s.tolerance_violations == 0,
        )
    if t.min_equal_fraction is not None:
        add(
            "exactly equal",
            f"≥ {percent(t.min_equal_fraction)}",
            percent(s.equal_fraction),
            s.equal_fraction >= t.min_equal_fraction,
        )
    return checks


def speed_check(check: SpeedCheck, timings: dict[str, Timing]) -> CheckResult:
    cand, ref = timings[check.candidate], timings[check.reference]
    speedup = ref.median_s / cand.median_s if cand.median_s > 0 else float("inf")
    return CheckResult(
        "speed",
        f"{check.candidate} vs {check.reference}",
        "speed-up (median)",
        f"≥ {check.min_speedup:g}×",
        f"{speedup:.2f}×",
        speedup >= check.min_speedup,
    )


def map_checks(
    metrics: dict[str, dict[str, dict[str, float]]],
    intervals: dict[str, dict[str, Interval]],
    baseline: str,
    thresholds: Thresholds,
) -> list[CheckResult]:
    """|ΔmAP| of every other variant against the baseline variant of this run, per configured metric."""
    if thresholds.map is None:
        return []
    checks = []
    bound = thresholds.map.max_abs_delta
    for variant in metrics:
        if variant == baseline:
            continue
        for ref in thresholds.map.metrics:
            iou_type, metric = ref.split(".")
            if iou_type not in metrics[variant]:
                continue
            delta = metrics[variant][iou_type][metric] - metrics[baseline][iou_type][metric]
            interval = intervals.get(variant, {}).get(ref)
            if thresholds.map.apply_to == "interval" and interval is not None:
                threshold = f"CI not wholly outside ±{bound:g}"
                measured = f"{signed(delta)} [{signed(interval.low)}, {signed(interval.high)}]"
                passed = not interval.excludes(bound)
            else:
                threshold, measured, passed = f"|Δ| ≤ {bound:g}", signed(delta), abs(delta) <= bound + 1e-12
            checks.append(
                CheckResult(
                    "accuracy", f"{variant} vs {baseline}", f"Δ {iou_type} {metric}", threshold, measured, passed
                )
            )
    return checks


def matched_check(diff: DiffResult, minimum: float) -> CheckResult:
    s = diff.stats
    return CheckResult(
        "diff",
        diff.label,
        f"matched detections (score ≥ {diff.score_threshold:g})",
        f"≥ {percent(minimum)}",
        f"{percent(s.matched_fraction)} ({count(s.matched)} of {count(max(s.reference_count, s.candidate_count))})",
        s.matched_fraction >= minimum,
    )
