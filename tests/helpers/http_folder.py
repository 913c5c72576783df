"""A folder served over real HTTP on 127.0.0.1 (Python's http.server in a thread), for datasets read by URL."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    request_queue_size = 256  # fsspec opens many connections at once; the default 5 drops them and TCP retries


@contextmanager
def served(folder: Path) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` serving ``folder`` until the block ends."""
    server = _Server(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
