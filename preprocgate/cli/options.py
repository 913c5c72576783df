"""Options shared by several commands, declared once so that every command spells and validates them alike."""

from __future__ import annotations

import re
from pathlib import Path

import click

from preprocgate.spec import DEVICE_PATTERN


def _device(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """The spec's rule (auto | cpu | cuda | cuda:N), so that the flag accepts exactly what ``device:`` does."""
    if value is not None and not re.match(DEVICE_PATTERN, value):
        raise click.BadParameter(f"{value!r}: expected auto, cpu, cuda or cuda:N")
    return value


gate_argument = click.argument("gate", type=click.Path(dir_okay=False, path_type=str))

device_option = click.option("--device", callback=_device, help="Override the spec's device: auto, cpu, cuda, cuda:N.")

output_dir_option = click.option(
    "--output-dir", type=click.Path(file_okay=False, path_type=Path), help="Where reports go."
)

post_option = click.option(
    "--post", is_flag=True, help="Post the report to the pull request this CI job runs for (see `post`)."
)

junit_option = click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write JUnit XML here: one testcase per check, for CI test panels.",
)
