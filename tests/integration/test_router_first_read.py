"""A router reads the store once before it serves (router/app.py's lifespan): a new replica,
or a worker restarted beside others, answers its first launch with a 307, never with the
503 of a router that has no view yet. A store it cannot read delays it by a bounded time,
then it serves its 503 with the reason and keeps trying."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator

import pytest

from router.app import create_app
from shared.config import parse_config
from shared.records import CheckerHeartbeat, HealthObservation, MemberObservation
from shared.store import Store, connect

pytestmark = pytest.mark.anyio
MEMBERS = {"alpha": "http://127.0.0.1:9001", "beta": "http://127.0.0.1:9002"}


@pytest.fixture
async def published(redis_url: str, key_prefix: str) -> AsyncIterator[Store]:
    """The store as a checker leaves it: two healthy members of one version, a heartbeat."""
    store = Store(connect(redis_url), key_prefix)
    config = parse_config({"members": {n: {"url": url, "weight": 1} for n, url in MEMBERS.items()}})
    now = time.time()
    observations = {
        n: MemberObservation(
            n,
            now,
            HealthObservation("ok", (), 1, 100, now),
            versions={"binderhub": "1"},
            versions_at=now,
        )
        for n in MEMBERS
    }
    fence = await store.hold_lease("checker", 30)
    assert fence is not None
    assert await store.publish(config, observations, CheckerHeartbeat("checker", now, fence=fence))
    yield store
    await store.client.aclose()


async def launch(app: object) -> int:
    """The status of one launch, called as the server calls the app."""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/build/gh/org/repo/HEAD",
        "raw_path": b"/build/gh/org/repo/HEAD",
        "query_string": b"",
        "headers": [(b"host", b"fed.example.org")],
    }
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app(scope, receive, send)  # type: ignore[operator]
    status = sent[0]["status"]
    assert isinstance(status, int)
    return status


async def test_the_first_launch_after_startup_is_redirected(
    published: Store, redis_url: str, key_prefix: str
) -> None:
    app = create_app(redis_url=redis_url, key_prefix=key_prefix)
    assert await launch(app) == 503  # before its lifespan: no view
    async with app.fallthrough.router.lifespan_context(app.fallthrough):
        assert await launch(app) == 307
        healthy, body = app.holder.health()
        assert healthy, body


async def test_an_unreachable_store_is_a_503_that_says_why() -> None:
    app = create_app(redis_url="redis://127.0.0.1:1/0", key_prefix="nowhere")
    async with app.fallthrough.router.lifespan_context(app.fallthrough):
        assert await launch(app) == 503
        healthy, body = app.holder.health()
        assert not healthy
        assert "Connect" in body["reason"] or "refused" in body["reason"], body


async def test_a_store_that_never_answers_delays_serving_by_the_bound_then_says_why() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never answers
        port = silent.getsockname()[1]
        app = create_app(redis_url=f"redis://127.0.0.1:{port}/0", key_prefix="silent")
        async with app.fallthrough.router.lifespan_context(app.fallthrough):
            assert await launch(app) == 503
            healthy, body = app.holder.health()
            assert not healthy
            assert "Timeout" in body["reason"] or "did not answer" in body["reason"], body
