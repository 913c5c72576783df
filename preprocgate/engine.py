"""Runs a gate's stages in order and assembles the GateResult. The engine is the only reader of the spec
once loaded: stages get the pieces they need, never the YAML."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from preprocgate import provenance
from preprocgate.baseline import ArtifactStore, spec_digest
from preprocgate.cache import DumpCache, ParityCache, ResultCache
from preprocgate.data import demo
from preprocgate.data.coco import CocoDataset, load_coco
from preprocgate.errors import PreprocgateError, RunError, UserError
from preprocgate.hashing import file_sha256
from preprocgate.models import MODELS, ModelAdapter
from preprocgate.progress import Progress
from preprocgate.results import DatasetSummary, DumpSummary, GateResult
from preprocgate.spec import Gate, ParityPair, env_variables
from preprocgate.stages.compare import map_checks, matched_check, parity_checks, speed_check
from preprocgate.stages.diff import DiffStage
from preprocgate.stages.dump import Dump, DumpStage, Shard
from preprocgate.stages.evaluate import EvaluateStage
from preprocgate.stages.probe import ParityProbeStage, probe_images
from preprocgate.stages.speed import SpeedProbeStage
from preprocgate.stages.stored import StoredBaselineStage
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
            raise exc.prefixed(f"variants.{name}") from exc
        except (ValueError, TypeError) as exc:
            raise RunError(f"variants.{name}: {exc}") from exc
    return variants


def load_dataset(gate: Gate) -> tuple[CocoDataset, str]:
    spec = gate.spec.dataset
    assert spec is not None
    if spec.demo is not None:
        paths = demo.ensure(gate.cache_dir, spec.demo.split, spec.demo.count, spec.demo.seed)
        images, annotations = paths.images, paths.annotations
        source = f"demo {spec.demo.split} ({spec.demo.count} images, seed {spec.demo.seed})"
    else:
        images, annotations = gate.resolve(spec.images), gate.resolve(spec.annotations)  # type: ignore[arg-type]
        source = str(annotations)
    try:
        return load_coco(images, annotations, spec.limit, spec.image_ids), source
    except RunError as exc:
        raise RunError(f"dataset: {exc}{_env_hint(gate, 'dataset.annotations', 'dataset.images')}") from exc


def _env_hint(gate: Gate, *keys: str) -> str:
    """The environment variables these spec paths come from: what to set when a path is missing."""
    names = [name for key in keys for name in env_variables(gate, key)]
    return f"; set the environment variable(s) the spec reads it from: {', '.join(names)}" if names else ""


def build_adapter(gate: Gate, device: torch.device) -> ModelAdapter:
    spec = gate.spec.model
    assert spec is not None
    path = gate.resolve(spec.file)
    if not path.is_file():
        raise RunError(f"model.file: {path} not found{_env_hint(gate, 'model.file')}")
    try:
        return MODELS.resolve(spec.adapter)(device, spec.precision, file=path, **spec.params)
    except TypeError as exc:
        raise UserError(f"model.params: {exc}") from exc
    except PreprocgateError as exc:
        raise exc.prefixed("model") from exc


def variant_identity(gate: Gate, name: str, variant: Preprocessor) -> dict:
    spec = gate.spec.variants[name]
    return {"impl": spec.impl, "params": spec.params, "class": type(variant).__qualname__, "version": variant.version}


@dataclass(frozen=True)
class RunMode:
    """How much of the gate this process does: all of it, one shard's dumps, or the merge of shards."""

    update_baseline: bool = False
    shard: Shard | None = None
    merge: bool = False


def _dumps(
    gate: Gate,
    stage: DumpStage,
    variants: dict[str, Preprocessor],
    stored: StoredBaselineStage | None,
    result: GateResult,
    progress: Progress,
    mode: RunMode,
) -> dict[str, Dump]:
    dumps = {}
    for name in gate.spec.variants:
        identity = variant_identity(gate, name, variants[name])
        reused = stored.reusable(name, stage.key(identity)) if stored and name == gate.spec.baseline else None
        with progress.step(f"dump: {name}" + (" (stored baseline)" if reused else "")):
            dumps[name] = reused or stage.run(name, variants[name], identity, mode.shard, compute=not mode.merge)
        d = dumps[name]
        result.dumps.append(
            DumpSummary(
                name, d.key, d.digest, len(d.results), d.detections, d.cached_images, d.computed_images, d.seconds
            )
        )
        result.stage_seconds[f"dump {name}"] = d.seconds
    return dumps


