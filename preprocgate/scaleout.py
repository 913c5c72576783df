"""Scale-out of the dump stage: one process per GPU on a host, or one CI job per shard, then a merge.

Shards write their parts into the shared cache folder under shard-named files, so any number of writers can
fill one dump; the merge is an ordinary run that finds every image already dumped (and fails, naming the
gap, if one is not).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import torch

from preprocgate.errors import RunError
from preprocgate.progress import Event, Progress
from preprocgate.stages.dump import Shard


def parse_shard(text: str) -> Shard:
    """``"i/N"`` with 0 ≤ i < N."""
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"{text!r}: expected i/N, e.g. 0/4") from None
    if not 0 <= index < count:
        raise ValueError(f"{text!r}: need 0 ≤ i < N")
    return Shard(index, count)


def devices_for(processes: int, requested: str | None) -> list[str]:
    """One device per process: cuda:0..N-1 when CUDA is used (and has enough GPUs), else the CPU for all.

    Processes never share a GPU: 4 shard processes on one H100 (no MPS) dumped slower than one process
    (benchmarks/RESULTS.md), as CUDA time-slices contexts instead of running their kernels side by side.
    """
    use_cuda = requested not in ("cpu",) and torch.cuda.is_available()
    if not use_cuda:
        return ["cpu"] * processes
    if torch.cuda.device_count() < processes:
        raise RunError(
            f"{processes} processes requested but only {torch.cuda.device_count()} GPUs are visible: "
            "use one process per GPU"
        )
    return [f"cuda:{i}" for i in range(processes)]


EVENTS = ["--progress-events"]  # the child's progress as events on its stderr (preprocgate.progress.shard_sink)


def run_shards(gate: str, processes: int, device: str | None, progress: Progress | None = None) -> float:
    """Run ``preprocgate run GATE --shard i/N`` in N child processes at once, wait for all of them, and return
    the wall time they took (the dump stage's, for the report: the children's own timings stay in them).

    Each child sends its progress as events on its stderr (``--progress-events``); they reach ``progress`` as
    ``shard i/N: <stage>``, so the parent shows one combined view. Its other stderr lines pass through."""
    start = time.perf_counter()
    progress = progress or Progress(enabled=False)
    # Thread counts stay as they are: torch's CPU arithmetic depends on them, and every shard must compute
    # what a single process would.
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "preprocgate", "run", gate, "--shard", f"{i}/{processes}", "--device", dev, *EVENTS],
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        for i, dev in enumerate(devices_for(processes, device))
    ]
    with progress.step(f"dump in {processes} processes"):
        readers = [
            threading.Thread(target=_forward, args=(child, f"shard {i}/{processes}", progress), daemon=True)
            for i, child in enumerate(children)
        ]
        for reader in readers:
            reader.start()
        failed = [i for i, child in enumerate(children) if child.wait() != 0]
        for reader in readers:
            reader.join()
    if failed:
        raise RunError(f"shard process(es) {failed} failed; their output is above")
    return time.perf_counter() - start


def _forward(child: subprocess.Popen, name: str, progress: Progress) -> None:
    """A child's stderr: progress events to ``progress``, every other line to this process's stderr."""
    assert child.stderr is not None
    for line in child.stderr:
        event = Event.decode(line.rstrip("\n"))
        if event is None:
            sys.stderr.write(line)
            sys.stderr.flush()
        else:
            progress.event(Event(f"{name}: {event.label}", event.done, event.total, event.finished))
