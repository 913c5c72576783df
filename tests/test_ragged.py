"""Images of different sizes in one launch (``TritonFused.run_ragged``): the same values as the per-shape launches
and as torch, one upload, one launch per choice of kernel, written straight into the batch's output.

Triton's interpreter runs the kernel here (tests/conftest.py); tests/test_kernel_compile.py builds the ragged
kernels for sm_90, and the GPU figures are benchmarks/host_path_gpu.py's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from preprocgate.spec import InputSpec
from preprocgate.triton_modules import interpreted
from preprocgate.variants import VARIANTS, arena, build_variant
from preprocgate.variants.arena import ImageArena
from preprocgate.variants.staging import Staging
from preprocgate.variants.triton_fused import _Launch

CPU = torch.device("cpu")
SHAPES = [(13, 17), (31, 9), (21, 40), (7, 7), (24, 30)]


def _images(seed: int = 0, shapes: list[tuple[int, int]] = SHAPES) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


def _in_arena(images: list[np.ndarray]) -> list[np.ndarray]:
    """The images back to back in one slab, as the dump stage reserves a batch's shape groups."""
    store = ImageArena(pinned=False)
    return [store.fill(store.reserve(image.shape, 1)[0], image) for image in images]


def _ragged_launches(variant: object) -> list[tuple]:
    return [key for key in variant._launches if key[0] == "ragged"]  # type: ignore[attr-defined]


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """The images each launch covers (None: the plan's own count), as the variant calls its plans."""
    seen: list[int | None] = []
    call = _Launch.__call__

    def recording(plan: _Launch, *tensors: torch.Tensor, images: int | None = None) -> None:
        seen.append(images)
        call(plan, *tensors, images=images)

    monkeypatch.setattr(_Launch, "__call__", recording)
    return seen


@pytest.mark.parametrize(
    ("interpolation", "resize", "params"),
    [
        ("bilinear", "stretch", {}),
        ("bilinear", "letterbox", {"words": True}),
        ("bilinear", {"mode": "letterbox", "pad": "mean"}, {"words": True, "word_bits": 32, "reuse_rows": True}),
        ("bilinear", "stretch", {"reuse_rows": True, "words": True}),
        ("nearest", "letterbox", {}),
        ("nearest-exact", "stretch", {"words": True}),
    ],
)
def test_one_launch_for_every_shape_gives_the_per_shape_values_and_torch_s(
    interpolation: str, resize: object, params: dict, launched: list[int | None]
) -> None:
    config = InputSpec(size=(24, 32), interpolation=interpolation, resize=resize, source_order="BGR")
    fused = build_variant(VARIANTS.get("triton"), config, CPU, params)
    reference = build_variant(VARIANTS.get("torch"), config, CPU, {})
    images = _images()
    got = fused(images)
    assert launched == [len(images)] and len(fused._launches) == 1  # one launch, one plan, none per shape
    assert _ragged_launches(fused)
    one_by_one = torch.cat([fused([image]) for image in images])
    assert torch.equal(got.view(torch.int32), one_by_one.view(torch.int32))
    assert torch.equal(got.view(torch.int32), reference(images).view(torch.int32))


def test_images_decoded_back_to_back_go_up_as_the_arena_s_span_without_a_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    images = _images(seed=3)
    placed = _in_arena(images)
    tensor, pinned, offsets = arena.spanned(placed)
    assert not pinned and tensor.numel() % 8 == 0 and tensor.data_ptr() % 8 == 0
    sizes = [image.nbytes for image in images]
    assert offsets == [offsets[0] + sum(sizes[:k]) for k in range(len(images))]
    for offset, image in zip(offsets, images, strict=True):
        assert bytes(tensor[offset : offset + image.nbytes].numpy()) == image.tobytes()
    fused = build_variant(VARIANTS.get("triton"), InputSpec(size=(16, 20), resize="letterbox"), CPU, {"words": True})
    copies: list[int] = []
    copy = fused.staging._copy
    monkeypatch.setattr(fused.staging, "_copy", lambda arrays, *rest: copies.append(len(arrays)) or copy(arrays, *rest))
    got = fused(placed)
    assert copies == []
    reordered = [placed[k] for k in (2, 0, 1)]  # any order, no gap: still no copy
    assert torch.equal(fused(reordered), got[[2, 0, 1]])
    assert copies == [] and torch.equal(got, torch.cat([fused([image]) for image in images]))


def test_arrays_with_gaps_or_outside_an_arena_are_packed_into_one_staging_buffer() -> None:
    placed = _in_arena(_images(seed=5))
    assert arena.spanned([placed[0], placed[2]]) is None  # placed[1]'s bytes lie between them
    assert arena.spanned(_images(seed=5)[:2]) is None  # ordinary arrays
    staging = Staging(CPU, threads=2, split_bytes=1)  # the threaded copy, on images this small
    loose = _images(seed=6)
    packed, offsets = staging.pack([loose[1], placed[0], loose[3]])
    assert packed.numel() % 8 == 0 and offsets == [0, loose[1].nbytes, loose[1].nbytes + placed[0].nbytes]
    for offset, image in zip(offsets, [loose[1], placed[0], loose[3]], strict=True):
        assert bytes(packed[offset : offset + image.nbytes].numpy()) == image.tobytes()


