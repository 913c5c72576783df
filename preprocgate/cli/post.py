"""``preprocgate post``: put a written report where reviewers look (preprocgate/publish/post.py does the work)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import click

from preprocgate.cli.options import junit_option
from preprocgate.errors import PublishError
from preprocgate.publish import write_junit
from preprocgate.publish.http import Limits
from preprocgate.publish.post import publish_report
from preprocgate.spec import NAME_PATTERN


def _check_gate(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not re.match(NAME_PATTERN, value):
        raise click.BadParameter(f"{value!r}: use letters, digits, '.', '_' and '-'")
    return value


def _read_results(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PublishError(f"cannot read the results {path}: {exc}") from exc
    return data if isinstance(data, dict) else None


@click.command()
@click.argument("report", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--gate",
    callback=_check_gate,
    help="Gate named in the comment's hidden marker; default: the sibling REPORT.json's gate, else the file stem.",
)
@click.option("--forge", "forge_name", default="auto", show_default=True, help="github, gitlab, a plug-in, or auto.")
@click.option("--repo", help="owner/name on GitHub, group/project or a project id on GitLab; default: from CI.")
@click.option("--pr", "number", type=click.IntRange(min=1), help="Pull or merge request number; default: from CI.")
@click.option("--api-url", help="API root, e.g. https://ghe.example.com/api/v3; default: from CI, else the public one.")
@click.option("--token-env", help="Variable holding the token; default: GITHUB_TOKEN or GITLAB_TOKEN.")
@junit_option
@click.option("--dry-run", is_flag=True, help="Print what would be posted; send nothing.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help=f"Seconds one request may take, last byte included [env PREPROCGATE_HTTP_TIMEOUT; {Limits.timeout:g}].",
)
@click.option(
    "--deadline",
    type=click.FloatRange(min=0, min_open=True),
    help=f"Seconds the whole posting may take, retries included [env PREPROCGATE_POST_DEADLINE; {Limits.deadline:g}].",
)
@click.option(
    "--retry-budget",
    type=click.FloatRange(min=0),
    help=f"Seconds all waits between retries may add up to [env PREPROCGATE_RETRY_BUDGET; {Limits.retry_budget:g}].",
)
def post(
    report: Path,
    gate: str | None,
    forge_name: str,
    repo: str | None,
    number: int | None,
    api_url: str | None,
    token_env: str | None,
    junit: Path | None,
    dry_run: bool,
    timeout: float | None,
    deadline: float | None,
    retry_budget: float | None,
) -> None:
    """Post REPORT (a gate's .md) as the gate's sticky comment on the pull or merge request, edited in place
    on later runs; also append it to $GITHUB_STEP_SUMMARY when set."""
    results_path = report.with_suffix(".json")
    results = _read_results(results_path)
    gate = gate or (results or {}).get("gate") or report.stem
    if junit is not None:
        if results is None:
            raise click.BadParameter(f"needs the results {results_path} beside the report", param_hint="--junit")
        write_junit(results, junit)
        click.echo(f"wrote {junit}")
    publish_report(
        report,
        gate,
        forge_name=forge_name,
        repo=repo,
        number=number,
        api_url=api_url,
        token_env=token_env,
        dry_run=dry_run,
        limits=_limits(timeout, deadline, retry_budget),
    )


def _limits(timeout: float | None, deadline: float | None, retry_budget: float | None) -> Limits:
    """The options given, the environment's values for the others."""
    base = Limits.from_env(os.environ)
    return Limits(
        timeout if timeout is not None else base.timeout,
        deadline if deadline is not None else base.deadline,
        retry_budget if retry_budget is not None else base.retry_budget,
    )
