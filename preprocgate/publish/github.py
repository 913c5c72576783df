"""GitHub (and GitHub Enterprise Server): the report as an issue comment on the pull request.

Inside GitHub Actions the target comes from ``GITHUB_REPOSITORY``, the event payload at ``GITHUB_EVENT_PATH``
(``pull_request``, ``issue`` or ``workflow_run`` events) and ``GITHUB_API_URL``; the token from
``GITHUB_TOKEN`` unless another variable is named.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from preprocgate.errors import PublishError
from preprocgate.publish.forge import Comment, Forge, Given, item
from preprocgate.publish.http import ApiClient, decode_json

ACTIONS_BOT = "github-actions[bot]"
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
FORK_HINT = (
    "the token may not write to this pull request. A pull request from a fork gets a read-only GITHUB_TOKEN "
    "whatever `permissions:` says: run the gate on `pull_request`, upload the reports as an artifact, and post "
    "from a separate workflow triggered by `workflow_run` (docs/ci.md shows both workflows). For a pull request "
    "from this repository, grant `permissions: pull-requests: write` to the job"
)


class GitHub(Forge):
    name = "github"
    title = "GitHub"
    default_token_env = "GITHUB_TOKEN"
    token_help = "in a workflow, add `env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}` to the step"

    @classmethod
    def detect(cls, env: Mapping[str, str]) -> bool:
        return env.get("GITHUB_ACTIONS") == "true"

    @classmethod
    def from_environment(
        cls,
        env: Mapping[str, str],
        given: Given,
    ) -> GitHub:
        repo, number, api_url, token_env = given.repo, given.number, given.api_url, given.token_env
        repo = repo or env.get("GITHUB_REPOSITORY")
        if not repo:
            raise PublishError("GitHub repository unknown: pass --repo owner/name (Actions sets GITHUB_REPOSITORY)")
        if not _REPO.match(repo):
            raise PublishError(f"GitHub repository {repo!r} is not of the form owner/name")
        number = number or event_number(env.get("GITHUB_EVENT_PATH"))
        if number is None:
            event = env.get("GITHUB_EVENT_NAME") or "unknown"
            raise PublishError(
                f"no pull request to comment on: this run's event ({event}) names none; "
                "pass --pr N, or run the workflow on pull_request"
            )
        api = api_url or env.get("GITHUB_API_URL") or "https://api.github.com"
        return cls(api, repo, number, token_env)

    @property
    def location(self) -> str:
        return f"{self.repo}#{self.number}"

    def auth_headers(self, token: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }

    def viewer(self, client: ApiClient) -> str:
        """``GET /user``; an Actions GITHUB_TOKEN may not read it (403 "not accessible by integration") and
        comments as the ``github-actions[bot]`` app user."""
        try:
            data = decode_json(client.request("GET", "user"))
        except PublishError as exc:
            if "not accessible by integration" in str(exc):
                return ACTIONS_BOT
            raise
        login = data.get("login") if isinstance(data, dict) else None
        if not isinstance(login, str) or not login:
            raise PublishError("GET /user: the answer names no login")
        return login

    def comments(self, client: ApiClient) -> Iterator[Comment]:
        for data in client.paginate(self._comments_path, {"per_page": 100}):
            yield _comment(data)

    def create(self, client: ApiClient, body: str) -> Comment:
        return _comment(decode_json(client.request("POST", self._comments_path, json={"body": body})))

    def update(self, client: ApiClient, comment: Comment, body: str) -> Comment:
        path = f"repos/{self.repo}/issues/comments/{comment.id}"
        return _comment(decode_json(client.request("PATCH", path, json={"body": body})))

    def hint(self, response: httpx.Response) -> str:
        status = response.status_code
        if status == 401:
            return f"the token in ${self.token_env} is invalid or expired"
        if status == 403 and "not accessible by integration" in response.text:
            return FORK_HINT
        if status == 403:
            return f"the token in ${self.token_env} may not comment here: it needs `pull-requests: write`"
        if status == 404:
            return (
                f"no pull request {self.location} at {self.api_url}, or the token cannot see the repository "
                "(GitHub answers 404 to a token without access to a private repository); check --repo and --pr"
            )
        return ""

    @property
    def _comments_path(self) -> str:
        return f"repos/{self.repo}/issues/{self.number}/comments"


def event_number(event_path: str | None) -> int | None:
    """The pull request (or issue) number in a GitHub Actions event payload, if it names one.

    ``workflow_run`` payloads list the run's pull requests only for branches of this repository; a run from a
    fork has none there, and the posting workflow must pass ``--pr`` (docs/ci.md shows how)."""
    if not event_path:
        return None
    try:
        event: Any = json.loads(Path(event_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PublishError(f"cannot read the GitHub event payload {event_path}: {exc}") from exc
    if not isinstance(event, dict):
        return None
    for key in ("pull_request", "issue"):
        number = (event.get(key) or {}).get("number")
        if isinstance(number, int):
            return number
    pulls = (event.get("workflow_run") or {}).get("pull_requests") or []
    if pulls and isinstance(pulls[0].get("number"), int):
        return int(pulls[0]["number"])
    return None


def _comment(data: Any) -> Comment:
    checked = item(data, "GitHub comment")
    user = checked.get("user")
    author = user.get("login") if isinstance(user, dict) else None
    body, url = checked.get("body"), checked.get("html_url")
    return Comment(
        id=checked["id"],
        body=body if isinstance(body, str) else "",
        url=url if isinstance(url, str) else None,
        author=author if isinstance(author, str) else None,
    )