def _detections(
    gate: Gate,
    dev: torch.device,
    variants: dict[str, Preprocessor],
    result: GateResult,
    progress: Progress,
    mode: RunMode,
) -> None:
    """Dumps → evaluation → diff (→ bootstrap, noise floor, stored baseline), and the checks over them."""
    from preprocgate import __version__

    spec = gate.spec
    assert spec.model is not None
    with progress.step("dataset"):
        dataset, source = load_dataset(gate)
    adapter = build_adapter(gate, dev)
    result.model = adapter.identity
    result.environment = {
        "spec": spec_digest(spec),
        "model": file_sha256(gate.resolve(spec.model.file)),
        "dataset": dataset.manifest,
        "environment": f"{provenance.device_class(dev)}-{spec.model.precision}",
    }
    key_base = {
        "model": adapter.identity,
        "dataset": dataset.manifest,
        "input": spec.input.identity(),
        "device": provenance.device_class(dev),
        "batch_size": spec.model.batch_size,
        "preprocgate": __version__,
    }
    cache = DumpCache(gate.cache_dir)
    store = ArtifactStore(gate.cache_dir, spec.baselines.store if spec.baselines else None)
    stored = None
    if spec.baselines is not None and gate.baseline_path is not None and not mode.update_baseline and not mode.shard:
        stored = StoredBaselineStage(
            spec.baselines, gate.baseline_path, store, f"preprocgate baseline update {gate.path}"
        )
        result.checks += stored.check(result.environment)
    stage = DumpStage(cache, adapter, dataset, spec.model.batch_size, key_base, spec.input)
    dumps = _dumps(gate, stage, variants, stored, result, progress, mode)
    result.stage_seconds.update(stage.seconds)
    if mode.shard:
        return
    if mode.update_baseline:
        for d in dumps.values():
            store.put(d.digest, d.results)
    valid = [r.id for r in dataset.valid]
    for d in dumps.values():  # a dump must cover exactly the evaluated images, or Δ compares different sets
        if sorted(d.results) != valid:
            raise RunError(f"dump of {d.variant} covers {len(d.results)} images, expected {len(valid)}")
    result.dataset = DatasetSummary(
        source=source,
        images=len(dataset.records),
        evaluated=len(valid),
        manifest=dataset.manifest,
        corrupt=[
            {"file": r.file_name, "reason": dataset.corrupt[r.id]} for r in dataset.records if r.id in dataset.corrupt
        ],
    )
    start = time.perf_counter()
    with progress.step("evaluate"):
        evaluate = EvaluateStage(
            spec.evaluation.backend,
            dataset.annotations,
            spec.evaluation.iou_types,
            ResultCache(gate.cache_dir, "metrics"),
            {"dataset": dataset.manifest},
        )
        result.metrics = {name: evaluate.run(d, valid) for name, d in dumps.items()}
    result.stage_seconds["evaluate"] = time.perf_counter() - start
    gated = spec.thresholds.map.metrics if spec.thresholds.map else []
    if spec.bootstrap is not None and gated:
        start = time.perf_counter()
        with progress.step(f"bootstrap: {spec.bootstrap.resamples} resamples"):
            base = dumps[spec.baseline]
            for name, d in dumps.items():
                if name != spec.baseline:
                    result.intervals[name] = evaluate.intervals(base, d, gated, valid, spec.bootstrap)
        result.stage_seconds["bootstrap"] = time.perf_counter() - start
    if spec.noise_floor is not None:
        with progress.step(f"noise floor: {spec.baseline} again at batch size {spec.noise_floor.batch_size}"):
            again_stage = DumpStage(
                cache,
                adapter,
                dataset,
                spec.noise_floor.batch_size,
                {**key_base, "batch_size": spec.noise_floor.batch_size},
                spec.input,
            )
            again = again_stage.run(
                spec.baseline, variants[spec.baseline], variant_identity(gate, spec.baseline, variants[spec.baseline])
            )
            again_metrics = evaluate.run(again, valid)
        base_metrics = result.metrics[spec.baseline]
        result.noise_floor = {
            f"{t}.{m}": again_metrics[t][m] - base_metrics[t][m] for t in again_metrics for m in again_metrics[t]
        }
    start = time.perf_counter()
    pairs = spec.diff.pairs or [
        ParityPair(candidate=n, reference=spec.baseline) for n in spec.variants if n != spec.baseline
    ]
    diff = DiffStage(spec.diff)
    result.diffs = [diff.run(dumps[p.candidate], dumps[p.reference]) for p in pairs]
    result.stage_seconds["diff"] = time.perf_counter() - start
    result.checks += map_checks(result, spec.thresholds)
    if spec.thresholds.min_matched_fraction is not None:
        result.checks += [matched_check(d, spec.thresholds.min_matched_fraction) for d in result.diffs]
    if stored is not None:
        result.checks += stored.deltas(result)
    if dataset.corrupt:
        result.notes.append(f"{len(dataset.corrupt)} image(s) could not be used and were excluded from every variant.")


