"""``preprocgate ci``: the steps the GitHub Action (action.yml) and the GitLab CI/CD component
(templates/preprocgate.yml) run once preprocgate is installed, in one command so that both, and .ci/run, execute
exactly the same thing: every gate in turn as ``run`` does, then the step summary or the sticky comment, then the
outputs the CI reads back (passed, report, json, junit).

It posts only where posting can work: when the job runs for a pull or merge request and a token is there. A
pull request from a fork (no write token; the Action passes no ``--post`` then) or a default-branch pipeline gets
the step summary alone, with a note saying why.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path

import click

from preprocgate.cli.options import device_option, load, output_dir_option, progress_option
from preprocgate.cli.run import finish, gated
from preprocgate.engine import run_gate
from preprocgate.errors import EXIT_GATE_FAILED, EXIT_PASSED, PreprocgateError, PublishError
from preprocgate.progress import Progress
from preprocgate.publish import append_step_summary, resolve_forge
from preprocgate.publish.outputs import append_github_outputs, write_dotenv
from preprocgate.publish.post import publish_report


def _print_error(exc: PreprocgateError) -> None:
    for line in str(exc).splitlines() or [type(exc).__name__]:
        click.echo(f"error: {line}", err=True)


def _why_not_post(env: Mapping[str, str]) -> str | None:
    """None when a comment can be posted from here; else why not (no pull/merge request, no token)."""
    try:
        forge = resolve_forge("auto", env)
    except PublishError as exc:
        return str(exc)
    if not env.get(forge.token_env, "").strip():
        return f"${forge.token_env} is not set (a pull request from a fork gets no write token)"
    return None


@click.command()
@click.argument("gates", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=str))
@device_option
@output_dir_option
@progress_option
@click.option(
    "--post/--no-post",
    default=False,
    help="Post each report as its sticky comment when the job runs for a pull or merge request and a token is set; "
    "the step summary otherwise.",
)
@click.option("--junit", "junit_pattern", help="Write JUnit XML per gate here; {gate} stands for the gate's name.")
@click.option(
    "--fail-on-gate/--no-fail-on-gate",
    default=True,
    show_default=True,
    help="Exit 1 when a gate fails; with --no-fail-on-gate only errors (2, 3) fail the step.",
)
@click.option(
    "--outputs",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="GITHUB_OUTPUT",
    help="Append passed, report, json and junit here in GitHub's format [default: $GITHUB_OUTPUT].",
)
@click.option(
    "--dotenv",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write PREPROCGATE_PASSED, _REPORT, _JSON, _JUNIT here (GitLab's artifacts:reports:dotenv).",
)
def ci(
    gates: tuple[str, ...],
    device: str | None,
    output_dir: Path | None,
    progress: bool | None,
    quiet: bool,
    post: bool,
    junit_pattern: str | None,
    fail_on_gate: bool,
    outputs: Path | None,
    dotenv: Path | None,
) -> None:
    """Run every GATE, publish each report, write the CI's outputs. Exit 0 when all passed (or failed with
    --no-fail-on-gate), 1 when one failed, else the highest error code (2 bad spec, 3 runtime)."""
    env = os.environ
    why_not = _why_not_post(env) if post else None
    if why_not:
        click.echo(f"note: not posting, only the step summary: {why_not}")
    codes: list[int] = []
    reports: list[str] = []
    junits: list[str] = []
    for gate in gates:
        try:
            loaded = load(gate)
        except PreprocgateError as exc:
            _print_error(exc)
            codes.append(exc.exit_code)
            continue
        name = loaded.spec.name
        junit = Path(junit_pattern.replace("{gate}", name)) if junit_pattern else None
        md_path = (output_dir or loaded.output_dir) / f"{name}.md"
        for stale in (md_path, junit):  # files left from an earlier run must not pass for this one's
            if stale is not None:
                stale.unlink(missing_ok=True)
        try:
            result = gated(
                loaded,
                output_dir,
                junit,
                functools.partial(run_gate, loaded, device=device, progress=Progress(False if quiet else progress)),
            )
            finish(loaded, result, output_dir, False, False, junit)
        except SystemExit as done:
            codes.append(int(done.code or 0))
        except PreprocgateError as exc:
            _print_error(exc)
            codes.append(exc.exit_code)
        if not md_path.is_file():
            continue
        reports.append(str(md_path))
        if junit is not None and junit.is_file():
            junits.append(str(junit))
        try:
            if post and not why_not:
                publish_report(md_path, name)
            elif summary := append_step_summary(md_path.read_text(encoding="utf-8"), env):
                click.echo(f"appended {md_path} to the step summary {summary}")
        except PreprocgateError as exc:
            _print_error(exc)
            codes.append(exc.exit_code)
    passed = bool(codes) and all(code == EXIT_PASSED for code in codes)
    values = {
        "passed": "true" if passed else "false",
        "report": reports,
        "json": [str(Path(r).with_suffix(".json")) for r in reports],
        "junit": junits,
    }
    if outputs is not None:
        append_github_outputs(outputs, values)
    if dotenv is not None:
        write_dotenv(dotenv, values)
    errors = [code for code in codes if code not in (EXIT_PASSED, EXIT_GATE_FAILED)]
    if errors:
        raise SystemExit(max(errors))
    raise SystemExit(EXIT_GATE_FAILED if fail_on_gate and not passed else EXIT_PASSED)
