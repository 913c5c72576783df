"""Publishing a written report where reviewers look: a sticky pull-request comment, the GitHub step summary,
JUnit XML for CI test panels. Publishing reads the report files; it never touches a result or reruns a gate.

Forges are a registry (preprocgate/plugins.py): ``github`` and ``gitlab`` are built in (imported lazily),
third-party packages add theirs through the ``preprocgate.forges`` entry-point group with a :class:`Forge` subclass.
"""

from __future__ import annotations

from collections.abc import Mapping

from preprocgate.errors import PublishError
from preprocgate.plugins import FORGES
from preprocgate.publish.forge import Comment, Forge, Given
from preprocgate.publish.junit import junit_xml, write_junit
from preprocgate.publish.sticky import Posted, comment_body, marker, post_sticky
from preprocgate.publish.summary import append_step_summary


def resolve_forge(
    name: str,
    env: Mapping[str, str],
    *,
    repo: str | None = None,
    number: int | None = None,
    api_url: str | None = None,
    token_env: str | None = None,
) -> Forge:
    """The pull or merge request to post to. ``name`` is a registered forge, or ``auto``: the forge whose CI
    this runs in (GITHUB_ACTIONS=true, GITLAB_CI=true); outside CI the forge must be named."""
    if name == "auto":
        detected = [n for n in FORGES.names() if FORGES.get(n).detect(env)]
        if not detected:
            raise PublishError(
                "cannot tell where to post: not inside GitHub Actions or GitLab CI; "
                "pass --forge github|gitlab with --repo and --pr"
            )
        name = detected[0]
    forge = FORGES.get(name)
    return forge.from_environment(env, Given(repo, number, api_url, token_env))


__all__ = [
    "FORGES",
    "Comment",
    "Forge",
    "Given",
    "Posted",
    "append_step_summary",
    "comment_body",
    "junit_xml",
    "marker",
    "post_sticky",
    "resolve_forge",
    "write_junit",
]
