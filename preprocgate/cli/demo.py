"""``preprocgate demo``: the demo gate shipped inside the package, for an installed wheel that has no gates/ or
models/ folder. It is ``run`` on that gate, with ``run``'s own options (cli/options.py)."""

from __future__ import annotations

import click

from preprocgate.cli.options import (
    device_option,
    junit_option,
    link_option,
    output_dir_option,
    post_option,
    progress_option,
)
from preprocgate.cli.run import run
from preprocgate.demo import GATE


@click.command()
@device_option
@output_dir_option
@progress_option
@post_option
@junit_option
@link_option
@click.option("--path", "show_path", is_flag=True, help="Print the demo gate's path (to copy it as a start) and exit.")
@click.pass_context
def demo(ctx: click.Context, show_path: bool, **options: object) -> None:
    """Run the demo gate (three preprocessing paths, a Mask R-CNN on 40 generated images); reports go to
    ./reports unless --output-dir says otherwise. Exit codes as `run`."""
    if show_path:
        click.echo(GATE)
        return
    ctx.invoke(run, gate=str(GATE), **options)
