"""Progress for long work on a terminal; silent when output is piped (CI logs stay clean)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click


class Progress:
    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        """Announce a step and its duration: ``probe: torch … 1.2 s``."""
        if not self.enabled:
            yield
            return
        click.echo(f"  {label} …", err=True, nl=False)
        start = time.perf_counter()
        yield
        click.echo(f" {time.perf_counter() - start:.1f} s", err=True)
