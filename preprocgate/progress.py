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
        self._tenths = 0

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

    def images_done(self, computed: int, total: int) -> None:
        """Images of the current step finished so far, wherever they were computed (called once per batch);
        shown at each tenth."""
        tenths = 10 * computed // max(total, 1)
        if self.enabled and tenths != self._tenths:
            click.echo(f" {computed}/{total}", err=True, nl=False)
        self._tenths = tenths if computed < total else 0
