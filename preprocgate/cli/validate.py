from __future__ import annotations

import click

from preprocgate.cli.options import gate_argument
from preprocgate.spec import load_gate


@click.command()
@gate_argument
def validate(gate: str) -> None:
    """Check GATE without running it; exit 2 with one line per problem."""
    spec = load_gate(gate).spec
    pairs = len(spec.probes.parity.pairs) if spec.probes.parity else 0
    click.echo(f"ok: gate {spec.name}: {len(spec.variants)} variants, baseline {spec.baseline}, {pairs} parity pairs")
