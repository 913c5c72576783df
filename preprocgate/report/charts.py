"""Mermaid ``xychart-beta`` charts for the report: GitHub and GitLab draw them in the comment, no image hosting.

Every label is reduced to characters Mermaid takes inside a quoted string, so a variant name cannot end the
chart or the fence around it. tests/test_report_mermaid.py parses what these functions write with Mermaid itself.
"""

from __future__ import annotations

import math
import re

from preprocgate.functional.ulp import ULP_BIN_LABELS
from preprocgate.results import GateResult, PairResult

_UNSAFE = re.compile(r"[^A-Za-z0-9 _.,:+\-/=<>()|±Δ%]")
BIN_NAMES = [label.replace("–", "-") for label in ULP_BIN_LABELS]


def label(text: str, limit: int = 60) -> str:
    """A quoted Mermaid string: unsafe characters become spaces."""
    cleaned = " ".join(_UNSAFE.sub(" ", text).split())
    return '"' + (cleaned[: limit - 1] + "…" if len(cleaned) > limit else cleaned) + '"'


def _number(value: float) -> str:
    """Plain decimal (Mermaid reads no exponent), never ``-0``."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _series(values: list[float]) -> str:
    return "[" + ", ".join(_number(v) for v in values) + "]"


def ulp_histogram(pair: PairResult) -> str:
    """Elements per ULP distance on a log scale (one bin holds millions where another holds a handful)."""
    values = [math.log10(1 + n) for n in pair.total.ulp_histogram]
    top = max(1, math.ceil(max(values)))
    return "\n".join(
        [
            "xychart-beta",
            f"    title {label(f'{pair.label}: elements per ULP distance')}",
            "    x-axis [" + ", ".join(label(f"{b} ULP") for b in BIN_NAMES) + "]",
            f'    y-axis "log10(1 + elements)" 0 --> {top}',
            f"    bar {_series(values)}",
        ]
    )


def delta_chart(result: GateResult, variant: str) -> str | None:
    """Δ of each gated metric (variant − baseline) as bars between the lines of the threshold band ±bound."""
    bound = result.map_bound
    refs = [ref for ref in result.gated_metrics if ref.split(".")[0] in result.metrics.get(variant, {})]
    if bound is None or not refs:
        return None
    deltas = [result.delta(variant, *ref.split(".")) for ref in refs]
    finite = [abs(d) for d in deltas if math.isfinite(d)]
    deltas = [d if math.isfinite(d) else 0.0 for d in deltas]
    limit = max([bound * 1.5, *(d * 1.1 for d in finite)]) or 1.0
    return "\n".join(
        [
            "xychart-beta",
            f"    title {label(f'{variant} vs {result.baseline}: Δ per gated metric, band ±{bound:g}')}",
            "    x-axis [" + ", ".join(label(ref.replace(".", " ")) for ref in refs) + "]",
            f'    y-axis "Δ" {_number(-limit)} --> {_number(limit)}',
            f"    bar {_series(deltas)}",
            f"    line {_series([bound] * len(refs))}",
            f"    line {_series([-bound] * len(refs))}",
        ]
    )


def charts(result: GateResult) -> list[tuple[str, str]]:
    """(caption, Mermaid source) of every chart the report shows, in a fixed order."""
    out = [(f"ULP distances, {pair.label}", ulp_histogram(pair)) for pair in result.parity]
    for variant in result.metrics:
        if variant != result.baseline:
            chart = delta_chart(result, variant)
            if chart:
                out.append((f"Δ against the band, {variant} vs {result.baseline}", chart))
    return out
