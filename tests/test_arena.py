"""The image arena: decoded images back to back, taken by a variant without a copy, and the same outputs.

On this CPU the arena is ordinary memory (a CUDA run's is page-locked, and its upload is timed by
benchmarks/host_path_gpu.py); the placement, the lookups and the zero-copy stacks are the same code.
"""

import gc
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from preprocgate.data.coco import load_coco
from preprocgate.data.synthetic import make
from preprocgate.engine import build_executor
from preprocgate.errors import RunError
from preprocgate.spec import ExecutorSpec, InputSpec
from preprocgate.stages import dump
from preprocgate.stages.dump import DumpStage, LocalExecutor, batches
from preprocgate.variants import VARIANTS, arena, build_variant
from preprocgate.variants.arena import ImageArena
from preprocgate.variants.staging import Staging

CPU = torch.device("cpu")


def _fill(store: ImageArena, shape: tuple[int, int, int], count: int, seed: int = 0) -> list[np.ndarray]:
    return store.hold([make("natural", seed + k, *shape[:2]) for k in range(count)])


def test_a_group_reserved_together_is_one_read_only_array_without_a_copy() -> None:
    store = ImageArena(pinned=False, slab_bytes=4096)
    small = _fill(store, (10, 12, 3), 3)  # 1,080 bytes: three fit one 4 KB slab
    big = _fill(store, (30, 40, 3), 2, seed=5)  # 7,200 bytes: a slab of its own, its size
    for group in (small, big, small[1:], small[:1]):
        together = arena.joined(group)
        assert together is not None and np.shares_memory(together, group[0])
        np.testing.assert_array_equal(together, np.stack(group))
        assert not together.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        small[0][0, 0, 0] = 1  # a variant writing into its batch would change every later variant's pixels
    assert arena.joined([small[1], small[0]]) is None  # out of order
    assert arena.joined([small[0], small[2]]) is None  # a gap
    assert arena.joined([small[2], big[0]]) is None  # other shapes
    assert arena.joined([make("natural", 0, 10, 12)]) is None  # not the arena's memory
    found = arena.find(big[1])
    assert found is not None and torch.equal(found[0], torch.from_numpy(big[1].copy())) and found[1] is False


def test_images_are_found_while_they_live_even_after_their_arena_is_gone() -> None:
    images = ImageArena(pinned=False).hold([make("natural", k, 9, 7) for k in range(2)])  # the arena is dropped
    gc.collect()
    together = arena.joined(images)
    assert together is not None and np.shares_memory(together, images[0])
    start = images[0].ctypes.data
    del images, together
    gc.collect()  # the last view gone: the slab is forgotten (and freed)
    assert all(lo != start for lo, _ in arena._SPANS)


def test_a_run_wanting_page_locked_memory_without_a_gpu_gets_ordinary_memory() -> None:
    store = ImageArena(pinned=True)  # torch refuses to page-lock without CUDA: the slab is ordinary memory
    images = _fill(store, (8, 8, 3), 2)
    found = arena.find(images[0])
    assert found is not None and found[1] is torch.cuda.is_available()
    limited = ImageArena(pinned=True, pinned_bytes=0)  # beyond the limit, never page-locked
    assert arena.find(_fill(limited, (8, 8, 3), 1)[0])[1] is False  # type: ignore[index]


