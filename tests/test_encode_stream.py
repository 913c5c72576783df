"""The local executor's ``encode_stream``: masks on a GPU encoded by the writer thread on a stream of its own give
the strings the inferring thread's encoding gives; the option is a spec param, checked like any other. And its
``switch_interval_ms``, which holds while a dump runs and no longer."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from preprocgate.engine import build_executor
from preprocgate.errors import RunError, UserError
from preprocgate.functional.coco import Detections, portable, to_results
from preprocgate.spec import ExecutorSpec, InputSpec
from preprocgate.stages.dump import LocalExecutor, MasksOnStream, infer_batch
from preprocgate.timing import StageTimes
from preprocgate.variants import VARIANTS, build_variant
from tests.helpers.models import BrightestBlock


def test_the_spec_param_reaches_the_local_executor() -> None:
    executor = build_executor(ExecutorSpec.model_validate({"kind": "local", "params": {"encode_stream": False}}))
    assert isinstance(executor, LocalExecutor) and not executor.encode_stream
    assert build_executor(ExecutorSpec()).encode_stream  # on by default (a no-op off CUDA)
    with pytest.raises(UserError, match=r"executor\.params: .*encode_streams"):
        build_executor(ExecutorSpec.model_validate({"kind": "local", "params": {"encode_streams": True}}))


def test_the_switch_interval_holds_while_a_dump_runs_and_no_longer(monkeypatch: pytest.MonkeyPatch) -> None:
    executor = build_executor(ExecutorSpec.model_validate({"kind": "local", "params": {"switch_interval_ms": 0.5}}))
    assert isinstance(executor, LocalExecutor)
    before = sys.getswitchinterval()
    seen: list[float] = []

    def compute(stage: object, job: object) -> None:
        seen.append(sys.getswitchinterval())
        raise RunError("a dump that fails")

    monkeypatch.setattr(executor, "_compute", compute)
    with pytest.raises(RunError, match="a dump that fails"):
        executor.compute(None, None)  # type: ignore[arg-type]
    assert seen == [pytest.approx(0.0005)] and sys.getswitchinterval() == before
    for bad in (0, -1, 101, "1ms", True):
        with pytest.raises(RunError, match=r"switch_interval_ms must be a number of milliseconds above 0, at most"):
            LocalExecutor(switch_interval_ms=bad)  # type: ignore[arg-type]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: the stream the writer thread encodes on")
def test_masks_encoded_on_a_side_stream_equal_the_inferring_threads() -> None:
    generator = torch.Generator(device="cuda").manual_seed(0)
    logits = torch.randn((3, 12, 1, 30, 40), generator=generator, device="cuda")
    batch = [
        Detections(
            np.zeros((12, 4), np.float32),
            np.linspace(0, 1, 12, dtype=np.float32),
            np.arange(12),
            torch.nn.functional.interpolate(image, size=(240, 320), mode="bilinear")[:, 0] > 0,
        )
        for image in logits
    ]
    expected = [to_results(i, d) for i, d in enumerate(portable(batch))]
    side = torch.cuda.Stream()
    handed = MasksOnStream.hand_over(batch, side)
    del batch  # the writer holds the only references, as in the dump
    assert [to_results(i, d) for i, d in enumerate(handed.portable())] == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: streams")
def test_a_variant_waits_for_its_own_stream_and_not_for_the_encoders() -> None:
    """Why encode_stream can overlap at all: the inferring thread's waits after each call (infer_batch) must not
    wait for the masks being encoded on the writer's stream."""
    device = torch.device("cuda")
    variant = build_variant(VARIANTS.get("torch"), InputSpec(size=(32, 32)), device, {})
    cycles = 2_000_000_000  # about a second of spinning on any current GPU
    side = torch.cuda.Stream(device)
    with torch.cuda.stream(side):
        torch.cuda._sleep(cycles)
        encoding = torch.cuda.Event()
        encoding.record(side)
    torch.cuda._sleep(cycles // 20)  # this thread's own queued work
    mine = torch.cuda.Event()
    mine.record()
    variant.synchronize()
    assert mine.query(), "the variant's own stream was not waited for"
    assert not encoding.query(), "the variant waited for another stream's work"
    side.synchronize()


def test_a_batch_handed_to_another_thread_for_encoding_is_not_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``encode`` off (the masks go to the writer's stream) the inferring thread leaves the model's last
    kernels running: no wait of its own after the variant or the model; with it on, one after each, so that the
    stage times hold each step's device time. Same detections either way."""
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    variant = build_variant(VARIANTS.get("torch"), InputSpec(size=(16, 16)), torch.device("cpu"), {})
    adapter = BrightestBlock(torch.device("cpu"), file=model)
    waits: list[str] = []
    monkeypatch.setattr(variant, "synchronize", lambda: waits.append("wait"))
    images = [np.random.default_rng(k).integers(0, 256, (24, 32, 3), dtype=np.uint8) for k in range(3)]
    handed = infer_batch(variant, adapter, variant.config, images, StageTimes(), encode=False)
    assert waits == []
    encoded = infer_batch(variant, adapter, variant.config, images, StageTimes(), encode=True)
    assert waits == ["wait", "wait"]
    assert [to_results(0, d) for d in handed] == [to_results(0, d) for d in encoded]
