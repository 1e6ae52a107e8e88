"""HTTP clients for the checker: one connection pool per member origin, and one bound on
the requests in flight across all of them.

One shared pool scans every pooled connection for every request (httpx's pool does), so
its cost per request grows with the federation. A pool per origin holds a connection or
two, so a request costs the same with 10 members or 5,000; they share one TLS context
(loading CA certificates once, not per pool).
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

import httpx

from checker.probe import MAX_REDIRECTS

#: Requests in flight across all members at most: the first round of a large federation
#: starts every member at once, and this keeps sockets and the event loop within bounds.
DEFAULT_MAX_IN_FLIGHT = 256


class OriginClients:
    """``for_url(url)``: the client of ``url``'s origin, created on first use."""

    def __init__(self, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT, keepalive: float = 60.0) -> None:
        self.gate = asyncio.Semaphore(max_in_flight)
        self.keepalive = keepalive  # idle seconds a connection is kept for the next check
        self._tls = httpx.create_ssl_context()
        self._clients: dict[str, httpx.AsyncClient] = {}

    def for_url(self, url: str) -> httpx.AsyncClient:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        client = self._clients.get(origin)
        if client is None:
            # A member that moved (http -> https, a new host) is followed a few hops, so it
            # is checked where it really is; the status view shows the URL that answered.
            client = httpx.AsyncClient(
                verify=self._tls,
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                limits=httpx.Limits(
                    max_connections=4, max_keepalive_connections=2, keepalive_expiry=self.keepalive
                ),
            )
            self._clients[origin] = client
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                await client.aclose()
        self._clients.clear()

    async def __aenter__(self) -> OriginClients:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
