"""Variants against independent computations; the Triton kernel against torch, bit for bit, on the CPU."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from preprocgate.data.synthetic import make
from preprocgate.geometry import letterbox
from preprocgate.spec import InputSpec
from preprocgate.variants import VARIANTS, build_variant
from preprocgate.variants.triton_fused import load_kernel, torch_reference_arithmetic

CPU = torch.device("cpu")
CONFIG = InputSpec(size=(384, 384))
# the sweep: down/up-scaling, non-dyadic ratios, extreme upsampling, same size, 1×1, tall, wide, odd
SWEEP = [
    ((427, 640), (384, 384)),
    ((333, 500), (560, 560)),
    ((37, 53), (512, 512)),
    ((96, 96), (96, 96)),
    ((1, 1), (8, 8)),
    ((700, 41), (300, 90)),
    ((41, 700), (90, 300)),
    ((101, 37), (57, 131)),
    ((7, 13), (29, 31)),  # out_h + out_w <= 128: torch takes its channels-last kernel at any thread count
]


@pytest.fixture(params=[2, 1], ids=["2-threads", "1-thread"])
def threads(request: pytest.FixtureRequest) -> Iterator[int]:
    """torch's CPU kernel choice depends on the thread count: prove parity for both arithmetics."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def _variant(name: str, config: InputSpec = CONFIG, **params: object):
    return build_variant(VARIANTS.get(name), config, CPU, dict(params))


def test_triton_equals_torch_bit_for_bit_over_the_sweep(threads: int) -> None:
    triton_v, torch_v = _variant("triton"), _variant("torch")
    for (h, w), size in SWEEP:
        images = [make("natural", 0, h, w), make("noise", 1, h, w)]
        a, b = triton_v(images, size), torch_v(images, size)
        assert torch.isfinite(a).all()
        mismatches = int((a.view(torch.int32) != b.view(torch.int32)).sum())
        assert mismatches == 0, f"{(h, w)}->{size} at {threads} threads: {mismatches} elements differ"


IMAGENET_255 = {"mean": (123.675, 116.28, 103.53), "std": (58.395, 57.12, 57.375)}  # Detectron2's, in 0–255 units
# held out from the stretch sweep above: every resize mode, landscape and portrait, tiny, extreme and same-size
# sources, non-square canvases, a multi-shape keep_ratio batch; each case a batch of mixed shapes
MODE_SWEEP = [
    # on the CPU torch's kernel (so the arithmetic) follows the size it interpolates to, the content's: 80×80
    # canvases hold contents of H + W above 128 (generic kernel at 2 threads) and below (channels-last kernel)
    (
        "letterbox",
        {"size": (80, 80), "resize": "letterbox"},
        [(37, 53), (53, 37), (1, 1), (5, 200), (80, 80), (1, 50), (50, 1)],
    ),
    (
        "letterbox-yolox",
        {
            "size": (48, 80),
            "resize": {"mode": "letterbox", "align": "top_left", "content_rounding": "floor", "pad": [7, 114, 250]},
            "target_order": "BGR",
            "pixel_scale": 1,
            "mean": (0, 0, 0),
            "std": (1, 1, 1),
        },
        [(153, 544), (200, 31), (3, 2)],
    ),
    (
        "letterbox-scale-1",
        # 480×640 → content 45×60 (H + W ≤ 128) on a 100×60 canvas (160), 31×17 → 99×54 (153)
        {"size": (100, 60), "resize": {"mode": "letterbox", "pad": 0}, "pixel_scale": 1, **IMAGENET_255},
        [(480, 640), (31, 17)],
    ),
    (  # pad: mean (keep_ratio's default), 0 after normalising as Detectron2 pads
        "keep_ratio",
        {"size": (1, 1), "resize": {"mode": "keep_ratio", "short_side": 40, "max_size": 70}, "source_order": "RGB"},
        [(37, 53), (53, 37), (30, 200), (2, 3)],
    ),
    (
        "keep_ratio-stride-7-pixel-pad",
        {"size": (1, 1), "resize": {"mode": "keep_ratio", "short_side": 24, "max_size": 100, "stride": 7, "pad": 0}},
        [(9, 13), (100, 61)],
    ),
]


