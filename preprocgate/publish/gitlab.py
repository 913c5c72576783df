"""GitLab: the report as a note on the merge request.

Inside a merge request pipeline the target comes from ``CI_API_V4_URL``, ``CI_PROJECT_ID`` and
``CI_MERGE_REQUEST_IID``. The token comes from ``GITLAB_TOKEN`` unless another variable is named: a project
(or personal) access token with the ``api`` scope, since ``CI_JOB_TOKEN`` may not write notes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from preprocgate.errors import PublishError
from preprocgate.publish.forge import Comment, Forge, Given, item
from preprocgate.publish.http import ApiClient, decode_json


class GitLab(Forge):
    name = "gitlab"
    title = "GitLab"
    default_token_env = "GITLAB_TOKEN"
    token_help = (
        "store a project access token with the `api` scope as a masked CI/CD variable (CI_JOB_TOKEN cannot post notes)"
    )

    @classmethod
    def detect(cls, env: Mapping[str, str]) -> bool:
        return env.get("GITLAB_CI") == "true"

    @classmethod
    def from_environment(
        cls,
        env: Mapping[str, str],
        given: Given,
    ) -> GitLab:
        repo, number, api_url, token_env = given.repo, given.number, given.api_url, given.token_env
        project = repo or env.get("CI_PROJECT_ID")
        if not project:
            raise PublishError("GitLab project unknown: pass --repo group/project or its id (CI sets CI_PROJECT_ID)")
        if number is None:
            iid = env.get("CI_MERGE_REQUEST_IID", "")
            if not iid.isdigit():
                raise PublishError(
                    "no merge request to comment on: CI_MERGE_REQUEST_IID is unset (not a merge request pipeline); "
                    "pass --pr N, or run the job with `rules: - if: $CI_PIPELINE_SOURCE == 'merge_request_event'`"
                )
            number = int(iid)
        api = api_url or env.get("CI_API_V4_URL") or "https://gitlab.com/api/v4"
        return cls(api, project, number, token_env)

    @property
    def location(self) -> str:
        return f"{self.repo}!{self.number}"

    def auth_headers(self, token: str) -> dict[str, str]:
        return {"PRIVATE-TOKEN": token}

    def viewer(self, client: ApiClient) -> str:
        data = decode_json(client.request("GET", "user"))
        username = data.get("username") if isinstance(data, dict) else None
        if not isinstance(username, str) or not username:
            raise PublishError("GET /user: the answer names no username")
        return username

    def comments(self, client: ApiClient) -> Iterator[Comment]:
        params: dict[str, str | int] = {"per_page": 100, "sort": "asc", "order_by": "created_at"}  # oldest first
        for data in client.paginate(self._notes_path, params):
            if not (isinstance(data, dict) and data.get("system")):  # "added 2 commits": GitLab's own notes
                yield _comment(data)

    def create(self, client: ApiClient, body: str) -> Comment:
        return _comment(decode_json(client.request("POST", self._notes_path, json={"body": body})))

    def update(self, client: ApiClient, comment: Comment, body: str) -> Comment:
        return _comment(decode_json(client.request("PUT", f"{self._notes_path}/{comment.id}", json={"body": body})))

    def hint(self, response: httpx.Response) -> str:
        status = response.status_code
        if status == 401:
            return f"the token in ${self.token_env} is invalid, expired or revoked"
        if status == 403:
            return (
                f"the token in ${self.token_env} may not comment here: it needs the `api` scope and at least "
                "the Reporter role (CI_JOB_TOKEN cannot post notes)"
            )
        if status == 404:
            return (
                f"no merge request {self.location} at {self.api_url}, or the token cannot see the project; "
                "check --repo and --pr"
            )
        return ""

    @property
    def _notes_path(self) -> str:
        # a project may be named by its path: group/sub/project must travel as one segment
        return f"projects/{quote(self.repo, safe='')}/merge_requests/{self.number}/notes"


def _comment(data: Any) -> Comment:
    checked = item(data, "GitLab note")
    author = checked.get("author")
    username = author.get("username") if isinstance(author, dict) else None
    body = checked.get("body")
    return Comment(
        id=checked["id"],
        body=body if isinstance(body, str) else "",
        author=username if isinstance(username, str) else None,
    )
