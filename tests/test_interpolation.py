"""input.interpolation: every mode of the fused kernel equals its reference bit for bit in the interpreter, in
every resize geometry; Pillow's uint8 values are reproduced before normalisation too. Images stay small (the
interpreter runs the kernel's Python), ratios do not: strong downscales, upscales, odd and mixed ratios."""

import itertools

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from preprocgate.data.synthetic import make
from preprocgate.spec import InputSpec
from preprocgate.variants import VARIANTS, build_variant, filters
from tests.helpers.realdata import requires_data

Image = pytest.importorskip("PIL.Image")
CPU = torch.device("cpu")
# (source, output): 13× and 8× downscales, upscales, mixed (one axis down, one up), odd ratios, same size, 1×1
SWEEP = [
    ((160, 120), (12, 9)),
    ((96, 200), (12, 25)),
    ((37, 53), (64, 48)),
    ((200, 41), (30, 90)),
    ((41, 101), (57, 33)),
    ((7, 13), (29, 31)),
    ((24, 24), (24, 24)),
    ((1, 1), (5, 4)),
]
IMAGENET_255 = {"mean": (123.675, 116.28, 103.53), "std": (58.395, 57.12, 57.375)}
GEOMETRIES = [
    ("stretch", {"size": (20, 20)}),
    ("letterbox", {"size": (40, 32), "resize": "letterbox"}),
    (
        "letterbox-yolox-bgr",
        {
            "size": (24, 40),
            "resize": {"mode": "letterbox", "align": "top_left", "content_rounding": "floor", "pad": [7, 114, 250]},
            "target_order": "BGR",
            "pixel_scale": 1,
            **IMAGENET_255,
        },
    ),
    ("keep_ratio", {"size": (1, 1), "resize": {"mode": "keep_ratio", "short_side": 20, "max_size": 36}}),
]
GEOMETRY_SHAPES = [(150, 110), (23, 61), (61, 23), (2, 3)]


def _variant(name: str, config: InputSpec, **params: object):
    return build_variant(VARIANTS.get(name), config, CPU, dict(params))


def _mismatches(a: torch.Tensor, b: torch.Tensor) -> int:
    assert a.shape == b.shape and torch.isfinite(a).all()
    return int((a.view(torch.int32) != b.view(torch.int32)).sum())


def _images(shape: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    return [make("natural", seed, *shape), make("noise", seed + 1, *shape)]


def _reference(mode: str) -> str:
    return "pillow" if mode == "pillow_bilinear" else "torch"


MODES = ["nearest", "nearest-exact", "bilinear_antialias", "pillow_bilinear"]


@pytest.mark.parametrize("mode", MODES)
def test_triton_equals_the_reference_over_the_sweep(mode: str) -> None:
    """torch picks these kernels whatever its thread count (unlike bilinear's), so one count covers them."""
    config = InputSpec(size=(16, 16), interpolation=mode)
    fused, reference = _variant("triton", config), _variant(_reference(mode), config)
    for source, size in SWEEP:
        images = _images(source)
        bad = _mismatches(fused(images, size), reference(images, size))
        assert bad == 0, f"{mode}: {source}->{size}: {bad} elements differ"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("case", "config"), GEOMETRIES, ids=[g[0] for g in GEOMETRIES])
def test_triton_equals_the_reference_in_every_resize_geometry(mode: str, case: str, config: dict) -> None:
    config = InputSpec.model_validate({**config, "interpolation": mode})
    images = [make(("natural", "noise", "edges")[i % 3], i, *s) for i, s in enumerate(GEOMETRY_SHAPES)]
    expected = _variant(_reference(mode), config)(images)
    split = case == "letterbox-yolox-bgr" or mode == "pillow_bilinear"  # the split reciprocal (SPLIT) checked too
    for division in ("auto", "reciprocal_fma") if split else ("auto",):
        fused = _variant("triton", config, division=division)
        assert _mismatches(fused(images), expected) == 0, f"{mode}, {case}, {division} division"
        engaged = {p.constexprs["SPLIT"] for p in fused._launches.values()}
        assert engaged == {mode in ("nearest", "nearest-exact", "pillow_bilinear") and division == "reciprocal_fma"}


