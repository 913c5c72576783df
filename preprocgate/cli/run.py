from __future__ import annotations

from pathlib import Path

import click

from preprocgate.cli.baseline import write_baseline
from preprocgate.cli.options import gate_argument, junit_option
from preprocgate.cli.post import publish_report
from preprocgate.engine import run_gate
from preprocgate.errors import EXIT_GATE_FAILED, EXIT_PASSED
from preprocgate.progress import Progress
from preprocgate.publish import write_junit
from preprocgate.report import write_reports
from preprocgate.spec import load_gate


@click.command()
@gate_argument
@click.option("--device", help="Override the spec's device: cpu, cuda, cuda:N.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), help="Where reports go.")
@click.option("--progress/--no-progress", default=None, help="Default: on when stderr is a terminal.")
@click.option("--update-baseline", is_flag=True, help="Rewrite the stored baseline from this run (all variants).")
@click.option("--post", is_flag=True, help="Post the report to the pull request this CI job runs for (see `post`).")
@junit_option
def run(
    gate: str,
    device: str | None,
    output_dir: Path | None,
    progress: bool | None,
    update_baseline: bool,
    post: bool,
    junit: Path | None,
) -> None:
    """Run GATE and write reports/<gate>.md and .json; exit 0 passed, 1 failed (3 when posting fails)."""
    if device is not None and device not in {"auto", "cpu"} and not device.startswith("cuda"):
        raise click.BadParameter(f"{device!r}: expected auto, cpu, cuda or cuda:N", param_hint="--device")
    loaded = load_gate(gate)
    result = run_gate(loaded, device=device, progress=Progress(progress), update_baseline=update_baseline)
    md_path, _ = write_reports(result, output_dir or loaded.output_dir, loaded.template_path)
    if update_baseline:
        write_baseline(loaded, result)
    if junit is not None:
        write_junit(result.to_json(), junit)
    for check in result.checks:
        if not check.passed:
            click.echo(check.line())
    for note in result.notes:
        click.echo(f"note: {note}")
    verdict = "PASSED" if result.passed else "FAILED"
    click.echo(
        f"{verdict}: gate {result.gate}, {len(result.checks) - len(result.failed_checks)}/"
        f"{len(result.checks)} checks passed in {result.duration_s:.1f} s; report: {md_path}"
    )
    if post:  # after the verdict line, so that a refused post (exit 3) still leaves the verdict in the log
        publish_report(md_path, result.gate)
    raise SystemExit(EXIT_PASSED if result.passed else EXIT_GATE_FAILED)
