"""The simulated member's side of a launch: BinderHub's build API, its launch page (drawn
by ``fedredirect.launchpage``), and the user servers a launch ends at.

``GET /build/<provider>/<spec>`` streams ``data: {json}`` events as BinderHub does: for an
image the member has not built yet ``waiting``, ``fetching``, ``building``, ``built``; for
one it has, only ``built`` ("Found built image"); then ``launching`` and ``ready``, whose
fields (``url``, ``token``, ``image``, ``repo_url``, ``binder_launch_host``,
``binder_request``, ``binder_persistent_request``, ``binder_ref_url``) are those a real
client reads. Like a BinderHub with ``cors_allow_origin: "*"`` it allows any origin and
answers preflights, so a page on another site (or the router's) can follow a redirect here.

Each launch observes BinderHub's metrics where BinderHub does (``fedredirect.launchmetrics``,
served at ``/metrics``), and ``launch_failure_share`` of the launches fail after
``launching`` as BinderHub's do when JupyterHub cannot start the server: a retry event per
attempt, then ``{"phase": "failed", "status_code": 500, "message": "Failed to launch
image ..."}``. With a ``pod_lifetime``, a launch that reaches ``ready`` starts a user pod that
runs that long, so a burst of launches fills the member up to its quota as on BinderHub.

Build tokens work as in BinderHub (``fedredirect.buildtoken``): the ``/v2/`` page carries
one in ``window.pageConfig.buildToken``; a launch with a bad one, or one minted for another
origin, is refused with ``403 Invalid build token``; a launch without one is allowed but
counts against the client address's rate limit (``429`` once spent).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from fedredirect import buildtoken
from fedredirect.launchmetrics import LaunchMetrics
from fedredirect.launchpage import render_launch_page
from fedredirect.memberstate import MemberSimState, add_pod, is_full, launch_fails

log = logging.getLogger("fedredirect.member")

#: Providers whose spec is ``<repo>/<ref>``, with the URL of the repository and of a ref.
_GIT_PROVIDERS = {
    "gh": ("https://github.com/{repo}", "{repo_url}/tree/{sha}"),
    "gl": ("https://gitlab.com/{repo}", "{repo_url}/-/tree/{sha}"),
    "gist": ("https://gist.github.com/{repo}", "{repo_url}/{sha}"),
    "git": ("{repo}", "{repo_url}"),
}
#: Providers whose spec is a DOI (or a record id) and has no ref.
_DOI_PROVIDERS = frozenset({"zenodo", "figshare", "hydroshare", "dataverse"})
#: Each provider's ``name`` in BinderHub: the ``provider`` label of its metrics.
PROVIDER_NAMES = {
    "gh": "GitHub",
    "gl": "GitLab",
    "gist": "Gist",
    "git": "Git",
    "zenodo": "Zenodo",
    "figshare": "Figshare",
    "hydroshare": "Hydroshare",
    "dataverse": "Dataverse",
}
#: What a BinderHub with ``cors_allow_origin: "*"`` sends on its build API. The member's
#: name is exposed too, so a launch page can say which member served it.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "cache-control",
    "Access-Control-Expose-Headers": "X-Fedredirect-Member",
}
#: BinderHub keeps the stream open after ``ready``: a client that sees it close first may
#: reconnect (a new launch) or report "closed unexpectedly". A client disconnecting ends it.
READY_LINGER = 60.0
#: User servers remembered per member, so the newest launches' links keep working.
MAX_SERVERS = 1000
#: Attempts at starting a server before a launch fails: BinderHub's ``Launcher.retries``.
LAUNCH_ATTEMPTS = 4


class Repo:
    """What BinderHub's repo provider would resolve for one ``<provider>/<spec>``."""

    def __init__(self, provider: str, spec: str) -> None:
        self.provider, self.spec = provider, spec
        # A stand-in for the resolved commit: stable, so a second launch finds the image.
        self.sha = hashlib.sha1(f"{provider}/{spec}".encode()).hexdigest()
        if provider in _DOI_PROVIDERS:
            self.name = unquote(spec)
            self.url = self.ref_url = f"https://doi.org/{self.name}"
            self.persistent_spec = spec
        else:
            repo, _, _ref = spec.rpartition("/")
            self.name = unquote(repo or spec)
            repo_pattern, ref_pattern = _GIT_PROVIDERS[provider]
            self.url = repo_pattern.format(repo=self.name)
            self.ref_url = ref_pattern.format(repo_url=self.url, sha=self.sha)
            self.persistent_spec = f"{repo or spec}/{self.sha}"
        # What BinderHub labels this repository's build and launch metrics with.
        self.labels = {"provider": PROVIDER_NAMES[provider], "repo": self.url}
        self.slug = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")[:40] or "repo"

    def image(self, member: str) -> str:
        return f"registry.sim.invalid/{member}/binder-{self.slug}:{self.sha}"