def run_gate(
    gate: Gate, device: str | None = None, progress: Progress | None = None, mode: RunMode | None = None
) -> GateResult:
    """Run every configured stage; the result says whether the gate passed and keeps every measurement.

    ``mode.update_baseline``: the stored baseline is neither required nor compared (it is about to be
    rewritten) and every dump is saved as an artifact. ``mode.shard``: only that shard's dumps are computed
    into the cache (no probes, no evaluation). ``mode.merge``: every dump must already be in the cache.
    """
    mode = mode or RunMode()
    progress = progress or Progress(enabled=False)
    start = time.perf_counter()
    spec = gate.spec
    dev = resolve_device(device or spec.device)
    parity, speed = spec.probes.parity, spec.probes.speed
    used = {spec.baseline}
    if parity:
        used |= {n for p in parity.pairs for n in (p.candidate, p.reference)}
    if speed or spec.dataset is not None:
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
    if mode.shard:
        parity = speed = None
    if parity:
        probes = probe_images(parity, gate.probe_files, spec.input.size, spec.input.source_order)
        result.probes = [p.name for p in probes]
        key_base = {
            "variants": {n: variant_identity(gate, n, v) for n, v in variants.items()},
            "input": spec.input.identity(),
            "device": provenance.device_class(dev),
            "versions": info["versions"],
        }
        stage = ParityProbeStage(parity, variants, ParityCache(gate.cache_dir), key_base)
        begin = time.perf_counter()
        with progress.step(f"parity probe: {len(probes)} images"):
            result.parity = stage.run(probes)
        result.stage_seconds["parity probe"] = time.perf_counter() - begin
        for pair in result.parity:
            result.checks += parity_checks(pair)
    if speed:
        stage_speed = SpeedProbeStage(speed, spec.input.size, info["device"])
        begin = time.perf_counter()
        with progress.step("speed probe"):
            result.timings = [stage_speed.time(name, variants[name]) for name in sorted(variants)]
        result.stage_seconds["speed probe"] = time.perf_counter() - begin
        by_name = {t.variant: t for t in result.timings}
        result.checks += [speed_check(c, by_name) for c in speed.checks]
        if dev.type != "cuda" and "triton" in {spec.variants[n].impl for n in variants}:
            result.notes.append("Triton ran in its CPU interpreter: its timings say nothing about GPU speed.")
    if spec.dataset is not None:
        _detections(gate, dev, variants, result, progress, mode)
    if mode.shard:
        result.duration_s = time.perf_counter() - start
        return result
    if not result.checks:
        result.notes.append("No thresholds are declared, so nothing was gated: a gate that checks nothing fails.")
    result.duration_s = time.perf_counter() - start
    return result
