"""Gate specs: the YAML a user writes, as pydantic models, plus loading and error translation.

Loading is three steps, each reporting problems with the file, the dotted key path and the line:
safe YAML → ``${VAR}`` / ``${VAR:-default}`` interpolation of string values → validation (types, unknown keys,
then cross-references such as the baseline naming a declared variant). Relative paths resolve against the
spec file's folder so that a gate runs the same from any working directory.
"""

from __future__ import annotations

import difflib
import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from preprocgate import yamlsafe
from preprocgate.data.source import is_url
from preprocgate.errors import PreprocgateError, SpecError, SpecIssue
from preprocgate.fileio import unusable_folder
from preprocgate.plugins import EVALUATORS, EXECUTORS, MODELS, VARIANTS, check_params
from preprocgate.redact import redact

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
NAME_MAX = 100  # names become file names (<name>.md, .<name>.json.XXXX.tmp): well inside 255 bytes
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=NAME_MAX)]
_SECRET_NAME = re.compile(r"TOKEN|SECRET|KEY|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
DEVICE_PATTERN = r"^(auto|cpu|cuda(:\d+)?)$"
_SHAPE = re.compile(r"^\s*(\d+)\s*[x×]\s*(\d+)\s*$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")

Size = tuple[Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)]]
PadValue = Annotated[int, Field(ge=0, le=255, strict=True)]
# input.interpolation; a variant lists the ones it can do in its ``interpolations`` attribute
Interpolation = Literal["bilinear", "bilinear_antialias", "nearest", "nearest-exact", "pillow_bilinear"]
INTERPOLATIONS: tuple[str, ...] = get_args(Interpolation)


def parse_size(value: Any) -> Any:
    """Accept ``[h, w]`` or the string ``"HxW"``."""
    if isinstance(value, str):
        m = _SHAPE.match(value)
        if not m:
            raise ValueError(f"expected 'HxW' (height x width), got {value!r}")
        return (int(m.group(1)), int(m.group(2)))
    return value


