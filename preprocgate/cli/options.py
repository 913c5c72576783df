"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path

import click

gate_argument = click.argument("gate", type=click.Path(dir_okay=False, path_type=str))

junit_option = click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write JUnit XML here: one testcase per check, for CI test panels.",
)
