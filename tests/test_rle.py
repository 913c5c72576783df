"""COCO RLE computed in torch (the path masks on a GPU take) gives pycocotools' own strings, byte for byte."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from preprocgate.functional import rle
from preprocgate.functional.coco import EncodedMasks, encode_masks
from preprocgate.functional.masks import UpsampledMasks
from preprocgate.triton_modules import interpreted


def pycocotools_strings(masks: np.ndarray) -> list[str]:
    if len(masks) == 0:
        return []
    return [
        r["counts"].decode() for r in mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    ]


def edge_cases() -> np.ndarray:
    rng = np.random.default_rng(1)
    masks = rng.random((7, 37, 53)) < 0.5
    masks[0] = False  # one run of zeros
    masks[1] = True  # an empty run of zeros, then ones
    masks[2] = rng.random((37, 53)) < 0.01  # sparse: long runs, large second differences
    masks[3, :, :20] = True  # column-major order: a block of whole columns is one run
    masks[3, :, 20:] = False
    masks[4] = False
    masks[4, -1, -1] = True  # the last pixel alone
    masks[5] = rng.random((37, 53)) < 0.99  # dense: runs of one zero
    masks[6] = np.tile(np.arange(53) % 2 == 0, (37, 1))  # alternate columns: every run 37 long
    return masks


def test_run_lengths_are_cocos_uncompressed_counts() -> None:
    counts, per_mask = rle.run_lengths([torch.from_numpy(edge_cases())])
    split = np.split(counts.numpy(), np.cumsum(per_mask.numpy())[:-1])
    assert split[0].tolist() == [37 * 53]
    assert split[1].tolist() == [0, 37 * 53]
    assert split[3].tolist() == [0, 37 * 20, 37 * 33]
    assert split[4].tolist() == [37 * 53 - 1, 1]
    assert split[6].tolist() == [0] + [37] * 53
    assert all(int(s.sum()) == 37 * 53 for s in split)


def test_strings_equal_pycocotools_on_edge_cases_and_random_masks() -> None:
    masks = edge_cases()
    assert rle.encode(torch.from_numpy(masks)) == pycocotools_strings(masks)
    rng = np.random.default_rng(7)
    for _ in range(60):
        k, h, w = (int(v) for v in rng.integers(1, [5, 30, 30]))
        random = rng.random((k, h, w)) < rng.random()
        assert rle.encode(torch.from_numpy(random)) == pycocotools_strings(random)


def test_one_encoding_for_a_batch_of_images_of_different_sizes() -> None:
    """Masks of several images laid end to end: a run never continues across a mask's or an image's border."""
    rng = np.random.default_rng(5)
    shapes = [(3, 9, 14), (0, 5, 5), (2, 14, 9), (1, 1, 1), (4, 6, 6)]
    batches = [rng.random(s) < 0.5 for s in shapes]
    batches[2][:] = True  # all-set masks following others: the border must not merge their runs
    batches[4][:2] = False
    assert rle.encode_many([torch.from_numpy(m) for m in batches]) == [pycocotools_strings(m) for m in batches]
    assert rle.encode_many([torch.zeros((0, 3, 3), dtype=torch.bool)]) == [[]]


def json_bodies(strings: list[str]) -> list[bytes]:
    """Each string as ``json.dumps`` writes it, without its quotes."""
    return [json.dumps(c)[1:-1].encode("ascii") for c in strings]


def test_strings_escaped_for_json_beside_them() -> None:
    """``encode_many_json``: the same strings, and each as JSON writes it (backslashes doubled), per image."""
    rng = np.random.default_rng(11)
    batches = [edge_cases(), rng.random((0, 4, 4)) < 0.5, rng.random((3, 60, 80)) < 0.02]  # sparse: "\\" in it
    tensors = [torch.from_numpy(m) for m in batches]
    got = rle.encode_many_json(tensors)
    assert [strings for strings, _ in got] == rle.encode_many(tensors)
    assert all(isinstance(text, memoryview) for _, texts in got for text in texts)  # views, not copies
    texts = [[bytes(text) for text in image] for _, image in got]
    assert texts == [json_bodies(strings) for strings, _ in got]
    assert any(b"\\\\" in text for image in texts for text in image)  # the case that matters is there
    assert rle.encode_many_json([torch.zeros((0, 3, 3), dtype=torch.bool)]) == [([], [])]


def test_counts_needing_every_group() -> None:
    """A 3000×4000 mask with one set pixel at either end: counts near 2²⁴ and negative second differences."""
    masks = np.zeros((3, 3000, 4000), dtype=bool)
    masks[0, -1, -1] = True
    masks[1, 0, 0] = True
    masks[2, 1500, :] = True
    assert rle.encode(torch.from_numpy(masks)) == pycocotools_strings(masks)


def test_encode_masks_gives_the_same_records_on_every_path() -> None:
    masks = edge_cases()
    expected = encode_masks(masks)
    assert encode_masks(torch.from_numpy(masks)) == expected
    assert encode_masks(EncodedMasks.of(torch.from_numpy(masks))) == expected
    decoded = mask_utils.decode([{**r, "counts": r["counts"].encode()} for r in expected])
    np.testing.assert_array_equal(decoded.transpose(2, 0, 1), masks)
    assert encode_masks(torch.zeros((0, 37, 53), dtype=torch.bool)) == []
    assert rle.encode(torch.zeros((0, 4, 4), dtype=torch.bool)) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: the path GPU masks take")
def test_strings_on_cuda_equal_the_hosts() -> None:
    masks = edge_cases()
    assert rle.encode(torch.from_numpy(masks).cuda()) == pycocotools_strings(masks)
    other = masks[:3, :20, :31]
    expected = [pycocotools_strings(masks), pycocotools_strings(other)]
    assert rle.encode_many([torch.from_numpy(masks).cuda(), torch.from_numpy(other).cuda()]) == expected
    got = rle.encode_many_json([torch.from_numpy(masks).cuda(), torch.from_numpy(other).cuda()])
    assert [(strings, [bytes(t) for t in texts]) for strings, texts in got] == [
        (strings, json_bodies(strings)) for strings in expected
    ]


@pytest.mark.skipif(
    not torch.cuda.is_available() or interpreted(),
    reason="needs CUDA and compiled kernels: tests/conftest.py sets TRITON_INTERPRET=1 unless it is set "
    "(benchmarks/gpu_session.sh's compiled step runs this with TRITON_INTERPRET=0)",
)
def test_the_compiled_kernel_on_cuda_equals_the_torch_path() -> None:
    """The dump's path on a GPU: the compiled kernels (the interpreter's are checked at the end of this file) give
    the torch path's counts and bytes, and the strings are pycocotools'."""
    masks = edge_cases()
    batches = [torch.from_numpy(masks).cuda(), torch.from_numpy(masks[:3, :20, :31]).cuda()]
    runs = rle.run_lengths(batches, kernel=True)
    assert all(torch.equal(a, b) for a, b in zip(runs, rle.run_lengths(batches, kernel=False), strict=True))
    assert rle.encode_many(batches) == [pycocotools_strings(m.cpu().numpy()) for m in batches]
    assert rle.kernel_agrees(torch.device("cuda"))  # the compiled character kernels pass their own check
    generator = torch.Generator(device="cuda").manual_seed(5)
    logits = torch.randn((100, 1, 60, 80), generator=generator, device="cuda")
    blobs = torch.nn.functional.interpolate(logits, size=(480, 640), mode="bilinear")[:, 0] > 0  # ~2 M runs
    counts, per_mask = rle.run_lengths([blobs, *batches])
    expected_runs = rle.run_lengths([blobs, *batches], kernel=False)
    assert torch.equal(counts, expected_runs[0]) and torch.equal(per_mask, expected_runs[1])
    for escaped in (False, True):
        got = rle.strings(counts, per_mask, escaped=escaped, kernel=True)
        expected = rle.strings(counts, per_mask, escaped=escaped, kernel=False)
        assert got.plain == expected.plain and torch.equal(got.data, expected.data)
        assert torch.equal(got.lengths, expected.lengths)


@pytest.mark.skipif(
    not torch.cuda.is_available() or interpreted(),
    reason="needs CUDA and compiled kernels (benchmarks/gpu_session.sh's compiled step)",
)
def test_on_cuda_masks_drawn_from_their_logits_as_the_rle_reads_them_are_torch_s() -> None:
    """The dump's path for RF-DETR's masks on a GPU: the compiled kernel that draws each pixel from the logits as
    it reads it gives the counts of the masks ``F.interpolate(...) > 0`` draws on the same GPU, for logits near 0
    (where any other rounding flips pixels) at RF-DETR's 78×78, upscaled to photo sizes and downscaled."""
    assert rle.upsampled_agrees(torch.device("cuda"))
    generator = torch.Generator(device="cuda").manual_seed(2)
    batches = [
        UpsampledMasks(torch.randn((k, h, w), generator=generator, device="cuda") * scale, height, width)
        for k, (h, w), (height, width), scale in [
            (100, (78, 78), (480, 640), 1e-3), (30, (78, 78), (427, 640), 1.0), (7, (78, 78), (33, 70), 1e-4),
            (5, (13, 11), (13, 11), 1.0), (0, (78, 78), (64, 64), 1.0),
        ]
    ]  # fmt: skip
    drawn = [m.drawn() for m in batches]
    got = rle.run_lengths(batches)
    expected = rle.run_lengths(drawn, kernel=False)
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
    assert rle.encode_many(batches) == rle.encode_many(drawn)


