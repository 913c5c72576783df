"""The local executor's ``lookahead``: batches launched before the oldest one's detections are taken, the parts
written in order and the same as without it; the param checked like the executor's others."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from preprocgate.data import demo
from preprocgate.engine import build_executor
from preprocgate.errors import RunError
from preprocgate.spec import ExecutorSpec
from preprocgate.stages import dump
from preprocgate.stages.dump import LocalExecutor
from tests.helpers.gates import coco_dataset, detection_gate, invoke, write_gate
from tests.helpers.models import CountingOnnx


def test_the_spec_param_reaches_the_local_executor_and_bad_values_are_one_line() -> None:
    assert build_executor(ExecutorSpec()).lookahead == 1
    executor = build_executor(ExecutorSpec.model_validate({"kind": "local", "params": {"lookahead": 2}}))
    assert isinstance(executor, LocalExecutor) and executor.lookahead == 2
    for bad in (-1, dump.MAX_LOOKAHEAD + 1, 1.5, "1", True):
        with pytest.raises(RunError, match=rf"lookahead must be a number of batches, 0 to {dump.MAX_LOOKAHEAD}"):
            LocalExecutor(lookahead=bad)  # type: ignore[arg-type]


def _logged(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each batch's launch and the moment its detections are taken, in order, per dump."""
    events: list[str] = []
    launch = dump._launch

    def logged(stage: Any, job: Any, images: list, side: Any) -> Callable[[], Any]:
        n = sum(e.startswith("launch") for e in events)
        events.append(f"launch {n}")
        finish = launch(stage, job, images, side)

        def taken() -> Any:
            events.append(f"take {n}")
            return finish()

        return taken

    monkeypatch.setattr(dump, "_launch", logged)
    return events


@pytest.mark.parametrize("lookahead", [1, 3])
def test_batches_are_launched_ahead_and_the_dump_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lookahead: int
) -> None:
    data = demo.generate(tmp_path / "data", "val", 7, seed=1)
    digests = {}
    for ahead in (0, lookahead):
        events = _logged(monkeypatch)
        spec = detection_gate(
            coco_dataset(data),
            variants={"torch": "torch"},
            baseline="torch",
            thresholds={"map": None, "min_matched_fraction": 0.0},
            executor={"kind": "local", "params": {"lookahead": ahead}},
            cache_dir=f"cache{ahead}",
        )
        spec["model"]["batch_size"] = 2  # 4 batches, the last short
        result = invoke("run", str(write_gate(tmp_path, spec)))
        assert result.exit_code == 1, result.output  # one variant: no diff pair, hence no check
        launched_first = [f"launch {n}" for n in range(min(ahead + 1, 4))]
        assert events[: len(launched_first)] == launched_first
        assert [e for e in events if e.startswith("take")] == [f"take {n}" for n in range(4)]
        for n in range(4):  # each batch taken once the ones ``ahead`` after it are launched, or all are
            assert events.index(f"take {n}") > events.index(f"launch {min(n + ahead, 3)}")
        assert CountingOnnx.images_run == 7
        CountingOnnx.images_run = 0
        report = json.loads((tmp_path / "out" / "det.json").read_text())
        digests[ahead] = report["dumps"][0]["digest"]
        parts = sorted((tmp_path / f"cache{ahead}").rglob("part-*.json"))
        assert len(parts) == 4
    assert digests[0] == digests[lookahead]
