"""The hot path: ``GET|HEAD /build/...`` answered with a 307 to a member, as plain ASGI.

It does only what a redirect needs: read the in-memory view, parse one cookie, ask the
core for a decision, and send headers. The Location is always a configured member URL
followed by the request's own path and query, which are checked to be printable ASCII,
so no request can steer the redirect to another host. Like BinderHub's build API, every
/build/ answer allows any origin (CORS) and a preflight (``OPTIONS /build/...``) gets 200.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import unquote

from router.snapshot import SnapshotHolder
from shared.balance import repo_path

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Any]

_UNSAFE_COOKIE_PATH = frozenset(';,"\\')
#: Longer launch targets are refused: no repository spec needs them, and the Location and
#: cookie would carry them whole.
MAX_TARGET_BYTES = 8192
#: Every /build/ answer says any origin may read it, as BinderHub's build API does, so a
#: launch page on another site sees the real status (a 503, say) instead of a network error.
_CORS = [(b"access-control-allow-origin", b"*")]
#: The answer to a CORS preflight of a launch (OPTIONS), as BinderHub gives it.
_PREFLIGHT = [*_CORS, (b"access-control-allow-headers", b"cache-control")]


def printable_ascii(data: bytes) -> bool:
    return all(0x21 <= b <= 0x7E for b in data)


def _has_control(path: str) -> bool:
    return any(c < " " or c == "\x7f" for c in path)


def _sticky_url(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"cookie" and len(value) <= 8192:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header is simply ignored
                return None
            morsel = jar.get("host")
            return morsel.value if morsel is not None else None
    return None


def _origin_form(scope: Scope) -> Scope:
    """An absolute-form target (``GET http://host/p HTTP/1.1``) is served as its path alone:
    the authority a client names never becomes part of a redirect."""
    raw, _query = request_target(scope)
    _, sep, rest = raw.partition(b"://")
    path = b"/" + rest.partition(b"/")[2] if sep else b"/"
    path = path.partition(b"?")[0]
    return {**scope, "raw_path": path, "path": unquote(path.decode("latin-1"))}


def _is_https(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"x-forwarded-proto":
            return value.split(b",")[0].strip().lower() == b"https"
    return bool(scope.get("scheme") == "https")


class RedirectApp:
    """ASGI app: /build/ launches here, everything else to ``fallthrough`` (FastAPI)."""

    def __init__(self, holder: SnapshotHolder, fallthrough: ASGIApp) -> None:
        self.holder = holder
        self.fallthrough = fallthrough
        self.counts: Counter[tuple[str, str]] = Counter()  # (member, reason) -> redirects
        self.random = random.random

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        """Redirect a launch to a member, decided on one view; anything else goes on."""
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or not scope["path"].startswith("/build/")
        ):
            await self._not_a_launch(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        raw_path, query = request_target(scope)
        if len(raw_path) + len(query) > MAX_TARGET_BYTES:
            await _send(send, 414, _CORS, b"request target too long\n", head=head)
            return
        if not raw_path.startswith(b"/build/") or not printable_ascii(raw_path + query):
            await _send(send, 400, _CORS, b"bad request path\n", head=head)
            return
        view = self.holder.view
        if view is None:
            body = b"no view of the federation yet; retry shortly\n"
            await _send(send, 503, _CORS, body, head=head)
            return
        path = raw_path.decode("ascii")
        decision = view.pick(path, _sticky_url(scope["headers"]), self.random())
        if decision.url is None or decision.member is None or decision.reason is None:
            headers = [*_CORS, (b"retry-after", b"30")]
            await _send(send, 503, headers, _NOBODY_PAGE, b"text/html", head)
            return
        self.counts[(decision.member, decision.reason)] += 1
        location = decision.url + path + ("?" + query.decode("ascii") if query else "")
        cookie = _cookie(decision.url, path, view.config.cookie_max_age_seconds, scope)
        headers = [
            (b"location", location.encode("ascii")),
            *_CORS,
            (b"cache-control", b"no-store"),
            (b"set-cookie", cookie),
        ]
        await _send(send, 307, headers, b"")

    async def _not_a_launch(self, scope: Scope, receive: Any, send: Any) -> None:
        """An absolute-form target is served by its path (so it may be a launch after all);
        a CORS preflight of a launch is answered here; FastAPI gets the rest."""
        if scope["type"] != "http":
            await self.fallthrough(scope, receive, send)
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


def _cookie(url: str, path: str, max_age: int, scope: Scope) -> bytes:
    """The sticky ``host`` cookie, scoped to the repository's launch path."""
    cookie_path = repo_path(path)
    if _UNSAFE_COOKIE_PATH.intersection(cookie_path):
        cookie_path = "/build/"
    parts = [f"host={url}", f"Path={cookie_path}", f"Max-Age={max_age}", "HttpOnly"]
    parts.append("SameSite=Lax")
    if _is_https(scope):
        parts.append("Secure")
    return "; ".join(parts).encode("ascii")


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
