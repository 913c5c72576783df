"""Wall time per stage, in the order the stages ran: the report's timing line and the JSON's stage_seconds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimes:
    """Seconds per named stage; a name measured twice adds up (a stage run for several variants)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - start)

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def update(self, seconds: dict[str, float]) -> None:
        for stage, value in seconds.items():
            self.add(stage, value)
