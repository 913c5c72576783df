"""The detection stage: dataset → adapter → dumps → evaluation → bootstrap → noise floor → diff, and the checks
over them. It returns its part of the result; the engine writes it into the GateResult."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from preprocgate import keys, provenance
from preprocgate.baseline import ArtifactStore, spec_digest
from preprocgate.cache import DumpCache, ResultCache
from preprocgate.data import demo
from preprocgate.data.coco import CocoDataset, load_coco
from preprocgate.data.source import BackendError, ImageSource, annotations_at, images_at
from preprocgate.errors import PreprocgateError, RunError, UserError
from preprocgate.functional.bootstrap import Interval
from preprocgate.hashing import file_sha256
from preprocgate.models import MODELS, ModelAdapter
from preprocgate.progress import Progress
from preprocgate.results import CheckResult, DatasetSummary, DiffResult, DumpSummary
from preprocgate.spec import Gate, ParityPair, env_variables
from preprocgate.stages.compare import map_checks, matched_check, usable_check
from preprocgate.stages.diff import DiffStage
from preprocgate.stages.dump import Dump, DumpStage, Executor, Recipe, Shard
from preprocgate.stages.evaluate import EvaluateStage
from preprocgate.stages.stored import StoredBaselineStage
from preprocgate.timing import StageTimes
from preprocgate.variants import Preprocessor
from preprocgate.version import __version__


@dataclass
class DetectionPart:
    """What the detection stage measured: the GateResult fields it owns."""

    model: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    dumps: list[DumpSummary] = field(default_factory=list)
    dataset: DatasetSummary | None = None
    metrics: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    intervals: dict[str, dict[str, Interval]] = field(default_factory=dict)
    noise_floor: dict[str, float] = field(default_factory=dict)
    diffs: list[DiffResult] = field(default_factory=list)
    stored_deltas: dict[str, dict[str, float]] = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)
    gated_metrics: list[str] = field(default_factory=list)
    map_bound: float | None = None
    dump_data: dict[str, Dump] = field(default_factory=dict)  # for the pictures, not the result
    coco: CocoDataset | None = None
    notes: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_work: dict[str, float] = field(default_factory=dict)  # StageTimes.work


def load_dataset(gate: Gate, keep_bytes: bool = True) -> tuple[CocoDataset, str]:
    """The dataset and the name the report gives it. ``keep_bytes``: :func:`load_coco`'s (whether this process
    decodes the images)."""
    spec = gate.spec.dataset
    assert spec is not None
    images: ImageSource | Path
    if spec.demo is not None:
        paths = demo.ensure(gate.cache_dir, spec.demo.split, spec.demo.count, spec.demo.seed)
        images, annotations, name = paths.images, paths.annotations, None
        source = f"demo {spec.demo.split} ({spec.demo.count} images, seed {spec.demo.seed})"
    try:
        if spec.demo is None:
            images = images_at(spec.images, gate.base_dir)  # type: ignore[arg-type]
            annotations, name = annotations_at(spec.annotations, gate.base_dir, gate.cache_dir)  # type: ignore[arg-type]
            source = name
        dataset = load_coco(
            images, annotations, spec.limit, spec.image_ids, gate.spec.limits.problem, name=name, keep_bytes=keep_bytes
        )
    except BackendError:
        raise  # names its spec key already
    except RunError as exc:
        raise RunError(f"dataset: {exc}{_env_hint(gate, 'dataset.annotations', 'dataset.images')}") from exc
    return dataset, source


def _env_hint(gate: Gate, *keys: str) -> str:
    """The environment variables these spec paths come from: what to set when a path is missing."""
    names = [name for key in keys for name in env_variables(gate, key)]
    return f"; set the environment variable(s) the spec reads it from: {', '.join(names)}" if names else ""


def build_adapter(gate: Gate, device: torch.device) -> ModelAdapter:
    spec = gate.spec.model
    assert spec is not None
    path = gate.path_to(spec.file)
    if not path.is_file():
        raise RunError(f"model.file: {path} not found{_env_hint(gate, 'model.file')}")
    try:
        return MODELS.resolve(spec.adapter)(device, spec.precision, file=path, **spec.params)
    except TypeError as exc:
        raise UserError(f"model.params: {exc}") from exc
    except PreprocgateError as exc:
        raise exc.prefixed("model") from exc


class DetectionStage:
    """Every variant's preprocessing through the same detector, then the comparisons of their detections.

    ``identities``: each variant's :func:`preprocgate.keys.variant_identity`. ``shard``: only that shard's dumps
    are computed (nothing is evaluated). ``merge``: every dump must already be in the cache. ``update``: the
    stored baseline is about to be rewritten, so it is neither required nor compared; every dump is saved as an
    artifact. ``executor``: what computes missing dumps (default: this process).
    """

    def __init__(
        self,
        gate: Gate,
        device: torch.device,
        variants: dict[str, Preprocessor],
        identities: dict[str, dict],
        progress: Progress,
        *,
        shard: Shard | None = None,
        merge: bool = False,
        update: bool = False,
        executor: Executor | None = None,
    ) -> None:
        self.gate, self.spec, self.device = gate, gate.spec, device
        self.executor = executor
        self.variants, self.identities = variants, identities
        self.progress = progress
        self.shard, self.merge, self.update_baseline = shard, merge, update
        self.times = StageTimes()
        self.part = DetectionPart(stage_seconds=self.times.seconds, stage_work=self.times.work)

    def run(self) -> DetectionPart:
        dumper, store, stored = self._setup()
        dumps = self._dumps(dumper, stored)
        if self.shard:
            return self.part
        if self.update_baseline:
            for d in dumps.values():
                store.put(d.digest, d.results)
        self.part.dump_data, self.part.coco = dumps, self.dataset
        valid = self._dataset_summary(dumper, dumps)
        self._usable(dumper)
        if valid:  # nothing to evaluate otherwise: the dataset check has failed the gate
            evaluate = self._evaluate(dumps, valid)
            self._bootstrap(evaluate, dumps, valid)
            self._noise_floor(dumper, evaluate, valid)
            self._diff(dumps)
            self._checks(stored)
        if dumper.corrupt:
            self.part.notes.append(
                f"{len(dumper.corrupt)} image(s) could not be used and were excluded from every variant."
            )
        notes = self.cache.notes + self.metrics_cache.notes + self.diff_cache.notes
        self.part.notes += notes + (stored.notes if stored else [])
        return self.part

    def _usable(self, dumper: DumpStage) -> None:
        corrupt = dumper.corrupt
        unusable = {r.file_name: corrupt[r.id] for r in self.dataset.records if r.id in corrupt}
        limit = self.spec.thresholds.max_unusable_fraction
        check = usable_check(self.source, unusable, len(self.dataset.records), limit)
        if not check.passed:  # a guard, not a comparison: alone it must not make a gate that compares nothing pass
            self.part.checks.append(check)

    def _setup(self) -> tuple[DumpStage, ArtifactStore, StoredBaselineStage | None]:
        """Dataset and adapter, the run's environment, the stored baseline's staleness and the dump stage."""
        spec, gate = self.spec, self.gate
        assert spec.model is not None
        with self.progress.step("dataset"):
            keep = self.executor is None or self.executor.decodes_here
            self.dataset, self.source = load_dataset(gate, keep_bytes=keep)
        self.adapter = build_adapter(gate, self.device)
        device_class = provenance.device_class(self.device)
        self.part.model = self.adapter.identity
        self.part.environment = {
            "spec": spec_digest(spec),
            "model": file_sha256(gate.path_to(spec.model.file)),
            "dataset": self.dataset.manifest,
            "environment": f"{device_class}-{spec.model.precision}",
        }
        input_config = spec.input.identity()
        self.key_base = keys.dump_base(
            self.adapter.identity, self.dataset.manifest, input_config, device_class, spec.model.batch_size, __version__
        )
        self.cache = DumpCache(gate.cache_dir)
        self.metrics_cache = ResultCache(gate.cache_dir, "metrics")
        self.diff_cache = ResultCache(gate.cache_dir, "diffs")
        store = ArtifactStore(gate.cache_dir, spec.baselines.store if spec.baselines else None)
        stored = None
        if (
            spec.baselines is not None
            and gate.baseline_path is not None
            and not self.update_baseline
            and not self.shard
        ):
            update = f"preprocgate baseline update {gate.path}"
            stored = StoredBaselineStage(spec.baselines, gate.baseline_path, store, update)
            self.part.checks += stored.check(self.part.environment)
        recipe = Recipe(
            spec.model.adapter,
            gate.path_to(spec.model.file),
            spec.model.precision,
            spec.model.params,
            self.device.type,
            {name: (spec.variants[name].impl, spec.variants[name].params) for name in self.variants},
        )
        dumper = DumpStage(
            self.cache,
            self.adapter,
            self.dataset,
            spec.model.batch_size,
            self.key_base,
            spec.input,
            executor=self.executor,
            recipe=recipe,
        )
        return dumper, store, stored

    def _dumps(self, dumper: DumpStage, stored: StoredBaselineStage | None) -> dict[str, Dump]:
        """Every variant's dump; the baseline variant's comes from the stored baseline when made under its key."""
        dumps = {}
        for name in self.spec.variants:
            identity = self.identities[name]
            reused = stored.reusable(name, dumper.key(identity)) if stored and name == self.spec.baseline else None
            label = f"dump: {name}" + (" (stored baseline)" if reused else "")
            total = None if reused else len(dumper.mine(self.shard))
            with self.times.counting(f"dump {name}"), self.progress.step(label, total=total) as task:
                dumps[name] = reused or dumper.run(
                    name, self.variants[name], identity, self.shard, compute=not self.merge, on_progress=task.update
                )
            self.part.dumps.append(dumps[name].summary())
            self.times.add(f"dump {name}", dumps[name].seconds)
        self.times.update(dumper.seconds)
        return dumps

    def _dataset_summary(self, dumper: DumpStage, dumps: dict[str, Dump]) -> list[int]:
        """The evaluated images: every dump must cover exactly these, or Δ would compare different sets."""
        valid = dumper.valid
        for d in dumps.values():
            if list(d.image_ids) != valid:
                raise RunError(f"dump of {d.variant} covers {len(d.image_ids)} images, expected {len(valid)}")
        corrupt = dumper.corrupt
        self.part.dataset = DatasetSummary(
            source=self.source,
            images=len(self.dataset.records),
            evaluated=len(valid),
            manifest=self.dataset.manifest,
            corrupt=[{"file": r.file_name, "reason": corrupt[r.id]} for r in self.dataset.records if r.id in corrupt],
        )
        return valid

    def _evaluate(self, dumps: dict[str, Dump], valid: list[int]) -> EvaluateStage:
        evaluation = self.spec.evaluation
        with self.times.measure("evaluate"), self.progress.step("evaluate"):
            evaluate = EvaluateStage(
                evaluation.backend,
                self.dataset.annotations,
                evaluation.iou_types,
                self.metrics_cache,
                self.dataset.manifest,
            )
            self.part.metrics = {name: evaluate.run(d, valid) for name, d in dumps.items()}
        return evaluate

    def _bootstrap(self, evaluate: EvaluateStage, dumps: dict[str, Dump], valid: list[int]) -> None:
        spec = self.spec
        gated = spec.thresholds.map.metrics if spec.thresholds.map else []
        if spec.bootstrap is None or not gated:
            return
        with self.times.measure("bootstrap"), self.progress.step(f"bootstrap: {spec.bootstrap.resamples} resamples"):
            base = dumps[spec.baseline]
            for name, d in dumps.items():
                if name != spec.baseline:
                    self.part.intervals[name] = evaluate.intervals(base, d, gated, valid, spec.bootstrap)

    def _noise_floor(self, dumper: DumpStage, evaluate: EvaluateStage, valid: list[int]) -> None:
        """The baseline variant dumped again at another batch size: how much detections move by themselves."""
        spec = self.spec
        if spec.noise_floor is None:
            return
        batch_size, name = spec.noise_floor.batch_size, spec.baseline
        label = f"noise floor: {name} again at batch size {batch_size}"
        with self.progress.step(label, total=len(dumper.valid)) as task:
            base = {**self.key_base, "batch_size": batch_size}
            again_stage = DumpStage(
                self.cache,
                self.adapter,
                self.dataset,
                batch_size,
                base,
                spec.input,
                dumper.corrupt,
                executor=self.executor,
                recipe=dumper.recipe,
            )
            again_dump = again_stage.run(name, self.variants[name], self.identities[name], on_progress=task.update)
            again = evaluate.run(again_dump, valid)
        first = self.part.metrics[name]
        self.part.noise_floor = {f"{t}.{m}": again[t][m] - first[t][m] for t in again for m in again[t]}

    def _diff(self, dumps: dict[str, Dump]) -> None:
        spec = self.spec
        pairs = spec.diff.pairs or [
            ParityPair(candidate=n, reference=spec.baseline) for n in spec.variants if n != spec.baseline
        ]
        with self.times.measure("diff"):
            diff = DiffStage(spec.diff, self.diff_cache)
            self.part.diffs = [diff.run(dumps[p.candidate], dumps[p.reference]) for p in pairs]

    def _checks(self, stored: StoredBaselineStage | None) -> None:
        thresholds, part = self.spec.thresholds, self.part
        part.checks += map_checks(part.metrics, part.intervals, self.spec.baseline, thresholds)
        if thresholds.map is not None:
            part.gated_metrics, part.map_bound = list(thresholds.map.metrics), thresholds.map.max_abs_delta
        if thresholds.min_matched_fraction is not None:
            part.checks += [matched_check(d, thresholds.min_matched_fraction) for d in part.diffs]
        if stored is not None:
            checks, part.stored_deltas = stored.deltas(part.metrics)
            part.checks += checks