class StrictModel(BaseModel):
    """Unknown keys are errors, and so is every NaN or infinity: ``atol: .inf`` would bound nothing, a NaN mean
    would make both sides of every comparison NaN."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ResizeSpec(StrictModel):
    """How a source image becomes the network input; preprocgate/geometry.py holds the exact rounding rules.

    ``stretch`` resizes to ``input.size`` ignoring the aspect ratio; ``letterbox`` keeps the ratio, fits inside
    ``input.size`` and pads (Ultralytics, YOLOX); ``keep_ratio`` scales the shorter side to ``short_side`` with the
    longer side capped at ``max_size`` and pads bottom/right to a multiple of ``stride`` (Detectron2).

    The pad is a colour in pixel units, normalised like the image (Ultralytics and YOLOX paste the image on a
    114-grey canvas), or ``mean``: 0 in the normalised output, which is where Detectron2, torchvision's detection
    transform and MMDetection pad (after normalising), so the default of ``keep_ratio``.
    """

    mode: Literal["stretch", "letterbox", "keep_ratio"] = "stretch"
    pad: tuple[PadValue, PadValue, PadValue] | Literal["mean"] | None = Field(
        None,
        description="Pad colour in uint8 units, RGB order; or 'mean': 0 after normalisation. "
        "Default: 114 (letterbox), mean (keep_ratio).",
    )
    align: Literal["center", "top_left"] = Field("center", description="letterbox: where the content sits.")
    content_rounding: Literal["round", "floor"] = Field(
        "round", description="letterbox: content size round(h·r) (Ultralytics) or int(h·r) (YOLOX)."
    )
    short_side: Annotated[int, Field(gt=0)] | None = Field(None, description="keep_ratio: shorter side target.")
    max_size: Annotated[int, Field(gt=0)] | None = Field(None, description="keep_ratio: cap on the longer side.")
    stride: Annotated[int, Field(gt=0)] = Field(32, description="keep_ratio: canvas sides are multiples of this.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"mode": value}
        return value

    @field_validator("pad", mode="before")
    @classmethod
    def _pad(cls, value: Any) -> Any:
        """One message for every bad pad (a union's per-branch errors would name pydantic's types)."""
        if value is None or value == "mean":
            return value
        values = list(value) if isinstance(value, list | tuple) else [value] * 3
        if len(values) != 3:
            raise ValueError(f"pad needs one value or three (R, G, B), got {len(values)}")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 255:
                raise ValueError(f"pad must be 'mean' or integers 0–255 (one, or R, G, B), got {v!r}")
        return values

    @model_validator(mode="after")
    def _params_fit_mode(self) -> ResizeSpec:
        given = self.model_fields_set
        letterbox_only = {"align", "content_rounding"} & given
        keep_ratio_only = {"short_side", "max_size", "stride"} & given
        if self.mode != "letterbox" and letterbox_only:
            raise ValueError(f"{', '.join(sorted(letterbox_only))} only apply to mode letterbox")
        if self.mode != "keep_ratio" and keep_ratio_only:
            raise ValueError(f"{', '.join(sorted(keep_ratio_only))} only apply to mode keep_ratio")
        if self.mode == "stretch" and "pad" in given:
            raise ValueError("pad does not apply to mode stretch: nothing is padded")
        if self.mode == "keep_ratio":
            if self.short_side is None or self.max_size is None:
                raise ValueError("mode keep_ratio needs short_side and max_size")
            if self.max_size < self.short_side:
                raise ValueError(f"max_size ({self.max_size}) is smaller than short_side ({self.short_side})")
        return self

    @property
    def pad_value(self) -> tuple[int, int, int] | None:
        """The pad colour in effect, RGB; None where the pad is 0 in the normalised output (``pad: mean``)."""
        if self.pad == "mean" or (self.pad is None and self.mode == "keep_ratio"):
            return None
        if self.pad is not None:
            return self.pad
        return (114, 114, 114)


class InputSpec(StrictModel):
    """What every variant must produce: float32 N×3×H×W in ``target_order``, ``(x / pixel_scale − mean) / std``."""

    size: Size = Field(
        description="Output height and width: [H, W] or 'HxW'. keep_ratio ignores it (its canvas follows the batch)."
    )
    resize: ResizeSpec = Field(default_factory=ResizeSpec, description="stretch (default), letterbox or keep_ratio.")
    interpolation: Interpolation = Field(
        "bilinear",
        description="How the content is resampled, named after the reference: torch's F.interpolate modes "
        "(bilinear, bilinear_antialias, nearest, nearest-exact) or Pillow's Image.resize(BILINEAR) on uint8 "
        "(pillow_bilinear). Each variant declares the modes it can do (docs/arithmetic.md).",
    )
    mean: tuple[float, float, float] = Field(
        (0.485, 0.456, 0.406), description="Per output channel, in target_order (unlike pad, which is RGB)."
    )
    std: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]] = Field(
        (0.229, 0.224, 0.225), description="Per output channel, in target_order."
    )
    source_order: Literal["BGR", "RGB"] = Field("BGR", description="Channel order of decoded images.")
    target_order: Literal["RGB", "BGR"] = Field("RGB", description="Channel order the model expects (YOLOX: BGR).")
    pixel_scale: Literal[255, 1] = Field(
        255, description="Pixel values are divided by this before (x − mean) / std: 255 → 0–1, 1 → raw 0–255 (YOLOX)."
    )

    _parse_size = field_validator("size", mode="before")(parse_size)

    def identity(self) -> dict[str, Any]:
        """The section as cache keys and the stored baseline's spec digest see it.

        Keys added after the first release (``resize``, ``pixel_scale``, ``interpolation``) appear only when not
        at their default, so a spec that does not use them keeps its digests: its outputs did not change, and
        neither do its cached dumps or stored baselines.
        """
        data = self.model_dump(mode="json")
        defaults = _INPUT_DEFAULTS.model_dump(mode="json")
        for key in ("resize", "pixel_scale", "interpolation"):
            if data[key] == defaults[key]:
                del data[key]
        return data


_INPUT_DEFAULTS = InputSpec(size=(1, 1))


class VariantSpec(StrictModel):
    impl: str = Field(description="A registered variant id (see `preprocgate variants`) or 'module:callable'.")
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for the variant.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"impl": value} if isinstance(value, str) else value


class ParityThresholds(StrictModel):
    """All given bounds must hold; NaN or Inf where the reference is finite always fails."""

    max_ulp: Annotated[int, Field(ge=0)] | None = Field(None, description="Max element-wise ULP distance.")
    atol: Annotated[float, Field(ge=0)] | None = None
    rtol: Annotated[float, Field(ge=0)] | None = None
    min_equal_fraction: Annotated[float, Field(ge=0, le=1)] | None = None

    @property
    def is_empty(self) -> bool:
        return all(v is None for v in (self.max_ulp, self.atol, self.rtol, self.min_equal_fraction))


class ParityPair(StrictModel):
    candidate: str
    reference: str
    thresholds: ParityThresholds = ParityThresholds()


SYNTHETIC_GENERATORS = ("gradient", "texture", "noise", "edges", "natural")


class SyntheticImages(StrictModel):
    generators: list[Literal["gradient", "texture", "noise", "edges", "natural"]] = list(SYNTHETIC_GENERATORS)
    seed: int = 0


class SweepCase(StrictModel):
    """One source shape, optionally with its own output size (default: ``input.size``)."""

    source: Size
    output: Size | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            src, arrow, dst = value.partition("->")
            return {"source": src, "output": dst} if arrow else {"source": src}
        return value

    _parse_sizes = field_validator("source", "output", mode="before")(parse_size)


DEFAULT_SWEEP = (
    "427x640->384x384",
    "333x500->560x560",
    "37x53->512x512",
    "480x640->480x640",
    "1x1->8x8",
    "640x480->320x320",
    "1000x64->300x200",
    "64x1000->200x300",
    "101x37->57x131",
)


class ProbeImages(StrictModel):
    synthetic: SyntheticImages | None = SyntheticImages()
    files: list[str] = Field(default_factory=list, description="Image paths or globs, relative to the spec.")
    sweep: list[SweepCase] = Field(
        default_factory=lambda: [SweepCase.model_validate(s) for s in DEFAULT_SWEEP],
        description="Source shapes for synthetic images: 'HxW' or 'HxW->HxW' (own output size).",
    )


class ParityProbe(StrictModel):
    pairs: list[ParityPair] = Field(min_length=1)
    images: ProbeImages = ProbeImages()


class SpeedCheck(StrictModel):
    candidate: str
    reference: str
    min_speedup: Annotated[float, Field(gt=0)] = Field(description="reference time / candidate time ≥ this")


class SpeedProbe(StrictModel):
    source: Size = (480, 640)
    batch: Annotated[int, Field(ge=1, le=1024)] = 1
    warmup: Annotated[int, Field(ge=0, le=10_000)] = 2
    repeats: Annotated[int, Field(ge=1, le=100_000)] = 10
    checks: list[SpeedCheck] = Field(default_factory=list)

    _parse_size = field_validator("source", mode="before")(parse_size)


class Probes(StrictModel):
    parity: ParityProbe | None = None
    speed: SpeedProbe | None = SpeedProbe()


class ReportSpec(StrictModel):
    template: str | None = Field(None, description="A Jinja2 Markdown template replacing the built-in one.")
    output_dir: str | None = Field(None, description="Default: ./reports in the working directory.")
    links: dict[
        Annotated[str, Field(min_length=1, max_length=80)], Annotated[str, Field(pattern=r"^https?://\S+$")]
    ] = Field(
        default_factory=dict,
        description="Links shown under the verdict, label → http(s) URL: the CI run, the JSON, artifacts.",
    )
    artifacts_url: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = Field(
        None, description="Where the report's folder is published (e.g. the CI run's artifacts): pictures link there."
    )
    pictures: bool = Field(True, description="Write PNG pictures beside the report (needs the `pictures` extra).")


class DemoDataset(StrictModel):
    split: Literal["train", "val"] = "val"
    count: Annotated[int, Field(ge=1, le=100_000)] = 100
    seed: int = 0


class DatasetSpec(StrictModel):
    """COCO-format images + instances JSON, or the embedded demo set (generated into the cache)."""

    images: str | None = Field(
        None, description="Folder of images, relative to the spec, or an fsspec URL (s3://, gs://, https://, …)."
    )
    annotations: str | None = Field(
        None, description="COCO instances JSON, relative to the spec, or an fsspec URL (s3://, gs://, https://, …)."
    )
    demo: DemoDataset | None = None
    limit: Annotated[int, Field(ge=1)] | None = Field(None, description="Evaluate the first N images (by id).")
    image_ids: list[int] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSpec:
        if (self.demo is None) == (self.images is None or self.annotations is None):
            raise ValueError("give either images + annotations, or demo")
        return self


class ModelSpec(StrictModel):
    adapter: str = Field(description="A registered model adapter (docs/adapters.md lists them) or 'module:Class'.")
    file: str = Field(description="Model file (ONNX, or weights for torch), relative to the spec.")
    precision: Literal["fp32", "fp16"] = "fp32"
    batch_size: Annotated[int, Field(ge=1, le=1024)] = 8
    params: dict[str, Any] = Field(default_factory=dict)


MetricRef = Annotated[str, Field(pattern=r"^(bbox|segm)\.(AP|AP50|AP75|APs|APm|APl|AR100)$")]


class EvaluationSpec(StrictModel):
    iou_types: list[Literal["bbox", "segm"]] = ["bbox", "segm"]
    backend: str = Field("pycocotools", description="pycocotools or faster_coco_eval")


class DiffSpec(StrictModel):
    """Detection diff between variants, the study's pairing: greedy, same class, highest score first."""

    score_threshold: Annotated[float, Field(ge=0, le=1)] = 0.4
    iou_threshold: Annotated[float, Field(gt=0, le=1)] = 0.5
    pairs: list[ParityPair] | None = Field(None, description="Default: every variant against the baseline.")


