"""Serving the site's other pages from the home member, streamed, as the replaced
redirector did. The target is always the home member's URL plus the request's raw path.

Like the replaced redirector, the proxy tells the member which public origin the page is
served on (``X-Forwarded-Host``, ``X-Forwarded-Proto`` and ``Origin``, whatever the client
sent in those): BinderHub mints a ``/v2/`` page's build token for the request's ``Origin``,
else its ``Host``, and a browser launches from that page with the router's origin. The
host named is always the ``Host`` the request came with, checked first.
"""

from __future__ import annotations

import re

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from router.redirect import printable_ascii

# Hop-by-hop headers (RFC 9110 7.6.1) are never forwarded; Host and Content-Length are
# set anew, and Date comes from this server.
_NOT_FORWARDED = frozenset(
    b"connection keep-alive proxy-authenticate proxy-authorization te trailer "
    b"transfer-encoding upgrade host content-length date".split()
)
# What the proxy says itself about the public origin; a client's own are dropped, and so
# is Forwarded (RFC 7239), whose host= could name another host.
_PUBLIC_ORIGIN = frozenset((b"origin", b"x-forwarded-host", b"x-forwarded-proto", b"forwarded"))
# host[:port] (RFC 9110 7.2): a DNS-style name or an IPv4 address, or an IPv6 literal in
# brackets. Nothing that could end the authority early or add userinfo ("/", "@", "\\").
_HOST_PORT = re.compile(
    rb"(?P<host>[a-z0-9_](?:[a-z0-9_.-]{0,251}[a-z0-9_.])?|\[[0-9a-f:.]{2,45}\])"
    rb"(?::(?P<port>[0-9]{1,5}))?"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def target_url(base: str, request: Request) -> str | None:
    """``base`` + the request's raw path and query, or None if they are not safe to use."""
    raw_path = request.scope.get("raw_path") or request.scope["path"].encode("utf-8", "replace")
    query = request.scope.get("query_string", b"")
    # raw_path must start with "/": "%2F@evil.example" would turn base + raw_path into a URL
    # on another host (a target's path is decoded, its raw_path is not).
    if not raw_path.startswith(b"/") or not printable_ascii(raw_path + query):
        return None
    return base + raw_path.decode("ascii") + ("?" + query.decode("ascii") if query else "")


def _forwardable(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.lower() not in _NOT_FORWARDED]


def public_host(headers: list[tuple[bytes, bytes]], scheme: str) -> bytes | None:
    """The request's one ``Host``, lowercased, without the scheme's default port, or None
    when it is missing, repeated or not a plain host[:port] (RFC 9112 3.2: a 400)."""
    hosts = [v for k, v in headers if k.lower() == b"host"]
    found = _HOST_PORT.fullmatch(hosts[0].lower()) if len(hosts) == 1 else None
    if found is None:
        return None
    host, port = found["host"], int(found["port"] or _DEFAULT_PORTS.get(scheme, 0))
    if not 0 < port < 65536:
        return None
    # As a browser serialises an origin: the scheme's default port left out.
    return host if port == _DEFAULT_PORTS.get(scheme) else b"%s:%d" % (host, port)


def public_scheme(headers: list[tuple[bytes, bytes]], scheme: str) -> str:
    """The first value of the first X-Forwarded-Proto if it is http or https (set by the
    ingress in front), else the scheme the request came with."""
    for name, value in headers:
        if name.lower() == b"x-forwarded-proto":
            first = value.split(b",")[0].strip().lower()
            return first.decode() if first in (b"http", b"https") else scheme
    return scheme


def member_headers(
    headers: list[tuple[bytes, bytes]], scheme: str
) -> list[tuple[bytes, bytes]] | None:
    """The headers the home member gets: the client's, less those the proxy sets, plus
    the public origin as the replaced redirector sent it; None if the Host is unusable."""
    proto = public_scheme(headers, scheme)
    host = public_host(headers, proto)
    if host is None:
        return None
    kept = [(k, v) for k, v in _forwardable(headers) if k.lower() not in _PUBLIC_ORIGIN]
    return [
        *kept,
        (b"x-forwarded-host", host),
        (b"x-forwarded-proto", proto.encode()),
        (b"origin", proto.encode() + b"://" + host),
    ]


async def proxy(client: httpx.AsyncClient, member: str, target: str, request: Request) -> Response:
    """Fetch ``target`` with the request's headers and stream the answer back."""
    # Raw bytes: a header value may hold obs-text (e.g. 0xFF), which str values cannot carry.
    headers = member_headers(request.headers.raw, request.scope.get("scheme", "http"))
    if headers is None:
        return Response("bad request: missing or invalid Host\n", 400, media_type="text/plain")
    try:
        upstream = client.build_request(request.method, target, headers=headers)
    except httpx.InvalidURL as exc:  # e.g. "URL too long" (over 64 KiB)
        return Response(f"bad request path: {exc}\n", 400, media_type="text/plain")
    try:
        answer = await client.send(upstream, stream=True)
    except httpx.HTTPError as exc:
        return Response(
            f"home member {member} did not answer: {type(exc).__name__}\n",
            status_code=502,
            media_type="text/plain",
        )
    response = StreamingResponse(
        answer.aiter_raw(), status_code=answer.status_code, background=BackgroundTask(answer.aclose)
    )
    # Raw and as a list, so repeated headers (several Set-Cookie) all pass through.
    response.raw_headers = _forwardable(answer.headers.raw)
    return response
