"""Serving the site's other pages from the home member, streamed, as the replaced
redirector did. The target is always the home member's URL plus the request's raw path."""

from __future__ import annotations

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


async def proxy(client: httpx.AsyncClient, member: str, target: str, request: Request) -> Response:
    """Fetch ``target`` with the request's headers and stream the answer back."""
    # Raw bytes: a header value may hold obs-text (e.g. 0xFF), which str values cannot carry.
    try:
        upstream = client.build_request(
            request.method, target, headers=_forwardable(request.headers.raw)
        )
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
