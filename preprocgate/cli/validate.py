from __future__ import annotations

import click

from preprocgate.cli.options import load
from preprocgate.errors import EXIT_PASSED, PreprocgateError


@click.command()
@click.argument("gates", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--spec-only", is_flag=True, help="Do not require the model file and dataset to exist (a machine without data)."
)
def validate(gates: tuple[str, ...], spec_only: bool) -> None:
    """Check each GATE without running it: the spec, its template, its output folders and (unless --spec-only) its
    input files; exit 2 with one line per problem. Several gates (as the pre-commit hook passes them) are each
    checked, and every problem of every gate printed."""
    code = EXIT_PASSED
    for gate in gates:
        try:
            spec = load(gate, check_inputs=not spec_only).spec
        except PreprocgateError as exc:
            if len(gates) == 1:
                raise  # printed by the command group like every other error
            for line in str(exc).splitlines():
                click.echo(f"error: {line}", err=True)
            code = max(code, exc.exit_code)
            continue
        pairs = len(spec.probes.parity.pairs) if spec.probes.parity else 0
        click.echo(
            f"ok: gate {spec.name}: {len(spec.variants)} variants, baseline {spec.baseline}, {pairs} parity pairs"
        )
    if code != EXIT_PASSED:
        raise SystemExit(code)
