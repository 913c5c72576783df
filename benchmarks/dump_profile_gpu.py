"""Where an RF-DETR dump's time goes, batch by batch: one variant's dump (``--variant``, default torch) under
torch.profiler for a
window of batches in its steady state, the GPU's busy share of that window, each step's time on the host and
the GPU time of the kernels it queued, and what every thread kept the host busy with. Prints JSON.

    PYTHONPATH=.:benchmarks python benchmarks/dump_profile_gpu.py --images 1000 [--variant triton] --out profile.json

Issue 13 item 1 asks for dumps at 80% of the network + postprocess's throughput. Earlier cProfile runs saw only
the main thread and nvidia-smi's utilisation only once a second; this times each step (``preprocess``,
``forward``, ``postprocess``, ``detections to host``, ``rle``, the writer's ``encode`` and ``write``) inside
the dump itself, with the writer's threads running beside it, and unions the GPU's kernel and copy intervals:
a GPU busy for a small share of the window means the dump waits on the host (Python launching, the GIL, host
synchronisations), not on the GPU. The profiler's own cost per op (a few microseconds) slows a launch-bound
forward, so the window's throughput is given beside the unprofiled dumps' (the gate's other variants).
The interpreter's garbage collections are timed too, in the window and over every dump.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from rfdetr_gpu import gate_spec, random_checkpoint, run_study, versions
from torch.profiler import ProfilerAction, ProfilerActivity, profile, record_function, schedule

from preprocgate import cache as cache_module
from preprocgate.data import demo
from preprocgate.fileio import atomic_write_text
from preprocgate.models import rfdetr
from preprocgate.provenance import device_name
from preprocgate.stages import dump
from preprocgate.timing import StageTimes

LABELS = ("preprocess", "forward", "postprocess", "detections to host", "rle", "encode", "write")
HOST: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])  # label: calls, seconds, inside the window
WINDOW = [False]  # whether the profiler records the current batch
GC: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])  # generation: collections, seconds, during the window
DUMPING = [False]  # whether a dump (any variant's) runs
PART_BYTES = [0]  # the part files' texts written inside the window
GC_DUMPS: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])  # the same over every dump


def time_gc() -> None:
    """Adds the interpreter's garbage collections inside the window to :data:`GC`, and during any dump to
    :data:`GC_DUMPS`: a collection stops every thread, and a dump's records (hundreds of thousands of dicts) make
    a full one long unless the dump keeps them frozen (``heap_frozen``; ``--no-freeze`` times the dumps without)."""
    begun: list[float] = []

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            begun.append(time.perf_counter())
        elif begun:
            elapsed = time.perf_counter() - begun.pop()
            for flag, table in ((WINDOW, GC), (DUMPING, GC_DUMPS)):
                if flag[0]:
                    table[str(info["generation"])][0] += 1
                    table[str(info["generation"])][1] += elapsed

    gc.callbacks.append(callback)


@contextlib.contextmanager
def span(label: str) -> Iterator[None]:
    """A profiler range, its calls and seconds on any thread added to :data:`HOST` inside the window (the
    profiler sees only the thread that started it: the writer's threads are timed here alone)."""
    begin = time.perf_counter()
    try:
        with record_function(label):
            yield
    finally:
        if WINDOW[0]:
            HOST[label][0] += 1
            HOST[label][1] += time.perf_counter() - begin


def labelled(fn: Callable, label: str) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with span(label):
            return fn(*args, **kwargs)

    return wrapper


def instrument(step: Callable[[], None]) -> None:
    """Labels the dump's steps for the profiler and calls ``step()`` after each inferred batch. Only this
    process's objects are patched: the product's code is unchanged."""
    original_measure = StageTimes.measure

    @contextlib.contextmanager
    def measure(self: StageTimes, stage: str) -> Iterator[None]:
        with original_measure(self, stage):
            if stage == "preprocess":
                with span("preprocess"):
                    yield
            else:
                yield

    StageTimes.measure = measure  # type: ignore[method-assign]
    rfdetr.TorchBackend.__call__ = labelled(rfdetr.TorchBackend.__call__, "forward")  # type: ignore[method-assign]
    adapter_launch = rfdetr.RFDETRAdapter.launch

    @functools.wraps(adapter_launch)
    def adapter(self: rfdetr.RFDETRAdapter, batch: torch.Tensor, geometries: Any) -> Any:
        if not getattr(self, "_labelled", False):
            self.postprocess = labelled(self.postprocess, "postprocess")
            self._detections = labelled(self._detections, "detections to host")  # type: ignore[method-assign]
            self._labelled = True
        return adapter_launch(self, batch, geometries)

    rfdetr.RFDETRAdapter.launch = adapter  # type: ignore[method-assign]
    dump.portable = labelled(dump.portable, "rle")
    dump._encode_part = labelled(dump._encode_part, "encode")
    write_texts = labelled(dump.DumpCache.write_texts, "write")

    @functools.wraps(write_texts)
    def counted(self: dump.DumpCache, key: str, name: str, texts: dict[int, bytes]) -> None:
        if WINDOW[0]:
            PART_BYTES[0] += sum(len(t) for t in texts.values())
        write_texts(self, key, name, texts)

    dump.DumpCache.write_texts = counted  # type: ignore[method-assign]
    launch = dump._launch

    @functools.wraps(launch)
    def launched(*args: Any, **kwargs: Any) -> Any:  # every local batch, with its masks encoded here or not
        out = launch(*args, **kwargs)
        step()
        return out

    dump._launch = launched


def no_writer_work(chunk: list[int], portable: Any) -> tuple[dict, dict, float]:
    """``--no-writer-work``'s part encoder: the masks encoded (on the writer's RLE thread, on its stream), then
    nothing: no records, ``[]`` for each image's text."""
    _, seconds = portable.result()
    return {i: [] for i in chunk}, {i: b"[]" for i in chunk}, seconds


def write_without_fsync(path: Path, data: bytes | list[bytes]) -> None:
    """``--no-part-fsync``'s part write: a temporary file renamed into place, as the product's, without its
    ``fsync``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.writelines([data] if isinstance(data, bytes) else data)
    os.replace(tmp, path)


def union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for lo, hi in sorted(intervals):
        if hi > end:
            total += hi - max(lo, end)
            end = hi
    return total


def analyse(prof: profile, batch_size: int) -> dict[str, Any]:
    """The window's figures from the profiler's events (microseconds in, milliseconds out)."""
    events = prof.events()
    cpu = torch.autograd.DeviceType.CPU
    steps = [e for e in events if e.name.startswith("ProfilerStep") and e.device_type == cpu]
    begin = min(e.time_range.start for e in steps)
    end = max(e.time_range.end for e in steps)
    wall = end - begin
    gpu = [
        (max(e.time_range.start, begin), min(e.time_range.end, end))
        for e in events
        if e.device_type == torch.autograd.DeviceType.CUDA
        and not (getattr(e, "is_user_annotation", False) or e.name.startswith("ProfilerStep") or e.name in LABELS)
        and e.time_range.end > begin
        and e.time_range.start < end
    ]
    gpu_ms: dict[str, float] = defaultdict(float)
    threads: dict[int, float] = defaultdict(float)
    for e in events:
        if e.device_type != cpu or e.name.startswith("ProfilerStep"):
            continue
        if e.cpu_parent is None or e.cpu_parent.name.startswith("ProfilerStep"):
            threads[e.thread] += e.time_range.end - e.time_range.start
        if e.name in LABELS:
            gpu_ms[e.name] += e.device_time_total / 1e3
    batches = len(steps)
    ops = sorted(
        (a for a in prof.key_averages() if a.key not in LABELS and not a.key.startswith("ProfilerStep")),
        key=lambda a: a.self_cpu_time_total,
        reverse=True,
    )
    kernels = sorted(
        (a for a in prof.key_averages() if a.key not in LABELS and not a.key.startswith("ProfilerStep")),
        key=lambda a: a.self_device_time_total,
        reverse=True,
    )
    return {
        "batches": batches,
        "window_ms": round(wall / 1e3, 2),
        "window_images_per_s": round(batches * batch_size / (wall / 1e6), 1),
        "gpu_busy_share": round(union(gpu) / wall, 3),
        # host: wall time in the step on whichever thread ran it; gpu: its kernels' (the inferring thread's only)
        "per_batch_ms": {
            name: {
                "calls": HOST[name][0] / batches,
                "host": round(HOST[name][1] * 1e3 / batches, 3),
                "gpu": round(gpu_ms[name] / batches, 3),
            }
            for name in LABELS
            if name in HOST
        },
        "part_mb_per_batch": round(PART_BYTES[0] / 1e6 / batches, 2),
        "gc_ms_per_batch": {g: round(v[1] * 1e3 / batches, 3) for g, v in sorted(GC.items())},
        "gc_collections": {g: v[0] for g, v in sorted(GC.items())},
        "thread_busy_share": {str(t): round(v / wall, 3) for t, v in sorted(threads.items(), key=lambda kv: -kv[1])},
        "top_host_ops_ms_per_batch": [
            [a.key, a.count / batches, round(a.self_cpu_time_total / 1e3 / batches, 3)] for a in ops[:25]
        ],
        "top_gpu_ops_ms_per_batch": [
            [a.key, a.count / batches, round(a.self_device_time_total / 1e3 / batches, 3)]
            for a in kernels[:25]
            if a.self_device_time_total > 0
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--variant", default="torch", help="the variant whose dump is profiled: cv2, torch, triton")
    parser.add_argument("--skip", type=int, default=20, help="batches of that dump before the window")
    parser.add_argument("--window", type=int, default=80, help="batches profiled")
    parser.add_argument("--model-params", type=json.loads, default={}, metavar="JSON", help="the adapter's, added")
    parser.add_argument("--local-params", type=json.loads, default={}, metavar="JSON", help="the local executor's")
    parser.add_argument("--device", default="cuda", help="cpu: a smoke test")
    parser.add_argument("--no-freeze", action="store_true", help="dumps without heap_frozen (as before it)")
    parser.add_argument(
        "--no-writer-work",
        action="store_true",
        help="a diagnostic: the writer makes no records and writes '[]' (masks still encoded): how fast the "
        "inferring thread goes without the writer's share of the GIL; its dumps and metrics are not the gate's",
    )
    parser.add_argument(
        "--no-part-fsync",
        action="store_true",
        help="a diagnostic: part files written and renamed without their fsync (what the write costs the disk's "
        "flush against the copy into the page cache)",
    )
    parser.add_argument("--trace", type=Path, help="also write the window's Chrome trace here")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    device = torch.device(args.device)
    work = Path(tempfile.mkdtemp(prefix="dump-profile-"))
    checkpoint = random_checkpoint(work)
    data = demo.generate(work / "data", "val", args.images, seed=0, workers=os.cpu_count() or 1)
    profiled_batches = 0

    def on_batch() -> None:
        nonlocal profiled_batches
        if profiling:
            profiled_batches += 1
            prof.step()
            WINDOW[0] = prof.current_action in (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE)

    profiling = False
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    prof = profile(activities=activities, schedule=schedule(wait=args.skip - 2, warmup=2, active=args.window, repeat=1))
    if args.no_writer_work:
        dump._encode_part = no_writer_work
    if args.no_part_fsync:
        cache_module.atomic_write_bytes = write_without_fsync
    instrument(on_batch)
    time_gc()
    frozen_before: list[int] = []  # the freeze count each dump began with (a library may freeze at import)
    shipped = dump.heap_frozen

    def heap_frozen() -> contextlib.AbstractContextManager[bool]:
        frozen_before.append(gc.get_freeze_count())
        return contextlib.nullcontext(False) if args.no_freeze else shipped()

    dump.heap_frozen = heap_frozen
    original_run = dump.DumpStage.run

    def run(self: dump.DumpStage, name: str, *a: Any, **k: Any) -> dump.Dump:
        """The first dump of ``--variant`` profiled (the warm run's reads nothing to profile)."""
        nonlocal profiling
        profiling = name == args.variant and not profiled_batches
        if profiling:
            prof.start()
        DUMPING[0] = True
        try:
            return original_run(self, name, *a, **k)
        finally:
            if profiling:
                prof.stop()
            profiling = WINDOW[0] = DUMPING[0] = False

    dump.DumpStage.run = run  # type: ignore[method-assign]
    spec = gate_spec(data, checkpoint, args.device, "fp32", args.batch_size, None, args.model_params)
    if args.local_params:
        spec["executor"] = {"kind": "local", "params": args.local_params}
    started = time.perf_counter()
    study = run_study(work, spec, lambda _s: None)
    report = {
        "device": device_name(device),
        "versions": versions(),
        "images": args.images,
        "batch_size": args.batch_size,
        "profiled_variant": args.variant,
        "model_params": args.model_params,
        "local_params": args.local_params,
        "heap_frozen": not args.no_freeze,
        "no_writer_work": args.no_writer_work,
        "no_part_fsync": args.no_part_fsync,
        "freeze_count_at_dump_start": frozen_before,
        "gc_enabled": gc.isenabled(),
        "seconds": round(time.perf_counter() - started, 1),
        "dumps": study["dumps"],
        "stage_seconds": study["stage_seconds"],
        "gc_during_dumps": {g: {"collections": v[0], "seconds": round(v[1], 3)} for g, v in sorted(GC_DUMPS.items())},
        "window": analyse(prof, args.batch_size) if profiled_batches >= args.skip + args.window else None,
        # the steps are found by patching stages/dump.py's and the adapter's names: one the dump no longer calls
        # through them (a rename, a refactor) would read 0 here rather than fail
        "labels_never_seen": [label for label in LABELS if label not in HOST],
    }
    if report["labels_never_seen"]:
        print(
            f"warning: no call of {report['labels_never_seen']} in the window: the dump's code has moved",
            file=sys.stderr,
        )
    if args.trace:
        prof.export_chrome_trace(str(args.trace))
    text = json.dumps(report, indent=2)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    print(text)


if __name__ == "__main__":
    main()
