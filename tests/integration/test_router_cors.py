"""Every /build/ answer of the router allows any origin, as BinderHub's build API does, so
a launch page on another site sees the real status instead of a network error; a CORS
preflight of a launch is answered by the router itself.

The router is built in-process with a hand-set view (no checker), and called as ASGI with
raw bytes, so each status can be produced exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from router.app import create_app
from router.redirect import RedirectApp
from tests.support.inprocess import close_router, router_with_view

LAUNCH = b"/build/gh/org/repo/HEAD"
ANY_ORIGIN = (b"access-control-allow-origin", b"*")


@pytest.fixture(scope="module")
def app(redis_url: str) -> Iterator[RedirectApp]:
    router = router_with_view(redis_url, fallback="none")
    yield router
    close_router(router)


def call(app: RedirectApp, method: str, target: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    """One request as an HTTP server would pass it on: (status, headers)."""
    path, _, query = target.partition(b"?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path.decode("latin-1"),
        "raw_path": path,
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"fed.example"), (b"origin", b"https://site.example")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    asyncio.run(app(scope, receive, send))
    return messages[0]["status"], messages[0]["headers"]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(
    ("target", "status"),
    [
        (LAUNCH, 307),
        (LAUNCH + b"?urlpath=lab", 307),
        (b"http://evil.example" + LAUNCH, 307),  # absolute form: served by its path
        (b"/build/gh/org/\xc3\xa9/HEAD", 400),  # not printable ASCII
        (b"/build/gh/org/" + b"a" * 9000, 414),
    ],
)
def test_every_launch_answer_allows_any_origin(
    app: RedirectApp, method: str, target: bytes, status: int
) -> None:
    got, headers = call(app, method, target)
    assert got == status
    assert headers.count(ANY_ORIGIN) == 1


def test_503_without_a_view_allows_any_origin() -> None:
    status, headers = call(create_app(), "GET", LAUNCH)  # no store, no snapshot: no view
    assert status == 503
    assert ANY_ORIGIN in headers


def test_503_when_nobody_can_take_launches_allows_any_origin() -> None:
    router = router_with_view(None, full=True, fallback="none")
    try:
        status, headers = call(router, "GET", LAUNCH)
    finally:
        close_router(router)
    assert status == 503
    assert ANY_ORIGIN in headers and (b"retry-after", b"30") in headers


@pytest.mark.parametrize("target", [LAUNCH, b"/build/x", b"http://evil.example" + LAUNCH])
def test_preflight_of_a_launch_is_answered_here(app: RedirectApp, target: bytes) -> None:
    before = sum(app.counts.values())
    status, headers = call(app, "OPTIONS", target)
    assert status == 200
    assert ANY_ORIGIN in headers
    assert (b"access-control-allow-headers", b"cache-control") in headers
    names = {name for name, _ in headers}
    assert not names & {b"location", b"set-cookie"}  # a preflight is not a launch
    assert sum(app.counts.values()) == before


def test_other_pages_get_no_cors_and_no_preflight(app: RedirectApp) -> None:
    status, headers = call(app, "OPTIONS", b"/status")
    assert status == 405
    assert ANY_ORIGIN not in headers
    status, headers = call(app, "GET", b"/why?path=/build/gh/org/repo/HEAD")
    assert status == 200
    assert ANY_ORIGIN not in headers