def test_the_split_reciprocal_rounds_every_normalised_uint8_value_as_ieee_division() -> None:
    """The integer-valued modes divide their values 0…255 by pixel_scale and std through a reciprocal in two parts
    where that is exact for all of them, checked per normalisation in exact arithmetic: it holds for the usual
    normalisations, a pad colour, and 200 random ones. No divisor for which it fails is known (every float32 in
    [1, 2) against 40 random divisors, and quotients made to lie next to a rounding midpoint: benchmarks/RESULTS.md),
    so the check guards against the unknown; a divisor 0 or ∞ is refused, and keeps the IEEE-exact divisions."""
    from preprocgate.variants.triton_fused import split_division_exact

    cases = [(255.0, False, ((0.485, 0.229), (0.456, 0.224), (0.406, 0.225)), ()), (1.0, True, ((0.0, 1.0),) * 3,
             (114.0, 114.0, 114.0))]  # fmt: skip
    rng = np.random.default_rng(0)
    for scale, mean, std in rng.uniform((0.5, -2.0, 0.01), (1000.0, 2.0, 300.0), (200, 3)).astype(np.float32):
        cases.append((float(scale), bool(scale > 500), ((float(mean), float(std)),), (float(mean) * 100,)))
    assert all(split_division_exact(*case) for case in cases)
    assert not split_division_exact(0.0, False, ((0.0, 1.0),), ())
    assert not split_division_exact(255.0, False, ((0.0, float("inf")),), ())
    assert not split_division_exact(255.0, False, ((0.0, 0.0),), ())


@pytest.mark.parametrize("mode", ["bilinear", *MODES])
def test_small_tiles_skip_pad_tiles_and_read_unmasked_at_every_edge(mode: str) -> None:
    """The kernel reads without masks (indices clamped into the source) and skips tiles wholly in the pad. With
    2 × 8 tiles on a letterbox whose content is a band in the middle, whole tiles lie in the pad above and below,
    tiles straddle the content's edges, and the last column of tiles runs past the output: all equal the reference.
    """
    config = InputSpec(size=(19, 12), resize="letterbox", interpolation=mode)
    images = [make("noise", 7, 10, 30), make("edges", 8, 30, 9)]  # wide: pad above and below; tall: left and right
    expected = _variant(_reference(mode), config)(images)
    got = _variant("triton", config, rows=2, block=8)(images)
    assert _mismatches(got, expected) == 0


@pytest.mark.parametrize(
    ("mode", "arithmetic"),
    [("bilinear", "generic"), ("bilinear", "unfused"), ("bilinear_antialias", "auto"), ("pillow_bilinear", "auto")],
)
@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_reusing_rows_equals_the_tiled_kernel(mode: str, arithmetic: str, resize: str) -> None:
    """``reuse_rows`` runs a program's output rows in sequence and keeps each source row's horizontal pass for
    the next rows: on an upscale (neighbours share both source rows), a same-size resize (the next row's first
    is this row's second), a downscale (bilinear: some rows share one; the separable modes' wider vertical
    windows take the tiled kernel), and the extreme upscale of a single pixel, in runs of 5 rows (the last one
    past the output's 19), it equals the tiled kernel, which equals the reference (the tests
    above, and tests/test_variants.py for bilinear)."""
    config = InputSpec(size=(19, 12), resize=resize, interpolation=mode)
    stretch = resize == "stretch"
    # (10, 60): rows up, columns 5× down (the separable modes' horizontal taps loop at run time), but its
    # letterbox content is 2 rows: down
    cases = [
        ((10, 60), (19, 12), stretch),
        ((24, 24), (24, 24), True),
        ((61, 23), (19, 12), False),
        ((1, 1), (19, 12), True),
    ]
    for source, size, reused in cases:
        reused = reused or mode == "bilinear"
        images = [make("noise", 3, *source), make("natural", 4, *source)]
        expected = _variant("triton", config, arithmetic=arithmetic)(images, size)
        fused = _variant("triton", config, arithmetic=arithmetic, reuse_rows=True, rows=5)
        assert _mismatches(fused(images, size), expected) == 0, (source, size)
        kernels = {plan.jit.fn.__name__ for plan in fused._launches.values()}
        assert kernels == {"rows_kernel" if reused else "preprocess_kernel"}, (source, size)