def ready_event(repo: Repo, image: str, base_url: str, server: str, token: str) -> dict[str, Any]:
    """The last event of a launch that started user server ``server``; ``base_url`` is the
    member as the client reached it (ends with "/")."""
    url = f"{base_url}user/{server}/"
    return {
        "phase": "ready",
        "message": f"server running at {url}\n",
        "image": image,
        "repo_url": repo.url,
        "token": token,
        "binder_ref_url": repo.ref_url,
        "binder_launch_host": base_url,
        "binder_request": f"v2/{repo.provider}/{repo.spec}",
        "binder_persistent_request": f"v2/{repo.provider}/{repo.persistent_spec}",
        "url": url,
    }


def _error_event(status: int, message: str) -> dict[str, Any]:
    """The ``failed`` event BinderHub's ``BuildHandler.send_error`` sends for an HTTP error."""
    return {"phase": "failed", "status_code": status, "message": message + "\n"}


class RateLimitExceeded(Exception):
    """A client address has spent its launches without a build token for this period."""


class RateLimiter:
    """BinderHub's RateLimiter: a count per key that resets ``period`` seconds after the
    key's first request (a fixed window, not a sliding one)."""

    def __init__(self) -> None:
        self.limits: dict[str, dict[str, int]] = {}

    def increment(self, key: str, limit: int, period: int, now: float) -> dict[str, int]:
        """Count one request of ``key``: what remains and when it resets, or
        RateLimitExceeded once more than ``limit`` were made in the window."""
        second = int(now)
        self.limits = {k: v for k, v in self.limits.items() if v["reset"] >= second}
        current = self.limits.get(key)
        if current is None:
            current = self.limits[key] = {"remaining": limit, "reset": second + period}
        current["remaining"] -= 1  # on past zero, so excess requests show
        if current["remaining"] < 0:
            raise RateLimitExceeded(key)
        return current