class MapThresholds(StrictModel):
    metrics: list[MetricRef] = ["bbox.AP", "bbox.AP50", "bbox.AP75", "segm.AP", "segm.AP50", "segm.AP75"]
    max_abs_delta: Annotated[float, Field(ge=0)] = 0.002
    apply_to: Literal["delta", "interval"] = Field(
        "delta",
        description="delta: |Δ| ≤ bound. interval: fail only when the bootstrap interval lies wholly outside ±bound.",
    )


class BootstrapSpec(StrictModel):
    """Paired bootstrap over images: a confidence interval for each gated ΔmAP."""

    resamples: Annotated[int, Field(ge=10, le=1_000_000)] = 1000
    seed: int = 0
    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.95


class NoiseFloorSpec(StrictModel):
    """Run the baseline variant a second time (another batch size) and report the run-to-run Δ."""

    batch_size: Annotated[int, Field(ge=1, le=1024)]


class BaselineSpec(StrictModel):
    """Stored results in baselines/<gate>.json, compared on every run; see `preprocgate baseline`."""

    dir: str | None = Field(None, description="Default: ./baselines in the working directory.")
    store: str | None = Field(None, description="fsspec URL holding dump artifacts (file://, s3://, gs://, memory://).")
    fallback: dict[str, str] = Field(
        default_factory=dict, description="Environment key → stored environment key accepted in its place."
    )
    map: MapThresholds = MapThresholds()


