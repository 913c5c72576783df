"""The GitHub Actions job summary: a report appended to ``$GITHUB_STEP_SUMMARY`` shows on the run's page.

It needs no token, so it still shows the verdict where a comment cannot be posted (a pull request from a
fork). The file is appended to, never replaced: other steps write their own parts of the summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from preprocgate.errors import PublishError


def append_step_summary(markdown: str, env: Mapping[str, str]) -> Path | None:
    """Append ``markdown`` to the step summary; return its path, or None outside GitHub Actions."""
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    try:
        with path.open("a", encoding="utf-8", newline="\n") as f:
            f.write(markdown if markdown.endswith("\n") else markdown + "\n")
    except OSError as exc:
        raise PublishError(f"cannot append to the step summary {path}: {exc}") from exc
    return path
