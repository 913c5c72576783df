"""HTTP to a forge's REST API: timeouts, bounded retries, pagination, and errors that never carry the token.

Retried, with exponential backoff: 5xx, 429, and GitHub's rate limits (403 with ``Retry-After``, with
``x-ratelimit-remaining: 0`` or a "secondary rate limit" message). ``Retry-After`` (seconds or an HTTP date)
is honoured; a wait longer than ``max_wait`` is not sat out but reported, since a CI job would rather fail
with a clear message than hang. A POST is not repeated after a timeout that may have reached the server (the
comment may exist); like Octokit's retry plugin it is repeated after a 5xx or 429, which rarely follow a
stored comment (a gateway error after the forge saved it would leave two, and the next run edits the older).

Every message this module raises passes through :meth:`ApiClient.redact`, so a forge echoing the token (in any
spelling: escaped, percent-encoded, split at line breaks), or an httpx message quoting a URL, cannot leak it.

Time is bounded three ways, so that a forge that drips a byte every ten seconds or never answers cannot hang a
CI job: each request must be *complete* within ``timeout`` (not merely show progress: httpx's own timeout is per
read), the whole posting within ``deadline``, and the waits between retries add up to at most ``retry_budget``.
An answer larger than :data:`MAX_BODY` bytes is refused.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from preprocgate.errors import PublishError
from preprocgate.redact import redact

MAX_PAGES = 100  # 10,000 comments at 100 a page: past that, a forge sending "next" forever is the likelier story
MAX_BODY = 16 << 20  # a page of 100 comments of 65,536 characters is under 7 MB
_IDEMPOTENT = frozenset({"GET", "PUT", "PATCH", "DELETE", "HEAD"})


@dataclass(frozen=True)
class Limits:
    """Seconds: one request from start to its last byte, one whole posting, and the sum of waits between retries.

    From the environment (``PREPROCGATE_HTTP_TIMEOUT``, ``PREPROCGATE_POST_DEADLINE``,
    ``PREPROCGATE_RETRY_BUDGET``) or ``post``'s options."""

    timeout: float = 20.0
    deadline: float = 120.0
    retry_budget: float = 90.0  # room for GitHub's one-minute secondary rate limit and a few backoffs

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Limits:
        values: dict[str, float] = {}
        for name, var in (
            ("timeout", "PREPROCGATE_HTTP_TIMEOUT"),
            ("deadline", "PREPROCGATE_POST_DEADLINE"),
            ("retry_budget", "PREPROCGATE_RETRY_BUDGET"),
        ):
            raw = env.get(var, "").strip()
            if not raw:
                continue
            try:
                values[name] = float(raw)
            except ValueError:
                values[name] = -1.0
            if not (0 < values[name] < 86_400) and not (name == "retry_budget" and values[name] == 0):
                raise PublishError(f"${var}: expected a number of seconds, got {raw[:20]!r}")
        return cls(**values)


class _TooSlow(Exception):
    """The request did not complete within its deadline (``seconds``)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no complete answer within {seconds:g} s")


class _Redacting(logging.Filter):
    """Masks the token in what httpx and httpcore log (httpcore's DEBUG trace shows response headers, where a
    hostile forge may echo it)."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = redact(message, [self.secret])
        if hidden != message:
            record.msg, record.args = hidden, ()
        return True


