"""What a forge (GitHub, GitLab, a plug-in) must provide to hold a report as one sticky comment.

A forge instance is a target, one pull or merge request, resolved from the CI environment or the command
line; it needs no token until something is actually sent, so a dry run can show where a report would go.
The sticky-comment logic (:mod:`preprocgate.publish.sticky`) only lists, creates and updates through this
interface, and plug-ins registered in the ``preprocgate.forges`` entry-point group implement the same.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from preprocgate.errors import PublishError
from preprocgate.publish.http import ApiClient


@dataclass(frozen=True)
class Comment:
    """A comment (GitHub) or note (GitLab) on the pull or merge request."""

    id: int
    body: str
    url: str | None = None
    author: str | None = None  # login of who wrote it: only our own comment may be edited


@dataclass(frozen=True)
class Given:
    """What the command line said about the target; the CI's variables fill in whatever is None."""

    repo: str | None = None
    number: int | None = None
    api_url: str | None = None
    token_env: str | None = None


class Forge(ABC):
    name: ClassVar[str]  # registry name: github, gitlab
    title: ClassVar[str]  # for messages: GitHub, GitLab
    default_token_env: ClassVar[str]
    token_help: ClassVar[str]  # how to provide a token there, for the "no token" message

    def __init__(self, api_url: str, repo: str, number: int, token_env: str | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.repo = repo
        self.number = number
        self.token_env = token_env or self.default_token_env

    @classmethod
    @abstractmethod
    def detect(cls, env: Mapping[str, str]) -> bool:
        """True inside this forge's CI, so that ``--forge auto`` can pick it."""

    @classmethod
    @abstractmethod
    def from_environment(
        cls,
        env: Mapping[str, str],
        given: Given,
    ) -> Forge:
        """The target: explicit arguments win, the CI's variables fill the rest; PublishError says what is missing."""

    @property
    @abstractmethod
    def location(self) -> str:
        """The pull or merge request, as people write it: ``owner/name#12``, ``group/project!7``."""

    @abstractmethod
    def auth_headers(self, token: str) -> dict[str, str]: ...

    @abstractmethod
    def viewer(self, client: ApiClient) -> str:
        """The login of the token's user: the sticky comment is the one with the marker *written by us*."""

    @abstractmethod
    def comments(self, client: ApiClient) -> Iterator[Comment]:
        """Every comment on the pull or merge request, all pages."""

    @abstractmethod
    def create(self, client: ApiClient, body: str) -> Comment: ...

    @abstractmethod
    def update(self, client: ApiClient, comment: Comment, body: str) -> Comment: ...

    @abstractmethod
    def hint(self, response: httpx.Response) -> str:
        """What to do about a final error response, or "" when the status says it all."""

    def token(self, env: Mapping[str, str]) -> str:
        """The token, refused (without being shown) when it holds what no HTTP header may carry: a line break
        inside, a space, a non-ASCII character. Sending it would fail later with the token in the error."""
        value = env.get(self.token_env, "").strip()
        if not value:
            missing = f"${self.token_env} is unset or empty"
            raise PublishError(f"no token to post to {self.title}: {missing}; {self.token_help}")
        if not all("!" <= c <= "~" for c in value):
            raise PublishError(
                f"the token in ${self.token_env} contains a character no HTTP header may carry (a line break, a "
                "space, a control or non-ASCII character); check how the secret was stored"
            )
        return value

    def client(self, token: str, **options: Any) -> ApiClient:
        """An API client for this forge; ``options`` go to :class:`ApiClient` (timeouts, retries, sleep)."""
        return ApiClient(
            self.api_url, headers=self.auth_headers(token), secret=token, describe=self.describe_failure, **options
        )

    def describe_failure(self, response: httpx.Response) -> str:
        """``GitHub answered 403 Forbidden to POST /repos/o/r/issues/1/comments: <its message>; <hint>``."""
        request = response.request
        status = f"{response.status_code} {response.reason_phrase}"
        text = f"{self.title} answered {status} to {request.method} {request.url.path}"
        message = api_message(response)
        if message:
            text += f": {message}"
        hint = self.hint(response)
        return f"{text}; {hint}" if hint else text


def item(data: Any, what: str) -> dict[str, Any]:
    """A comment object from a forge's JSON, checked: a forge (or a proxy) answering something else is a
    PublishError naming what was wrong, not a KeyError."""
    if not isinstance(data, dict):
        raise PublishError(f"{what}: expected a JSON object, got {type(data).__name__}")
    if not isinstance(data.get("id"), int) or isinstance(data.get("id"), bool):
        raise PublishError(f"{what}: an item without an integer id")
    return data


def api_message(response: httpx.Response) -> str:
    """The forge's own explanation (``message`` on GitHub, ``message`` or ``error`` on GitLab), on one line."""
    try:
        data = response.json()
    except ValueError:
        data = None
    message: Any = (data.get("message") or data.get("error")) if isinstance(data, dict) else response.text
    return " ".join(str(message or "").split())[:300]