def test_the_nearest_modes_differ_as_torch_names_them() -> None:
    """nearest is floor(dst·scale) (OpenCV's INTER_NEAREST), nearest-exact floor((dst + 0.5)·scale): on a 3×
    downscale they pick different source pixels, and each equals its cv2 flag."""
    image = make("noise", 3, 30, 30)
    outputs = {}
    for mode, flag in (("nearest", cv2.INTER_NEAREST), ("nearest-exact", cv2.INTER_NEAREST_EXACT)):
        config = InputSpec(size=(10, 10), interpolation=mode, mean=(0, 0, 0), std=(1, 1, 1), pixel_scale=1)
        outputs[mode] = _variant("triton", config)([image])
        assert torch.equal(outputs[mode], _variant("cv2", config)([image]))
        expected = cv2.resize(image, (10, 10), interpolation=flag)[..., ::-1].transpose(2, 0, 1).astype(np.float32)
        assert np.array_equal(outputs[mode][0].numpy(), expected)
    assert not torch.equal(outputs["nearest"], outputs["nearest-exact"])


@pytest.mark.parametrize(("source", "size"), [((160, 120), (12, 9)), ((200, 41), (30, 90)), ((41, 200), (90, 30))])
def test_pillow_uint8_values_are_reproduced_before_normalisation(source, size) -> None:
    """With mean 0, std 1 and pixel_scale 1 the output is the resized uint8 value itself: the kernel's equals
    Pillow's Image.resize, in both of Pillow's pass orders (the middle case runs its vertical pass first)."""
    config = InputSpec(size=size, interpolation="pillow_bilinear", mean=(0, 0, 0), std=(1, 1, 1), pixel_scale=1)
    image = make("noise", 5, *source)
    got = _variant("triton", config)([image])[0].numpy().transpose(1, 2, 0)[..., ::-1]
    expected = np.asarray(Image.fromarray(image).resize(size[::-1], Image.Resampling.BILINEAR))
    assert np.array_equal(got, expected.astype(np.float32))
    # the two pass orders differ here, so the order is part of what is reproduced
    vertical_first = filters.pillow_vertical_first(source, size)
    assert np.array_equal(filters.pillow_reference(image, size, vertical_first), expected)
    assert not np.array_equal(filters.pillow_reference(image, size, not vertical_first), expected)


