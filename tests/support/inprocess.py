"""A router app built in-process with a view set by hand: no checker, no Redis reads."""

from __future__ import annotations

import asyncio
from typing import Any

from router.app import create_app
from router.redirect import RedirectApp
from shared.config import parse_config
from shared.records import HealthObservation, MemberObservation
from shared.store import Snapshot, Store, connect

NOW = 1_700_000_000.0
MEMBERS = {
    "alpha": "https://alpha.example.org",
    "beta": "https://beta.example.org",
    "gamma": "http://127.0.0.1:9",  # never contacted unless other_paths is "proxy"
}
VERSIONS = {"binderhub": "1.0", "builder": "r2d:1"}


def _observation(name: str, full: bool = False) -> MemberObservation:
    health = HealthObservation("ok", (), 100 if full else 10, 100, NOW)
    return MemberObservation(
        member=name,
        checked_at=NOW,
        health=health,
        versions=dict(VERSIONS),
        versions_at=NOW,
    )


def router_with_view(redis_url: str | None, *, full: bool = False, **settings: Any) -> RedirectApp:
    """A router serving a snapshot given by hand, every member of ``MEMBERS`` eligible (or
    every one full, with ``full``), judged at ``NOW``.

    Its lifespan is never run, so it never syncs from the store at ``redis_url`` (a page may
    still read it, e.g. history; None: no store at all); ``close_router`` it when done.
    ``settings`` go into the config (e.g. ``other_paths="redirect"``).
    """
    config = parse_config(
        {
            "check": {"period": 300},
            **settings,
            "members": {
                name: {"url": url, "weight": 10, "prime": name == "alpha"}
                for name, url in MEMBERS.items()
            },
        }
    )
    snapshot = Snapshot(config, {n: _observation(n, full) for n in MEMBERS}, None)
    store = None if redis_url is None else Store(connect(redis_url), "inprocess")
    app = create_app(store, snapshot=snapshot, clock=lambda: NOW)
    assert app.holder.view is not None
    return app


def close_router(app: RedirectApp) -> None:
    """Close ``app``'s Redis client, if it has one. A test client may have run each request
    in an event loop of its own; a connection made in a loop that is closed by now cannot be
    closed from another (its socket goes with the client), which is no failure of the
    router."""
    store = app.holder.store
    if store is None:
        return
    try:
        asyncio.run(store.client.aclose())
    except RuntimeError as exc:
        if "Event loop is closed" not in str(exc):
            raise


def without_lifespan(app: Any) -> Any:
    """``app`` with lifespan events answered here: test clients that send them (one startup
    and shutdown per request) must not start the store sync or close the app's clients."""

    async def wrapper(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    return wrapper


def launch_answer(
    app: RedirectApp, path: bytes, headers: list[tuple[bytes, bytes]], https: bool = False
) -> dict[str, Any]:
    """The router's answer to ``GET path`` with ``headers``, called as a server calls the
    app: its status and headers (names as bytes)."""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https" if https else "http",
        "path": path.decode(),
        "raw_path": path,
        "query_string": b"",
        "headers": headers,
    }
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    asyncio.run(app(scope, receive, send))
    return {"status": sent[0]["status"], **dict(sent[0]["headers"])}
