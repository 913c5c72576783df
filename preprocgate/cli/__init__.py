"""The ``preprocgate`` command. Exit codes: 0 passed · 1 gate failed · 2 bad spec or usage · 3 runtime error.

Domain errors are caught once, here, and printed as one line per problem; anything else is a bug and keeps
its traceback (exit 3).
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import click

from preprocgate.cli.baseline import baseline
from preprocgate.cli.ci import ci
from preprocgate.cli.demo import demo
from preprocgate.cli.post import post
from preprocgate.cli.run import merge, run
from preprocgate.cli.schema import schema
from preprocgate.cli.validate import validate
from preprocgate.cli.variants import variants
from preprocgate.errors import EXIT_RUNTIME, EXIT_USAGE, PreprocgateError


class Main(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PreprocgateError as exc:
            for line in str(exc).splitlines() or [type(exc).__name__]:
                click.echo(f"error: {line}", err=True)
            ctx.exit(exc.exit_code)
        except click.exceptions.Exit:
            raise
        except click.ClickException as exc:
            exc.show()
            ctx.exit(EXIT_USAGE)
        except (click.Abort, KeyboardInterrupt):
            click.echo("aborted", err=True)
            ctx.exit(EXIT_RUNTIME)
        except Exception:
            traceback.print_exc()
            click.echo("error: internal error in preprocgate (a bug; the traceback above helps fix it)", err=True)
            ctx.exit(EXIT_RUNTIME)


@click.group(cls=Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="preprocgate")
def cli() -> None:
    """A declarative regression gate for ML inference preprocessing."""
    # like `python -m`, let specs name `module:callable` from the working directory
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


cli.add_command(run)
cli.add_command(merge)
cli.add_command(demo)
cli.add_command(baseline)
cli.add_command(validate)
cli.add_command(schema)
cli.add_command(variants)
cli.add_command(post)
cli.add_command(ci)


def main() -> None:
    cli()
