"""Runs a gate's stages in order and assembles the GateResult. The engine is the only reader of the spec
once loaded: stages get the pieces they need, never the YAML."""

from __future__ import annotations

import time

import torch

from preprocgate import provenance
from preprocgate.errors import PreprocgateError, RunError
from preprocgate.progress import Progress
from preprocgate.results import GateResult
from preprocgate.spec import Gate
from preprocgate.stages.compare import parity_checks, speed_check
from preprocgate.stages.probe import ParityProbeStage, probe_images
from preprocgate.stages.speed import SpeedProbeStage
from preprocgate.variants import VARIANTS, Preprocessor, build_variant


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RunError(f"device {requested!r} requested but CUDA is not available on this machine")
    return device


def build_variants(gate: Gate, device: torch.device, names: set[str]) -> dict[str, Preprocessor]:
    variants = {}
    for name in sorted(names):
        spec = gate.spec.variants[name]
        try:
            variants[name] = build_variant(VARIANTS.resolve(spec.impl), gate.spec.input, device, spec.params)
        except PreprocgateError as exc:
            raise type(exc)(f"variants.{name}: {exc}") from exc
        except (ValueError, TypeError) as exc:
            raise RunError(f"variants.{name}: {exc}") from exc
    return variants


def run_gate(gate: Gate, device: str | None = None, progress: Progress | None = None) -> GateResult:
    """Run every configured stage; the result says whether the gate passed and keeps every measurement."""
    progress = progress or Progress(enabled=False)
    start = time.perf_counter()
    spec = gate.spec
    dev = resolve_device(device or spec.device)
    parity, speed = spec.probes.parity, spec.probes.speed
    used = {spec.baseline}
    if parity:
        used |= {n for p in parity.pairs for n in (p.candidate, p.reference)}
    if speed:
        used |= set(spec.variants)
    with progress.step(f"building variants on {dev}"):
        variants = build_variants(gate, dev, used)
    info = provenance.collect(dev, gate.base_dir)
    result = GateResult(
        gate=spec.name,
        description=spec.description,
        spec_path=str(gate.path),
        device=info["device"],
        baseline=spec.baseline,
        variants={name: v.description for name, v in variants.items()},
        provenance=info,
    )
    if parity:
        probes = probe_images(parity, gate.probe_files, spec.input.size, spec.input.source_order)
        result.probes = [p.name for p in probes]
        stage = ParityProbeStage(parity, variants)
        with progress.step(f"parity probe: {len(probes)} images"):
            result.parity = stage.run(probes)
        for pair in result.parity:
            result.checks += parity_checks(pair)
    if speed:
        stage_speed = SpeedProbeStage(speed, spec.input.size, info["device"])
        with progress.step("speed probe"):
            result.timings = [stage_speed.time(name, variants[name]) for name in sorted(variants)]
        by_name = {t.variant: t for t in result.timings}
        result.checks += [speed_check(c, by_name) for c in speed.checks]
        if dev.type != "cuda" and "triton" in {spec.variants[n].impl for n in variants}:
            result.notes.append("Triton ran in its CPU interpreter: its timings say nothing about GPU speed.")
    if not result.checks:
        result.notes.append("No thresholds are declared, so nothing was gated: a gate that checks nothing fails.")
    result.duration_s = time.perf_counter() - start
    return result
