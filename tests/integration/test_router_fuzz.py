"""Fuzz the router's ASGI app in-process with arbitrary targets, queries and headers.

No HTTP server sits in front, so the app sees bytes no parser would let through (NUL, CR,
LF, 0xFF, paths without a leading slash, a ``path`` that disagrees with ``raw_path``). The
view is set by hand from a config and observations, so no checker is needed; with
``other_paths: redirect`` the catch-all answers without sending a request anywhere.
Whatever arrives: no exception, no 5xx, and any Location is a member URL followed by ``/``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from router.redirect import RedirectApp
from tests.support.inprocess import MEMBERS, close_router, router_with_view


@pytest.fixture(scope="module")
def app(redis_url: str) -> Iterator[RedirectApp]:
    router = router_with_view(redis_url, other_paths="redirect", redirects={"/badge.svg": BADGE})
    yield router
    close_router(router)


BADGE = "https://static.example.org/badge.svg"
FRAGMENTS = [
    *(b"/", b"//", b"/build/", b"build", b"gh/", b"org/repo/HEAD", b"why", b"status"),
    *(b"%2F", b"%2f", b"%2e%2e", b"..", b".", b"\\", b"%5C", b"@", b"://", b"http", b"https"),
    *(b"evil.example", b"?", b"#", b"%0d%0a", b"\r\n", b"\r", b"\n", b"\x00", b"\xff\xfe"),
    *(b" ", b"\t", b":", b";", b'"', b"%", b"%ff", b"%00", b"\xc3\xa9", b"=", b"&", b"path="),
    *(url.encode() for url in MEMBERS.values()),
]
fragmented = st.lists(st.sampled_from(FRAGMENTS), max_size=12).map(b"".join)
printable = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)
hostile_bytes = st.one_of(fragmented, printable.map(str.encode), st.binary(max_size=80))
raw_paths = st.one_of(
    hostile_bytes,
    hostile_bytes.map(lambda b: b"/build/gh/" + b),
    fragmented.map(lambda b: b"/build/" + b),
    hostile_bytes.map(lambda b: b"http://evil.example/build/" + b),
    st.sampled_from([b"/why", b"/status", b"/status.json", b"/health", b"/active_hosts"]),
    st.sampled_from([b"/metrics", b"/", b"/about", b"//evil.example", b"/\\evil.example"]),
    st.sampled_from([b"/badge.svg", b"/badge.svg/", b"/Badge.svg", b"/badge.svg%0a"]),
)
cookie_hosts = st.one_of(
    st.sampled_from([*MEMBERS.values(), "https://evil.example", "javascript:alert(1)"]),
    st.sampled_from([f"{u}/../.." for u in MEMBERS.values()] + [f'"{MEMBERS["beta"]}"']),
    st.text(max_size=20),
).map(lambda s: s.encode("utf-8", "surrogatepass"))
cookies = st.tuples(
    st.lists(st.sampled_from([b"a=1", b'b="', b"c", b";", b"=", b"host=", b"\\"]), max_size=4),
    cookie_hosts,
    hostile_bytes,
).map(lambda t: b"; ".join(t[0]) + b"; host=" + t[1] + t[2])
header_names = st.one_of(
    st.sampled_from(
        [b"cookie", b"host", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded", b"accept"]
    ),
    st.sampled_from([b"content-type", b"x-forwarded-for", b"connection", b"x-original-url"]),
    st.binary(min_size=1, max_size=12).map(bytes.lower).filter(lambda n: n != b"content-length"),
)
headers = st.lists(
    st.one_of(
        st.tuples(st.just(b"cookie"), cookies),
        st.tuples(header_names, hostile_bytes),
        # Every HTTP/1.1 server (h11, httptools, hyper) rejects a Content-Length that is not digits
        # with 400 before the app runs; the metrics middleware relies on that (int(...)).
        st.tuples(st.just(b"content-length"), st.integers(0, 10**6).map(b"%d".__mod__)),
    ),
    max_size=6,
)
methods = st.one_of(
    st.just("GET"),
    st.just("GET"),
    st.just("HEAD"),
    st.sampled_from(["POST", "OPTIONS", "CONNECT", "get"]),
    st.text(min_size=1, max_size=8),
)


@st.composite
def scopes(draw: st.DrawFn) -> dict[str, Any]:
    raw_path = draw(raw_paths)
    how = draw(st.sampled_from(["decoded", "decoded", "text", "no-raw-path", "raw-path-none"]))
    path = unquote(raw_path.decode("latin-1")) if how != "text" else draw(st.text(max_size=40))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": draw(st.sampled_from(["1.1", "1.0", "2"])),
        "method": draw(methods),
        "scheme": draw(st.sampled_from(["http", "https"])),
        "path": path,
        "raw_path": None if how == "raw-path-none" else raw_path,
        "query_string": draw(st.one_of(hostile_bytes, hostile_bytes.map(b"path=".__add__))),
        "root_path": "",
        "headers": draw(headers),
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    if how == "no-raw-path":
        del scope["raw_path"]
    return scope


async def _call(app: RedirectApp, scope: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    requests = iter([{"type": "http.request", "body": b"", "more_body": False}])

    async def receive() -> dict[str, Any]:
        return next(requests, {"type": "http.disconnect"})

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    return messages


def _printable_ascii(data: bytes) -> bool:
    return all(0x21 <= b <= 0x7E for b in data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scope=scopes())
def test_any_request_gets_a_non_5xx_answer_on_the_federation(
    app: RedirectApp, scope: dict[str, Any]
) -> None:
    messages = asyncio.run(_call(app, scope))
    start = messages[0]
    assert start["type"] == "http.response.start", messages
    assert start["status"] < 500, (start, messages[1:])
    event(f"status {start['status']}")
    member_prefixes = tuple(f"{url}/".encode() for url in MEMBERS.values())
    for name, value in start["headers"]:
        if name.lower() == b"location":
            assert _printable_ascii(value), value
            assert value.startswith((*member_prefixes, BADGE.encode())), value
        if name.lower() == b"set-cookie":
            assert value.startswith(tuple(b"host=" + p[:-1] + b";" for p in member_prefixes))
    assert all(m["type"] == "http.response.body" for m in messages[1:]), messages
