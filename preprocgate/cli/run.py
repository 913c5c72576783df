from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from preprocgate.baseline import write_baseline
from preprocgate.cli.options import (
    device_option,
    gate_argument,
    junit_option,
    link_option,
    load,
    output_dir_option,
    post_option,
    progress_option,
)
from preprocgate.engine import RunMode, run_gate
from preprocgate.errors import EXIT_GATE_FAILED, EXIT_PASSED, PreprocgateError
from preprocgate.plugins import EXECUTORS
from preprocgate.progress import Progress, shard_sink
from preprocgate.publish import write_junit
from preprocgate.publish.post import publish_report
from preprocgate.redact import redact
from preprocgate.report import write_reports
from preprocgate.results import GateResult
from preprocgate.scaleout import parse_shard
from preprocgate.spec import ExecutorSpec, Gate
from preprocgate.stages.dump import Shard


def finish(
    loaded: Gate,
    result: GateResult,
    output_dir: Path | None,
    update_baseline: bool,
    post: bool,
    junit: Path | None,
    links: dict[str, str] | None = None,
) -> None:
    """Reports, baseline, JUnit, the verdict line, posting, and the exit code: shared by run and merge."""
    report = loaded.spec.report
    md_path, _ = write_reports(
        result,
        output_dir or loaded.output_dir,
        loaded.template_path,
        loaded.secrets,
        links={**report.links, **(links or {})},
        artifacts_url=report.artifacts_url,
    )
    if update_baseline:
        path, written = write_baseline(loaded, result)
        click.echo(f"baseline written: {path} ({', '.join(written)})")
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


def gated(loaded: Gate, output_dir: Path | None, junit: Path | None, run: Callable[[], GateResult]) -> GateResult:
    """``run()``, and when it stops on an error after the checks began, the report and JUnit file with an
    errored verdict naming it (CI then has something to post) before the error is reported and exits."""
    try:
        return run()
    except PreprocgateError as exc:
        spec = loaded.spec
        message = redact(str(exc), loaded.secrets)
        result = GateResult.errored(spec.name, spec.description, str(loaded.path), spec.baseline, message)
        try:
            md_path, _ = write_reports(result, output_dir or loaded.output_dir, None, loaded.secrets)
            if junit is not None:
                write_junit(result.to_json(), junit)
        except Exception:
            md_path = None
        click.echo(f"ERRORED: gate {spec.name}" + (f"; report: {md_path}" if md_path else ""))
        raise


def _shard(value: str | None) -> Shard | None:
    try:
        return parse_shard(value) if value else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--shard") from exc


def _executor(spec: ExecutorSpec, kind: str | None, address: str | None) -> ExecutorSpec | None:
    """The spec's executor with the command line's overrides: ``--ray-address`` implies ``--executor ray``; the
    spec's params are kept when the kind stays the same."""
    kind = kind or ("ray" if address else None)
    if kind is None:
        return None
    problem = EXECUTORS.is_resolvable(kind)
    if problem:
        raise click.BadParameter(problem, param_hint="--executor")
    if address and kind != "ray":
        raise click.BadParameter(f"a Ray address needs --executor ray, not {kind!r}", param_hint="--ray-address")
    params = dict(spec.params) if kind == spec.kind else {}
    if address:
        params["address"] = address
    return ExecutorSpec(kind=kind, params=params)


@click.command()
@gate_argument
@device_option
@output_dir_option
@progress_option
@click.option("--progress-events", is_flag=True, hidden=True, help="A shard of --processes: progress to the parent.")
@click.option("--update-baseline", is_flag=True, help="Rewrite the stored baseline from this run (all variants).")
@post_option
@click.option("--shard", help="Compute only shard i/N of the dumps into the cache; finish with `merge`.")
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    help="Dump in N child processes (one per GPU), then merge; no Ray needed.",
)
@click.option("--executor", help="What computes dumps: local (this process) or ray (docs/scale-out.md). Default: spec.")
@click.option("--ray-address", help="Join this Ray cluster (e.g. 10.0.0.1:6379, auto); implies --executor ray.")
@junit_option
@link_option
def run(
    gate: str,
    device: str | None,
    output_dir: Path | None,
    progress: bool | None,
    quiet: bool,
    progress_events: bool,
    update_baseline: bool,
    post: bool,
    shard: str | None,
    processes: int | None,
    executor: str | None,
    ray_address: str | None,
    junit: Path | None,
    links: dict[str, str],
) -> None:
    """Run GATE and write reports/<gate>.md and .json; exit 0 passed, 1 failed (3 when posting fails)."""
    part = _shard(shard)
    if part and (processes or update_baseline or post):
        raise click.BadParameter("a shard only fills the cache: combine it with nothing else", param_hint="--shard")
    if processes and (executor or ray_address):
        raise click.BadParameter("child processes or an executor, not both", param_hint="--processes")
    loaded = load(gate)
    choice = _executor(loaded.spec.executor, executor, ray_address)
    mode = RunMode(update_baseline=update_baseline, shard=part, processes=processes, executor=choice)
    shown = Progress(sink=shard_sink()) if progress_events else Progress(False if quiet else progress)
    if part:  # a shard only fills the cache: it has no report to write
        run_gate(loaded, device=device, progress=shown, mode=mode)
        if not progress_events:  # under --processes the parent merges: no advice to give
            click.echo(
                f"shard {shard}: dumps of gate {loaded.spec.name} written to {loaded.cache_dir}; then run `merge`"
            )
        return
    result = gated(loaded, output_dir, junit, lambda: run_gate(loaded, device=device, progress=shown, mode=mode))
    finish(loaded, result, output_dir, update_baseline, post, junit, links)


@click.command()
@gate_argument
@device_option
@output_dir_option
@post_option
@junit_option
@link_option
def merge(
    gate: str, device: str | None, output_dir: Path | None, post: bool, junit: Path | None, links: dict[str, str]
) -> None:
    """Finish a sharded run: every dump must be in the cache; evaluate, compare and report as `run` does."""
    loaded = load(gate)
    result = gated(
        loaded,
        output_dir,
        junit,
        lambda: run_gate(loaded, device=device, progress=Progress(None), mode=RunMode(merge=True)),
    )
    finish(loaded, result, output_dir, False, post, junit, links)
