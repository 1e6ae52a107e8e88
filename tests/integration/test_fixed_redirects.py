"""Fixed redirects (config key ``redirects``): answered by the router itself, never a member."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from router.redirect import RedirectApp
from tests.support.inprocess import MEMBERS, close_router, router_with_view, without_lifespan

STATIC = "https://static.mybinder.org"
REDIRECTS = {
    "/badge_logo.svg": f"{STATIC}/badge_logo.svg",
    "/badge.svg": f"{STATIC}/badge.svg",
    "/assets/images/badge.svg": {"url": f"{STATIC}/badge.svg", "status": 302},
    "/moved": {"url": "https://elsewhere.example.org/page?from=old", "status": 308},
}


@pytest.fixture(scope="module")
def app(redis_url: str) -> Iterator[RedirectApp]:
    # other_paths "redirect": any page that is not a fixed redirect goes to the home member.
    router = router_with_view(redis_url, other_paths="redirect", redirects=REDIRECTS)
    yield router
    close_router(router)


def get(app: RedirectApp, path: str, method: str = "GET") -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=without_lifespan(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
            return await client.request(method, path)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("path", "status", "location"),
    [
        ("/badge_logo.svg", 301, f"{STATIC}/badge_logo.svg"),
        ("/badge.svg", 301, f"{STATIC}/badge.svg"),
        ("/assets/images/badge.svg", 302, f"{STATIC}/badge.svg"),
        ("/badge.svg?style=flat", 301, f"{STATIC}/badge.svg?style=flat"),
        ("/moved?x=1", 308, "https://elsewhere.example.org/page?from=old&x=1"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_fixed_paths_redirect_to_their_target(
    app: RedirectApp, path: str, status: int, location: str, method: str
) -> None:
    response = get(app, path, method)
    assert response.status_code == status
    assert response.headers["location"] == location


@pytest.mark.parametrize("path", ["/badge.svg/", "/Badge.svg", "/badge.svgx", "/assets/badge.svg"])
def test_only_the_exact_path_is_fixed(app: RedirectApp, path: str) -> None:
    response = get(app, path)
    assert response.status_code == 302  # other_paths: redirect to the home member
    assert response.headers["location"] == MEMBERS["alpha"] + path


def test_launches_are_unaffected(app: RedirectApp) -> None:
    response = get(app, "/build/gh/org/repo/HEAD")
    assert response.status_code == 307
    assert response.headers["location"].startswith(tuple(MEMBERS.values()))
