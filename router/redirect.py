"""The hot path: ``GET|HEAD /build/...`` answered with a 307 to a member, as plain ASGI.

It does only what a redirect needs: take the routing table of the current view
(:mod:`router.routes`, where the balancer's decision is kept per generation, and with
``bounded`` this process's recent launches across generations), ask it for the answer
(:meth:`router.routes.RoutingTable.answer`, a function of the table, the request and, with
``bounded``, those launches) and send it. A CORS preflight of a launch (``OPTIONS
/build/...``) gets 200, as BinderHub's build API answers it; everything else goes to the
FastAPI app.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from router.routes import (
    ALLOW_ANY_ORIGIN,
    BAD_PATH,
    BAD_REQUEST,
    Answer,
    LoadBound,
    RoutingTable,
    fixed_answer,
    no_view_answer,
    printable_ascii,
)
from router.snapshot import SnapshotHolder

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Any]

__all__ = ["RedirectApp", "printable_ascii", "request_target"]

#: The answer to a CORS preflight of a launch, as BinderHub gives it.
_PREFLIGHT = fixed_answer(
    200, b"", (ALLOW_ANY_ORIGIN, (b"access-control-allow-headers", b"cache-control"))
)
#: Answers outside /build/ carry no CORS header.
_BAD_REQUEST = fixed_answer(400, BAD_REQUEST[2])
_BAD_PATH = fixed_answer(400, BAD_PATH[2])
#: Servers only read the messages they are sent, so the empty body can be one constant.
_EMPTY_BODY = {"type": "http.response.body", "body": b""}
_LAUNCH_METHODS = frozenset(("GET", "HEAD"))


def _has_control(path: str) -> bool:
    return any(c < " " or c == "\x7f" for c in path)


def _malformed(scope: Scope) -> bool:
    """A request the HTTP parser let through that no client sends: an HTTP/0.9 request line
    followed by headers (``GET /p\\r\\nSet-Cookie: x HTTP/1.1``: a CR or LF in a target, as
    some parsers read it), or HTTP/1.1 without a Host (RFC 9112 3.2: a server must answer
    400). An empty Host counts as missing: no client sends one for a target with an
    authority, as every http URL has."""
    version = scope.get("http_version")
    if version == "0.9":
        return True
    return version == "1.1" and not any(
        name == b"host" and value for name, value in scope["headers"]
    )


def _origin_form(scope: Scope) -> Scope:
    """An absolute-form target (``GET http://host/p HTTP/1.1``) is served as its path alone:
    the authority a client names never becomes part of a redirect."""
    raw, _query = request_target(scope)
    _, sep, rest = raw.partition(b"://")
    path = b"/" + rest.partition(b"/")[2] if sep else b"/"
    path = path.partition(b"?")[0]
    return {**scope, "raw_path": path, "path": unquote(path.decode("latin-1"))}


def request_target(scope: Scope) -> tuple[bytes, bytes]:
    """The raw path and query of a request, as the client sent them (still encoded)."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "replace")
    return raw_path, scope.get("query_string", b"")


async def _send(send: Any, answer: Answer, head: bool) -> None:
    status, headers, body = answer
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send(_EMPTY_BODY if head or not body else {"type": "http.response.body", "body": body})


class RedirectApp:
    """ASGI app: /build/ launches here, everything else to ``fallthrough`` (FastAPI)."""

    def __init__(
        self,
        holder: SnapshotHolder,
        fallthrough: ASGIApp,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.holder = holder
        self.fallthrough = fallthrough
        self.table: RoutingTable | None = None  # of the view last served
        self._retired: Counter[tuple[str, str]] = Counter()  # counts of replaced tables
        #: this process's recent launches (``bounded``, timed by ``clock``), outliving
        #: every table: a new view does not reset them
        self.load = LoadBound(clock)

    @property
    def counts(self) -> Counter[tuple[str, str]]:
        """Redirects by (member, reason) since this process started."""
        total = Counter(self._retired)
        if self.table is not None:
            total.update(self.table.counts())
        return total

    def routing(self) -> RoutingTable | None:
        """The routing table of the holder's current view (kept while its identity is)."""
        view = self.holder.view
        table = self.table
        if view is None:
            return None
        if table is None:
            table = self.table = RoutingTable(view, load=self.load, launches=self.holder.launches)
        elif table.view is not view:
            table = table.for_view(view)
            if table is not self.table:  # a new generation: keep what the old one counted
                assert self.table is not None
                self._retired.update(self.table.counts())
                self.table = table
        return table

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        """Answer a launch from the current routing table; anything else goes on."""
        if (
            scope["type"] != "http"
            or scope["method"] not in _LAUNCH_METHODS
            or not scope["path"].startswith("/build/")
        ):
            await self._not_a_launch(scope, receive, send)
            return
        table = self.table
        if table is None or table.view is not self.holder.view:
            table = self.routing()
        status, headers, body = no_view_answer(scope) if table is None else table.answer(scope)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        head = scope["method"] == "HEAD"
        await send(
            _EMPTY_BODY if head or not body else {"type": "http.response.body", "body": body}
        )

    async def _not_a_launch(self, scope: Scope, receive: Any, send: Any) -> None:
        """An absolute-form target is served by its path (so it may be a launch after all);
        a CORS preflight of a launch is answered here; FastAPI gets the rest."""
        head = scope.get("method") == "HEAD"
        if scope["type"] != "http":
            await self.fallthrough(scope, receive, send)
        elif _malformed(scope):
            await _send(send, _BAD_REQUEST, head)
        elif not scope["path"].startswith("/"):
            await self(_origin_form(scope), receive, send)  # its path starts with "/"
        elif scope["method"] == "OPTIONS" and scope["path"].startswith("/build/"):
            await _send(send, _PREFLIGHT, False)
        elif _has_control(scope["path"]):
            # FastAPI's routes never match a path with a newline, and what it does then
            # (metrics, 404) reads request.url, which fails on a non-UTF-8 query.
            await _send(send, _BAD_PATH, head)
        else:
            await self.fallthrough(scope, receive, send)