def test_a_batch_of_two_kernel_choices_is_two_launches_each_writing_its_own_rows(launched: list[int | None]) -> None:
    """On the CPU torch's arithmetic follows the content size (its channels-last kernel for outputs of
    H + W ≤ 128 on more than one thread), and an image that fills the canvas is not padded: two choices here (on
    CUDA, keeping 9/10 of the rows or more, which takes rows_kernel, is one more)."""
    config = InputSpec(size=(40, 96), resize="letterbox")
    fused = build_variant(VARIANTS.get("triton"), config, CPU, {"arithmetic": "auto"})
    images = _images(seed=8, shapes=[(40, 96), (80, 20), (9, 60), (60, 9)])
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the generic kernel above H + W = 128, channels-last below
    try:
        got = fused(images)
        expected = build_variant(VARIANTS.get("torch"), config, CPU, {})(images)
    finally:
        torch.set_num_threads(threads)
    assert sorted(launched) == [1, 3] and len(_ragged_launches(fused)) == 2  # type: ignore[type-var]
    assert torch.equal(got, expected)


@pytest.mark.parametrize("interpolation", ["bilinear_antialias", "pillow_bilinear"])
def test_the_separable_modes_keep_their_shape_groups(interpolation: str) -> None:
    config = InputSpec(size=(12, 16), interpolation=interpolation, resize="letterbox")
    fused = build_variant(VARIANTS.get("triton"), config, CPU, {})
    images = _images(seed=2, shapes=[(20, 30), (17, 11)])
    got = fused(images)
    assert not _ragged_launches(fused) and len(fused._launches) == 2
    assert torch.equal(got, torch.cat([fused([image]) for image in images]))


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA (benchmarks/gpu_session.sh's compiled step runs it on a GPU)"
)
def test_on_cuda_ragged_launches_give_torch_s_values_through_the_jit_and_direct() -> None:
    if interpreted():
        pytest.skip("Triton runs interpreted in this process: run it with TRITON_INTERPRET=0 (gpu_session.sh)")
    cuda = torch.device("cuda")
    rng = np.random.default_rng(11)
    cases = [
        ("bilinear", "stretch", (312, 312), {}),
        ("bilinear", "letterbox", (640, 640), {}),
        ("bilinear", {"mode": "letterbox", "pad": "mean"}, (512, 512), {"word_bits": 32}),
        ("bilinear", "stretch", (312, 312), {"words": False, "reuse_rows": False}),
        ("nearest", "letterbox", (320, 320), {}),
        ("nearest-exact", "stretch", (224, 224), {}),
    ]
    for interpolation, resize, size, params in cases:
        config = InputSpec(size=size, interpolation=interpolation, resize=resize, source_order="BGR")
        fused = build_variant(VARIANTS.get("triton"), config, cuda, params)
        reference = build_variant(VARIANTS.get("torch"), config, cuda, {})
        for call in range(4):  # the first through the JIT, the second records, then direct
            shapes = [(int(h), int(w)) for h, w in rng.integers(300, 701, (8, 2))]
            images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]
            if call % 2:  # decoded back to back in page-locked memory, as the dump stage does
                store = ImageArena(pinned=True)
                images = [store.fill(store.reserve(image.shape, 1)[0], image) for image in images]
            got, expected = fused(images), reference(images)
            assert torch.equal(got.view(torch.int32), expected.view(torch.int32)), (interpolation, resize, call)
        assert _ragged_launches(fused) and not [key for key in fused._launches if key[0] != "ragged"]


@pytest.mark.parametrize("name", ["cv2", "torch", "pillow"])
@pytest.mark.parametrize("resize", ["stretch", "letterbox", {"mode": "letterbox", "pad": "mean"}])
def test_the_host_and_torch_paths_take_a_ragged_batch_in_one_go_with_the_same_values(
    name: str, resize: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    interpolation = "pillow_bilinear" if name == "pillow" else "bilinear"
    config = InputSpec(size=(24, 32), resize=resize, interpolation=interpolation, source_order="BGR")
    variant = build_variant(VARIANTS.get(name), config, CPU, {})
    images = _images(seed=4)
    one_by_one = torch.cat([variant([image]) for image in images])
    batches: list[int] = []
    run_batch = variant.run_batch
    monkeypatch.setattr(variant, "run_batch", lambda batch, g: batches.append(len(batch)) or run_batch(batch, g))
    for held in (images, _in_arena(images)):
        assert torch.equal(variant(held), one_by_one)
    assert batches == []  # never by shape groups


def test_a_plug_in_that_changes_run_batch_alone_is_called_by_shape_groups() -> None:
    """A subclass of a built-in path that changes ``run_batch`` (here: tests/helpers/variants.py's channel swap)
    keeps its change on a batch of several sizes: the inherited ``run_ragged`` would leave it out."""
    from tests.helpers.variants import CvSwapped

    config = InputSpec(size=(24, 32), source_order="BGR")
    swapped = CvSwapped(config, CPU)
    images = _images(seed=4)
    flipped = torch.cat([swapped([image]) for image in images])
    assert torch.equal(swapped(images), flipped)
    assert not torch.equal(flipped, build_variant(VARIANTS.get("cv2"), config, CPU, {})(images))
