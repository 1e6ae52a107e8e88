"""What a simulated member received, kept for tests: each request but a checker's, with
its raw target and headers in order, so a test sees what a proxy in front of the member sent.
"""

from __future__ import annotations

import typing
from collections import deque
from dataclasses import dataclass

from starlette.types import ASGIApp


@dataclass(frozen=True)
class SeenRequest:
    """One request as the member received it: raw target and headers, in order."""

    method: str
    target: bytes  # raw path, and "?" + query if any
    headers: list[tuple[bytes, bytes]]

    def values(self, name: str) -> list[str]:
        """Every value of header ``name`` (lowercase), in the order received."""
        key = name.encode()
        return [v.decode("latin-1") for k, v in self.headers if k.lower() == key]


#: What a checker reads: not kept by ``Recorder``, so a checker cannot crowd out the rest.
PROBE_PATHS = frozenset({"/health", "/versions", "/metrics"})


class Recorder:
    """Keeps each request that is not a probe, then hands it to the app."""

    def __init__(self, app: ASGIApp, requests: deque[SeenRequest]) -> None:
        self.app, self.requests = app, requests

    async def __call__(self, scope: typing.Any, receive: typing.Any, send: typing.Any) -> None:
        if scope["type"] == "http" and scope["path"] not in PROBE_PATHS:
            query = scope.get("query_string", b"")
            target = (scope.get("raw_path") or scope["path"].encode()) + (
                b"?" + query if query else b""
            )
            self.requests.append(SeenRequest(scope["method"], target, list(scope["headers"])))
        await self.app(scope, receive, send)
