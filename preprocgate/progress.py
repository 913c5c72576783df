"""Progress of long work: bars on a terminal, plain lines in a CI log, events for a parent process.

Three ways to show the same ``(label, done, total)`` updates:

- **bars** (stderr is a terminal): one rich bar per stage with count, rate and ETA;
- **lines** (stderr is a file or pipe, as in every CI log): one line when a stage starts, one when it ends, and
  a line every ``interval_s`` seconds for each stage still running, so that a log shows life during a long dump;
- **a sink** (a shard process under ``run --processes``): every update goes to a callback, which forwards it to
  the parent; the parent feeds it to its own :class:`Progress` with :meth:`Progress.event`, so one combined view
  shows every shard.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Literal

Mode = Literal["bars", "lines", "off"]
EVENT_PREFIX = "@@preprocgate-progress "
"""Marks a progress event on a shard process's stderr; any other line there is ordinary output."""


@dataclass(frozen=True)
class Event:
    """``done`` of ``total`` (None: unknown) items of the stage ``label``; ``finished`` once at its end."""

    label: str
    done: int
    total: int | None
    finished: bool = False

    def encode(self) -> str:
        return EVENT_PREFIX + json.dumps([self.label, self.done, self.total, self.finished])

    @classmethod
    def decode(cls, line: str) -> Event | None:
        """The event on a line of a shard's stderr, or None for any other line."""
        if not line.startswith(EVENT_PREFIX):
            return None
        try:
            label, done, total, finished = json.loads(line[len(EVENT_PREFIX) :])
            return cls(str(label), int(done), None if total is None else int(total), bool(finished))
        except (ValueError, TypeError):
            return None


def fmt_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Task:
    """One stage's count; ``advance`` after each batch."""

    def __init__(self, progress: Progress, label: str, total: int | None) -> None:
        self.progress, self.label, self.total, self.done = progress, label, total, 0
        self.start = time.perf_counter()
        self._bar: int | None = None

    def advance(self, n: int = 1) -> None:
        self.done += n
        self.progress._updated(self)

    def update(self, done: int, total: int | None) -> None:
        self.done, self.total = done, total
        self.progress._updated(self)

    def status(self) -> str:
        """``16/40 (3.2/s, ETA 8 s)``; ``running for 20 s`` for a stage that counts nothing."""
        elapsed = time.perf_counter() - self.start
        if self.total is None and self.done <= 0:
            return f"running for {fmt_duration(elapsed)}"
        count = f"{self.done:,}" + (f"/{self.total:,}" if self.total is not None else "")
        if self.done <= 0 or elapsed <= 0:
            return count
        rate = self.done / elapsed
        eta = f", ETA {fmt_duration((self.total - self.done) / rate)}" if self.total is not None else ""
        return f"{count} ({rate:,.1f}/s{eta})"


class Progress:
    """``enabled``: None shows bars on a terminal and lines elsewhere; False shows nothing; True forces display
    (lines when stderr is not a terminal). ``sink``: send every update there instead of showing it."""

    def __init__(
        self,
        enabled: bool | None = None,
        *,
        sink: Callable[[Event], None] | None = None,
        interval_s: float = 10.0,
        stream: IO[str] | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.sink = sink
        self.interval_s = interval_s
        terminal = self.stream.isatty()
        self.mode: Mode = "off" if enabled is False or sink else ("bars" if terminal else "lines")
        self._open: dict[str, Task] = {}
        self._lock = threading.Lock()
        self._bars = None  # a rich Progress while a step shows bars
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    @contextmanager
    def step(self, label: str, total: int | None = None) -> Iterator[Task]:
        """A stage: shown while it runs and once more when it ends, with its duration."""
        task = Task(self, label, total)
        self._begin(task)
        try:
            yield task
        finally:
            self._end(task)

    def event(self, event: Event) -> None:
        """An update from elsewhere (a shard process): shown as a stage of its own, inside the current one."""
        with self._lock:
            task = self._open.get(event.label)
        if task is None:
            if event.finished:
                return
            task = Task(self, event.label, event.total)
            self._begin(task)
        task.update(event.done, event.total)
        if event.finished:
            self._end(task)

    # display ---------------------------------------------------------------------------------------------------

    def _begin(self, task: Task) -> None:
        with self._lock:
            self._open[task.label] = task
        if self.sink is not None:
            self.sink(Event(task.label, 0, task.total))
        elif self.mode == "lines":
            self._line(f"{task.label}: started" + (f" ({task.total:,})" if task.total is not None else ""))
            self._start_heartbeat()
        elif self.mode == "bars":
            self._bar_start(task)

    def _updated(self, task: Task) -> None:
        if self.sink is not None:
            self.sink(Event(task.label, task.done, task.total))
        elif self.mode == "bars" and self._bars is not None and task._bar is not None:
            elapsed = time.perf_counter() - task.start
            rate = f"{task.done / elapsed:,.1f}/s" if task.done and elapsed > 0 else ""
            self._bars.update(task._bar, completed=task.done, total=task.total, rate=rate)

    def _end(self, task: Task) -> None:
        with self._lock:
            self._open.pop(task.label, None)
            left = len(self._open)
        seconds = time.perf_counter() - task.start
        if self.sink is not None:
            self.sink(Event(task.label, task.done, task.total, finished=True))
        elif self.mode == "lines":
            count = f"{task.done:,} " if task.total is not None else ""
            self._line(f"{task.label}: done {count}in {seconds:.1f} s")
        elif self.mode == "bars" and self._bars is not None and task._bar is not None:
            total = task.total if task.total is not None else 1
            self._bars.update(task._bar, completed=task.done if task.total is not None else 1, total=total)
            if not left:
                self._bars.stop()
                self._bars = None
        if not left:
            self._stop_heartbeat()

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def _bar_start(self, task: Task) -> None:
        if self._bars is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as Bars

            self._bars = Bars(
                TextColumn("  {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
            )
            self._bars.start()
        task._bar = self._bars.add_task(task.label, total=task.total, rate="")

    # the periodic line of lines mode ----------------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        if self._heartbeat is not None:
            return
        self._stop.clear()
        self._heartbeat = threading.Thread(target=self._beat, name="preprocgate-progress", daemon=True)
        self._heartbeat.start()

    def _stop_heartbeat(self) -> None:
        if self._heartbeat is None:
            return
        self._stop.set()
        if self._heartbeat is not threading.current_thread():
            self._heartbeat.join()
        self._heartbeat = None

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                tasks = list(self._open.values())
            for task in tasks:
                self._line(f"{task.label}: {task.status()}")


def shard_sink(stream: IO[str] | None = None) -> Callable[[Event], None]:
    """The sink of a shard process: events as marked lines on stderr, read by the parent
    (:func:`preprocgate.scaleout.run_shards`). Updates are sent at most every 0.5 s per stage."""
    out = stream or sys.stderr
    last: dict[str, float] = {}

    def send(event: Event) -> None:
        now = time.perf_counter()
        if not event.finished and event.done and now - last.get(event.label, 0.0) < 0.5:
            return
        last[event.label] = now
        print(event.encode(), file=out, flush=True)

    return send
