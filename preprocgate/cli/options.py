"""Options shared by several commands."""

from __future__ import annotations

import click

gate_argument = click.argument("gate", type=click.Path(dir_okay=False, path_type=str))
