"""A real HTTP server on 127.0.0.1 holding GitHub issue comments and GitLab merge request notes in memory.

It implements the endpoints preprocgate uses (list with pagination, create, update), checks the auth headers
each forge expects, records every request, and answers with queued failures when a test asks for them.
Pages are small (2 items) so that finding a sticky comment among seeded ones exercises pagination: GitHub
pages through ``Link: <…>; rel="next"``, GitLab through ``X-Next-Page`` only (and lists newest first unless
asked ``sort=asc``, as GitLab does).

    GitHub API root: server.github_api  (``…/api/v3``, like GitHub Enterprise Server)
    GitLab API root: server.gitlab_api  (``…/api/v4``)

``GET /user`` names the token's user (``server.login``); comments carry their author, so a test can seed one
by somebody else. A hostile forge is a queued :class:`Failure` with a behaviour: ``drip`` (the answer one byte
per interval), ``hang`` (no answer until the server closes), ``raw`` bytes with any content type (HTML from a
proxy, a truncated body); ``loop_pages`` makes GitHub's next-page link point back at page 1 forever, and
``actions_token`` answers ``GET /user`` as GitHub does for an Actions GITHUB_TOKEN.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

_GH_COMMENTS = re.compile(r"^/api/v3/repos/([^/]+/[^/]+)/issues/(\d+)/comments$")
_GH_COMMENT = re.compile(r"^/api/v3/repos/([^/]+/[^/]+)/issues/comments/(\d+)$")
_GL_NOTES = re.compile(r"^/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes$")
_GL_NOTE = re.compile(r"^/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes/(\d+)$")


@dataclass
class Recorded:
    method: str
    raw_path: str  # as sent, percent-encoding kept
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Failure:
    method: str  # "*" for any
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    raw: bytes | None = None  # sent as is, instead of ``body`` as JSON
    content_type: str = "application/json"
    drip: float | None = None  # seconds between bytes of the answer
    hang: bool = False  # never answer (until the server closes)
    path: str | None = None  # only for a request whose path ends so


class ForgeServer:
    def __init__(self, token: str, page_size: int = 2, login: str = "preprocgate-bot") -> None:
        self.token = token
        self.page_size = page_size
        self.login = login
        self.loop_pages = False
        self.actions_token = False
        self.closing = threading.Event()
        self.github: dict[tuple[str, int], list[dict[str, Any]]] = {}  # (owner/name, pr) → comments
        self.gitlab: dict[tuple[str, int], list[dict[str, Any]]] = {}  # (project, iid) → notes
        self.requests: list[Recorded] = []
        self.failures: list[Failure] = []
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self.link_base = self.url  # where GitHub's next-page links point; a test may point them elsewhere
        self.github_api = f"{self.url}/api/v3"
        self.gitlab_api = f"{self.url}/api/v4"
        serve = {"poll_interval": 0.01}  # shutdown() waits up to one poll interval
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs=serve, daemon=True)

    def __enter__(self) -> ForgeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def fail(
        self, method: str, status: int, headers: dict[str, str] | None = None, body: Any = None, **how: Any
    ) -> None:
        """Answer the next ``method`` request (``"*"``: any) with ``status``; queued failures go in order.
        ``how``: the other :class:`Failure` fields (raw, content_type, drip, hang)."""
        self.failures.append(Failure(method, status, headers or {}, body, **how))

    def seed_github(self, repo: str, number: int, body: str, author: str | None = None) -> dict[str, Any]:
        comments = self.github.setdefault((repo, number), [])
        return self._add(comments, body, author or self._github_login, github=(repo, number))

    def seed_gitlab(
        self, project: str, iid: int, body: str, system: bool = False, author: str | None = None
    ) -> dict[str, Any]:
        return self._add(self.gitlab.setdefault((project, iid), []), body, author or self.login, system=system)

    @property
    def _github_login(self) -> str:
        return "github-actions[bot]" if self.actions_token else self.login

    def _add(
        self,
        comments: list[dict[str, Any]],
        body: str,
        author: str,
        github: tuple[str, int] | None = None,
        system: bool = False,
    ) -> dict[str, Any]:
        comment: dict[str, Any] = {"id": next(self._ids), "body": body}
        if github:
            comment["html_url"] = f"https://github.example/{github[0]}/pull/{github[1]}#issuecomment-{comment['id']}"
            comment["user"] = {"login": author}
        else:
            comment["system"] = system
            comment["author"] = {"username": author}
        comments.append(comment)
        return comment

    # request handling, called from the handler threads

    def handle(self, req: Recorded) -> tuple[int, dict[str, str], Any] | Failure:
        with self._lock:
            self.requests.append(req)
            for i, failure in enumerate(self.failures):
                path = req.raw_path.split("?", 1)[0]
                if failure.method in ("*", req.method) and (failure.path is None or path.endswith(failure.path)):
                    del self.failures[i]
                    return failure
            path = req.raw_path.split("?", 1)[0]
            if path.startswith("/api/v3/"):
                return self._github(req, path)
            if path.startswith("/api/v4/"):
                return self._gitlab(req, path)
            return 404, {}, {"message": "Not Found"}

    def _github(self, req: Recorded, path: str) -> tuple[int, dict[str, str], Any]:
        h = req.headers
        if (
            h.get("authorization") != f"Bearer {self.token}"
            or h.get("accept") != "application/vnd.github+json"
            or h.get("x-github-api-version") != "2022-11-28"
        ):
            return 401, {}, {"message": "Bad credentials"}
        if path == "/api/v3/user" and req.method == "GET":
            if self.actions_token:
                return 403, {}, {"message": "Resource not accessible by integration"}
            return 200, {}, {"login": self.login, "id": 1}
        if m := _GH_COMMENTS.match(path):
            comments = self.github.setdefault((m.group(1), int(m.group(2))), [])
            if req.method == "GET":
                items, next_page = self._page(comments, req.query)
                headers = {}
                if next_page or self.loop_pages:
                    query = f"per_page={req.query.get('per_page', '30')}&page={1 if self.loop_pages else next_page}"
                    headers["Link"] = f'<{self.link_base}{path}?{query}>; rel="next"'
                return 200, headers, items
            if req.method == "POST":
                return 201, {}, self.seed_github(m.group(1), int(m.group(2)), req.body["body"])
        if (m := _GH_COMMENT.match(path)) and req.method == "PATCH":
            repo, comment_id = m.group(1), int(m.group(2))
            for (r, _), comments in self.github.items():
                for comment in comments:
                    if r == repo and comment["id"] == comment_id:
                        if comment["user"]["login"] != self._github_login:  # as GitHub: only the author may edit
                            return 403, {}, {"message": "Must have admin rights to Repository."}
                        comment["body"] = req.body["body"]
                        return 200, {}, comment
        return 404, {}, {"message": "Not Found"}

    def _gitlab(self, req: Recorded, path: str) -> tuple[int, dict[str, str], Any]:
        if req.headers.get("private-token") != self.token:
            return 401, {}, {"message": "401 Unauthorized"}
        if path == "/api/v4/user" and req.method == "GET":
            return 200, {}, {"username": self.login, "id": 1}
        if m := _GL_NOTES.match(path):
            notes = self.gitlab.setdefault((unquote(m.group(1)), int(m.group(2))), [])
            if req.method == "GET":
                ordered = notes if req.query.get("sort") == "asc" else notes[::-1]
                items, next_page = self._page(ordered, req.query)
                if self.loop_pages:
                    next_page = 1
                return 200, {"X-Next-Page": str(next_page or ""), "X-Page": req.query.get("page", "1")}, items
            if req.method == "POST":
                return 201, {}, self.seed_gitlab(unquote(m.group(1)), int(m.group(2)), req.body["body"])
        if (m := _GL_NOTE.match(path)) and req.method == "PUT":
            for note in self.gitlab.get((unquote(m.group(1)), int(m.group(2))), []):
                if note["id"] == int(m.group(3)):
                    if note["author"]["username"] != self.login:
                        return 403, {}, {"message": "403 Forbidden"}
                    note["body"] = req.body["body"]
                    return 200, {}, note
        return 404, {}, {"message": "404 Not found"}

    def _page(self, items: list[dict[str, Any]], query: dict[str, str]) -> tuple[list[dict[str, Any]], int | None]:
        size = min(int(query.get("per_page", "30")), self.page_size)
        page = int(query.get("page", "1"))
        chunk = items[(page - 1) * size : page * size]
        return [dict(c) for c in chunk], page + 1 if page * size < len(items) else None


def _handler(server: ForgeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
            headers = {k.lower(): v for k, v in self.headers.items()}
            req = Recorded(self.command, self.path, query, headers, json.loads(raw) if raw else None)
            answer = server.handle(req)
            how = answer if isinstance(answer, Failure) else Failure("*", *answer)
            if how.hang:
                server.closing.wait(60)
                return
            data = how.raw if how.raw is not None else b"" if how.body is None else json.dumps(how.body).encode()
            self.send_response(how.status)
            self.send_header("Content-Type", how.content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in how.headers.items():
                self.send_header(key, value)
            self.end_headers()
            if how.drip is None:
                self.wfile.write(data)
                return
            for byte in data:
                if server.closing.wait(how.drip):
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()

        do_GET = do_POST = do_PATCH = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

    return Handler
