from __future__ import annotations

import click

from preprocgate.cli.options import gate_argument, load


@click.command()
@gate_argument
@click.option(
    "--spec-only", is_flag=True, help="Do not require the model file and dataset to exist (a machine without data)."
)
def validate(gate: str, spec_only: bool) -> None:
    """Check GATE without running it: the spec, its template, its output folders and (unless --spec-only) its
    input files; exit 2 with one line per problem."""
    spec = load(gate, check_inputs=not spec_only).spec
    pairs = len(spec.probes.parity.pairs) if spec.probes.parity else 0
    click.echo(f"ok: gate {spec.name}: {len(spec.variants)} variants, baseline {spec.baseline}, {pairs} parity pairs")
