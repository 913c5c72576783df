"""Progress: lines a CI log shows, events a shard sends its parent, and the CLI switches."""

import io
import re
import time
from pathlib import Path

import pytest

from preprocgate.data import demo
from preprocgate.progress import Event, Progress, shard_sink
from tests.helpers.gates import coco_dataset, detection_gate, invoke, write_gate


def test_lines_without_a_terminal_start_beat_and_end() -> None:
    out = io.StringIO()
    progress = Progress(stream=out, interval_s=0.05)
    assert progress.mode == "lines"
    with progress.step("dump: torch", total=40) as task:
        for _ in range(4):
            task.advance(10)
            time.sleep(0.06)
    lines = out.getvalue().splitlines()
    assert lines[0] == "dump: torch: started (40)"
    beats = [line for line in lines[1:-1] if line.startswith("dump: torch: ")]
    assert beats and all(re.fullmatch(r"dump: torch: \d+/40 \([\d.,]+/s, ETA \d+ s\)", b) for b in beats), lines
    assert re.fullmatch(r"dump: torch: done 40 in \d+\.\d s", lines[-1])


def test_a_stage_without_a_count_still_shows_life() -> None:
    out = io.StringIO()
    with Progress(stream=out, interval_s=0.05).step("evaluate"):
        time.sleep(0.12)
    assert "evaluate: running for 0 s" in out.getvalue().splitlines()


def test_no_progress_is_silent() -> None:
    out = io.StringIO()
    with Progress(False, stream=out).step("x", total=3) as task:
        task.advance(3)
    assert out.getvalue() == ""


def test_shard_events_reach_the_parent_as_one_view() -> None:
    wire = io.StringIO()
    child = Progress(sink=shard_sink(wire))
    with child.step("dump: cv2", total=8) as task:
        task.update(8, 8)
    events = [Event.decode(line) for line in wire.getvalue().splitlines()]
    assert events[0] == Event("dump: cv2", 0, 8) and events[-1] == Event("dump: cv2", 8, 8, finished=True)
    assert Event.decode("an ordinary line") is None

    out = io.StringIO()
    parent = Progress(stream=out)
    with parent.step("dump in 2 processes"):
        for event in events:
            parent.event(Event(f"shard 0/2: {event.label}", event.done, event.total, event.finished))
    lines = out.getvalue().splitlines()
    assert lines[1] == "shard 0/2: dump: cv2: started (8)"
    assert re.fullmatch(r"shard 0/2: dump: cv2: done 8 in \d+\.\d s", lines[2])


@pytest.fixture(scope="module")
def gate_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("progress")
    data = demo.generate(folder / "data", "val", 3, seed=0)
    spec = detection_gate(coco_dataset(data), thresholds={"map": {"max_abs_delta": 1.0}})
    return write_gate(folder, spec)


def test_a_ci_log_shows_each_stage(gate_file: Path) -> None:
    result = invoke("run", str(gate_file))
    assert result.exit_code == 0, result.output
    for line in ("dump: cv2: started (3)", "dump: torch: started (3)", "evaluate: started"):
        assert line in result.stderr.splitlines()
    assert re.search(r"^dump: torch: done 3 in \d+\.\d s$", result.stderr, re.M)
    warm = invoke("run", str(gate_file))  # dumps read whole from the cache still end at their full count
    assert re.search(r"^dump: torch: done 3 in \d+\.\d s$", warm.stderr, re.M), warm.stderr
    quiet = invoke("run", str(gate_file), "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == "" and "PASSED: gate det" in quiet.output