class Thresholds(StrictModel):
    map: MapThresholds | None = MapThresholds()
    min_matched_fraction: Annotated[float, Field(ge=0, le=1)] | None = None
    max_unusable_fraction: Annotated[float, Field(ge=0, le=1)] = Field(
        0.0,
        description="Share of dataset images that may be undecodable or missing; more fails the gate (default: none).",
    )


class ExecutorSpec(StrictModel):
    """What computes detection dumps: this process, or a Ray cluster (docs/scale-out.md)."""

    kind: str = Field("local", description="local (this process), ray (extra preprocgate[ray]), or a plug-in.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="ray: address (default: start Ray here), workers, cpus_per_worker, concurrency (1 or 2; "
        "default 1), niceness, image_memory_gb (per worker; default 40% of its node's memory over its workers), "
        "workers_per_gpu (actors sharing each GPU, 1 to 8; default 1). "
        "local: encode_stream (GPU masks encoded on a stream of their own; on by default), arena (images "
        "decoded into page-locked memory, a batch's shape groups back to back; on by default), image_memory_gb "
        "(the most decoded images kept for the next variants; default 40% of the host's memory; beyond it, "
        "each variant decodes them again, a few batches ahead), switch_interval_ms (the interpreter's thread "
        "switch interval while a dump runs; default Python's 5 ms), lookahead (batches launched before the oldest "
        "one's detections are taken, 0 to 4; default 1).",
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value


class LimitsSpec(StrictModel):
    """Upper bounds checked when the spec loads, so that a typo like 100000x100000 is a one-line error, not a
    28 GiB allocation halfway through a run. The defaults fit 8K frames."""

    max_image_side: Annotated[int, Field(ge=1)] = Field(16_384, description="Longest side of any image, in pixels.")
    max_image_pixels: Annotated[int, Field(ge=1)] = Field(
        1 << 25, description="Height × width of any image (default 33,554,432: 8K UHD fits)."
    )

    def problem(self, size: tuple[int, int]) -> str | None:
        h, w = size
        if max(h, w) > self.max_image_side:
            return f"{h}x{w} has a side over limits.max_image_side ({self.max_image_side})"
        if h * w > self.max_image_pixels:
            return f"{h}x{w} is {h * w} pixels, over limits.max_image_pixels ({self.max_image_pixels})"
        return None


class GateSpec(StrictModel):
    """A preprocessing regression gate."""

    name: str = Field(
        pattern=NAME_PATTERN, max_length=NAME_MAX, description="Names the report files: reports/<name>.md"
    )
    description: str = ""
    device: str = Field("auto", pattern=DEVICE_PATTERN)
    input: InputSpec
    variants: dict[Name, VariantSpec] = Field(min_length=1)
    baseline: str
    probes: Probes = Probes()
    dataset: DatasetSpec | None = None
    model: ModelSpec | None = None
    evaluation: EvaluationSpec = EvaluationSpec()
    diff: DiffSpec = DiffSpec()
    thresholds: Thresholds = Thresholds()
    bootstrap: BootstrapSpec | None = None
    noise_floor: NoiseFloorSpec | None = None
    baselines: BaselineSpec | None = None
    cache_dir: str | None = Field(None, description="Default: $PREPROCGATE_CACHE or ~/.cache/preprocgate.")
    report: ReportSpec = ReportSpec()
    limits: LimitsSpec = LimitsSpec()
    executor: ExecutorSpec = ExecutorSpec()

    @model_validator(mode="after")
    def _dataset_needs_model(self) -> GateSpec:
        if (self.dataset is None) != (self.model is None):
            raise ValueError("dataset and model go together: detection dumps need both")
        return self


class Gate(BaseModel):
    """A validated spec together with where it came from (relative paths resolve against ``base_dir``)."""

    model_config = ConfigDict(frozen=True)

    spec: GateSpec
    path: Path
    probe_files: tuple[Path, ...] = ()
    template_path: Path | None = None
    output_dir: Path
    cache_dir: Path
    baseline_path: Path | None = None
    variables: dict[str, tuple[str, ...]] = {}
    """Dotted key → the environment variables its value was read from (``${VAR}``), recorded while loading."""
    secrets: tuple[str, ...] = Field((), repr=False)
    """Values read from variables named like secrets (TOKEN, SECRET, KEY, PASSWORD): masked in every report."""

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def path_to(self, relative: str) -> Path:
        """A path from the spec, resolved against the spec's folder (registries ``resolve`` names, not paths)."""
        return (self.base_dir / relative).resolve()


class _LineIndex:
    """Dotted key path → line number, from the YAML node tree (so errors can point at a line)."""

    def __init__(self, node: yaml.Node | None) -> None:
        self.lines: dict[tuple[Any, ...], int] = {}
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, path: tuple[Any, ...]) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                self.lines[(*path, key.value)] = key.start_mark.line + 1
                self._walk_child(value, (*path, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk_child(item, (*path, i))

    def _walk_child(self, node: yaml.Node, path: tuple[Any, ...]) -> None:
        line = self.lines.get(path)
        self._walk(node, path)
        if line is not None and isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            self.lines[path] = line

    def line(self, path: tuple[Any, ...]) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path)


def _interpolate(
    value: Any,
    path: tuple[Any, ...],
    env: dict[str, str],
    problems: list[tuple],
    sources: dict[str, tuple[str, ...]],
    secrets: set[str],
) -> Any:
    """Substitute ``${VAR}`` in string values, recording in ``sources`` which variables fed each dotted key and
    in ``secrets`` the values taken from variables named like secrets."""
    if isinstance(value, dict):
        return {k: _interpolate(v, (*path, k), env, problems, sources, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*path, i), env, problems, sources, secrets) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    names = tuple(m.group(1) for m in _VAR.finditer(value))
    if names:
        sources[_dotted(path)] = names

    def substitute(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env and env[name] != "":
            if _SECRET_NAME.search(name):
                secrets.add(env[name])
            return env[name]
        if default is not None:
            return default
        problems.append((path, f"environment variable {name} is not set (write ${{{name}:-default}} for a default)"))
        return ""

    return _VAR.sub(substitute, value)


def _read_yaml(path: Path) -> tuple[Any, _LineIndex]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([SpecIssue(str(path), "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([SpecIssue(str(path), "", f"cannot read: {exc}")]) from None
    try:
        node = yamlsafe.compose(text)
        data = yamlsafe.construct(node)
    except yamlsafe.YamlProblem as exc:
        raise SpecError([SpecIssue(str(path), "", f"invalid YAML: {exc.message}", exc.line)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError([SpecIssue(str(path), "", f"invalid YAML: {reason}", line)]) from None
    return data, _LineIndex(node)


Problems = list[tuple[tuple[Any, ...], str]]


def _unknown_variant(spec: GateSpec, path: tuple[Any, ...], name: str) -> Problems:
    if name in spec.variants:
        return []
    names = list(spec.variants)
    hint = difflib.get_close_matches(name, names, n=1)
    tail = f"; did you mean {hint[0]!r}?" if hint else f"; declared: {', '.join(names)}"
    return [(path, f"{name!r} is not a declared variant{tail}")]


def _variant_problems(spec: GateSpec) -> Problems:
    """Every variant names a registered or importable implementation whose signature takes its params."""
    problems: Problems = []
    for vname, variant in spec.variants.items():
        problem = VARIANTS.is_resolvable(variant.impl)
        if problem:
            problems.append((("variants", vname, "impl"), problem))
            continue
        try:
            problem = check_params(VARIANTS.resolve(variant.impl), variant.params)
        except PreprocgateError as exc:
            problems.append((("variants", vname, "impl"), str(exc)))
            continue
        if problem:
            problems.append((("variants", vname, "params"), problem))
            continue
        problem = _interpolation_problem(VARIANTS.resolve(variant.impl), variant.impl, spec.input.interpolation)
        if problem:
            problems.append((("variants", vname, "impl"), problem))
    return problems


def _interpolation_problem(factory: Any, impl: str, mode: str) -> str | None:
    """A variant that declares its modes (``interpolations``) must list ``input.interpolation``; one that
    declares none (a plain callable) is trusted, as its params are."""
    modes = getattr(factory, "interpolations", None)
    if modes is None or mode in modes:
        return None
    return f"the {impl} variant cannot do input.interpolation {mode!r} (it does: {', '.join(modes)})"


def _parity_problems(spec: GateSpec) -> Problems:
    problems: Problems = []
    if not spec.probes.parity:
        return problems
    for i, pair in enumerate(spec.probes.parity.pairs):
        problems += _unknown_variant(spec, ("probes", "parity", "pairs", i, "candidate"), pair.candidate)
        problems += _unknown_variant(spec, ("probes", "parity", "pairs", i, "reference"), pair.reference)
        if pair.candidate == pair.reference:
            problems.append((("probes", "parity", "pairs", i), "a variant compared with itself"))
    images = spec.probes.parity.images
    if images.synthetic is None and not images.files:
        problems.append((("probes", "parity", "images"), "no probe images: give synthetic or files"))
    if images.synthetic is not None and not images.sweep:
        problems.append((("probes", "parity", "images", "sweep"), "synthetic images need a non-empty sweep"))
    return problems


def _plugin_problems(spec: GateSpec) -> Problems:
    """The model adapter, the evaluator backend and the executor are registered or importable."""
    problems: Problems = []
    if spec.model:
        problem = MODELS.is_resolvable(spec.model.adapter)
        if problem:
            problems.append((("model", "adapter"), problem))
    problem = EVALUATORS.is_resolvable(spec.evaluation.backend)
    if problem:
        problems.append((("evaluation", "backend"), problem))
    problem = EXECUTORS.is_resolvable(spec.executor.kind)
    if problem:
        problems.append((("executor", "kind"), problem))
    return problems


def _cross_check(spec: GateSpec) -> Problems:
    """References between sections, which field types alone cannot express."""
    problems = _unknown_variant(spec, ("baseline",), spec.baseline)
    problems += _size_problems(spec)
    problems += _variant_problems(spec)
    problems += _parity_problems(spec)
    for i, pair in enumerate(spec.diff.pairs or []):
        problems += _unknown_variant(spec, ("diff", "pairs", i, "candidate"), pair.candidate)
        problems += _unknown_variant(spec, ("diff", "pairs", i, "reference"), pair.reference)
    if spec.thresholds.map and spec.thresholds.map.apply_to == "interval" and spec.bootstrap is None:
        problems.append((("thresholds", "map", "apply_to"), "'interval' needs a bootstrap section"))
    if spec.dataset is None:
        for key in ("baselines", "bootstrap", "noise_floor"):
            if getattr(spec, key) is not None:
                problems.append(((key,), "needs dataset and model: it compares detection results"))
    problems += _plugin_problems(spec)
    for i, check in enumerate(spec.probes.speed.checks if spec.probes.speed else []):
        problems += _unknown_variant(spec, ("probes", "speed", "checks", i, "candidate"), check.candidate)
        problems += _unknown_variant(spec, ("probes", "speed", "checks", i, "reference"), check.reference)
    return problems


def _size_problems(spec: GateSpec) -> list[tuple[tuple[Any, ...], str]]:
    """Every image size the spec names, against ``limits``."""
    sizes: list[tuple[tuple[Any, ...], tuple[int, int]]] = [(("input", "size"), spec.input.size)]
    if spec.probes.parity:
        for i, case in enumerate(spec.probes.parity.images.sweep):
            sizes.append((("probes", "parity", "images", "sweep", i), case.source))
            if case.output:
                sizes.append((("probes", "parity", "images", "sweep", i), case.output))
    if spec.probes.speed:
        sizes.append((("probes", "speed", "source"), spec.probes.speed.source))
    return [(where, problem) for where, size in sizes if (problem := spec.limits.problem(size))]


def _resolve_files(spec: GateSpec, base: Path) -> tuple[list[Path], list[tuple[tuple[Any, ...], str]]]:
    files: list[Path] = []
    problems: list[tuple[tuple[Any, ...], str]] = []
    if not spec.probes.parity:
        return files, problems
    for i, pattern in enumerate(spec.probes.parity.images.files):
        full = pattern if os.path.isabs(pattern) else str(base / pattern)
        matches = sorted(glob.glob(full, recursive=True)) if glob.has_magic(full) else [full]
        matches = [m for m in matches if os.path.isfile(m)]
        if not matches:
            problems.append((("probes", "parity", "images", "files", i), f"no file matches {pattern!r}"))
        files.extend(Path(m).resolve() for m in matches)
    return files, problems


def load_gate(path: str | os.PathLike[str], env: dict[str, str] | None = None, check_inputs: bool = True) -> Gate:
    """Load and validate a gate spec; raise SpecError listing every problem found.

    Besides the spec itself this checks what can be checked before any work: the report template exists, the
    output folders are writable and, with ``check_inputs``, the model file and dataset exist (without it, a
    spec can be checked on a machine that lacks the data)."""
    path = Path(path).resolve()
    shown = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
    data, index = _read_yaml(path)

    def issues(problems: list[tuple[tuple[Any, ...], str]]) -> SpecError:
        return SpecError([SpecIssue(shown, _dotted(p), msg, index.line(p)) for p, msg in problems])

    if not isinstance(data, dict):
        raise issues([((), "the spec must be a mapping of keys (name, input, variants, ...)")])
    problems: list[tuple[tuple[Any, ...], str]] = []
    sources: dict[str, tuple[str, ...]] = {}
    found: set[str] = set()
    data = _interpolate(data, (), dict(os.environ) if env is None else env, problems, sources, found)
    secrets = tuple(sorted(found, key=len, reverse=True))

    def hidden(problems: list[tuple[tuple[Any, ...], str]]) -> SpecError:
        return issues([(p, redact(msg, secrets)) for p, msg in problems])

    if problems:
        raise hidden(problems)
    try:
        spec = GateSpec.model_validate(data)
    except ValidationError as exc:
        raise hidden([(tuple(e["loc"]), _message(e)) for e in exc.errors()]) from None

    base = path.parent
    problems = _cross_check(spec)
    files, file_problems = _resolve_files(spec, base)
    problems += file_problems
    template = (base / spec.report.template).resolve() if spec.report.template else None
    output_dir = (base / spec.report.output_dir).resolve() if spec.report.output_dir else Path("reports").resolve()
    if spec.cache_dir:
        cache_dir = (base / spec.cache_dir).resolve()
    else:
        cache_dir = Path(os.environ.get("PREPROCGATE_CACHE") or Path.home() / ".cache" / "preprocgate").resolve()
    baseline_path = None
    if spec.baselines is not None:
        folder = (base / spec.baselines.dir) if spec.baselines.dir else Path("baselines")
        baseline_path = (folder / f"{spec.name}.json").resolve()
    outputs = Outputs(template, output_dir, cache_dir, baseline_path)
    problems += _path_problems(spec, base, sources, outputs, check_inputs)
    if problems:
        raise hidden(problems)
    return Gate(
        spec=spec,
        path=path,
        probe_files=tuple(files),
        template_path=template,
        output_dir=output_dir,
        cache_dir=cache_dir,
        baseline_path=baseline_path,
        variables=sources,
        secrets=secrets,
    )


@dataclass(frozen=True)
class Outputs:
    """Where a gate reads its template and writes its reports, cache and stored baseline."""

    template: Path | None
    output_dir: Path
    cache_dir: Path
    baseline_path: Path | None


def _path_problems(
    spec: GateSpec, base: Path, sources: dict[str, tuple[str, ...]], outputs: Outputs, check_inputs: bool
) -> Problems:
    """Inputs that must exist and outputs that must be writable, checked before any work starts."""
    problems: Problems = []

    def need(key: tuple[str, ...], value: str | None, kind: str) -> None:
        if value is None or not check_inputs or is_url(value):  # a URL is opened when the run reads it
            return
        full = (base / value).resolve()
        if not (full.is_dir() if kind == "folder" else full.is_file()):
            names = sources.get(_dotted(key), ())
            hint = f"; set the environment variable(s) the spec reads it from: {', '.join(names)}" if names else ""
            problems.append((key, f"{kind} {full} not found{hint}"))

    if spec.model is not None:
        need(("model", "file"), spec.model.file, "file")
    if spec.dataset is not None:
        need(("dataset", "images"), spec.dataset.images, "folder")
        need(("dataset", "annotations"), spec.dataset.annotations, "file")
    if outputs.template is not None and not outputs.template.is_file():  # whether it compiles: cli.options.load
        problems.append((("report", "template"), f"template {spec.report.template!r} not found"))
    folders: list[tuple[tuple[Any, ...], Path]] = [
        (("report", "output_dir"), outputs.output_dir),
        (("cache_dir",), outputs.cache_dir),
    ]
    if outputs.baseline_path is not None:
        folders.append((("baselines", "dir"), outputs.baseline_path.parent))
    for key, folder in folders:
        problem = unusable_folder(folder)
        if problem:
            problems.append((key, problem))
    for name in (f"{spec.name}.md", f"{spec.name}.json"):
        if (outputs.output_dir / name).is_dir():
            problems.append(
                (("report", "output_dir"), f"{outputs.output_dir / name} is a folder, where the report goes")
            )
    return problems


def env_variables(gate: Gate, key: str) -> list[str]:
    """The environment variables the spec's value at dotted ``key`` is read from (``${VAR}``, ``${VAR:-default}``).

    Lets a missing-path error name the variable to set, not only the path its default resolved to.
    """
    return list(gate.variables.get(key, ()))


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key is missing"
    msg = error["msg"]
    return msg.removeprefix("Value error, ")


def json_schema() -> dict[str, Any]:
    """The spec's JSON Schema, for editor completion (e.g. yaml-language-server)."""
    schema = GateSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "preprocgate gate spec"
    return schema
