"""What the home member receives when the router proxies a page, whatever the client sent.

The router tells the member the public origin as the replaced redirector did
(``X-Forwarded-Host``, ``X-Forwarded-Proto``, ``Origin``), so that a BinderHub ``/v2/``
page's build token names the router's origin. No client header can make it name another
host than the ``Host`` the request came with; a missing, repeated or malformed ``Host`` is
answered 400 and the member is never asked. Requests are written by hand on a socket (an
HTTP client would normalise them); the member is a real simulated member that keeps each
request's headers as received.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from fedredirect import buildtoken
from fedredirect.simulator import MemberServer, SeenRequest
from tests.support.binderhub import page_config
from tests.support.rawhttp import raw_request
from tests.support.stack import Stack

_serial = itertools.count()


@dataclass(frozen=True)
class Case:
    """One request for a page; ``{router}`` stands for the router's host:port."""

    id: str
    headers: tuple[bytes, ...]  # header lines, Host included (or not)
    origin: str | None  # the Origin the member must get; None: 400, the member not asked
    version: bytes = b"HTTP/1.1"


def _case(id: str, *headers: bytes, origin: str | None, version: bytes = b"HTTP/1.1") -> object:
    return pytest.param(Case(id, headers, origin, version), id=id)


HOST = b"Host: {router}"


def _twice(id: str, name: bytes, first: bytes, second: bytes) -> object:
    """``name`` sent twice after Host; the router's own value reaches the member."""
    return _case(id, HOST, name + b": " + first, name + b": " + second, origin="http://{router}")


CASES = [
    _case("plain", HOST, origin="http://{router}"),
    _case("client-origin", HOST, b"Origin: https://evil.example", origin="http://{router}"),
    _case("client-origin-null", HOST, b"Origin: null", origin="http://{router}"),
    _twice("client-x-forwarded-host", b"X-Forwarded-Host", b"evil.example", b"evil2.example"),
    _case("client-forwarded", HOST, b"Forwarded: host=evil.example", origin="http://{router}"),
    _case(
        "all-at-once-https",
        b"Origin: https://evil.example",
        b"X-Forwarded-Host: evil.example",
        b"X-Forwarded-Proto: https",
        HOST,
        b"Forwarded: for=1.2.3.4;host=evil.example;proto=https",
        origin="https://{router}",
    ),
    _case("proto-https", HOST, b"X-Forwarded-Proto: https", origin="https://{router}"),
    _case("proto-list", HOST, b"X-Forwarded-Proto: HTTPS , http", origin="https://{router}"),
    _case("proto-bogus", HOST, b"X-Forwarded-Proto: javascript", origin="http://{router}"),
    _twice("proto-first-header-wins", b"X-Forwarded-Proto", b"http", b"https"),
    _case("host-uppercase", b"Host: Binder.EXAMPLE:8080", origin="http://binder.example:8080"),
    _case(
        "host-default-port",
        b"Host: binder.example:443",
        b"X-Forwarded-Proto: https",
        origin="https://binder.example",
    ),
    _case("host-ipv6", b"Host: [::1]:8080", origin="http://[::1]:8080"),
    _case("host-missing-http10", origin=None, version=b"HTTP/1.0"),
    _case("host-empty", b"Host: ", origin=None),
    _case("host-twice", HOST, b"Host: evil.example", origin=None),
    _case("host-list", b"Host: {router}, evil.example", origin=None),
    _case("host-userinfo", b"Host: evil.example@{router}", origin=None),
    _case("host-userinfo-after", b"Host: {router}@evil.example", origin=None),
    _case("host-path", b"Host: {router}/evil.example", origin=None),
    _case("host-backslash", b"Host: evil.example\\{router}", origin=None),
    _case("host-scheme", b"Host: http://evil.example", origin=None),
    _case("host-space", b"Host: evil.example {router}", origin=None),
    _case("host-percent", b"Host: evil%2eexample", origin=None),
    _case("host-port-junk", b"Host: {router}x", origin=None),
    _case("host-port-too-big", b"Host: binder.example:65536", origin=None),
    _case("host-non-ascii", b"Host: \xffevil.example", origin=None),
]


def _alpha(stack: Stack) -> MemberServer:
    return stack.members["alpha"]  # the home member


def _seen(member: MemberServer, target: bytes) -> SeenRequest | None:
    return next((r for r in member.requests if r.target == target), None)


@pytest.mark.parametrize("case", CASES)
def test_the_member_hears_only_the_host_the_request_came_to(stack: Stack, case: Case) -> None:
    router = stack.router
    netloc = urlsplit(router).netloc.encode()
    target = f"/about/{case.id}-{next(_serial)}".encode()
    lines = [b"GET " + target + b" " + case.version, *case.headers, b"Connection: close"]
    request = b"\r\n".join([*lines, b"", b""]).replace(b"{router}", netloc)
    status, _headers, body = raw_request(urlsplit(router).port or 80, request)
    alpha = _alpha(stack)
    if case.origin is None:
        assert status == 400, body
        assert _seen(alpha, target) is None, "the member was asked"
        return
    assert status == 200, body
    seen = _seen(alpha, target)
    assert seen is not None
    origin = case.origin.replace("{router}", netloc.decode())
    scheme, host = origin.split("://")
    assert seen.values("origin") == [origin]
    assert seen.values("x-forwarded-host") == [host]
    assert seen.values("x-forwarded-proto") == [scheme]
    assert seen.values("forwarded") == []
    assert seen.values("host") == [alpha.url.removeprefix("http://")]


def test_a_page_through_the_router_carries_a_token_for_the_routers_origin(stack: Stack) -> None:
    """The member mints the /v2/ page's token from the Origin the router sends."""
    router = stack.router
    page = httpx.get(f"{router}/v2/gh/org/repo/HEAD")
    assert page.status_code == 200
    key = buildtoken.secret_bytes(buildtoken.DEV_SECRET)
    claims = buildtoken.decode(page_config(page.text)["buildToken"], key, "gh/org/repo/HEAD")
    assert claims["origin"] == urlsplit(router).netloc
