"""One sticky comment per gate: created on the first post, edited in place afterwards.

The comment starts with a hidden marker naming the gate, ``<!-- preprocgate:gate=NAME -->``, so that two
gates posting to the same pull request keep two comments, and a re-run edits its own comment instead of
adding one per push. Only a comment that *starts* with the marker and was written by the token's user
counts: a reviewer quoting it, or anyone pasting it, does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from preprocgate.errors import PublishError
from preprocgate.publish.forge import Comment, Forge
from preprocgate.publish.http import ApiClient
from preprocgate.report import MAX_CHARS, truncate_markdown
from preprocgate.spec import NAME_PATTERN


@dataclass(frozen=True)
class Posted:
    """What a post did, for the one line the CLI prints: ``created`` or ``updated`` that comment."""

    action: Literal["created", "updated"]
    comment: Comment


def marker(gate: str) -> str:
    """The hidden first line of a gate's comment; gate names are checked so that none can close the HTML comment."""
    if not re.match(NAME_PATTERN, gate):
        raise PublishError(f"gate name {gate!r} cannot go in a comment marker: use letters, digits, '.', '_', '-'")
    return f"<!-- preprocgate:gate={gate} -->"


def comment_body(gate: str, markdown: str, full_report: str) -> str:
    """The marker and the report, within the forge's comment limit (65,536 characters on GitHub and in this
    package's reports): a longer report is cut at a section boundary with a note naming the full file."""
    head = marker(gate) + "\n"
    note = f"\n\n> Report cut to fit a comment; the full report is `{full_report}` in this run's CI artifacts.\n"
    return head + truncate_markdown(markdown, MAX_CHARS - len(head), note)


def find_sticky(forge: Forge, client: ApiClient, gate: str) -> Comment | None:
    """The gate's comment on the pull request written by the token's user, looking through every page; the
    oldest if several. Anyone can paste the marker: a comment by someone else is never edited (the forge would
    refuse, and posting on that pull request would break for good). Who we are is asked only when some
    comment carries the marker."""
    tag = marker(gate)
    marked = [c for c in forge.comments(client) if c.body.lstrip().startswith(tag)]
    if not marked:
        return None
    me = forge.viewer(client)
    return next((c for c in marked if c.author == me), None)


def post_sticky(forge: Forge, token: str, gate: str, body: str, **client_options: Any) -> Posted:
    """Create the gate's comment, or edit it when one exists. ``body`` comes from :func:`comment_body`."""
    with forge.client(token, **client_options) as client:
        existing = find_sticky(forge, client, gate)
        if existing is None:
            return Posted("created", forge.create(client, body))
        return Posted("updated", forge.update(client, existing, body))