@pytest.mark.skipif(not interpreted(), reason="Triton runs compiled in this process (TRITON_INTERPRET=0)")
def test_the_kernel_draws_masks_from_their_logits_where_it_reads_them() -> None:
    """In Triton's interpreter, on logits of a few bits and sizes whose ratios are powers of two (every sum and
    product exact, so the CPU's ``F.interpolate`` and the CUDA arithmetic the kernel follows agree, zeros
    included): masks upscaled, downscaled, stretched one way only, taller than three tiles (each tile's first row
    compared with the last of the tile above), drawn at their own size (``logits > 0``), an image without masks,
    and plain masks beside them give the counts and strings of the drawn masks."""
    generator = torch.Generator().manual_seed(4)

    def logits(k: int, h: int, w: int) -> torch.Tensor:
        return torch.randint(-8, 9, (k, h, w), generator=generator).float() / 4

    batches = [
        UpsampledMasks(logits(3, 13, 11), 52, 44),
        UpsampledMasks(logits(2, 40, 24), 10, 96),
        UpsampledMasks(logits(2, 9, 16), 9, 64),
        UpsampledMasks(logits(2, 40, 3), 160, 6),
        UpsampledMasks(logits(2, 7, 5), 7, 5),
        UpsampledMasks(logits(0, 8, 8), 16, 16),
        torch.rand((2, 20, 70), generator=generator) > 0.5,
    ]
    drawn = [m.drawn() if isinstance(m, UpsampledMasks) else m for m in batches]
    resize = torch.nn.functional.interpolate
    values = [resize(m.logits[:, None], (m.height, m.width), mode="bilinear") for m in batches[:3]]
    assert any(bool((v == 0).any()) for v in values)  # pixels exactly at the threshold, not above it
    got = rle.run_lengths(batches, kernel=True)
    expected = rle.run_lengths(drawn, kernel=False)
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
    assert int(got[0].sum()) == sum(m.numel() for m in drawn)
    chars, lengths = rle.compress(*got)
    text = bytes(chars.numpy()).decode("ascii")
    ends = np.cumsum(lengths.numpy())
    strings = [text[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    assert strings == [s for m in drawn for s in pycocotools_strings(m.numpy())]
    assert encode_masks(batches[0]) == encode_masks(drawn[0])  # on the host: drawn, then pycocotools


def test_compression_of_large_counts_and_differences_equals_pycocotools() -> None:
    """Counts up to 2³¹ − 1, whose second differences need all seven 5-bit groups of either sign (the masks above stay
    below 2,000 pixels: at most three groups): ``compress`` writes what pycocotools' ``rleToString`` writes for
    the same uncompressed counts, mask by mask in one call."""
    rng = np.random.default_rng(11)
    # pycocotools keeps a mask's size in 32 bits (larger sums corrupt its heap): each mask's counts sum below 2³²
    masks = [[2**31 - 1], [0, 2**31 - 1], [2**31 - 1, 5, 3, 2**31 - 20], [3, 2**31 - 10, 7, 5, 2**31 - 40]]
    masks += [rng.integers(0, 2**26, n).tolist() for n in (3, 7, 40)] + [[5] * 9, rng.integers(0, 2**10, 30).tolist()]
    counts = torch.tensor([c for m in masks for c in m], dtype=torch.int64)
    chars, lengths = rle.compress(counts, torch.tensor([len(m) for m in masks]))
    text = chars.numpy().tobytes().decode("ascii")
    ends = np.cumsum(lengths.numpy()).tolist()
    got = [text[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    expected = [mask_utils.frPyObjects({"counts": m, "size": [1, sum(m)]}, 1, sum(m))["counts"].decode() for m in masks]
    assert got == expected


@pytest.mark.skipif(not interpreted(), reason="Triton runs compiled in this process (TRITON_INTERPRET=0)")
def test_the_kernels_give_the_torch_paths_counts_and_strings() -> None:
    """The run-start kernels (here in Triton's interpreter; on CUDA the dump's path) give the same counts as the
    torch path's transposed copy, flags and compaction, and the strings are pycocotools': the edge cases (a
    mask's first pixel set or not, runs crossing columns, one-pixel runs at the end), masks narrower and wider
    than a tile and not a multiple of it, several images of different sizes, one without masks, and a
    non-contiguous tensor (a crop of bigger masks)."""
    generator = torch.Generator().manual_seed(3)
    crop = (torch.rand((4, 70, 90), generator=generator) > 0.5)[:, 3:68, 5:80]
    batches = [
        torch.from_numpy(edge_cases()),
        torch.rand((3, 130, 67), generator=generator) > 0.7,
        torch.zeros((0, 9, 9), dtype=torch.bool),
        torch.ones((2, 1, 129), dtype=torch.bool),
        crop,
    ]
    assert not crop.is_contiguous()
    got = rle.run_lengths(batches, kernel=True)
    expected = rle.run_lengths(batches, kernel=False)
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
    assert len(got[0]) > 1000 and int(got[0].sum()) == sum(m.numel() for m in batches)
    chars, lengths = rle.compress(*got)
    text = bytes(chars.numpy()).decode("ascii")
    ends = np.cumsum(lengths.numpy())
    strings = [text[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    assert strings == [s for m in batches for s in pycocotools_strings(m.numpy())]


@pytest.mark.skipif(not interpreted(), reason="Triton runs compiled in this process (TRITON_INTERPRET=0)")
def test_the_value_and_character_kernels_write_the_torch_paths_bytes() -> None:
    """The GPU's way to the strings (here in Triton's interpreter): the same bytes, bare and escaped, and lengths as
    the torch path's ``compress`` and ``escape``, which are pycocotools' (above), on the edge cases, masks sparse
    enough for backslashes, and counts whose second differences take every number of groups of either sign."""
    rng = np.random.default_rng(13)
    batches = [torch.from_numpy(edge_cases()), torch.from_numpy(rng.random((4, 60, 80)) < 0.02)]
    big = [[2**31 - 1], [0, 2**31 - 1], [2**31 - 1, 5, 3, 2**31 - 20], [3, 2**31 - 10, 7, 5, 2**31 - 40]]
    big += [rng.integers(0, 2**26, n).tolist() for n in (3, 7, 40)]
    cases = [rle.run_lengths(batches)]
    cases.append((torch.tensor([c for m in big for c in m]), torch.tensor([len(m) for m in big])))
    assert b"\\\\" in rle.strings(*cases[0], escaped=True, kernel=True).data.numpy().tobytes()  # one was doubled
    for counts, per_mask in cases:
        for escaped in (False, True):
            got, expected = (rle.strings(counts, per_mask, escaped=escaped, kernel=k) for k in (True, False))
            assert got.plain == expected.plain and torch.equal(got.data, expected.data)
            assert torch.equal(got.lengths, expected.lengths)
            if escaped:
                assert torch.equal(got.escaped_lengths, expected.escaped_lengths)
    assert rle.kernel_agrees(torch.device("cpu"))


class _CorruptedCharacters:
    """The character kernel as launched, with one byte of its output changed after it: a compiler's slip."""

    def __init__(self, real: object) -> None:
        self.real = real

    def __getitem__(self, grid: tuple[int, ...]) -> Callable[..., None]:
        def launch(*args: object, **kwargs: object) -> None:
            self.real[grid](*args, **kwargs)
            args[5][-1] += 1  # out_ptr: the last character

        return launch


@pytest.mark.skipif(not interpreted(), reason="Triton runs compiled in this process (TRITON_INTERPRET=0)")
def test_kernels_that_disagree_with_the_torch_path_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """``kernel_agrees`` finds a character kernel that writes one wrong byte, says so once, and the strings then
    come from the torch path: a compiler's slip costs speed, never a wrong string."""
    real = rle.load_kernel(torch.device("cpu"))
    fake = type(real)("corrupted")
    fake.__dict__.update(vars(real))
    fake.chars_kernel = _CorruptedCharacters(real.chars_kernel)
    monkeypatch.setattr(rle, "load_kernel", lambda device: fake)
    monkeypatch.setattr(rle, "_use_kernel", lambda device, kernel: kernel is not False)  # as on CUDA
    rle.kernel_agrees.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="torch path is used"):
            assert not rle.kernel_agrees(torch.device("cpu"))
        masks = edge_cases()
        assert rle.encode(torch.from_numpy(masks)) == pycocotools_strings(masks)  # kernel=None: checked, not used
        assert rle.encode_many_json([torch.from_numpy(masks)])[0][0] == pycocotools_strings(masks)
    finally:
        rle.kernel_agrees.cache_clear()


def _scales_one_step_off(monkeypatch: pytest.MonkeyPatch) -> None:
    off = rle.scales
    monkeypatch.setattr(
        rle, "scales", lambda m: tuple(float(np.nextafter(np.float32(s), np.float32(9))) for s in off(m))
    )


def _triton_without_gather(monkeypatch: pytest.MonkeyPatch) -> None:
    import triton.language as tl

    monkeypatch.delattr(tl, "gather")


@pytest.mark.skipif(not interpreted(), reason="Triton runs compiled in this process (TRITON_INTERPRET=0)")
@pytest.mark.parametrize(
    ("breaking", "warning"),
    [
        (_scales_one_step_off, "draws other masks from their logits than torch.*drawn first"),
        (_triton_without_gather, "cannot draw masks from their logits .*gather.*drawn first"),
    ],
    ids=["values-off", "no-gather"],
)
def test_a_kernel_that_draws_other_values_or_cannot_be_built_is_not_used(
    monkeypatch: pytest.MonkeyPatch, breaking, warning: str
) -> None:
    """``upsampled_agrees`` compares every value the kernel blends with ``F.interpolate``'s, bit for bit, and
    catches a kernel that cannot be built: kernels given a scale one float step off (a stand-in for a compiler's
    slip), and a Triton without ``tl.gather`` (3.0 and 3.1, which the package allows), are refused with one
    warning, and the masks are then drawn first, their counts those of the drawn masks, where the dump would
    have been wrong or failed."""
    breaking(monkeypatch)
    monkeypatch.setattr(rle, "_use_kernel", lambda device, kernel: kernel is not False)  # as on CUDA
    rle.upsampled_agrees.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match=warning):
            assert not rle.upsampled_agrees(torch.device("cpu"))
        generator = torch.Generator().manual_seed(6)
        batches = [UpsampledMasks(torch.randn((4, 13, 11), generator=generator), 70, 33)]
        got = rle.run_lengths(batches)  # kernel=None: checked (cached), not used
        expected = rle.run_lengths([batches[0].drawn()], kernel=False)
        assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
    finally:
        rle.upsampled_agrees.cache_clear()
