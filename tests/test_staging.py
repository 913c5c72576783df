"""Reused staging buffers: the same outputs as fresh arrays, no result overwritten by a later call.

On the CPU the buffers are ordinary memory and the upload is the array itself, so these tests run the reuse and
lookup code the GPU runs; page-locking, the asynchronous copy and the wait on its event need a GPU
(benchmarks/host_path_gpu.py).
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from preprocgate.data.synthetic import make
from preprocgate.spec import InputSpec
from preprocgate.variants import VARIANTS, build_variant
from preprocgate.variants.staging import Staging
from preprocgate.variants.torch_interpolate import TorchInterpolate

CPU = torch.device("cpu")
BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "host_path_gpu.py"
MIXED = [(30, 40), (17, 23), (30, 40), (9, 9), (17, 23)]
CONFIGS = {"stretch": InputSpec(size=(24, 20)), "letterbox": InputSpec(size=(24, 20), resize="letterbox")}


def _images(shapes: list[tuple[int, int]], seed: int = 0) -> list[np.ndarray]:
    return [make("natural", seed + i, h, w) for i, (h, w) in enumerate(shapes)]


@pytest.mark.parametrize("resize", CONFIGS)
@pytest.mark.parametrize("name", ["torch", "cv2"])
def test_staged_outputs_equal_fresh_arrays_for_mixed_and_single_groups(name: str, resize: str) -> None:
    staged = build_variant(VARIANTS.get(name), CONFIGS[resize], CPU, {})
    fresh = build_variant(VARIANTS.get(name), CONFIGS[resize], CPU, {})
    fresh.staging = Staging(CPU, slots=0)  # np.stack into a new array per batch, as before staging
    for images in (_images(MIXED), _images([(31, 29)] * 3), _images([(8, 70)])):
        a, b = staged(images), fresh(images)
        assert a.shape == (len(images), 3, 24, 20)
        assert torch.equal(a.view(torch.int32), b.view(torch.int32))


def test_a_single_group_returns_run_batch_s_tensor_itself() -> None:
    returned: list[torch.Tensor] = []

    class Recording(TorchInterpolate):
        def run_batch(self, batch: np.ndarray, geometry) -> torch.Tensor:
            returned.append(super().run_batch(batch, geometry))
            return returned[-1]

    variant = Recording(CONFIGS["letterbox"], CPU)
    images = _images([(30, 40)] * 3)
    out = variant(images)
    assert len(returned) == 1 and out.data_ptr() == returned[0].data_ptr()
    for i, image in enumerate(images):  # each row is that image alone, in input order
        assert torch.equal(out[i], variant([image])[0])
    mixed = variant(_images(MIXED))  # several groups: gathered into a new tensor in input order
    assert all(mixed.data_ptr() != r.data_ptr() for r in returned[-3:])


@pytest.mark.parametrize("name", ["torch", "cv2"])
def test_a_result_survives_later_calls_that_reuse_the_buffers(name: str) -> None:
    variant = build_variant(VARIANTS.get(name), CONFIGS["letterbox"], CPU, {})
    first_images = _images([(30, 40)] * 2)
    first = variant(first_images)
    kept = first.clone()
    for seed in (10, 20, 30):  # more calls than buffers: each buffer is rewritten at least once
        variant(_images([(30, 40)] * 2, seed))
        variant(_images(MIXED, seed))
    assert torch.equal(first, kept)
    assert not torch.equal(first, variant(_images([(30, 40)] * 2, 40)))  # other images do give another result
    assert torch.equal(first, variant(first_images))


def test_buffers_take_turns_and_grow_to_the_largest_batch() -> None:
    staging = Staging(CPU, slots=2)
    small, large = _images([(8, 8)] * 2), _images([(8, 8)] * 5, 7)
    a = staging.stack(small)
    b = staging.stack(small)
    assert not np.shares_memory(a, b)
    a_again = staging.stack(large)  # the first buffer's turn: grown for five images
    np.testing.assert_array_equal(a_again, np.stack(large))
    c = staging.stack(small)  # the second buffer, big enough already: the same memory as b
    assert np.shares_memory(b, c)
    assert np.shares_memory(a_again, staging.stack(small))  # and the grown one is kept, not reallocated


def test_upload_uses_the_buffer_only_for_arrays_inside_it() -> None:
    staging = Staging(CPU, slots=2)
    batch = staging.stack(_images([(8, 8)] * 3))
    part = batch[1:]  # contiguous, inside the buffer
    for array in (batch, part):
        tensor = staging.upload(array)
        assert tensor.data_ptr() == array.ctypes.data and torch.equal(tensor, torch.from_numpy(array))
    foreign = np.ascontiguousarray(batch[..., ::-1])
    for array in (foreign, batch[:, ::2]):  # outside any buffer, or inside but not contiguous: the ordinary path
        assert torch.equal(staging.upload(array), torch.from_numpy(np.ascontiguousarray(array)))
    floats = staging.empty((2, 3), np.float32)  # any dtype: the buffers are bytes
    floats[...] = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert staging.upload(floats).dtype == torch.float32 and staging.upload(floats).tolist() == floats.tolist()


@pytest.mark.parametrize("shapes", [[(40, 30)], [(7, 5)] * 2, [(1, 3), (1, 3)], [(0, 4)] * 3, [(16, 8)] * 9])
def test_a_stack_over_threads_equals_np_stack(shapes: list[tuple[int, int]]) -> None:
    """Fewer images than threads: each split in bands of rows; more: one image a piece."""
    staging = Staging(CPU, threads=4, split_bytes=1)  # every batch counts as big enough to split
    images = _images(shapes, 3)
    images[0] = images[0][:, ::-1]  # a view with a negative stride, as a caller's channel or mirror flip gives
    expected = np.stack(images)
    for _ in range(3):  # the second buffer, then the first again
        np.testing.assert_array_equal(staging.stack(images), expected)
    assert (staging._pool is not None) == (expected.nbytes > 0)  # the threads did the copying


def test_threaded_staging_gives_the_same_outputs() -> None:
    threaded = build_variant(VARIANTS.get("torch"), CONFIGS["letterbox"], CPU, {})
    threaded.staging = Staging(CPU, threads=3, split_bytes=1)
    single = build_variant(VARIANTS.get("torch"), CONFIGS["letterbox"], CPU, {})
    for images in (_images(MIXED), _images([(30, 40)] * 2)):
        assert torch.equal(threaded(images), single(images))


def test_no_slots_means_a_fresh_array_each_time() -> None:
    staging = Staging(CPU, slots=0)
    images = _images([(8, 8)] * 2)
    first = staging.stack(images)
    assert not np.shares_memory(first, staging.stack(images))
    assert staging.upload(first).data_ptr() == first.ctypes.data  # the CPU upload of any array: the array


def test_the_host_path_benchmark_runs_and_checks_reuse_on_the_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARK.parent))  # as when run as a script: it imports its sibling's helpers
    spec = importlib.util.spec_from_file_location("host_path_gpu", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "r.json"
    assert module.main(["--device", "cpu", "--repeats", "2", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["correct"] is True and len(data["cases"]) == len(module.TINY)
    rows = [v for case in data["cases"] for v in case["variants"]]
    assert {v["variant"] for v in rows} == set(module.VARIANT_NAMES)
    assert all(v["bit_identical_after_reuse"] for v in rows)
    assert all(v[f"{c}_us"] > 0 and v[f"{c}_ratio"] > 0 for v in rows for c in module.CONFIGS)
    fresh = data["new_shapes"]  # a batch of 8 sizes never met, then the same batch again
    assert [r["variant"] for r in fresh] == list(module.VARIANT_NAMES)
    assert all(r["new_shapes_us"] > 0 and r["seen_shapes_us"] > 0 and r["pinned_copy_us"] > 0 for r in fresh)


def test_only_an_unchanged_uploading_run_batch_gets_its_upload_started_early() -> None:
    """A subclass that overrides run_batch may change the batch before uploading it: an upload started while
    stacking would send the bytes before that change (on CUDA; here the decision only)."""
    from preprocgate.variants.opencv import OpenCVResize
    from preprocgate.variants.triton_fused import TritonFused
    from tests.helpers.variants import NearestResize, SwappedChannels

    config = CONFIGS["stretch"]
    early = {cls.__name__: cls(config, CPU)._prefetch for cls in (TorchInterpolate, NearestResize, TritonFused)}
    late = {cls.__name__: cls(config, CPU)._prefetch for cls in (SwappedChannels, OpenCVResize)}
    assert all(early.values()) and not any(late.values())
