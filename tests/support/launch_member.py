"""A real member on 127.0.0.1 whose /metrics a test controls: BinderHub's /health and
/versions samples, and the launch counts of a :class:`BinderHubLaunches` (or a body set by
hand). It counts the requests it serves per path, so a test can count the checker's."""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.support.launches import BinderHubLaunches

SAMPLES = Path(__file__).resolve().parents[2] / "fedredirect" / "samples"


class LaunchMember:
    """``with LaunchMember() as member:`` serves on ``member.url`` until the block ends.

    ``member.launches`` feeds /metrics; ``member.metrics_answer = (status, body)`` replaces
    that answer (an unreadable or missing endpoint), None gives the counts back."""

    def __init__(self) -> None:
        self.launches = BinderHubLaunches()
        self.metrics_answer: tuple[int, bytes] | None = None
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) of GET ``path``; counts it."""
        with self._lock:
            self.hits[path] += 1
        if path == "/health":
            return 200, "application/json", (SAMPLES / "health-ok.json").read_bytes()
        if path == "/versions":
            return 200, "application/json", (SAMPLES / "versions.json").read_bytes()
        if path == "/metrics":
            if self.metrics_answer is not None:
                status, text = self.metrics_answer
                return status, "text/plain", text
            body = self.launches.text().encode()
            return 200, "text/plain; version=0.0.4; charset=utf-8", body
        return 404, "text/plain", b"not found"

    def count(self, path: str) -> int:
        with self._lock:
            return self.hits[path]

    def __enter__(self) -> LaunchMember:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def _handler(member: LaunchMember) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            status, content_type, body = member.answer(self.path)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: a test reads ``hits``, not a log."""

    return Handler
