"""The router process's app: the redirect hot path in front of a FastAPI app for the rest.

FastAPI serves what is not hot: ``/health``, ``/livez``, ``/active_hosts``,
``/status.json``, ``/status``, ``/history.json``, ``/why``, ``/metrics``, the fixed
redirects of the config's ``redirects`` (README badges) and the site's other pages
(proxied to the home member, redirected, or 404 as configured). Its handlers are plain
functions of the request, reading this router's parts from ``request.app.state.router``
(a :class:`Router`); :func:`create_app` assembles them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any, cast

import httpx
from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from router.history import history_doc, record_launches
from router.metrics import RouterMetrics
from router.pages import render_status_page
from router.proxy import proxy, target_url
from router.redirect import RedirectApp
from router.routes import printable_ascii
from router.sent import count_routers
from router.snapshot import SnapshotHolder
from router.timeline import PicturesCache
from shared.config import HistoryConfig
from shared.explain import explain
from shared.history import SINCE_PATTERN
from shared.status import RECENT_WINDOW, LaunchCounts, launch_counts, status_document
from shared.store import DEFAULT_PREFIX, Snapshot, Store, connect
from shared.timeline import DEFAULT_WINDOW, WINDOWS

#: How long a router waits for its first view before it serves without one.
FIRST_READ_SECONDS = 5.0
#: How long the lifespan shutdown waits for its background tasks once cancelled.
TASK_STOP_SECONDS = 5.0


@dataclass
class Router:
    """One router replica's parts, as its handlers and its lifespan reach them."""

    holder: SnapshotHolder
    redirect: RedirectApp
    metrics: RouterMetrics
    proxy_client: httpx.AsyncClient
    store: Store | None  # None: a view given by hand, nothing read or written
    owns_store: bool  # opened by create_app, so closed with the app
    pictures: PicturesCache | None

    def history_cap(self) -> int:
        view = self.holder.view
        return view.config.history.max_entries if view else HistoryConfig().max_entries


def _router(request: Request) -> Router:
    return cast(Router, request.app.state.router)


def fixed_location(url: str, request: Request) -> str:
    """A fixed redirect's target, with the request's query carried over (as the replaced
    redirector's did) when it is printable ASCII."""
    query: bytes = request.scope.get("query_string", b"")
    if not query or not printable_ascii(query):
        return url
    return url + ("&" if "?" in url else "?") + query.decode("ascii")


async def health(request: Request) -> JSONResponse:
    """200 while this router's view of the federation is fresh, else 503 with the reason."""
    ok, body = _router(request).holder.health()
    body["status"] = "ok" if ok else "unhealthy"
    return JSONResponse(body, status_code=200 if ok else 503)


async def livez(request: Request) -> JSONResponse:
    """200 whenever this router can answer redirects (it has a view, however old).

    For load balancers: a Redis outage makes /health 503 on every replica at once, yet
    they all keep redirecting from their last view, so do not pull them for it."""
    holder = _router(request).holder
    if holder.view is None:
        return JSONResponse({"status": "no view yet"}, status_code=503)
    return JSONResponse({"status": "serving", "view_age_seconds": holder.view_age()})


async def active_hosts(request: Request) -> JSONResponse:
    """Eligible members only, shaped as the replaced redirector answered."""
    view = _router(request).holder.view
    hosts: dict[str, Any] = {}
    if view is not None:
        for m in view.eligible:
            cfg = view.config.members[m.name]
            hosts[m.name] = {
                "url": cfg.url,
                "weight": cfg.weight,
                "prime": cfg.prime,
                "health": cfg.health,
                "versions": cfg.versions,
            }
    return JSONResponse({"active_hosts": hosts})


def _status_doc(router: Router, launches: LaunchCounts | None = None) -> tuple[int, dict[str, Any]]:
    """The evaluated view with this router's health and redirect counts (or 503 and why),
    its ages measured now from the latest records read."""
    holder = router.holder
    view = holder.view
    if view is None:
        _ok, body = holder.health()
        return 503, {"error": body["reason"], "router": body}
    health_body = holder.health()[1]
    counts = router.redirect.counts
    recent = router.redirect.load.recent(view) if view.config.load_balancer == "bounded" else None
    return 200, status_document(
        view,
        health_body,
        counts,
        now=holder.clock(),
        records=holder.snapshot,
        recent=recent,
        launches=launches,
    )


async def _recent_launches(router: Router) -> LaunchCounts | None:
    """Every router's launches over the recent window, from the history /status draws its
    share chart from (and the same cache): nothing on the redirect path."""
    view = router.holder.view
    if router.pictures is None or view is None:
        return None
    members, now = view.config.members, router.holder.clock()
    return launch_counts(await router.pictures.get(RECENT_WINDOW, members, now))


async def status_json(request: Request) -> JSONResponse:
    """The full evaluated view this router serves from."""
    router = _router(request)
    status_code, doc = _status_doc(router, await _recent_launches(router))
    return JSONResponse(doc, status_code=status_code)


async def status_page(
    request: Request,
    window: Annotated[str, Query(pattern=f"^(?:{'|'.join(WINDOWS)})$")] = DEFAULT_WINDOW,
) -> HTMLResponse:
    """The same document as /status.json, rendered for people, with each member's
    timeline over ``window`` (1h, 6h, 24h or 7d) drawn from history."""
    router = _router(request)
    status_code, doc = _status_doc(router)
    pictures = None
    if "members" in doc and router.pictures is not None:
        pictures = await router.pictures.get(window, doc["members"], router.holder.clock())
    return HTMLResponse(render_status_page(doc, pictures), status_code=status_code)


