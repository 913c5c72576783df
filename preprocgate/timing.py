"""Wall time per stage, in the order the stages ran (the report's timing line, the JSON's stage_seconds), and
how much of it was the gated work rather than preprocgate's own machinery (the JSON's stage_overhead).

Work is the time inside the code a gate measures: a variant's preprocessing (its call and the device
synchronisation after it), the model adapter's call (and the synchronisation after it) and the COCO evaluator.
The call sites mark it with :func:`work`; every stage that :meth:`StageTimes.measure` has open in the same
thread counts it. Work in another thread (the dump writer) or another process is not counted, so a stage's work
never exceeds its wall time and nothing is counted twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(eq=False)  # removed from the open list by identity
class _Span:
    opened: float
    work: float = 0.0
    elsewhere: bool = False


class _Open(threading.local):
    """Per thread: the stages measuring now, and when the running :func:`work` block began (nested ones count once)."""

    def __init__(self) -> None:
        self.spans: list[_Span] = []
        self.work_start: float | None = None


_open = _Open()


@contextmanager
def work() -> Iterator[None]:
    """Around a call into the gated work; its seconds are work in every stage open in this thread."""
    if _open.work_start is not None:
        yield
        return
    _open.work_start = start = time.perf_counter()
    try:
        yield
    finally:
        _open.work_start = None
        end = time.perf_counter()
        for span in _open.spans:  # a stage opened inside the block counts its part only
            span.work += end - max(start, span.opened)


def elsewhere() -> None:
    """The open stages wait on work done in other processes (a remote executor): their wall time cannot be
    split, so they are left out of :meth:`StageTimes.split`."""
    for span in _open.spans:
        span.elsewhere = True


@dataclass(frozen=True)
class StageSplit:
    """One stage's wall time = ``work_s`` (inside the variants, the model, the evaluator) + ``overhead_s``
    (everything else the stage did in its thread: decoding, cache reads and writes, digests, record conversion,
    waiting on the dump writer)."""

    wall_s: float
    work_s: float
    overhead_s: float

    @classmethod
    def of(cls, wall_s: float, work_s: float) -> StageSplit:
        work_s = min(work_s, wall_s)  # only float rounding: the work lies inside the wall time
        return cls(wall_s, work_s, wall_s - work_s)


class StageTimes:
    """Seconds per named stage; a name measured twice adds up (a stage run for several variants). ``work``: the
    work seconds of the stages measured here (:meth:`counting`), none of them waiting on other processes."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.work: dict[str, float] = {}
        self._elsewhere: set[str] = set()

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            with self.counting(stage):
                yield
        finally:
            self.add(stage, time.perf_counter() - start)

    @contextmanager
    def counting(self, stage: str) -> Iterator[None]:
        """Counts the work done in this thread inside the block as ``stage``'s, for a stage whose wall time is
        measured elsewhere (:meth:`add`) around the same block."""
        span = _Span(time.perf_counter())
        _open.spans.append(span)
        try:
            yield
        finally:
            _open.spans.remove(span)
            if _open.work_start is not None:  # closed inside a work block: its part of it
                span.work += time.perf_counter() - max(_open.work_start, span.opened)
            if span.elsewhere:
                self._elsewhere.add(stage)
                self.work.pop(stage, None)
            elif stage not in self._elsewhere:
                self.work[stage] = self.work.get(stage, 0.0) + span.work

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def update(self, seconds: dict[str, float]) -> None:
        for stage, value in seconds.items():
            self.add(stage, value)

    def split(self) -> dict[str, StageSplit]:
        """Wall time into work and overhead, for the stages whose work was counted, in the order they ran."""
        return {s: StageSplit.of(wall, self.work[s]) for s, wall in self.seconds.items() if s in self.work}
