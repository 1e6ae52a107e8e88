"""The router process: the redirect hot path in front of a FastAPI app for the rest.

FastAPI serves what is not hot: ``/health``, ``/livez``, ``/active_hosts``,
``/status.json``, ``/status``, ``/history.json``, ``/why``, ``/metrics``, the fixed
redirects of the config's ``redirects`` (README badges) and the site's other pages
(proxied to the home member, redirected, or 404 as configured).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from router.history import history_doc, record_launches
from router.metrics import RouterMetrics
from router.pages import render_status_page
from router.proxy import proxy, target_url
from router.redirect import RedirectApp, printable_ascii
from router.snapshot import SnapshotHolder
from router.timeline import PicturesCache
from shared.config import HistoryConfig
from shared.explain import explain
from shared.history import SINCE_PATTERN
from shared.status import status_document
from shared.store import Store
from shared.timeline import DEFAULT_WINDOW, WINDOWS


def fixed_location(url: str, request: Request) -> str:
    """A fixed redirect's target, with the request's query carried over (as the replaced
    redirector's did) when it is printable ASCII."""
    query: bytes = request.scope.get("query_string", b"")
    if not query or not printable_ascii(query):
        return url
    return url + ("&" if "?" in url else "?") + query.decode("ascii")


def create_app(store: Store, *, poll_interval: float = 0.5) -> RedirectApp:
    """Build one router replica reading ``store``; the returned object is the ASGI app."""
    holder = SnapshotHolder(store, poll_interval=poll_interval)
    proxy_client = httpx.AsyncClient(follow_redirects=False, timeout=30.0)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(holder.run())]
        tasks.append(asyncio.create_task(record_launches(store, lambda: redirect.counts, _cap)))
        if metrics.shared is not None:  # a worker of several: share its redirect counts
            tasks.append(asyncio.create_task(metrics.shared.run()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await proxy_client.aclose()
            await store.client.aclose()

    # No redirect_slashes: its redirect names the client's Host header, and a path the
    # catch-all misses (an encoded newline: /x%0A/) would make it an open redirect.
    api = FastAPI(
        title="fedredirect router",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
    )
    redirect = RedirectApp(holder, api)
    api.state.holder = holder
    api.state.redirect = redirect
    metrics = RouterMetrics(api, holder, redirect)

    @api.get("/health")
    async def health() -> JSONResponse:
        """200 while this router's view of the federation is fresh, else 503 with the reason."""
        ok, body = holder.health()
        body["status"] = "ok" if ok else "unhealthy"
        return JSONResponse(body, status_code=200 if ok else 503)

    @api.get("/livez")
    async def livez() -> JSONResponse:
        """200 whenever this router can answer redirects (it has a view, however old).

        For load balancers: a Redis outage makes /health 503 on every replica at once, yet
        they all keep redirecting from their last view, so do not pull them for it."""
        if holder.view is None:
            return JSONResponse({"status": "no view yet"}, status_code=503)
        return JSONResponse({"status": "serving", "view_age_seconds": holder.view_age()})

    @api.get("/active_hosts")
    async def active_hosts() -> JSONResponse:
        """Eligible members only, shaped as the replaced redirector answered."""
        view = holder.view
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

    def _status_doc() -> tuple[int, dict[str, Any]]:
        """The evaluated view with this router's health and redirect counts (or 503 and why)."""
        view = holder.view
        if view is None:
            _ok, body = holder.health()
            return 503, {"error": body["reason"], "router": body}
        doc = status_document(
            view, holder.health()[1], redirect.counts, now=holder.clock(), records=holder.snapshot
        )
        return 200, doc

    @api.get("/status.json")
    async def status_json() -> JSONResponse:
        """The full evaluated view this router serves from."""
        status_code, doc = _status_doc()
        return JSONResponse(doc, status_code=status_code)

    pictures_cache = PicturesCache(store)

    @api.get("/status", response_class=HTMLResponse)
    async def status_page(
        window: Annotated[str, Query(pattern=f"^(?:{'|'.join(WINDOWS)})$")] = DEFAULT_WINDOW,
    ) -> HTMLResponse:
        """The same document as /status.json, rendered for people, with each member's
        timeline over ``window`` (1h, 6h, 24h or 7d) drawn from history."""
        status_code, doc = _status_doc()
        pictures = None
        if "members" in doc:
            pictures = await pictures_cache.get(window, doc["members"], time.time())
        return HTMLResponse(render_status_page(doc, pictures), status_code=status_code)

    def _cap() -> int:
        view = holder.view
        return view.config.history.max_entries if view else HistoryConfig().max_entries

    @api.get(
        "/history.json",
        responses={
            400: {"description": "``since`` is neither a duration nor a UNIX time"},
            503: {"description": "the store cannot be read"},
        },
    )
    async def history(
        since: Annotated[str | None, Query(pattern=SINCE_PATTERN)] = None,
        member: str | None = None,
    ) -> JSONResponse:
        """Transitions, drains, observations and launch counts since ``since`` (a duration
        such as 6h, or a UNIX time; default 24h), for one ``member`` or all."""
        status_code, doc = await history_doc(store, since, member, time.time())
        return JSONResponse(doc, status_code=status_code)

    @api.get("/why")
    async def why(path: str, request: Request) -> JSONResponse:
        """Explain where a launch of ``path`` goes now: candidates, reasons, scores, pick."""
        view = holder.view
        if view is None:
            return JSONResponse({"error": holder.health()[1]["reason"]}, status_code=503)
        return JSONResponse(explain(view, path, request.cookies.get("host")))

    @api.api_route("/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def other_page(request: Request, path: str) -> Response:
        view = holder.view
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
        return await proxy(proxy_client, home.name, target, request)

    return redirect
