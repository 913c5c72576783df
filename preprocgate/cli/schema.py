from __future__ import annotations

import json

import click

from preprocgate.spec import json_schema


@click.command()
def schema() -> None:
    """Print the gate spec's JSON Schema (for editor completion)."""
    click.echo(json.dumps(json_schema(), indent=2, sort_keys=True))