def test_pillow_clamp_is_left_out_only_where_it_cannot_change_a_value() -> None:
    """The kernel leaves out Resample.c's clamp to 0…255 where ``pillow_clamp_free`` proves it a no-op: every
    bilinear table, downscales and upscales (each row of weights sums to 1 within half a unit a tap). A negative
    weight (a sum can fall below 0) or a row summing past 256/255 (255 could round up to 256) keeps it; at the
    bound itself the largest sum of uint8 samples still stays below 256 units."""
    one = 1 << filters.PILLOW_PRECISION_BITS
    for n_in, n_out in [(640, 512), (480, 512), (4000, 320), (7, 29), (13, 1), (2, 5), (41, 90)]:
        weights = filters.pillow_bilinear(n_in, n_out)[1]
        assert filters.pillow_clamp_free(weights), (n_in, n_out)
        assert abs(weights.astype(np.int64).sum(axis=1) - one).max() <= weights.shape[1]
    bound = (256 * one - one // 2 - 1) // 255  # the largest row sum with 255·sum + half < 256 units
    assert filters.pillow_clamp_free(np.array([[bound - 5, 5]], dtype=np.int32))
    assert not filters.pillow_clamp_free(np.array([[bound - 4, 5]], dtype=np.int32))
    assert not filters.pillow_clamp_free(np.array([[one + 7, -7]], dtype=np.int32))
    # the launch follows it: Pillow's bilinear runs without the clamp, and gives Pillow's values (test above)
    config = InputSpec(size=(12, 9), interpolation="pillow_bilinear")
    fused = _variant("triton", config)
    fused([make("noise", 5, 160, 120)])
    assert [p.constexprs["CLAMP"] for p in fused._launches.values()] == [False]


def test_torch_antialias_weights_are_torch_cpu_weights() -> None:
    """One-hot rows through torch's CPU antialias kernel give its weights exactly (1·w plus zeros): the table
    equals them (the CUDA formula's table is checked on a GPU: benchmarks/geometry_cuda.py)."""
    for n_in, n_out in [(640, 48), (427, 64), (41, 90), (300, 23), (999, 37), (5, 3)]:
        eye = torch.eye(n_in).reshape(1, n_in, 1, n_in)
        weights = F.interpolate(eye, size=(1, n_out), mode="bilinear", antialias=True, align_corners=False)
        first, table, counts = filters.torch_antialias(n_in, n_out, "cpu")
        mine = np.zeros((n_out, n_in), dtype=np.float32)
        for i in range(n_out):
            mine[i, first[i] : first[i] + counts[i]] = table[i, : counts[i]]
        assert np.array_equal(mine.view(np.int32), weights[0, :, 0, :].T.numpy().view(np.int32)), (n_in, n_out)


def _dense(first: np.ndarray, weights: np.ndarray, n_in: int) -> np.ndarray:
    """The table as an output × source matrix (taps past the source dropped: their weights are 0)."""
    dense = np.zeros((len(first), n_in + weights.shape[1]), dtype=weights.dtype)
    for i, start in enumerate(first):
        dense[i, start : start + weights.shape[1]] = weights[i]
    assert not dense[:, n_in:].any()
    return dense[:, :n_in]


@pytest.mark.parametrize(("n_in", "n_out"), [(640, 512), (7, 29), (13, 1), (2, 5), (4000, 320), (41, 90)])
def test_tables_within_the_source_keep_every_weight_in_place(n_in: int, n_out: int) -> None:
    """The kernel reads every tap unmasked: after ``within_source`` the taps lie inside the source, each real
    weight still multiplies the same source index (the zeros moved in front of it), and the first real tap (where
    torch's CPU accumulation restarts its count) moved by the returned shift."""
    for table in (filters.torch_antialias(n_in, n_out, "cuda"), filters.pillow_bilinear(n_in, n_out)):
        first, weights, counts = table
        (moved_first, moved, moved_counts), shift = filters.within_source(table, n_in)
        width = moved.shape[1]
        assert (moved_first >= 0).all() and (moved_first + width <= n_in).all()
        assert np.array_equal(moved_counts, counts)
        assert np.array_equal(_dense(moved_first, moved, n_in), _dense(first, weights, n_in))
        assert np.array_equal(moved[np.arange(len(first)), shift], weights[:, 0])
        assert all(not moved[i, :s].any() for i, s in enumerate(shift))
        if n_out == 512:
            assert shift.any(), "the last outputs' padded taps ran past the source: the case this exists for"


def test_fma_f32_rounds_once() -> None:
    """The CUDA tables' FMAs: a·b + c rounded once to float32, where rounding through float64 first would differ
    (a value just above a float32 midpoint), and ties go to even."""
    from fractions import Fraction

    one, ulp = np.float32(1), 2.0**-23
    above_midpoint = Fraction(1) + Fraction(1, 2**24) + Fraction(1, 2**60)
    assert np.float32(float(above_midpoint)) == one  # the double-rounding trap
    assert filters.round_f32(above_midpoint) == np.float32(1 + ulp)
    assert filters.round_f32(Fraction(1) + Fraction(1, 2**24)) == one  # tie → even
    assert filters.round_f32(Fraction(1) + Fraction(3, 2**24)) == np.float32(1 + 2 * ulp)
    # 1 + 2⁻¹² squared minus 1: the product's 2⁻²⁴ term survives only without rounding it first
    a = np.float32(1 + 2.0**-12)
    assert filters.fma_f32(a, a, np.float32(-1)) == np.float32(2.0**-11 + 2.0**-24)
    assert a * a - one == np.float32(2.0**-11)


def test_cuda_weights_differ_from_a_rounded_center_exactly_where_it_is_inexact() -> None:
    """nvcc keeps ``scale·(i + 0.5)`` unrounded inside its FMAs: on a dyadic ratio (500 → 320: 1.5625, products
    exact) the CUDA table equals the one with a rounded center, on 333 → 320 it does not."""
    fused = filters.torch_antialias(500, 320, "cuda")
    rounded = filters.torch_antialias_cuda(500, 320, frozenset())
    assert all(np.array_equal(a, b) for a, b in zip(fused, rounded, strict=True))
    fused = filters.torch_antialias(333, 320, "cuda")
    rounded = filters.torch_antialias_cuda(333, 320, frozenset())
    assert np.array_equal(fused[0], rounded[0]) and not np.array_equal(fused[1], rounded[1])


def test_cv2_takes_the_closest_flag_and_an_explicit_one_wins() -> None:
    image = make("natural", 2, 60, 80)
    for mode, flag in (("bilinear_antialias", cv2.INTER_AREA), ("pillow_bilinear", cv2.INTER_AREA)):
        config = InputSpec(size=(15, 20), interpolation=mode, mean=(0, 0, 0), std=(1, 1, 1), pixel_scale=1)
        expected = cv2.resize(image, (20, 15), interpolation=flag)[..., ::-1].transpose(2, 0, 1).astype(np.float32)
        assert np.array_equal(_variant("cv2", config)([image])[0].numpy(), expected)
        linear = cv2.resize(image, (20, 15), interpolation=cv2.INTER_LINEAR)[..., ::-1].transpose(2, 0, 1)
        assert np.array_equal(_variant("cv2", config, interpolation="linear")([image])[0].numpy(), linear)


@requires_data  # the gate's probe photos are the real ones
def test_the_pillow_gate_validates_and_pairs_the_kernel_with_pillow() -> None:
    from pathlib import Path

    from click.testing import CliRunner

    from preprocgate.cli import cli
    from preprocgate.spec import load_gate

    path = Path(__file__).resolve().parents[1] / "gates" / "coco128-pillow.yaml"
    result = CliRunner().invoke(cli, ["validate", "--spec-only", str(path)])
    assert result.exit_code == 0, result.output
    spec = load_gate(path, check_inputs=False).spec
    assert spec.input.interpolation == "pillow_bilinear" and spec.baseline == "cv2"
    pair = spec.probes.parity.pairs[0]
    assert (pair.candidate, pair.reference, pair.thresholds.max_ulp) == ("triton", "pil", 0)


def test_cuda_launch_defaults_follow_the_sweeps() -> None:
    """On CUDA, bilinear rows that are not downscaled or barely (to 9/10 of the source's rows) take rows_kernel
    (8 × 128, one warp: faster there), other downscales the tiled kernel (1 × 128; with 32-bit words faster from
    480 → 384 rows down on the H100); the separable
    modes take rows_kernel wherever it computes them (faster on the H100), else like nearest 1 × 256 on two
    warps; a variant's own params win, and rows asked for a run of reused rows do not leak into the tiled kernel.
    The interpreter never reuses rows unless asked."""
    from preprocgate.variants.triton_fused import launch_shape

    def shape(**kw):
        base = dict(cuda=True, bilinear=True, reusable=True, rows_kept=512 / 480, output=(512, 512))
        params = dict(reuse_rows=None, rows=None, block=None, num_warps=None)
        return launch_shape(**{**base, **params, **kw})

    assert shape() == (True, 8, 128, 1)
    assert shape(rows_kept=1.0) == shape(rows_kept=0.9) == (True, 8, 128, 1)
    assert shape(rows_kept=312 / 480) == shape(rows_kept=384 / 480) == (False, 1, 128, 1)
    assert shape(rows_kept=640 / 1080) == shape(rows_kept=640 / 3000) == (False, 1, 128, 1)
    assert shape(bilinear=False, reusable=False) == (False, 1, 256, 2)  # nearest
    assert shape(bilinear=False, separable=True, reusable=False) == (False, 1, 128, 1)  # a letterbox's separable
    assert shape(bilinear=False) == shape(bilinear=False, rows_kept=0.5) == (True, 8, 128, 1)  # separable
    assert shape(bilinear=False, reuse_rows=True, rows=32) == (True, 32, 128, 1)
    assert shape(reuse_rows=False) == (False, 1, 128, 1)
    assert shape(rows_kept=0.5, reuse_rows=True, rows=16, reusable=False) == (False, 1, 128, 1)
    assert shape(rows=2, block=64, num_warps=4, reuse_rows=False) == (False, 2, 64, 4)
    assert shape(cuda=False)[0] is False
    assert shape(cuda=False, reuse_rows=True, rows=5) == (True, 5, 512, 1)


@pytest.mark.parametrize("mode", ["bilinear", "bilinear_antialias", "pillow_bilinear"])
def test_source_read_as_words_equals_one_load_per_byte(mode: str) -> None:
    """``words`` reads the source as aligned 64-bit words and picks each byte out, at every alignment of a
    pixel in its word (a 3-byte pixel starts at each of the 8 byte offsets), up to the source's last byte (its
    last word clamped): the same values as a load per byte, on both kernels (tiled and rows_kernel), with
    channels swapped, and on a source that is not 8-byte aligned (bytes then, as its plan says). Pillow's
    vertical-first passes (one source column here) read bytes: their first pass runs down a column."""
    from preprocgate.geometry import plan

    cases = [((24, 40), (19, 32), "stretch"), ((16, 24), (21, 21), "letterbox"), ((2, 8), (5, 7), "stretch")]
    cases += [((8, 1), (5, 3), "stretch"), ((12, 45), (10, 36), "stretch")]  # rows of 135 bytes: 3 taps
    for source, size, resize in cases:
        config = InputSpec(size=size, resize=resize, interpolation=mode, target_order="BGR")
        images = np.stack([make("noise", 5, *source), make("natural", 6, *source)])
        geometry = plan(source, size, config.resize)
        engaged = mode != "pillow_bilinear" or not filters.pillow_vertical_first(source, geometry.content)
        expected = torch.empty((2, 3, *size))
        _variant("triton", config).launch(torch.from_numpy(images), expected, geometry)
        with pytest.raises(ValueError, match="word_bits must be 32 or 64"):
            _variant("triton", config, word_bits=16)
        # bilinear's pixel pairs also from 32-bit words (word_bits 32: WORDS 2)
        for reuse_rows, bits in itertools.product((False, True), (64, 32) if mode == "bilinear" else (64,)):
            fused = _variant("triton", config, words=True, reuse_rows=reuse_rows, word_bits=bits)
            got = torch.empty_like(expected)
            fused.launch(torch.from_numpy(images), got, geometry)
            assert _mismatches(got, expected) == 0, (source, size, reuse_rows, bits)
            words = engaged * (2 if bits == 32 else 1)
            assert [p.constexprs["WORDS"] for p in fused._launches.values()] == [words]
            shifted = torch.zeros(images.size + 1, dtype=torch.uint8)[1:].view(images.shape)
            shifted.copy_(torch.from_numpy(images))
            fused.launch(shifted, got, geometry)
            assert _mismatches(got, expected) == 0
            assert [p.constexprs["WORDS"] for p in fused._launches.values()] == [words, 0]
