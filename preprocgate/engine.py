"""Runs a gate's stages in order and writes the GateResult: the only writer of it. Stages get the pieces of the
loaded spec they need (never the YAML) and return their part of the result."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from preprocgate import keys, provenance
from preprocgate.cache import ParityCache
from preprocgate.errors import PreprocgateError, RunError, UserError
from preprocgate.plugins import EXECUTORS, VARIANTS
from preprocgate.progress import Progress
from preprocgate.results import GateResult
from preprocgate.scaleout import run_shards
from preprocgate.spec import ExecutorSpec, Gate, GateSpec
from preprocgate.stages.compare import parity_checks, speed_check
from preprocgate.stages.detection import DetectionPart, DetectionStage
from preprocgate.stages.dump import Executor, Shard
from preprocgate.stages.pictures import PicturesStage
from preprocgate.stages.probe import ParityProbeStage, probe_images
from preprocgate.stages.speed import SpeedProbeStage
from preprocgate.timing import StageTimes
from preprocgate.variants import Preprocessor, build_variant


@dataclass(frozen=True)
class RunMode:
    """How much of the gate this process does: all of it, one shard's dumps, or the merge of shards (computed
    by ``processes`` child processes first, or by earlier ``--shard`` runs). ``executor`` overrides the spec's."""

    update_baseline: bool = False
    shard: Shard | None = None
    merge: bool = False
    processes: int | None = None
    executor: ExecutorSpec | None = None


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RunError(f"device {requested!r} requested but CUDA is not available on this machine")
    return device


def used_variants(spec: GateSpec) -> set[str]:
    """The variants some stage runs: the baseline variant, parity pairs', and all for speed or detection."""
    used = {spec.baseline}
    if spec.probes.parity:
        used |= {n for p in spec.probes.parity.pairs for n in (p.candidate, p.reference)}
    if spec.probes.speed or spec.dataset is not None:
        used |= set(spec.variants)
    return used


def build_variants(gate: Gate, device: torch.device, names: set[str]) -> dict[str, Preprocessor]:
    variants = {}
    for name in sorted(names):
        spec = gate.spec.variants[name]
        try:
            variants[name] = build_variant(VARIANTS.resolve(spec.impl), gate.spec.input, device, spec.params)
        except PreprocgateError as exc:
            raise exc.prefixed(f"variants.{name}") from exc
        except (ValueError, TypeError) as exc:
            raise RunError(f"variants.{name}: {exc}") from exc
        except Exception as exc:
            if ":" not in spec.impl:  # a built-in variant failing is a preprocgate bug: keep its traceback
                raise
            raise RunError(f"variants.{name}: {type(exc).__name__}: {exc}") from exc
    return variants


def build_executor(choice: ExecutorSpec) -> Executor:
    """The executor that computes missing dumps; a missing extra or a bad param is one line (exit 3 or 2)."""
    factory = EXECUTORS.resolve(choice.kind)
    try:
        return factory(**choice.params)
    except TypeError as exc:
        raise UserError(f"executor.params: {exc}") from exc