@pytest.mark.parametrize("name", ["torch", "cv2", "triton"])
def test_variants_take_arena_groups_without_stacking_and_give_the_same_outputs(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if name == "triton":
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    config = InputSpec(size=(16, 20), resize="letterbox")
    store = ImageArena(pinned=False)
    same = _fill(store, (24, 30, 3), 3)
    other = _fill(store, (17, 23, 3), 1, seed=9)
    variant = build_variant(VARIANTS.get(name), config, CPU, {})
    reference = build_variant(VARIANTS.get(name), config, CPU, {})
    reference.staging = Staging(CPU, slots=0)  # fresh copies, as before staging: the reference outputs
    stacked: list[int] = []
    copy = variant.staging._copy
    monkeypatch.setattr(
        variant.staging, "_copy", lambda arrays, *rest: stacked.append(len(arrays)) or copy(arrays, *rest)
    )
    # same[0] and same[2] with a gap between: the three packed into one buffer for one upload (cv2 reads them where
    # they are)
    gapped = [] if name == "cv2" else [3]
    for images, copies in ((same, []), ([*same, *other], []), ([same[0], other[0], same[2]], gapped)):
        stacked.clear()
        a, b = variant(images), reference(images)
        assert torch.equal(a.view(torch.int32), b.view(torch.int32))
        assert stacked == copies


def _coco(root: Path, shapes: list[tuple[int, int]]) -> Path:
    folder = root / "images"
    folder.mkdir()
    records = []
    for k, (h, w) in enumerate(shapes):
        cv2.imwrite(str(folder / f"{k}.png"), make("natural", k, h, w))
        records.append({"id": k + 1, "file_name": f"{k}.png", "height": h, "width": w})
    categories = [{"id": 1, "name": "thing"}]
    (root / "ann.json").write_text(json.dumps({"images": records, "annotations": [], "categories": categories}))
    return folder


def test_the_dump_stage_decodes_each_batch_s_shape_groups_back_to_back(tmp_path: Path) -> None:
    a, b = (12, 16), (16, 12)
    shapes = [a, b, a, a, b, b, a, b, a]  # batches of 4: two interleaved groups each
    folder = _coco(tmp_path, shapes)
    (folder / "6.png").write_bytes(b"broken")  # image 7, found unusable only when decoded: batches shift
    coco = load_coco(folder, tmp_path / "ann.json")
    ids = [r.id for r in coco.records]
    stage = DumpStage(None, None, coco, 4, {}, None)  # type: ignore[arg-type]
    got = list(stage.decoded_batches(ids, CPU))
    usable = [i for i in ids if i != 7]
    assert [chunk for chunk, _ in got] == batches(usable, 4) == [[1, 2, 3, 4], [5, 6, 8, 9]]
    for chunk, images in got:
        for i, image in zip(chunk, images, strict=True):
            np.testing.assert_array_equal(image, cv2.imread(str(folder / f"{i - 1}.png")))
            assert not image.flags.writeable
        for shape in (a, b):  # each shape group one array: [1, 3, 4] and [2]; then [5, 6, 8] and [9]
            group = [image for image in images if image.shape[:2] == shape]
            assert arena.joined(group) is not None
    again = list(stage.decoded_batches(ids, CPU))  # a later variant's dump: the same arrays, nothing decoded
    assert all(x is y for (_, p), (_, q) in zip(got, again, strict=True) for x, y in zip(p, q, strict=True))
    plain = DumpStage(None, None, load_coco(folder, tmp_path / "ann.json"), 4, {}, None)  # type: ignore[arg-type]
    off = list(plain.decoded_batches(ids, CPU, arena=False))  # the executor's arena: false
    assert [c for c, _ in off] == [c for c, _ in got] and arena.joined(off[1][1][:2]) is None
    assert all(np.array_equal(x, y) for (_, p), (_, q) in zip(got, off, strict=True) for x, y in zip(p, q, strict=True))


def test_images_beyond_the_memory_bound_stream_through_in_bounded_memory_as_the_same_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``memory`` too small to keep them, the images come as the same batches of the same pixels, each
    batch's shape groups still one array, but are decoded a bounded window ahead, dropped once used (their slabs
    freed), and decoded again by the next variant's call."""
    a, b = (12, 16), (16, 12)
    shapes = [a, b, a, a, b, b, a, b, a, a, b, a, b]
    folder = _coco(tmp_path, shapes)
    (folder / "4.png").write_bytes(b"broken")  # image 5: the batches after it shift, across reserved slabs
    monkeypatch.setattr(ImageArena.__init__, "__defaults__", (1, None))  # every group a slab of its own
    monkeypatch.setattr(dump, "STREAM_AHEAD", 1)  # one batch decoded ahead
    ids = list(range(1, len(shapes) + 1))
    keeping = DumpStage(None, None, load_coco(folder, tmp_path / "ann.json"), 2, {}, None)  # type: ignore[arg-type]
    kept = list(keeping.decoded_batches(ids, CPU))
    gc.collect()
    before = len(arena._SPANS)
    stage = DumpStage(None, None, load_coco(folder, tmp_path / "ann.json"), 2, {}, None)  # type: ignore[arg-type]
    live: list[int] = []
    for (chunk, images), (expected_chunk, expected) in zip(
        stage.decoded_batches(ids, CPU, memory=0), kept, strict=True
    ):
        assert chunk == expected_chunk
        assert all(np.array_equal(x, y) and not x.flags.writeable for x, y in zip(images, expected, strict=True))
        for shape in (a, b):
            group = [image for image in images if image.shape[:2] == shape]
            assert not group or arena.joined(group) is not None
        live.append(len(arena._SPANS) - before)
    del images, group
    gc.collect()
    assert len(arena._SPANS) == before  # every streamed slab freed
    assert max(live) <= 4 < 2 * len(kept)  # this batch's groups and the next's: never the whole dataset
    again = list(stage.decoded_batches(ids, CPU, memory=0))  # the next variant's call decodes them again
    assert [c for c, _ in again] == [c for c, _ in kept]
    assert not any(x is y for (_, p), (_, q) in zip(kept, again, strict=True) for x, y in zip(p, q, strict=True))


