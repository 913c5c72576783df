"""Every bad-spec case exits 2 with one clear line naming file, line and key path, and writes nothing."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from preprocgate.cli import cli
from preprocgate.spec import load_gate
from tests.helpers.gates import small_gate, write_gate


def _run(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


def _with(path: tuple, value: object) -> dict:
    spec = small_gate()
    node = spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return spec


BAD = [
    ("unknown key", _with(("input", "colour"), 1), ["input.colour", "unknown key", "gate.yaml:"]),
    ("wrong type", _with(("input", "mean"), "blue"), ["input.mean", "gate.yaml:"]),
    (
        "unknown variant impl",
        _with(("variants", "triton"), {"impl": "tritonn"}),
        ["variants.triton.impl", "did you mean 'triton'"],
    ),
    (
        "baseline not a variant",
        _with(("baseline",), "opencv"),
        ["baseline", "'opencv' is not a declared variant"],
    ),
    (
        "pair names unknown variant",
        _with(("probes", "parity", "pairs"), [{"candidate": "trition", "reference": "torch"}]),
        ["probes.parity.pairs.0.candidate", "did you mean 'triton'"],
    ),
    (
        "missing probe file",
        _with(("probes", "parity", "images", "files"), ["nope/*.jpg"]),
        ["probes.parity.images.files.0", "no file matches"],
    ),
    (
        "bad shape",
        _with(("probes", "parity", "images", "sweep"), ["12y13"]),
        ["probes.parity.images.sweep.0", "HxW"],
    ),
    (
        "bad params",
        _with(("variants", "torch"), {"impl": "torch", "params": {"antialiass": True}}),
        ["variants.torch.params", "antialiass"],
    ),
    (
        "missing required",
        {k: v for k, v in small_gate().items() if k != "input"},
        ["input", "required key is missing"],
    ),
    (
        "unset env var",
        _with(("device",), "${PREPROCGATE_TEST_UNSET_VAR}"),
        ["device", "PREPROCGATE_TEST_UNSET_VAR is not set"],
    ),
    (
        "missing module",
        _with(("variants", "triton"), "no_such_module_xyz:Thing"),
        ["variants.triton.impl", "cannot be found"],
    ),
    *(
        (f"resize {case}", _with(("input", "resize"), value), ["input.resize", *expected])
        for case, value, expected in [
            ("unknown mode", "squash", ["'stretch', 'letterbox' or 'keep_ratio'"]),
            ("pad above 255", {"mode": "letterbox", "pad": 256}, ["pad:", "integers 0–255", "got 256"]),
            ("negative pad", {"mode": "letterbox", "pad": [0, -1, 0]}, ["pad:", "got -1"]),
            ("fractional pad", {"mode": "letterbox", "pad": 114.5}, ["pad:", "got 114.5"]),
            ("pad of two values", {"mode": "letterbox", "pad": [1, 2]}, ["pad", "one value or three (R, G, B), got 2"]),
            ("pad not a number", {"mode": "letterbox", "pad": "grey"}, ["pad:", "'mean' or integers", "got 'grey'"]),
            ("pad for stretch", {"mode": "stretch", "pad": 114}, ["pad does not apply to mode stretch"]),
            ("bad align", {"mode": "letterbox", "align": "middle"}, ["align", "'center' or 'top_left'"]),
            ("bad rounding", {"mode": "letterbox", "content_rounding": "ceil"}, ["content_rounding", "'round'"]),
            (
                "align for keep_ratio",
                {"mode": "keep_ratio", "short_side": 8, "max_size": 9, "align": "center"},
                ["align only apply to mode letterbox"],
            ),
            ("stride for letterbox", {"mode": "letterbox", "stride": 32}, ["stride only apply to mode keep_ratio"]),
            ("keep_ratio without sizes", {"mode": "keep_ratio", "short_side": 8}, ["needs short_side and max_size"]),
            ("zero short side", {"mode": "keep_ratio", "short_side": 0, "max_size": 9}, ["short_side", "than 0"]),
            ("zero stride", {"mode": "keep_ratio", "short_side": 8, "max_size": 9, "stride": 0}, ["stride"]),
            ("max below short", {"mode": "keep_ratio", "short_side": 800, "max_size": 600}, ["max_size (600)"]),
            ("unknown key", {"mode": "letterbox", "colour": 1}, ["input.resize.colour", "unknown key"]),
        ]
    ),
    ("bad target order", _with(("input", "target_order"), "GBR"), ["input.target_order", "'RGB' or 'BGR'"]),
    ("bad pixel scale", _with(("input", "pixel_scale"), 128), ["input.pixel_scale", "255 or 1"]),
    ("unknown interpolation", _with(("input", "interpolation"), "bicubic"), ["input.interpolation", "'nearest-exact'"]),
    (  # a variant that cannot compute the mode says so before anything runs
        "interpolation a variant cannot do",
        _with(("input", "interpolation"), "pillow_bilinear"),
        ["variants.torch.impl", "the torch variant cannot do input.interpolation 'pillow_bilinear'", "gate.yaml:"],
    ),
    (
        "pillow variant on a torch mode",
        {**_with(("input", "interpolation"), "nearest"), "variants": {"cv2": "cv2", "pil": "pillow"}},
        ["variants.pil.impl", "cannot do input.interpolation 'nearest' (it does: pillow_bilinear)"],
    ),
    (
        "missing template",
        _with(("report",), {"template": "missing.j2", "output_dir": "out"}),
        ["report.template", "not found"],
    ),
]


@pytest.mark.parametrize(("case", "spec", "expected"), BAD, ids=[b[0] for b in BAD])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_spec_exits_2_with_clear_message(
    tmp_path: Path, command: str, case: str, spec: dict, expected: list[str]
) -> None:
    path = write_gate(tmp_path, spec)
    code, output = _run([command, str(path)])
    assert code == 2, output
    assert "Traceback" not in output
    for fragment in expected:
        assert fragment in output
    assert not (tmp_path / "out").exists()


def test_yaml_syntax_error_points_at_line(tmp_path: Path) -> None:
    path = write_gate(tmp_path, "name: x\ninput: {size: [1, 2]\nvariants: {}\n")
    code, output = _run(["validate", str(path)])
    assert code == 2 and "invalid YAML" in output and "gate.yaml:" in output


def test_unknown_key_message_has_its_line(tmp_path: Path) -> None:
    text = "name: t\ninput:\n  size: 8x8\n  colour: red\nvariants: {torch: torch}\nbaseline: torch\n"
    code, output = _run(["validate", str(write_gate(tmp_path, text))])
    assert code == 2
    assert "gate.yaml:4: input.colour: unknown key" in output


def test_missing_spec_file() -> None:
    code, output = _run(["validate", "does/not/exist.yaml"])
    assert code == 2 and "file not found" in output


def test_interpolation_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "imgs" / "a.png"), np.zeros((5, 7, 3), np.uint8))
    spec = small_gate(name="${GATE_NAME:-fallback}", device="${DEV}")
    spec["probes"]["parity"]["images"]["files"] = ["imgs/*.png"]
    spec["report"] = {"output_dir": "${OUT_SUB:-reports_here}"}
    gate = load_gate(write_gate(tmp_path, spec), env={"DEV": "cpu"})
    assert gate.spec.name == "fallback" and gate.spec.device == "cpu"
    assert gate.probe_files == ((tmp_path / "imgs" / "a.png").resolve(),)
    assert gate.output_dir == (tmp_path / "reports_here").resolve()
    gate = load_gate(write_gate(tmp_path, spec), env={"DEV": "cpu", "GATE_NAME": "named"})
    assert gate.spec.name == "named"


def test_shorthands_parse() -> None:
    from preprocgate.spec import SweepCase, VariantSpec

    assert SweepCase.model_validate("10x20->30x40").output == (30, 40)
    assert SweepCase.model_validate("10 x 20").source == (10, 20)
    assert VariantSpec.model_validate("cv2").impl == "cv2"


def test_schema_command_prints_json_schema() -> None:
    import json

    code, output = _run(["schema"])
    assert code == 0
    schema = json.loads(output)
    assert {"name", "input", "variants", "baseline"} <= set(schema["required"])
    assert schema["additionalProperties"] is False


def test_input_identity_keeps_digests_of_specs_without_the_later_keys() -> None:
    """Stretch at pixel_scale 255 computes what it always did, so its cache keys and stored-baseline digest stay
    the same whether or not the spec spells out those defaults; other values change them."""
    from preprocgate.spec import InputSpec

    plain = InputSpec(size=(8, 8))
    assert set(plain.identity()) == {"size", "mean", "std", "source_order", "target_order"}
    assert InputSpec(size=(8, 8), resize="stretch", pixel_scale=255).identity() == plain.identity()
    for changed in (InputSpec(size=(8, 8), resize="letterbox"), InputSpec(size=(8, 8), pixel_scale=1)):
        assert changed.identity() != plain.identity()
    assert InputSpec(size=(8, 8), target_order="BGR").identity() != plain.identity()
    assert InputSpec(size=(8, 8), interpolation="bilinear").identity() == plain.identity()
    assert InputSpec(size=(8, 8), interpolation="nearest").identity() != plain.identity()


def test_every_interpolation_validates_for_the_variants_that_compute_it(tmp_path: Path) -> None:
    spec = small_gate()
    for mode in ("bilinear", "bilinear_antialias", "nearest", "nearest-exact"):
        spec["input"]["interpolation"] = mode
        spec["variants"] = {"cv2": "cv2", "torch": "torch", "triton": "triton"}
        code, output = _run(["validate", "--spec-only", str(write_gate(tmp_path, spec))])
        assert code == 0, (mode, output)
    spec["input"]["interpolation"] = "pillow_bilinear"
    spec["variants"] = {"cv2": "cv2", "pil": "pillow", "triton": "triton"}
    spec["probes"]["parity"]["pairs"] = [{"candidate": "triton", "reference": "pil", "thresholds": {"max_ulp": 0}}]
    code, output = _run(["validate", "--spec-only", str(write_gate(tmp_path, spec))])
    assert code == 0, output
