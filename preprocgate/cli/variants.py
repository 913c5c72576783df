from __future__ import annotations

import click

from preprocgate.variants import VARIANTS


@click.command()
def variants() -> None:
    """List the registered preprocessing variants (built-in and from entry points) and the input.interpolation
    modes each computes."""
    for name in VARIANTS.names():
        factory = VARIANTS.get(name)
        doc = (factory.__doc__ or "").strip().splitlines()
        click.echo(f"{name:10} {VARIANTS.target_of(name)}")
        if doc:
            click.echo(f"{'':10} {doc[0]}")
        modes = getattr(factory, "interpolations", None)
        if modes is not None:
            click.echo(f"{'':10} input.interpolation: {', '.join(modes)}")