_LOGGERS = ("httpx", "httpcore.http11", "httpcore.http2", "httpcore.connection", "httpcore.proxy")


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
        limits: Limits | None = None,
        retries: int = 4,
        backoff: float = 1.0,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.secret = secret
        self.describe = describe
        self.limits = limits or Limits()
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.sleep = sleep
        self.slept = 0.0
        self.ends = time.monotonic() + self.limits.deadline
        timeout = self.limits.timeout
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers=dict(headers),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=False,  # a redirect to another host must not take the token with it
        )
        self._filter = _Redacting(secret)
        for name in _LOGGERS:
            logging.getLogger(name).addFilter(self._filter)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._client.close()
        for name in _LOGGERS:
            logging.getLogger(name).removeFilter(self._filter)

    def redact(self, text: str) -> str:
        return redact(text, [self.secret]) if self.secret else text

    def _attempt(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request, read whole within ``limits.timeout`` (and the posting's deadline), in a worker thread:
        a forge dripping bytes keeps every socket read alive, so only a clock outside the read can stop it."""
        seconds = min(self.limits.timeout, self.ends - time.monotonic())
        if seconds <= 0:
            raise _TooSlow(0)
        stop = time.monotonic() + seconds
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                with self._client.stream(method, url, **kwargs) as response:
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > MAX_BODY:
                            raise PublishError(f"{method} {response.request.url.path}: answer over {MAX_BODY} bytes")
                        if time.monotonic() > stop:
                            return
                    skip = {"content-encoding", "content-length", "transfer-encoding"}
                    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in skip]
                    box["response"] = httpx.Response(
                        response.status_code, headers=headers, content=bytes(body), request=response.request
                    )
            except BaseException as exc:  # handed to the waiting thread
                box["error"] = exc

        worker = threading.Thread(target=work, daemon=True, name="preprocgate-http")
        worker.start()
        worker.join(seconds)
        if "error" in box:
            raise box["error"]
        if "response" not in box:
            raise _TooSlow(seconds)
        return box["response"]

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request, retrying what is worth retrying; a final non-2xx answer raises PublishError."""
        attempt = 0
        while True:
            last = attempt >= self.retries
            try:
                response = self._attempt(method, url, **kwargs)
            except (httpx.TransportError, _TooSlow) as exc:
                where = self.redact(str(self._client.build_request(method, url).url))
                reason = str(_TooSlow(self.limits.timeout)) if isinstance(exc, httpx.TimeoutException) else str(exc)
                failure = f"{method} {where} failed: {self.redact(reason) or type(exc).__name__}"
                maybe_sent = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                if last or (maybe_sent and method not in _IDEMPOTENT):
                    raise PublishError(failure) from None
                wait = self._backoff(attempt)
            except httpx.HTTPError as exc:  # an invalid URL or header, a decoding error: not worth retrying
                where = self.redact(str(self._client.build_request(method, url).url))
                raise PublishError(f"{method} {where} failed: {self.redact(str(exc)) or type(exc).__name__}") from None
            else:
                if response.is_success:
                    return response
                retry_wait = self._retry_wait(response, attempt)
                failure = self.redact(self.describe(response))
                if retry_wait is None or last:
                    raise PublishError(failure)
                if retry_wait > self.max_wait:
                    raise PublishError(f"{failure} (asked to wait {retry_wait:.0f} s, over {self.max_wait:.0f} s)")
                wait = retry_wait
            self._wait(wait, failure)
            attempt += 1

    def _wait(self, seconds: float, failure: str) -> None:
        """Sleep before a retry, within the retry budget and the posting's deadline; else ``failure`` is final."""
        if self.slept + seconds > self.limits.retry_budget:
            budget = self.limits.retry_budget
            raise PublishError(f"{failure}; not retried: the retry budget of {budget:g} s is spent")
        if time.monotonic() + seconds >= self.ends:
            deadline = self.limits.deadline
            raise PublishError(f"{failure}; not retried: that would pass the posting deadline of {deadline:g} s")
        self.slept += seconds
        self.sleep(seconds)

    def paginate(self, url: str, params: Mapping[str, str | int]) -> Iterator[Any]:
        """Yield the items of every page of a JSON list, following ``Link: <…>; rel="next"`` (GitHub, GitLab)
        or else ``X-Next-Page`` (GitLab). A next link to another host is refused: it would carry the token."""
        request_url: str = url
        request_params: dict[str, str | int] | None = dict(params)
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            response = self.request("GET", request_url, params=request_params)
            page = str(response.request.url)
            if page in seen:
                raise PublishError(f"GET {response.request.url.path}: the forge's pages loop back to one already read")
            seen.add(page)
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
                    raise PublishError(
                        f"refusing to follow a pagination link to another host: {self.redact(next_link)}"
                    )
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