class BuildAPI:
    """The routes of a member's launch path; reads ``state`` on every request."""

    def __init__(self, state: MemberSimState) -> None:
        self.state = state
        self.servers: dict[str, tuple[str, str]] = {}  # user server -> (token, image)
        self.rate_limiter = RateLimiter()  # per process, as in BinderHub
        self.metrics = LaunchMetrics()

    def routes(self) -> list[Route]:
        return [
            Route("/build/{provider}/{spec:path}", self.build, methods=["GET", "OPTIONS"]),
            Route("/v2/{provider}/{spec:path}", self.launch_page),
            Route("/user/{server}/{path:path}", self.user_page),
        ]

    def _headers(self) -> dict[str, str]:
        return {**CORS_HEADERS, "X-Fedredirect-Member": self.state.name}

    async def build(self, request: Request) -> Response:
        """``GET /build/<provider>/<spec>``: the launch as an event stream."""
        headers = {**self._headers(), "Cache-Control": "no-cache"}
        if request.method in ("OPTIONS", "HEAD"):
            media_type = None if request.method == "OPTIONS" else "text/event-stream"
            return Response(headers=headers, media_type=media_type)
        refused = self._refused(request, headers)
        if refused is not None:
            return refused
        provider, spec = request.path_params["provider"], request.path_params["spec"]
        if provider in PROVIDER_NAMES:
            events = self._launch(Repo(provider, spec.rstrip("/")), str(request.base_url))
        else:
            events = self._no_provider(provider)
        stream = self._stream(events)
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)

    def _refused(self, request: Request, headers: dict[str, str]) -> Response | None:
        """BinderHub's checks before a launch starts, in its order: the build token
        (``check_build_token``), then the rate limit of launches without one
        (``check_rate_limit``). Sets the rate-limit headers on ``headers``; None: go on."""
        state = self.state
        audience = _raw_path(request).removeprefix("/build/")
        token = request.query_params.get("build_token")
        if token:
            origin = buildtoken.token_origin(
                request.headers.get("origin"), request.headers.get("host")
            )
            try:
                key = buildtoken.secret_bytes(state.build_token_secret)
                claims = buildtoken.decode(token, key, audience)
            except ValueError as exc:  # InvalidToken is one
                log.warning("Failure to validate build token for %s: %s", audience, exc)
                return _failed(403, "Invalid build token", headers)
            if claims.get("origin") != origin:
                log.warning(
                    "Build token from mismatched origin != %s: %s; Host=%s, Origin=%s",
                    origin,
                    claims,
                    request.headers.get("host"),
                    request.headers.get("origin"),
                )
                if state.build_token_check_origin:
                    return _failed(403, "Invalid build token", headers)
        if token or state.rate_limit == 0:  # a valid token is never rate-limited
            return None
        client = request.client.host if request.client else ""
        try:
            limit = self.rate_limiter.increment(
                client, state.rate_limit, state.rate_limit_period, time.time()
            )
        except RateLimitExceeded:
            message = f"Rate limit exceeded. Try again in {state.rate_limit_period} seconds."
            return _failed(429, message, headers)
        headers["x-ratelimit-remaining"] = str(limit["remaining"])
        headers["x-ratelimit-reset"] = str(limit["reset"])
        headers["x-ratelimit-limit"] = str(state.rate_limit)
        return None

    async def _stream(self, events: AsyncGenerator[dict[str, Any], None]) -> AsyncIterator[bytes]:
        """``events`` as ``data:`` lines; the stream stays open after ``ready``. A client
        that leaves closes ``events``, so what they hold in progress is released."""
        last = None
        async with contextlib.aclosing(events):
            async for event in events:
                last = event["phase"]
                yield f"data: {json.dumps(event)}\n\n".encode()
        if last == "ready":
            await asyncio.sleep(READY_LINGER)

    async def _work(self) -> None:
        """One step of a launch: every event comes ``build_delay`` after the one before."""
        await asyncio.sleep(self.state.build_delay)

    async def _no_provider(self, provider: str) -> AsyncGenerator[dict[str, Any], None]:
        await self._work()
        yield {"phase": "failed", "message": f"No provider found for prefix {provider}\n"}

    async def _launch(self, repo: Repo, base_url: str) -> AsyncGenerator[dict[str, Any], None]:
        """One launch's events as BinderHub's ``BuildHandler.get`` sends them: the image
        built unless it was, then a server started (``_start``). The metrics move where
        BinderHub's do, before the event that shows the step."""
        state, metrics = self.state, self.metrics
        image = repo.image(state.name)
        await self._work()
        if image in state.built:
            yield {
                "phase": "built",
                "imageName": image,
                "message": "Found built image, launching...\n",
            }
        elif is_full(state, time.monotonic()):  # BinderHub checks the quota before a build too
            yield self._over_quota(repo)
            return
        else:
            with metrics.builds_in_progress.track_inprogress():
                started = time.perf_counter()
                yield {"phase": "waiting", "message": "Waiting for build to start...\n"}
                await self._work()
                yield {
                    "phase": "fetching",
                    "message": f"Picked Git content provider.\nCloning {repo.url}\n",
                }
                await self._work()
                yield {"phase": "building", "message": "Using PythonBuildPack builder\n"}
                await self._work()
                metrics.build_time.labels(status="success").observe(time.perf_counter() - started)
                metrics.build_count.labels(status="success", **repo.labels).inc()
                if image not in state.built:
                    state.built.append(image)
                yield {
                    "phase": "built",
                    "imageName": image,
                    "message": "Built image, launching...\n",
                }
        async with contextlib.aclosing(self._start(repo, image, base_url)) as start:
            async for event in start:
                yield event

    async def _start(
        self, repo: Repo, image: str, base_url: str
    ) -> AsyncGenerator[dict[str, Any], None]:
        """BinderHub's ``BuildHandler.launch``: the quota checked, then attempts at a user
        server; all of them fail for the launches ``launch_fails`` picks."""
        state, metrics = self.state, self.metrics
        with metrics.launches_in_progress.track_inprogress():
            await self._work()
            if is_full(state, time.monotonic()):
                yield self._over_quota(repo)
                return
            yield {"phase": "launching", "message": "Launching server...\n"}
            state.launches_at_share += 1
            if not launch_fails(state.launch_failure_share, state.launches_at_share):
                started = time.perf_counter()
                await self._work()
                seconds = time.perf_counter() - started
                metrics.launch_time.labels(status="success", retries=0).observe(seconds)
                metrics.launch_count.labels(status="success", **repo.labels).inc()
                yield self._ready(repo, image, base_url)
                return
            for attempt in range(1, LAUNCH_ATTEMPTS + 1):
                started = time.perf_counter()
                await self._work()
                last = attempt == LAUNCH_ATTEMPTS
                # BinderHub labels the attempts only on a success: -1 on a retry or failure.
                status = "failure" if last else "retry"
                metrics.launch_time.labels(status=status, retries=-1).observe(
                    time.perf_counter() - started
                )
                if not last:
                    message = f"Launch attempt {attempt} failed, retrying...\n"
                    yield {"phase": "launching", "message": message}
            metrics.launch_count.labels(status="failure", **repo.labels).inc()
            yield _error_event(500, f"Failed to launch image {image}")

    def _over_quota(self, repo: Repo) -> dict[str, Any]:
        """A launch refused for the pod quota: counted under the quota's name, not as a
        failure (BinderHub's ``LaunchQuotaExceeded``, status ``pod_quota``)."""
        self.metrics.launch_count.labels(status="pod_quota", **repo.labels).inc()
        return {"phase": "failed", "message": "Too many users on this BinderHub! Try again soon.\n"}

    def _ready(self, repo: Repo, image: str, base_url: str) -> dict[str, Any]:
        """A new user server, remembered so its page answers, and the event that shows it.
        Its pod counts against the quota for ``pod_lifetime`` seconds."""
        state = self.state
        state.pod_ends = add_pod(state.pod_ends, time.monotonic(), state.pod_lifetime)
        server = f"{repo.slug[:30]}-{secrets.token_hex(4)}"
        event = ready_event(repo, image, base_url, server, secrets.token_urlsafe(16))
        self.servers[server] = (event["token"], image)
        while len(self.servers) > MAX_SERVERS:
            del self.servers[next(iter(self.servers))]
        return event

    async def launch_page(self, request: Request) -> Response:
        """``GET /v2/<provider>/<spec>``: a page that launches through ``/build/`` on the
        origin it was served from (the router's, when the router proxies it), with a build
        token minted for the origin the request names (``Origin``, else ``Host``)."""
        audience = _raw_path(request).removeprefix("/v2/")
        spec = f"{request.path_params['provider']}/{request.path_params['spec']}"
        origin = buildtoken.token_origin(request.headers.get("origin"), request.headers.get("host"))
        key = buildtoken.secret_bytes(self.state.build_token_secret)
        token = buildtoken.mint(key, audience, origin, time.time())
        page = render_launch_page(spec, "/build/" + audience, self.state.name, token)
        return HTMLResponse(page, headers={"X-Fedredirect-Member": self.state.name})

    async def user_page(self, request: Request) -> Response:
        """``/user/<server>/``: where a ready launch points; 404 for a server never started."""
        server = request.path_params["server"]
        if server not in self.servers:
            return HTMLResponse(
                f"<h1>404: no server {html.escape(server)} on member "
                f"{html.escape(self.state.name)}</h1>\n",
                status_code=404,
                headers={"X-Fedredirect-Member": self.state.name},
            )
        _token, image = self.servers[server]
        body = (
            f"<!doctype html><title>{html.escape(server)}</title>\n"
            f"<h1>Simulated Jupyter server {html.escape(server)}</h1>\n"
            f"<p>on member <strong id='member'>{html.escape(self.state.name)}</strong>, "
            f"image <code>{html.escape(image)}</code></p>\n"
        )
        return HTMLResponse(body, headers={"X-Fedredirect-Member": self.state.name})


def _raw_path(request: Request) -> str:
    """The path as sent, still percent-encoded: BinderHub reads a spec from it that way."""
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    return raw.decode("latin-1")


def _failed(status: int, message: str, headers: dict[str, str]) -> Response:
    """An error of the build API as BinderHub's BuildHandler.send_error answers it: the
    status, and one ``failed`` event naming it, for clients that only read events."""
    body = f"data: {json.dumps(_error_event(status, message))}\n\n"
    return Response(body, status_code=status, media_type="text/event-stream", headers=headers)
