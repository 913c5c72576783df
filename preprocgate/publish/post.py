"""Publishing a written report: the step summary first, then the gate's sticky comment on the pull or merge
request. ``preprocgate post`` and ``preprocgate run --post`` both go through :func:`publish_report`, so both find
the pull request the same way."""

from __future__ import annotations

import os
from pathlib import Path

import click

from preprocgate.publish import append_step_summary, comment_body, post_sticky, resolve_forge
from preprocgate.publish.http import Limits


def publish_report(
    md_path: Path,
    gate: str,
    *,
    forge_name: str = "auto",
    repo: str | None = None,
    number: int | None = None,
    api_url: str | None = None,
    token_env: str | None = None,
    dry_run: bool = False,
    limits: Limits | None = None,
) -> None:
    """Append the report to the step summary, then post it as the gate's sticky comment. The summary goes
    first: it needs no token, so the verdict still shows on the run's page when posting is refused."""
    env = os.environ
    markdown = md_path.read_text(encoding="utf-8")
    if dry_run:
        if env.get("GITHUB_STEP_SUMMARY"):
            click.echo(f"dry run: would append {md_path} to the step summary {env['GITHUB_STEP_SUMMARY']}")
    elif summary := append_step_summary(markdown, env):
        click.echo(f"appended {md_path} to the step summary {summary}")
    forge = resolve_forge(forge_name, env, repo=repo, number=number, api_url=api_url, token_env=token_env)
    body = comment_body(gate, markdown, _shown(md_path))
    if dry_run:
        click.echo(
            f"dry run: would post the sticky comment of gate {gate} to {forge.title} {forge.location} "
            f"at {forge.api_url} with the token in ${forge.token_env} ({len(body)} characters):"
        )
        click.echo(body, nl=False)
        return
    posted = post_sticky(forge, forge.token(env), gate, body, limits=limits or Limits.from_env(env))
    where = posted.comment.url or f"comment {posted.comment.id}"
    click.echo(f"{posted.action} the comment of gate {gate} on {forge.title} {forge.location}: {where}")


def _shown(path: Path) -> str:
    """The report's path as the comment's note shows it: relative to the checkout, where CI runs."""
    try:
        return path.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.as_posix()
