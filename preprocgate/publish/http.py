"""HTTP to a forge's REST API: timeouts, bounded retries, pagination, and errors that never carry the token.

Retried, with exponential backoff: 5xx, 429, and GitHub's rate limits (403 with ``Retry-After``, with
``x-ratelimit-remaining: 0`` or a "secondary rate limit" message). ``Retry-After`` (seconds or an HTTP date)
is honoured; a wait longer than ``max_wait`` is not sat out but reported, since a CI job would rather fail
with a clear message than hang. A POST is not repeated after a timeout that may have reached the server (the
comment may exist); like Octokit's retry plugin it is repeated after a 5xx or 429, which rarely follow a
stored comment (a gateway error after the forge saved it would leave two, and the next run edits the older).

Every message this module raises passes through :meth:`ApiClient.redact`, so a forge echoing the token,
or an httpx message quoting a URL, cannot leak it into a log.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from preprocgate.errors import PublishError

MAX_PAGES = 100  # 10,000 comments at 100 a page: past that, a forge sending "next" forever is the likelier story
_IDEMPOTENT = frozenset({"GET", "PUT", "PATCH", "DELETE", "HEAD"})


class ApiClient:
    """An ``httpx.Client`` for one forge API. ``describe`` turns a final error response into the message of
    the :class:`PublishError` raised (the forge knows what a 403 means there); ``sleep`` is injectable so
    tests can check the waits without sitting them out."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str],
        secret: str,
        describe: Callable[[httpx.Response], str],
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 1.0,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.secret = secret
        self.describe = describe
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.sleep = sleep
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers=dict(headers),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=False,  # a redirect to another host must not take the token with it
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._client.close()

    def redact(self, text: str) -> str:
        return text.replace(self.secret, "***") if self.secret else text

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request, retrying what is worth retrying; a final non-2xx answer raises PublishError."""
        attempt = 0
        while True:
            last = attempt >= self.retries
            try:
                response = self._client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                maybe_sent = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                if last or (maybe_sent and method not in _IDEMPOTENT):
                    where = self.redact(str(self._client.build_request(method, url).url))
                    reason = self.redact(str(exc)) or type(exc).__name__
                    raise PublishError(f"{method} {where} failed: {reason}") from exc
                wait = self._backoff(attempt)
            else:
                if response.is_success:
                    return response
                retry_wait = self._retry_wait(response, attempt)
                if retry_wait is None or last:
                    raise PublishError(self.redact(self.describe(response)))
                if retry_wait > self.max_wait:
                    message = self.redact(self.describe(response))
                    raise PublishError(f"{message} (asked to wait {retry_wait:.0f} s, over {self.max_wait:.0f} s)")
                wait = retry_wait
            self.sleep(wait)
            attempt += 1

    def paginate(self, url: str, params: Mapping[str, str | int]) -> Iterator[Any]:
        """Yield the items of every page of a JSON list, following ``Link: <…>; rel="next"`` (GitHub, GitLab)
        or else ``X-Next-Page`` (GitLab). A next link to another host is refused: it would carry the token."""
        request_url: str = url
        request_params: dict[str, str | int] | None = dict(params)
        for _ in range(MAX_PAGES):
            response = self.request("GET", request_url, params=request_params)
            items = decode_json(response)
            if not isinstance(items, list):
                raise PublishError(f"GET {response.request.url.path}: expected a JSON list, got {type(items).__name__}")
            yield from items
            next_link = response.links.get("next", {}).get("url")
            next_page = response.headers.get("X-Next-Page", "").strip()
            if not items or not (next_link or next_page):
                return
            if next_link:
                if _origin(httpx.URL(next_link)) != _origin(response.request.url):
                    raise PublishError(f"refusing to follow a pagination link to another host: {next_link}")
                request_url, request_params = next_link, None
            else:
                request_params = {**params, "page": next_page}
        raise PublishError(f"GET {url}: more than {MAX_PAGES} pages; stopped there")

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff * 2**attempt, self.max_wait)

    def _retry_wait(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying ``response``, or None when retrying cannot help."""
        status = response.status_code
        rate_limited = status == 429 or (status == 403 and _github_rate_limited(response))
        if not (rate_limited or status >= 500):
            return None
        retry_after = _parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is not None:
            return retry_after
        if response.headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in response.headers:
            try:
                return max(0.0, float(response.headers["x-ratelimit-reset"]) - time.time())
            except ValueError:
                pass
        if rate_limited and status == 403:
            return max(60.0, self._backoff(attempt))  # GitHub: "wait at least one minute" without Retry-After
        return self._backoff(attempt)


def decode_json(response: httpx.Response) -> Any:
    """The body as JSON; a forge (or a proxy before it) answering 2xx with HTML is an error, not a bug."""
    try:
        return response.json()
    except ValueError as exc:
        where = f"{response.request.method} {response.request.url.path}"
        raise PublishError(f"{where}: the answer is not JSON ({response.headers.get('Content-Type')})") from exc


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _github_rate_limited(response: httpx.Response) -> bool:
    """GitHub answers some rate limits with 403; a plain 403 (no permission) must not be retried."""
    if "Retry-After" in response.headers or response.headers.get("x-ratelimit-remaining") == "0":
        return True
    return "rate limit" in response.text.lower()


def _parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` is either delay-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