@pytest.mark.parametrize(("case", "config", "shapes"), MODE_SWEEP, ids=[c[0] for c in MODE_SWEEP])
def test_triton_equals_torch_bit_for_bit_in_every_resize_mode(threads: int, case: str, config: dict, shapes) -> None:
    config = InputSpec.model_validate(config)
    torch_v = _variant("torch", config)
    images = [make(("natural", "noise", "edges")[i % 3], i, h, w) for i, (h, w) in enumerate(shapes)]
    expected = torch_v(images)
    # the CUDA default division too (reciprocal and one FMA correction), here on values up to 255
    for division in ("auto", "reciprocal_fma") if case == "letterbox-scale-1" else ("auto",):
        got = _variant("triton", config, division=division)(images)
        assert got.shape == expected.shape and torch.isfinite(got).all()
        mismatches = int((got.view(torch.int32) != expected.view(torch.int32)).sum())
        assert mismatches == 0, f"{case}, {division} division, {threads} threads: {mismatches} elements differ"


def test_torch_variant_pads_and_places_the_resized_content() -> None:
    """Content region: plain F.interpolate of the image to the content size; elsewhere: the normalised pad."""
    config = InputSpec(size=(64, 64), resize={"mode": "letterbox", "pad": [10, 20, 30]}, source_order="RGB")
    image = make("natural", 2, 33, 50)
    g = letterbox((33, 50), (64, 64))  # content 42×64 at row 11
    (top, left), (ch, cw) = g.offset, g.content
    got = _variant("torch", config)([image])[0]
    mean, std = torch.tensor(config.mean).view(3, 1, 1), torch.tensor(config.std).view(3, 1, 1)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    content = F.interpolate(x, size=(ch, cw), mode="bilinear", align_corners=False)[0]
    assert torch.equal(got[:, top : top + ch, left : left + cw], (content / 255 - mean) / std)
    pad = (torch.tensor([10.0, 20.0, 30.0]).view(3, 1, 1) / 255 - mean) / std
    outside = torch.ones(64, 64, dtype=torch.bool)
    outside[top : top + ch, left : left + cw] = False
    assert outside.sum() == 64 * 64 - ch * cw > 0
    assert torch.equal(got[:, outside], pad.expand(3, 64, 64)[:, outside])


@pytest.mark.parametrize("name", ["cv2", "torch", "triton"])
def test_mean_pad_is_zero_after_normalising(name: str) -> None:
    """``pad: mean``: the content normalised as in stretch mode, every other element exactly +0.0 (Detectron2)."""
    config = InputSpec(size=(1, 1), resize={"mode": "keep_ratio", "short_side": 20, "max_size": 40, "stride": 16})
    images = [make("natural", 1, 30, 50), make("noise", 2, 50, 30)]  # contents 20×33 and 33×20, canvas 48×48
    got = _variant(name, config)(images)
    assert got.shape == (2, 3, 48, 48)
    for i, (ch, cw) in enumerate([(20, 33), (33, 20)]):
        stretched = _variant(name, InputSpec(size=(ch, cw)))([images[i]])[0]
        assert torch.equal(got[i, :, :ch, :cw], stretched)
        outside = torch.ones(48, 48, dtype=torch.bool)
        outside[:ch, :cw] = False
        assert torch.equal(got[i][:, outside].view(torch.int32), torch.zeros(3, int(outside.sum()), dtype=torch.int32))


@pytest.mark.parametrize("target", ["RGB", "BGR"])
def test_cv2_variant_letterboxes_as_ultralytics_does(target: str) -> None:
    """Against Ultralytics' own steps: cv2.resize of the content, then cv2.copyMakeBorder with the pad colour."""
    config = InputSpec(
        size=(96, 96), resize={"mode": "letterbox", "pad": [114, 0, 255]}, target_order=target, pixel_scale=1
    )
    image = make("natural", 6, 333, 500)  # BGR: content 64×96 at row 16
    g = letterbox((333, 500), (96, 96))
    (top, left), (ch, cw) = g.offset, g.content
    resized = cv2.resize(image, (cw, ch), interpolation=cv2.INTER_LINEAR)
    bottom, right = 96 - top - ch, 96 - left - cw
    boxed = cv2.copyMakeBorder(resized, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(255, 0, 114))
    if target == "RGB":
        boxed = boxed[..., ::-1]
    x = boxed.astype(np.float32)
    expected = ((x - np.float32(config.mean)) / np.float32(config.std)).transpose(2, 0, 1)
    np.testing.assert_array_equal(_variant("cv2", config)([image]).numpy()[0], expected)


@pytest.mark.parametrize(("case", "config", "shapes"), MODE_SWEEP, ids=[c[0] for c in MODE_SWEEP])
def test_cv2_agrees_with_torch_within_one_uint8_level(case: str, config: dict, shapes) -> None:
    """cv2 rounds its output to uint8 levels and interpolates in fixed point; the pad agrees exactly, the
    content within one uint8 level (docs/arithmetic.md)."""
    config = InputSpec.model_validate(config)
    images = [make("natural", i, h, w) for i, (h, w) in enumerate(shapes)]
    a, b = _variant("cv2", config)(images), _variant("torch", config)(images)
    level = 1 / (config.pixel_scale * min(config.std))
    assert a.shape == b.shape
    assert float((a - b).abs().max()) <= level
    # wherever both are the pad (or unresized content), they are equal; the rest is interpolation
    assert (a == b).float().mean() > 0.05


