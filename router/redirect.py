"""The hot path: ``GET|HEAD /build/...`` answered with a 307 to a member, as plain ASGI.

It does only what a redirect needs: look up the launch path in the routing table of the
current view (:mod:`router.routes`, where the balancer's decision is kept per generation),
read the ``host`` cookie (a dict lookup of its value), and send headers. The Location is
always a configured member URL followed by the request's own path and query, which are
checked to be printable ASCII, so no request can steer the redirect to another host.
Like BinderHub's build API, every /build/ answer allows any origin (CORS) and a preflight
(``OPTIONS /build/...``) gets 200.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from router.routes import RoutingTable
from router.snapshot import SnapshotHolder

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Any]

#: Longer launch targets are refused: no repository spec needs them, and the Location and
#: cookie would carry them whole.
MAX_TARGET_BYTES = 8192
#: Longer Cookie headers are not read (the browser sends the sticky cookie in far less).
MAX_COOKIE_BYTES = 8192
#: Every /build/ answer says any origin may read it, as BinderHub's build API does, so a
#: launch page on another site sees the real status (a 503, say) instead of a network error.
_ALLOW_ANY_ORIGIN = (b"access-control-allow-origin", b"*")
_CORS = [_ALLOW_ANY_ORIGIN]
#: The answer to a CORS preflight of a launch (OPTIONS), as BinderHub gives it.
_PREFLIGHT = [*_CORS, (b"access-control-allow-headers", b"cache-control")]
_EMPTY = (b"content-length", b"0")
#: Servers only read the messages they are sent, so the empty body can be one constant.
_EMPTY_BODY = {"type": "http.response.body", "body": b""}
_LAUNCH_METHODS = frozenset(("GET", "HEAD"))
_not_printable = re.compile(rb"[^\x21-\x7e]").search


def printable_ascii(data: bytes) -> bool:
    """Only visible ASCII (no space, no control, nothing above 0x7E)."""
    return _not_printable(data) is None


def _has_control(path: str) -> bool:
    return any(c < " " or c == "\x7f" for c in path)


def _malformed(scope: Scope) -> bool:
    """A request the HTTP parser let through that no client sends: an HTTP/0.9 request line
    followed by headers (``GET /p\\r\\nSet-Cookie: x HTTP/1.1``: a CR or LF in a target, as
    some parsers read it), or HTTP/1.1 without a Host (RFC 9112 3.2: a server must answer
    400). granian hands on a missing Host as an empty one, which no client sends for a
    target with an authority, as every http URL has."""
    version = scope.get("http_version")
    if version == "0.9":
        return True
    return version == "1.1" and not any(
        name == b"host" and value for name, value in scope["headers"]
    )


def host_cookie(header: bytes) -> bytes | None:
    """The value of the first ``host`` cookie in a Cookie header, unquoted, as sent.

    Cookie pairs are split at ``;`` and trimmed (RFC 6265 5.4, as browsers send them); a
    browser sends the cookie with the longest path first, so the first ``host`` is the
    repository's own. No character is interpreted: the value is only ever compared with
    member URLs, so anything else (quotes, escapes, binary) simply matches no member."""
    if b"host" not in header:
        return None
    for pair in header.split(b";"):
        name, eq, value = pair.partition(b"=")
        if eq and name.strip(b" \t") == b"host":
            value = value.strip(b" \t")
            if len(value) >= 2 and value[0] == 0x22 and value[-1] == 0x22:  # "quoted"
                value = value[1:-1]
            return value
    return None


def _origin_form(scope: Scope) -> Scope:
    """An absolute-form target (``GET http://host/p HTTP/1.1``) is served as its path alone:
    the authority a client names never becomes part of a redirect."""
    raw, _query = request_target(scope)
    _, sep, rest = raw.partition(b"://")
    path = b"/" + rest.partition(b"/")[2] if sep else b"/"
    path = path.partition(b"?")[0]
    return {**scope, "raw_path": path, "path": unquote(path.decode("latin-1"))}


class RedirectApp:
    """ASGI app: /build/ launches here, everything else to ``fallthrough`` (FastAPI)."""

    def __init__(self, holder: SnapshotHolder, fallthrough: ASGIApp) -> None:
        self.holder = holder
        self.fallthrough = fallthrough
        self.random = random.random
        self.table: RoutingTable | None = None  # of the view last served
        self._retired: Counter[tuple[str, str]] = Counter()  # counts of replaced tables

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
            table = self.table = RoutingTable(view)
        elif table.view is not view:
            table = table.for_view(view)
            if table is not self.table:  # a new generation: keep what the old one counted
                assert self.table is not None
                self._retired.update(self.table.counts())
                self.table = table
        return table

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        """Redirect a launch to a member, decided on one view; anything else goes on."""
        if (
            scope["type"] != "http"
            or scope["method"] not in _LAUNCH_METHODS
            or not scope["path"].startswith("/build/")
        ):
            await self._not_a_launch(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "replace")
        query = scope.get("query_string", b"")  # as request_target(scope), inline: hot
        table = self.table
        if table is None or table.view is not self.holder.view:
            table = self.routing()
        entry = None if table is None else table.paths.get(raw_path)
        if entry is None or query:  # a cached path was checked when it entered the cache
            if len(raw_path) + len(query) > MAX_TARGET_BYTES:
                await _send(send, 414, _CORS, b"request target too long\n", head=head)
                return
            if not raw_path.startswith(b"/build/") or not printable_ascii(raw_path + query):
                await _send(send, 400, _CORS, b"bad request path\n", head=head)
                return
        if table is None:
            body = b"no view of the federation yet; retry shortly\n"
            await _send(send, 503, _CORS, body, head=head)
            return
        if entry is None:
            entry = table.entry(raw_path)
        # One pass over the headers: the sticky cookie, whether the client used https, and
        # whether the request is well formed (see _malformed).
        route = None
        https = scope.get("scheme") == "https"
        cookie_seen = forwarded_seen = host_seen = False
        for name, value in scope["headers"]:
            if name == b"host":
                host_seen = host_seen or value != b""  # empty: missing (see _malformed)
            elif name == b"cookie":
                if not cookie_seen and len(value) <= MAX_COOKIE_BYTES:
                    sticky = host_cookie(value)
                    if sticky is not None:
                        cookie_seen = True
                        route = table.sticky.get(sticky)
            elif name == b"x-forwarded-proto" and not forwarded_seen:
                forwarded_seen = True
                https = value.split(b",")[0].strip().lower() == b"https"
        version = scope.get("http_version")
        if version == "0.9" or (version == "1.1" and not host_seen):
            await _send(send, 400, _CORS, b"bad request\n", head=head)
            return
        if route is None:
            route = entry[1] if table.cached else table.decide(raw_path.decode(), self.random())
        if route is None:
            headers = [*_CORS, (b"retry-after", b"30")]
            await _send(send, 503, headers, _NOBODY_PAGE, b"text/html", head)
            return
        route.count += 1
        tail = table.cookie_tail_secure if https else table.cookie_tail
        location = route.url + raw_path + (b"?" + query if query else b"")
        await send(
            {
                "type": "http.response.start",
                "status": 307,
                # No more headers than a launch needs: the server spends 0.7 µs on each.
                # No Cache-Control: a 307 without explicit freshness is never stored
                # (RFC 9111 4.2.2); no Content-Type: there is no body.
                "headers": [
                    (b"location", location),
                    (b"set-cookie", route.cookie_head + entry[0] + tail),
                    _ALLOW_ANY_ORIGIN,
                    _EMPTY,
                ],
            }
        )
        await send(_EMPTY_BODY)

    async def _not_a_launch(self, scope: Scope, receive: Any, send: Any) -> None:
        """An absolute-form target is served by its path (so it may be a launch after all);
        a CORS preflight of a launch is answered here; FastAPI gets the rest."""
        if scope["type"] != "http":
            await self.fallthrough(scope, receive, send)
        elif _malformed(scope):
            await _send(send, 400, [], b"bad request\n", head=scope["method"] == "HEAD")
        elif not scope["path"].startswith("/"):
            await self(_origin_form(scope), receive, send)  # its path starts with "/"
        elif scope["method"] == "OPTIONS" and scope["path"].startswith("/build/"):
            await _send(send, 200, _PREFLIGHT, b"")
        elif _has_control(scope["path"]):
            # FastAPI's routes never match a path with a newline, and what it does then
            # (metrics, 404) reads request.url, which fails on a non-UTF-8 query.
            await _send(send, 400, [], b"bad request path\n", head=scope["method"] == "HEAD")
        else:
            await self.fallthrough(scope, receive, send)


def request_target(scope: Scope) -> tuple[bytes, bytes]:
    """The raw path and query of a request, as the client sent them (still encoded)."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "replace")
    return raw_path, scope.get("query_string", b"")


_NOBODY_PAGE = (
    b"<!doctype html><title>No capacity</title><h1>No member can take launches right now</h1>"
    b"<p>Every member of the federation is full, unhealthy or unreachable. "
    b"Please try again in a few minutes.</p>\n"
)


async def _send(
    send: Any,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    content_type: bytes = b"text/plain; charset=utf-8",
    head: bool = False,
) -> None:
    headers = [
        *headers,
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
