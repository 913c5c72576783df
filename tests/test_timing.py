"""Stage times split into the gated work and preprocgate's own overhead: exact by construction on a small gate,
with a variant made slow on purpose."""

from __future__ import annotations

import json
import threading
import time

import pytest

from preprocgate.data import demo
from preprocgate.timing import StageTimes, elsewhere, work
from tests.helpers.gates import coco_dataset, detection_gate, invoke, write_gate
from tests.helpers.variants import SlowTorch

PAUSE = 0.05


def test_work_counts_once_in_every_open_stage_of_its_thread() -> None:
    def elsewhere_in_this_process() -> None:
        with work():
            time.sleep(PAUSE)

    times = StageTimes()
    with times.measure("outer"):
        time.sleep(PAUSE)  # overhead
        with times.measure("inner"), work(), work():  # nested work counts once
            time.sleep(PAUSE)
        helper = threading.Thread(target=elsewhere_in_this_process)
        helper.start()  # work in another thread (the dump writer's place): waiting for it is overhead here
        helper.join()
    split = times.split()
    assert list(split) == ["inner", "outer"]  # in the order the stages ended, as stage_seconds
    inner, outer = split["inner"], split["outer"]
    assert inner.work_s >= PAUSE and outer.work_s == inner.work_s and outer.overhead_s >= 2 * PAUSE
    for s, wall in ((inner, times.seconds["inner"]), (outer, times.seconds["outer"])):
        assert s.wall_s == wall and s.work_s + s.overhead_s == pytest.approx(wall, abs=1e-12)


def test_a_stage_inside_a_work_block_counts_only_its_part() -> None:
    times = StageTimes()
    with times.measure("outer"), work():
        time.sleep(PAUSE)
        with times.measure("inner"):
            time.sleep(PAUSE)
        time.sleep(PAUSE)
    assert PAUSE <= times.work["inner"] <= times.seconds["inner"]  # as counted, before any rounding guard
    assert times.work["outer"] >= 3 * PAUSE


def test_a_stage_waiting_on_other_processes_has_no_split() -> None:
    times = StageTimes()
    with times.measure("dump local"), work():
        time.sleep(PAUSE)
    with times.measure("dump remote"):
        elsewhere()
    with times.measure("dump remote"), work():  # measured again: still waits partly elsewhere
        pass
    assert set(times.seconds) == {"dump local", "dump remote"} and list(times.split()) == ["dump local"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, float]:
    """A detection gate whose second variant sleeps inside its preprocessing: the JSON, the Markdown report and
    the seconds slept."""
    folder = tmp_path_factory.mktemp("overhead")
    data = demo.generate(folder / "demo", "val", 4, seed=0)
    variants = {"torch": "torch", "slow": "tests.helpers.variants:SlowTorch"}
    spec = detection_gate(
        coco_dataset(data), variants=variants, baseline="torch", thresholds={"map": {"max_abs_delta": 0.5}}
    )
    SlowTorch.slept = 0.0
    result = invoke("run", str(write_gate(folder, spec)))
    assert result.exit_code == 0, result.output
    out = folder / "out"
    return json.loads((out / "det.json").read_text()), (out / "det.md").read_text(), SlowTorch.slept


def test_every_split_adds_up_to_its_stage_time(run: tuple[dict, str, float]) -> None:
    data, _, _ = run
    split, seconds = data["stage_overhead"], data["stage_seconds"]
    assert {"dump torch", "dump slow", "evaluate", "diff"} <= set(split)
    assert not {"decode", "preprocess", "infer+postprocess"} & set(split)  # steps of the dumps, not stages
    for stage, s in split.items():
        assert s["wall_s"] == seconds[stage] and s["work_s"] >= 0 and s["overhead_s"] >= 0
        assert s["work_s"] + s["overhead_s"] == pytest.approx(s["wall_s"], abs=1e-9)
    assert split["dump torch"]["work_s"] > 0 and split["evaluate"]["work_s"] > 0
    assert split["dump torch"]["overhead_s"] > 0  # the images were decoded in it, its parts encoded and written
    assert split["diff"]["work_s"] == 0  # matching detections is preprocgate's own


def test_a_slow_variant_shows_as_work_not_overhead(run: tuple[dict, str, float]) -> None:
    data, _, slept = run
    slow = data["stage_overhead"]["dump slow"]
    assert slept > 0 and slow["work_s"] >= slept and slow["overhead_s"] < slept / 2


def test_the_report_shows_the_split(run: tuple[dict, str, float]) -> None:
    from preprocgate.report.render import stable_part

    data, md, _ = run
    slow = data["stage_overhead"]["dump slow"]
    row = f"| dump slow | {slow['wall_s']:.1f} | {slow['work_s']:.1f} | {slow['overhead_s']:.1f} ("
    assert row in md and "engine overhead" not in stable_part(md)  # in the fold of what differs run to run
