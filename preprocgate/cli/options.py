"""Options shared by several commands, declared once so that every command spells and validates them alike."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import click

from preprocgate.errors import SpecError, SpecIssue
from preprocgate.report.render import template_problem
from preprocgate.spec import DEVICE_PATTERN, Gate, load_gate


def load(path: str, check_inputs: bool = True) -> Gate:
    """The gate, checked as far as it can be before any work: :func:`load_gate`, plus whether a user report
    template compiles (the report layer knows its names and filters; the spec does not)."""
    gate = load_gate(path, check_inputs=check_inputs)
    problem = template_problem(gate.template_path) if gate.template_path else None
    if problem:
        raise SpecError([SpecIssue(path, "report.template", problem)])
    return gate


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


def progress_option(command: Callable) -> Callable:
    """``--progress/--no-progress`` and ``--quiet``, shared by ``run`` and ``demo``."""
    command = click.option("--quiet", "-q", is_flag=True, help="No progress output; the verdict line still prints.")(
        command
    )
    return click.option(
        "--progress/--no-progress",
        default=None,
        help="Progress on stderr: bars on a terminal, a line per stage and every 10 s elsewhere (default: on).",
    )(command)


post_option = click.option(
    "--post", is_flag=True, help="Post the report to the pull request this CI job runs for (see `post`)."
)

junit_option = click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write JUnit XML here: one testcase per check, for CI test panels.",
)


def _links(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    links = {}
    for value in values:
        label, sep, url = value.partition("=")
        if not sep or not label or not re.match(r"^https?://\S+$", url):
            raise click.BadParameter(f"{value!r}: expected LABEL=https://...")
        links[label] = url
    return links


link_option = click.option(
    "--link",
    "links",
    multiple=True,
    callback=_links,
    metavar="LABEL=URL",
    help="A link under the report's verdict (the CI run, artifacts); added to the spec's report.links.",
)
