"""A simulated BinderHub member: a real HTTP server whose health can be changed while it runs.

The dev stack and the test-suite need members that fail on demand (full, down, slow, broken
as ``fedredirect.faults`` lists, failing a share of their launches) without a Kubernetes
cluster. Payload shapes follow what
real BinderHub serves, launches speak BinderHub's build API (``fedredirect.buildapi``), and
``/metrics`` serves BinderHub's launch metrics (``fedredirect.launchmetrics``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import html
import json
import logging
import math
import signal
import socket
import threading
import time
import typing
from collections import Counter, deque

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from fedredirect.buildapi import BuildAPI
from fedredirect.buildtoken import secret_bytes
from fedredirect.faults import FAULTS, fault_response, not_simulated_fault
from fedredirect.memberstate import (
    DEFAULT_QUOTA,
    IDLE_PODS,
    MemberSimState,
    is_full,
    launched_pods,
    pods,
)
from fedredirect.recorder import Recorder, SeenRequest
from fedredirect.shapes import SHAPES, shapes_for

#: What launches count, shown by GET /_sim and never set: the launched pods.
_COUNTED = frozenset({"launched_pods", "pod_ends"})
#: The fields POST /_sim sets.
_FIELD_TYPES = {
    key: kind for key, kind in typing.get_type_hints(MemberSimState).items() if key not in _COUNTED
}


def health_payload(state: MemberSimState, now: float) -> tuple[int, dict[str, typing.Any]]:
    """Status and body of GET /health; a full pod quota does not fail it, like BinderHub."""
    n, quota = pods(state, now), state.quota
    ok = state.hub_ok and state.registry_ok
    checks = [
        {"service": "Docker registry", "ok": state.registry_ok},
        {"service": "JupyterHub API", "ok": state.hub_ok},
        {
            "service": "Pod quota",
            "total_pods": n,
            "build_pods": 0,
            "user_pods": n,
            "quota": quota,
            "ok": not is_full(state, now),
            "_ignore_failure": True,
        },
    ]
    return (200 if ok else 503), {"ok": ok, "checks": checks}


def versions_payload(state: MemberSimState) -> dict[str, typing.Any]:
    """Body of GET /versions as served by a Kubernetes BinderHub."""
    image = f"quay.io/jupyterhub/repo2docker:{state.repo2docker_version}"
    return {
        "builder_info": {"build_image": image},
        "binderhub": state.binderhub_version,
        "builder": image,
    }


def apply_update(state: MemberSimState, update: object) -> None:
    """Validate a POST /_sim body completely, then apply it; raise ValueError naming the fault."""
    if not isinstance(update, dict):
        raise ValueError("body must be a JSON object")
    changes: dict[str, typing.Any] = {}
    for key, value in update.items():
        if key in ("full", "healthy"):
            if not isinstance(value, bool):
                raise ValueError(f"{key!r} must be a boolean")
            continue
        if key in _COUNTED:
            raise ValueError(f"{key!r} is counted from launches; total_pods sets the idle pods")
        if key not in _FIELD_TYPES:
            raise ValueError(f"unknown field {key!r}; known: {sorted(_FIELD_TYPES)}")
        if typing.get_origin(_FIELD_TYPES[key]) is list:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"field {key!r} must be a list of strings, got {value!r}")
            changes[key] = value
            continue
        allowed = typing.get_args(_FIELD_TYPES[key]) or (_FIELD_TYPES[key],)
        if float in allowed:
            allowed = (*allowed, int)
        if isinstance(value, bool) != (bool in allowed) or not isinstance(value, allowed):
            raise ValueError(f"field {key!r} must be {_FIELD_TYPES[key]}, got {value!r}")
        changes[key] = value
    if changes.get("fault") is not None and changes["fault"] not in FAULTS:
        raise ValueError(f"unknown fault {changes['fault']!r}; known: {sorted(FAULTS)}")
    for endpoint in ("health", "versions"):
        name = changes.get(f"{endpoint}_shape")
        if name is not None and name not in shapes_for(endpoint):
            known = ", ".join(shapes_for(endpoint))
            raise ValueError(f"unknown {endpoint} shape {name!r}; known: {known}")
    for key in ("total_pods", "quota", "delay", "build_delay", "rate_limit", "launches_at_share"):
        if (changes.get(key) or 0) < 0:
            raise ValueError(f"field {key!r} must not be negative")
    if not 0 <= changes.get("launch_failure_share", 0) <= 1:
        raise ValueError("field 'launch_failure_share' must be between 0 and 1")
    if not 0 <= changes.get("pod_lifetime", 0) < math.inf:
        raise ValueError("field 'pod_lifetime' must be 0 or more seconds (0: launches start none)")
    if changes.get("rate_limit_period", 1) < 1:
        raise ValueError("field 'rate_limit_period' must be at least 1")
    if "build_token_secret" in changes:
        secret_bytes(changes["build_token_secret"])
    if "launch_failure_share" in changes:  # a new share is spread over the launches from now
        changes.setdefault("launches_at_share", 0)
    for key, value in changes.items():
        setattr(state, key, value)
    if update.get("full") is True:
        state.quota = DEFAULT_QUOTA if state.quota is None else state.quota
        state.total_pods = state.quota
    elif update.get("full") is False:
        state.total_pods = IDLE_PODS
    if "healthy" in update:
        state.hub_ok = update["healthy"]


def sim_document(state: MemberSimState, now: float) -> dict[str, typing.Any]:
    """GET /_sim: the state, with the launched pods still running at ``now`` counted as
    ``launched_pods`` (their ends are on the member's monotonic clock, no use to a reader)."""
    document = dataclasses.asdict(state)
    document["launched_pods"] = launched_pods(document.pop("pod_ends"), now)
    return document


#: Requests a member remembers (``MemberServer.requests``), newest last.
MAX_REQUESTS_KEPT = 1000


def probe_answer(state: MemberSimState, path: str, count: int, now: float) -> Response:
    """The answer to the ``count``-th request of ``path`` (/health or /versions) at ``now``
    (monotonic): a raw body or a recorded shape when one is set, else the payload the state
    makes."""
    if state.health_body is not None and path == "/health":
        return Response(state.health_body, media_type="application/json")
    shape_name = state.health_shape if path == "/health" else state.versions_shape
    if shape_name is not None:
        shape = SHAPES[shape_name]
        return Response(shape.body(), status_code=shape.status, media_type=shape.media_type)
    if path == "/versions":
        if state.flap_versions is not None and count % 2 == 0:
            alternate = dataclasses.replace(state, binderhub_version=state.flap_versions)
            return JSONResponse(versions_payload(alternate))
        return JSONResponse(versions_payload(state))
    status, body = health_payload(state, now)
    if state.flap:  # the next answer will be the other one
        state.hub_ok = not state.hub_ok
    return JSONResponse(body, status_code=status)


def build_app(
    state: MemberSimState,
    hits: Counter[str] | None = None,
    requests: deque[SeenRequest] | None = None,
) -> ASGIApp:
    """A Starlette app serving `state`; it reads the state on every request, so changes apply.

    ``hits`` counts requests to what a checker reads (/health, /versions, /metrics), so
    tests can see retries and load; ``requests`` keeps every other request's target and
    headers, so tests can see what a proxy in front of the member sent.
    """
    hits = Counter() if hits is None else hits
    build_api = BuildAPI(state)

    async def probe(request: Request) -> Response:
        """/health and /versions: what a checker reads, so the endpoints that misbehave."""
        hits[request.url.path] += 1
        await asyncio.sleep(state.delay)
        if state.fault is not None:
            return await fault_response(state.fault, request)
        return probe_answer(state, request.url.path, hits[request.url.path], time.monotonic())

    async def metrics(request: Request) -> Response:
        """BinderHub's launch metrics; no fault or delay applies, as /metrics is served by
        BinderHub's own process whatever its hub and registry do."""
        hits[request.url.path] += 1
        return Response(build_api.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def sim(request: Request) -> Response:
        if request.method == "POST":
            try:
                apply_update(state, json.loads(await request.body() or b"null"))
            except ValueError as err:  # JSONDecodeError is a ValueError too
                return JSONResponse({"error": str(err)}, status_code=400)
        return JSONResponse(sim_document(state, time.monotonic()))

    async def moved(request: Request) -> Response:
        """``/_moved/N/PATH`` redirects N times before landing on ``/PATH``: a member whose
        configured endpoint URLs point at an old address."""
        hops, path = request.path_params["hops"], request.path_params["path"]
        target = f"/_moved/{hops - 1}/{path}" if hops > 1 else f"/{path}"
        return Response(status_code=301, headers={"Location": target})

    async def page(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        body = f"<h1>member {html.escape(state.name)}</h1>\n<p>{html.escape(target)}</p>\n"
        return HTMLResponse(body, headers={"X-Fedredirect-Member": state.name})

    app = Starlette(
        routes=[
            Route("/health", probe),
            Route("/versions", probe),
            Route("/metrics", metrics),
            Route("/_sim", sim, methods=["GET", "POST"]),
            Route("/_moved/{hops:int}/{path:path}", moved),
            *build_api.routes(),
            Route("/{path:path}", page),
        ]
    )
    return app if requests is None else Recorder(app, requests)


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket, so the port is known (and connectable) before uvicorn runs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def _config(
    state: MemberSimState,
    hits: Counter[str] | None = None,
    requests: deque[SeenRequest] | None = None,
) -> uvicorn.Config:
    """uvicorn settings; the grace period cancels hanging and dripping requests at shutdown."""
    logging.getLogger("uvicorn.error").addFilter(not_simulated_fault)
    app = build_app(state, hits, requests)
    return uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)


class MemberServer:
    """Runs a simulated member in a background thread on 127.0.0.1, for tests and the dev stack."""

    def __init__(self, state: MemberSimState, port: int = 0) -> None:
        self.state = state
        self._sock = _bind("127.0.0.1", port)
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.hits: Counter[str] = Counter()  # requests served per probe path (PROBE_PATHS)
        # Every other request, as received (the newest MAX_REQUESTS_KEPT).
        self.requests: deque[SeenRequest] = deque(maxlen=MAX_REQUESTS_KEPT)
        self._server = uvicorn.Server(_config(state, self.hits, self.requests))
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name=f"member-sim-{state.name}",
            daemon=True,
        )

    def start(self, timeout: float = 10.0) -> MemberServer:
        """Start serving; return once uvicorn reports it is accepting connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"member-sim {self.state.name} failed to start")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"member-sim {self.state.name} not started in {timeout}s")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Shut down gracefully; force it if requests are still running after `timeout`."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> MemberServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _quota(text: str) -> int | None:
    return None if text.lower() == "none" else int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `fedredirect member-sim` (and of `python -m fedredirect.simulator`)."""
    parser.add_argument("--name", required=True, help="member name shown in pages and headers")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--binderhub-version", default=MemberSimState.binderhub_version)
    parser.add_argument(
        "--quota", type=_quota, default=DEFAULT_QUOTA, help="pod quota; 'none' for no quota"
    )
    parser.add_argument("--pods", type=int, default=IDLE_PODS, help="running pods")
    parser.add_argument(
        "--build-token-secret",
        type=_hex_secret,
        default=MemberSimState.build_token_secret,
        help="hex key of the build tokens (BinderHub's build_token_secret); members that "
        "share it accept each other's tokens. Default: the dev stack's fixed secret",
    )
    parser.add_argument(
        "--no-build-token-check-origin",
        dest="build_token_check_origin",
        action="store_false",
        help="accept a build token from another origin (BinderHub's "
        "build_token_check_origin: false)",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=MemberSimState.rate_limit,
        help="launches without a build token allowed per client address and hour (0: no limit)",
    )
    parser.add_argument(
        "--launch-failure-share",
        type=_share,
        default=MemberSimState.launch_failure_share,
        help="share of launches (0 to 1) that fail after 'launching', as BinderHub's do when "
        "JupyterHub cannot start the server; spread evenly (0.5: every second launch). "
        'Changed live with POST /_sim {"launch_failure_share": ...}',
    )
    parser.add_argument(
        "--pod-lifetime",
        type=_lifetime,
        default=MemberSimState.pod_lifetime,
        metavar="SECONDS",
        help="each launch that reaches 'ready' starts a user pod that runs this long, on top "
        "of --pods, so launches fill the member up to its quota (0, the default: launches "
        'start none). Changed live with POST /_sim {"pod_lifetime": ...}',
    )


def _share(text: str) -> float:
    try:
        share = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from err
    if not 0 <= share <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return share


def _lifetime(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from err
    if not 0 <= seconds < math.inf:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return seconds


def _hex_secret(text: str) -> str:
    try:
        secret_bytes(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    return text


def run_from_args(args: argparse.Namespace) -> int:
    """Serve in the foreground until SIGINT or SIGTERM; both end with exit status 0."""
    state = MemberSimState(
        name=args.name,
        binderhub_version=args.binderhub_version,
        quota=args.quota,
        total_pods=args.pods,
        build_token_secret=args.build_token_secret,
        build_token_check_origin=args.build_token_check_origin,
        rate_limit=args.rate_limit,
        launch_failure_share=args.launch_failure_share,
        pod_lifetime=args.pod_lifetime,
    )
    sock = _bind(args.host, args.port)
    print(f"member {args.name} listening on http://{args.host}:{sock.getsockname()[1]}", flush=True)
    # uvicorn re-raises the signal after its graceful shutdown; make SIGTERM act like SIGINT.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(_config(state)).run(sockets=[sock])
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: `python -m fedredirect.simulator --name NAME`."""
    parser = argparse.ArgumentParser(prog="member-sim", description=__doc__)
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