async def history(
    request: Request,
    since: Annotated[str | None, Query(pattern=SINCE_PATTERN)] = None,
    member: str | None = None,
) -> JSONResponse:
    """Transitions, drains, observations and launch counts since ``since`` (a duration
    such as 6h, or a UNIX time; default 24h), for one ``member`` or all."""
    router = _router(request)
    if router.store is None:
        return JSONResponse({"error": "this router reads no store"}, status_code=503)
    status_code, doc = await history_doc(router.store, since, member, router.holder.clock())
    return JSONResponse(doc, status_code=status_code)


async def why(path: str, request: Request) -> JSONResponse:
    """Explain where a launch of ``path`` goes now: candidates, reasons, scores, pick (with
    ``bounded``, judged against this router's recent launches)."""
    router = _router(request)
    view = router.holder.view
    if view is None:
        return JSONResponse({"error": router.holder.health()[1]["reason"]}, status_code=503)
    bounded = view.config.load_balancer == "bounded"
    launches = router.redirect.load.current(view) if bounded else None
    return JSONResponse(explain(view, path, request.cookies.get("host"), launches=launches))


async def metrics(request: Request) -> Response:
    return await _router(request).metrics.scrape()


async def other_page(request: Request, path: str) -> Response:
    """A fixed redirect, else the home member's page (proxied or redirected) or 404."""
    router = _router(request)
    view = router.holder.view
    fixed = view.config.redirects.get(request.scope["path"]) if view else None
    if fixed is not None:  # the router's own answer, before any member is asked
        return RedirectResponse(fixed_location(fixed.url, request), status_code=fixed.status)
    home = view.home if view else None
    if view is None or view.config.other_paths == "404":
        return Response("not found\n", status_code=404, media_type="text/plain")
    if home is None:
        return Response("no member can serve this page now\n", 503, media_type="text/plain")
    target = target_url(home.url, request)
    if target is None:
        return Response("bad request path\n", status_code=400, media_type="text/plain")
    if view.config.other_paths == "redirect":
        return RedirectResponse(target, status_code=302)
    return await proxy(router.proxy_client, home.name, target, request)


_HISTORY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "``since`` is neither a duration nor a UNIX time"},
    503: {"description": "the store cannot be read"},
}
#: Every route but the launches (router.redirect answers those before FastAPI sees them);
#: the catch-all comes last.
ROUTES: list[BaseRoute] = [
    APIRoute("/health", health, methods=["GET"]),
    APIRoute("/livez", livez, methods=["GET"]),
    APIRoute("/active_hosts", active_hosts, methods=["GET"]),
    APIRoute("/status.json", status_json, methods=["GET"]),
    APIRoute("/status", status_page, methods=["GET"], response_class=HTMLResponse),
    APIRoute("/history.json", history, methods=["GET"], responses=_HISTORY_ERRORS),
    APIRoute("/why", why, methods=["GET"]),
    APIRoute("/metrics", metrics, methods=["GET"], include_in_schema=False),
    APIRoute("/{path:path}", other_page, methods=["GET", "HEAD"], include_in_schema=False),
]


@contextlib.asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[None]:
    """Sync the view and keep launch counts while serving; close what create_app opened."""
    router: Router = api.state.router
    tasks = [router.redirect.load.run()]  # launches leave the bounded window on time
    if router.store is not None:
        store = router.store
        await router.holder.first_read(FIRST_READ_SECONDS)
        tasks.append(router.holder.run())
        counts = router.redirect
        tasks.append(record_launches(store, lambda: counts.counts, router.history_cap))
        tasks.append(count_routers(store, router.holder.launches))
    if router.metrics.shared is not None:  # a worker of several: share its counts
        tasks.append(router.metrics.shared.run())
    running = [asyncio.create_task(task) for task in tasks]
    try:
        yield
    finally:
        for task in running:
            task.cancel()
        if running:  # bounded: a task that swallows its cancellation must not keep us up
            await asyncio.wait(running, timeout=TASK_STOP_SECONDS)
        await router.proxy_client.aclose()
        if router.owns_store and router.store is not None:
            await router.store.client.aclose()


def create_app(
    store: Store | None = None,
    *,
    redis_url: str | None = None,
    key_prefix: str = DEFAULT_PREFIX,
    snapshot: Snapshot | None = None,
    clock: Callable[[], float] = time.time,
    poll_interval: float = 0.5,
) -> RedirectApp:
    """One router replica; the returned object is the ASGI app.

    It reads ``store`` (the caller's, left open), or a store of its own on ``redis_url``
    (closed with the app), and serves ``snapshot`` until its first read; with neither
    store nor URL it serves ``snapshot`` alone. ``clock`` is the time it judges by."""
    owns_store = store is None and redis_url is not None
    if store is None and redis_url is not None:
        store = Store(connect(redis_url), key_prefix)
    holder = SnapshotHolder(store, poll_interval=poll_interval, clock=clock)
    if snapshot is not None:
        holder.load(snapshot)
    # No redirect_slashes: its redirect names the client's Host header, and a path the
    # catch-all misses (an encoded newline: /x%0A/) would make it an open redirect.
    api = FastAPI(
        title="fedredirect router",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
    )
    api.router.routes.extend(ROUTES)  # after /openapi.json: the catch-all comes last
    redirect = RedirectApp(holder, api, clock)
    api.state.router = Router(
        holder=holder,
        redirect=redirect,
        metrics=RouterMetrics(api, holder, redirect),
        proxy_client=httpx.AsyncClient(follow_redirects=False, timeout=30.0),
        store=store,
        owns_store=owns_store,
        pictures=PicturesCache(store) if store is not None else None,
    )
    return redirect