def run_gate(
    gate: Gate, device: str | None = None, progress: Progress | None = None, mode: RunMode | None = None
) -> GateResult:
    """Run every configured stage; the result says whether the gate passed and keeps every measurement."""
    start = time.perf_counter()
    mode, progress, spec, times = mode or RunMode(), progress or Progress(enabled=False), gate.spec, StageTimes()
    merge, update = mode.merge or bool(mode.processes), mode.update_baseline
    computes = spec.dataset is not None and not merge  # checked first: a missing extra should not wait for probes
    executor = build_executor(mode.executor or spec.executor) if computes else None
    if mode.processes:
        seconds = run_shards(str(gate.path), mode.processes, device, progress)
        times.add(f"dump ({mode.processes} processes, wall)", seconds)
    dev = resolve_device(device or spec.device)
    with progress.step(f"building variants on {dev}"):
        variants = build_variants(gate, dev, used_variants(spec))
    identities = {
        n: keys.variant_identity(spec.variants[n].impl, spec.variants[n].params, type(v), v.version)
        for n, v in variants.items()
    }
    info = provenance.collect(dev, gate.base_dir)
    result = GateResult(
        gate=spec.name,
        description=spec.description,
        spec_path=str(gate.path),
        device=info["device"],
        baseline=spec.baseline,
        variants={name: v.description for name, v in variants.items()},
        provenance=info,
        stage_seconds=times.seconds,
    )
    run = _Run(gate, dev, variants, identities, times, progress)
    pictures = PicturesStage(gate.cache_dir, spec.name, spec.input.source_order) if spec.report.pictures else None
    if not mode.shard:
        _probe_parity(result, run, pictures)
        _probe_speed(result, run)
    if spec.dataset is not None:
        stage = DetectionStage(
            gate, dev, variants, identities, progress, shard=mode.shard, merge=merge, update=update, executor=executor
        )
        try:
            part = stage.run()
        finally:
            if executor is not None:
                executor.close()
        _write_detection(result, part)
        times.work.update(part.stage_work)
        if pictures is not None and part.coco is not None and result.diffs:
            with times.measure("pictures: detections"), progress.step("pictures: detections"):
                pictures.detections(result.diffs, part.dump_data, part.coco)
    if pictures is not None:
        result.pictures, result.notes = pictures.pictures, result.notes + pictures.notes
    if not result.checks and not mode.shard:
        result.notes.append("No thresholds are declared, so nothing was gated: a gate that checks nothing fails.")
    result.stage_overhead = times.split()
    result.duration_s = time.perf_counter() - start
    return result


@dataclass(frozen=True)
class _Run:
    """What every stage of one run shares."""

    gate: Gate
    device: torch.device
    variants: dict[str, Preprocessor]
    identities: dict[str, dict]
    times: StageTimes
    progress: Progress


def _probe_parity(result: GateResult, run: _Run, pictures: PicturesStage | None) -> None:
    gate, variants, times, progress = run.gate, run.variants, run.times, run.progress
    spec, parity = gate.spec, gate.spec.probes.parity
    if not parity:
        return
    probes = probe_images(parity, gate.probe_files, spec.input.size, spec.input.source_order)
    input_config, versions = spec.input.identity(), result.provenance["versions"]
    base = keys.parity_base(run.identities, input_config, provenance.device_class(run.device), versions)
    with times.measure("parity probe"), progress.step(f"parity probe: {len(probes)} images"):
        result.probes = [p.name for p in probes]
        cache = ParityCache(gate.cache_dir)
        stage = ParityProbeStage(parity, variants, cache, base)
        result.parity = stage.run(probes)
    if pictures is not None:
        with times.measure("pictures: parity"), progress.step("pictures: parity"):
            pictures.parity(result.parity, stage.keys, probes, stage)
    result.checks += [check for pair in result.parity for check in parity_checks(pair)]
    result.notes += cache.notes


def _probe_speed(result: GateResult, run: _Run) -> None:
    variants, times, progress = run.variants, run.times, run.progress
    spec, speed = run.gate.spec, run.gate.spec.probes.speed
    if not speed:
        return
    with times.measure("speed probe"), progress.step("speed probe"):
        stage = SpeedProbeStage(speed, spec.input.size, result.device)
        result.timings = [stage.time(name, variants[name]) for name in sorted(variants)]
    by_name = {t.variant: t for t in result.timings}
    result.checks += [speed_check(c, by_name) for c in speed.checks]
    if run.device.type != "cuda" and "triton" in {spec.variants[n].impl for n in variants}:
        result.notes.append("Triton ran in its CPU interpreter: its timings say nothing about GPU speed.")


def _write_detection(result: GateResult, part: DetectionPart) -> None:
    result.model, result.environment, result.dumps = part.model, part.environment, part.dumps
    result.dataset, result.metrics, result.intervals = part.dataset, part.metrics, part.intervals
    result.noise_floor, result.diffs, result.stored_deltas = part.noise_floor, part.diffs, part.stored_deltas
    result.checks += part.checks
    result.gated_metrics, result.map_bound = part.gated_metrics, part.map_bound
    result.notes += part.notes
    result.stage_seconds.update(part.stage_seconds)