_DEFAULT_KERNELS = """
import json, sys, torch
from preprocgate.data.synthetic import make
from preprocgate.spec import InputSpec
from preprocgate.variants import VARIANTS, build_variant
sweep = json.loads(sys.argv[1])
out = {"capability": torch.backends.cpu.get_cpu_capability(), "mismatches": {}}
for threads in (2, 1):
    torch.set_num_threads(threads)
    for (h, w), size in sweep:
        config = InputSpec(size=tuple(size))
        batch = [make("natural", 1, h, w)]
        variants = [build_variant(VARIANTS.get(v), config, torch.device("cpu"), {}) for v in ("triton", "torch")]
        got, expected = (v(batch) for v in variants)
        out["mismatches"][f"{h}x{w}->{size[0]}x{size[1]} at {threads}"] = int((got != expected).sum())
print(json.dumps(out))
"""


def test_triton_equals_torch_on_torchs_default_cpu_kernels() -> None:
    """torch built without its AVX2/AVX512 code paths (or told ``ATEN_CPU_CAPABILITY=default``) contracts no FMAs:
    the generic order unfused, and on one thread or small outputs the channels-last order unfused (x86; the
    capability is fixed when torch loads, hence a fresh process)."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "TRITON_INTERPRET": "1"}
    sweep = json.dumps([SWEEP[0], SWEEP[2], SWEEP[5], SWEEP[8]])
    run = subprocess.run(
        [sys.executable, "-c", _DEFAULT_KERNELS, sweep], env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    if result["capability"] != "DEFAULT":
        pytest.skip(f"this torch does not honour ATEN_CPU_CAPABILITY=default ({result['capability']})")
    assert result["mismatches"] and not any(result["mismatches"].values()), result["mismatches"]


def test_wrong_arithmetic_is_detected() -> None:
    """The parity test can fail: forcing any other tap order leaves mismatches."""
    torch_v = _variant("torch")
    images = [make("noise", 0, 333, 500)]
    auto = torch_reference_arithmetic(CPU, (384, 384)).taps
    for arithmetic in ("generic", "channels_last", "unfused", "channels_last_unfused"):
        if arithmetic != auto:
            out = _variant("triton", arithmetic=arithmetic)(images)
            assert int((out != torch_v(images)).sum()) > 0, arithmetic


def _reference_normalise(rgb: np.ndarray, config: InputSpec) -> np.ndarray:
    x = rgb.astype(np.float32) / np.float32(255)
    return ((x - np.float32(config.mean)) / np.float32(config.std)).transpose(2, 0, 1)


def test_cv2_variant_is_the_production_numpy_path() -> None:
    image = make("natural", 3, 120, 90)
    expected = _reference_normalise(cv2.resize(image, (384, 384), interpolation=cv2.INTER_LINEAR)[..., ::-1], CONFIG)
    got = _variant("cv2")([image]).numpy()[0]
    np.testing.assert_array_equal(got, expected)


def test_torch_variant_matches_plain_torch_and_honours_antialias() -> None:
    image = make("natural", 4, 500, 300)
    x = torch.from_numpy(np.ascontiguousarray(image[..., ::-1])).permute(2, 0, 1)[None].float()
    for antialias in (False, True):
        ref = F.interpolate(x, size=(384, 384), mode="bilinear", align_corners=False, antialias=antialias)
        mean, std = torch.tensor(CONFIG.mean).view(1, 3, 1, 1), torch.tensor(CONFIG.std).view(1, 3, 1, 1)
        got = _variant("torch", antialias=antialias)([image])
        assert torch.equal(got, (ref / 255 - mean) / std)


@pytest.mark.parametrize("name", ["cv2", "torch", "triton"])
def test_rgb_source_order_gives_the_same_tensor(name: str) -> None:
    bgr = make("edges", 5, 50, 70)
    rgb_config = InputSpec(size=(32, 48), source_order="RGB")
    a = _variant(name, InputSpec(size=(32, 48)))([bgr])
    b = _variant(name, rgb_config)([np.ascontiguousarray(bgr[..., ::-1])])
    assert torch.equal(a, b)


def test_mixed_shapes_keep_their_order() -> None:
    images = [make("noise", i, *shape) for i, shape in enumerate([(30, 40), (50, 20), (30, 40)])]
    torch_v = _variant("torch")
    batch = torch_v(images, (16, 16))
    for i, image in enumerate(images):
        assert torch.equal(batch[i], torch_v([image], (16, 16))[0])


def test_bad_input_is_rejected() -> None:
    from preprocgate.errors import RunError

    with pytest.raises(RunError, match="expected uint8"):
        _variant("torch")([np.zeros((4, 4), np.uint8)])


def test_a_plugin_that_ignores_the_canvas_is_named() -> None:
    """A variant that resizes to input.size where the geometry asks for a letterboxed canvas is caught, by name."""
    from preprocgate.errors import RunError
    from preprocgate.variants.base import Preprocessor

    class IgnoresCanvas(Preprocessor):
        def run_batch(self, batch: np.ndarray, geometry) -> torch.Tensor:
            return torch.zeros((len(batch), 3, *geometry.content))

    config = InputSpec(size=(32, 32), resize="letterbox")
    with pytest.raises(RunError, match=r"IgnoresCanvas returned \(1, 3, 16, 32\).*expected \(1, 3, 32, 32\)"):
        IgnoresCanvas(config, CPU)([np.zeros((10, 20, 3), np.uint8)])


@pytest.mark.parametrize("std", [0.229, 0.224, 0.225, 0.7, 1 / 3, 57.375])
def test_reciprocal_fma_division_rounds_like_ieee_division(std: float) -> None:
    """The CUDA default's division, q = a·(1/b) corrected once by an exact FMA residual, equals a / b for a = 0
    and 2⁻¹⁰⁰ ≤ |a| ≤ 1, which holds every nonzero x − mean the kernel can form (docs/arithmetic.md). Sampled
    here; every float of that range is checked on CUDA by benchmarks/parity_cuda.py."""
    kernel = load_kernel(CPU)
    rng = np.random.default_rng(7)
    bits = rng.integers(0x0D800000, 0x3F800001, 1 << 18, dtype=np.int64).astype(np.int32)  # 2⁻¹⁰⁰ … 1
    bits[: 1 << 17] |= np.int32(-(1 << 31))  # and the negatives
    bits[-1] = 0
    a = torch.from_numpy(bits).view(torch.float32)
    b = np.float32(std)
    inv_b = np.float32(1) / b
    out = torch.empty_like(a)
    kernel.divide_kernel[(1,)](a, out, len(a), float(b), float(inv_b), DIV_FMA=True, BLOCK=len(a))
    expected = a / torch.tensor(b)
    assert torch.equal(out.view(torch.int32), expected.view(torch.int32))
    # the sample tells the correction from its absence: the bare reciprocal product differs from a / b
    assert int((a * torch.tensor(inv_b) != expected).sum()) > len(a) // 100


def test_triton_with_reciprocal_fma_division_and_fp16_output_equals_torch() -> None:
    images = [make("natural", 0, 427, 640), make("noise", 1, 333, 500)]
    torch_v = _variant("torch")
    triton_v = _variant("triton", division="reciprocal_fma")
    for image in images:
        expected = torch_v([image])
        assert torch.equal(triton_v([image]).view(torch.int32), expected.view(torch.int32))
        src = torch.from_numpy(image)[None].contiguous()
        half = torch.empty((1, 3, 384, 384), dtype=torch.float16)
        triton_v.launch(src, half)
        assert torch.equal(half.view(torch.int16), expected.half().view(torch.int16))


def test_readme_variant_example_follows_the_geometry_contract() -> None:
    """The plug-in example in README.md runs as printed: same canvas and pad as the built-ins, its own resize."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Adding a variant") :]
    namespace: dict = {}
    exec(re.search(r"```python\n(.*?)```", section, re.S).group(1), namespace)
    images = [make("natural", 0, 50, 30), make("noise", 1, 30, 50)]
    for config in (
        InputSpec(size=(40, 64), resize={"mode": "letterbox", "pad": [1, 2, 3]}, target_order="BGR"),
        InputSpec(size=(1, 1), resize={"mode": "keep_ratio", "short_side": 20, "max_size": 40, "stride": 16}),
    ):
        torch_v = _variant("torch", config)
        got, expected = namespace["NearestResize"](config, CPU)(images), torch_v(images)
        assert got.shape == expected.shape
        for i, g in enumerate(torch_v.plan(images)):
            (top, left), (ch, cw) = g.offset, g.content
            outside = torch.ones(g.canvas, dtype=torch.bool)
            outside[top : top + ch, left : left + cw] = False
            assert outside.any() and torch.equal(got[i][:, outside], expected[i][:, outside])
        assert not torch.equal(got, expected)  # nearest, not bilinear
