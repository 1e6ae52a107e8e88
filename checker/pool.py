"""HTTP clients for the checker: one connection pool per member origin, and one bound on
the requests in flight across all of them.

A pool per origin holds a connection or two, so a request costs the same with 10 members
or 5,000 (a shared pool that scans its connections would cost more the larger the
federation); the pools share one TLS context, so CA certificates are loaded once. Why
aiohttp: docs/benchmarks.md, "Where the checker's time went".
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from urllib.parse import urlsplit

import aiohttp

#: Requests in flight across all members at most: the first round of a large federation
#: starts every member at once, and this keeps sockets and the event loop within bounds.
DEFAULT_MAX_IN_FLIGHT = 256
USER_AGENT = "fedredirect-checker"


class OriginClients:
    """``for_url(url)``: the session of ``url``'s origin, created on first use (in the
    running event loop). Idle connections are kept ``keepalive`` seconds, so the next check
    of a member reuses its connection (TLS included)."""

    def __init__(self, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT, keepalive: float = 60.0) -> None:
        self.gate = asyncio.Semaphore(max_in_flight)
        self.keepalive = keepalive
        self._tls = ssl.create_default_context()
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def for_url(self, url: str) -> aiohttp.ClientSession:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        session = self._sessions.get(origin)
        if session is None:
            connector = aiohttp.TCPConnector(
                limit=4, keepalive_timeout=self.keepalive, ssl=self._tls
            )
            session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # members' cookies mean nothing here
                headers={"User-Agent": USER_AGENT},
            )
            self._sessions[origin] = session
        return session

    async def aclose(self) -> None:
        for session in self._sessions.values():
            with contextlib.suppress(Exception):
                await session.close()
        self._sessions.clear()

    async def __aenter__(self) -> OriginClients:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