def test_decoding_runs_no_further_ahead_than_asked(tmp_path: Path) -> None:
    folder = _coco(tmp_path, [(8, 8)] * 12)
    coco = load_coco(folder, tmp_path / "ann.json")
    placed: list[int] = []
    images = coco.decode_each([r.id for r in coco.records], place=lambda i, image: placed.append(i) or image, ahead=3)
    waiting = []  # decoded, not yet taken
    for taken, (_, image) in enumerate(images, start=1):
        time.sleep(0.02)  # the decoding threads' chance to run ahead
        waiting.append(len(placed) - taken)
        assert image is not None
    assert max(waiting) == 3 and sorted(placed) == list(range(1, 13))


def test_the_memory_bound_is_a_spec_param_of_the_local_executor() -> None:
    executor = build_executor(ExecutorSpec.model_validate({"kind": "local", "params": {"image_memory_gb": 2.5}}))
    assert isinstance(executor, LocalExecutor) and executor.image_memory == 2.5e9
    assert build_executor(ExecutorSpec()).image_memory is None  # KEEP_SHARE of the host's memory
    for bad in (-1, "8G", True):
        with pytest.raises(RunError, match=r"executor: image_memory_gb must be a number of GB, 0 or more, got"):
            build_executor(ExecutorSpec.model_validate({"kind": "local", "params": {"image_memory_gb": bad}}))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a page-locked arena and its asynchronous upload need CUDA")
@pytest.mark.parametrize("name", ["torch", "triton"])
def test_on_cuda_the_arena_is_page_locked_and_its_uploads_give_the_same_outputs(name: str) -> None:
    if name == "triton" and os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip(
            "the suite runs Triton in its interpreter (tests/conftest.py): the compiled kernel's uploads from the "
            "arena are compared bit for bit by benchmarks/host_path_gpu.py"
        )
    device = torch.device("cuda")
    config = InputSpec(size=(64, 64), resize="letterbox")
    store = ImageArena(pinned=True)
    batches_ = [store.hold([make("natural", 10 * b + k, 48, 80) for k in range(4)]) for b in range(3)]
    assert all(arena.find(image)[1] is True for batch in batches_ for image in batch)  # type: ignore[index]
    variant = build_variant(VARIANTS.get(name), config, device, {})
    reference = build_variant(VARIANTS.get(name), config, device, {})
    reference.staging = Staging(device, slots=0)
    outputs = [variant(batch) for batch in batches_]  # queued back to back, no synchronisation between
    for batch, out in zip(batches_, outputs, strict=True):
        expected = reference([np.array(image) for image in batch])
        assert torch.equal(out.view(torch.int32), expected.view(torch.int32))


def test_the_speed_probe_times_images_held_as_the_dump_stage_holds_them() -> None:
    from preprocgate.spec import SpeedProbe
    from preprocgate.stages.speed import SpeedProbeStage

    stage = SpeedProbeStage(SpeedProbe(batch=3, source=(20, 30)), (16, 16), "cpu")
    images = stage.images(CPU)
    gc.collect()  # its arena object is gone; the images keep their slab
    assert arena.joined(images) is not None and stage.images(CPU) is images
    np.testing.assert_array_equal(images[2], make("natural", 2, 20, 30))
