"""The router's speed and memory, side by side with what it is compared to (issue 11).

Usage (run every benchmark under the shared lock, so two never run at once)::

    flock /tmp/fedredirect-bench.lock .venv/bin/python bench/router_bench.py
    python bench/router_bench.py --rounds 5 --seconds 3 --pairs 8 --launches 1000000 --json out.json
    python bench/router_bench.py --profile 10     # also: py-spy on the router under load
    python bench/router_bench.py --quick          # a short smoke run of every part

Needs ``wrk`` and ``nginx`` (Debian: ``apt-get install wrk nginx-light``); installs
``tornado`` (the replaced redirector's framework) and ``py-spy`` (for ``--profile``) into
this virtualenv when missing. Everything runs on 127.0.0.1.

1. **In process** (no network): the router's ASGI app (``router.app.create_app``) with a
   view evaluated from synthetic observations, called with ``GET /build/gh/org/repoI/HEAD``
   scopes and a no-op send, over 5,000 repositories (so after the first round each launch
   finds its route kept for the generation), with 3, 100 and 1,000 members; also with a
   browser's headers and a sticky cookie, with ``random`` balancing (never kept), with
   ``bounded`` balancing (each launch walks its repository's kept order against this
   router's recent launches, read with the wall clock, and is counted in them), and on a
   miss (a path the routing table does not hold, so the rendezvous is computed); the bare
   ASGI 307 app (bench/bare_app.py) in the same harness shows what the harness itself
   costs. The minimum over ``--repeats`` interleaved repeats.
2. **evaluate** of a 1,000-member view (and building its routing table), in ms.
3. **Over the wire**, one process each, started here and measured in turns within one run
   (round r starts with the r-th server, so drift of the machine hits each alike), ``wrk -t1
   -c50`` for ``--seconds`` over 1,000 repositories: nginx ``return 307``; a bare ASGI 307
   app on the router's own server and settings (uvicorn with httptools and uvloop,
   ``router.serve.serve_on``); ``fedredirect router`` reading a redis-server that holds a
   published snapshot of 3 members, and another of 1,000 members that is kept changing as
   a checker with period 10 s would (10 publishes a second, 10 records each, and the
   heartbeat); and a tornado app doing what the replaced redirector's ``/build/`` handler
   did (read the ``host`` cookie, ``rendezvous_rank`` of the hosts with BLAKE2b,
   ``set_cookie``, ``redirect(..., 307)``).
   Where the machine has two cores or more, the servers run on one and wrk on another
   (``taskset``; ``--no-pin`` to share them): the load generator then takes no CPU from the
   server it measures, and the kernel does not move either between cores mid-run.
   A second bare app is measured like the others: its ratio to the first, round by round,
   is what the machine's drift alone makes of two identical servers.
   Every server is first warmed up with each repository once. Each figure is the median
   over the rounds; each ratio is taken within a round, then the median (with its range):
   ratios hold better than absolute numbers on a shared machine. Each run also reads the
   server's CPU time (every thread, and nginx's worker) from /proc: CPU per redirect, and
   the cores used.
   **Side by side**: then each router, and the second bare app, is measured at the same
   time as the bare app, ``--pairs`` rounds of ``--pair-seconds``: both servers on the one
   core, a wrk each on the other. The kernel gives the two busy servers equal CPU time, so
   the ratio of the redirects they answer is the inverse ratio of their CPU per redirect,
   and whatever slows the host slows both at once. The bare app against the second bare
   app shows the method's own spread (a few per cent where turns spread by tens).
4. **Memory**: the 3-member router's RSS when ready, after the rounds, and after
   ``--launches`` launches of distinct repositories (wrk, a counter in its script).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import datetime
import gc
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bare_app import app as bare_asgi  # noqa: E402
from common import arguments, cpu_seconds, publish_snapshot, redis_server, rss_mb  # noqa: E402

from fedredirect.dev import child, fedredirect_command, free_port, wait_until  # noqa: E402
from router.app import create_app  # noqa: E402
from router.redirect import RedirectApp  # noqa: E402
from router.routes import RoutingTable  # noqa: E402
from shared.config import FederationConfig, parse_config  # noqa: E402
from shared.evaluate import View, evaluate  # noqa: E402
from shared.records import CheckerHeartbeat, HealthObservation, MemberObservation  # noqa: E402
from shared.store import Snapshot, Store, connect  # noqa: E402

VERSIONS = {"binderhub": "1.0.0", "builder": "quay.io/jupyterhub/repo2docker:2024.07.0"}
REPOSITORIES = 5_000  # in process: fewer than router.routes.MAX_PATHS
WIRE_REPOSITORIES = 1_000
CHECK_PERIOD = 600.0  # the published records stay fresh for the whole run
#: Every member reports a quota, so each launch takes from its room (router/sent.py), and
#: one no run fills: every launch stays a redirect by the balancer.
QUOTA = 10**9

# --- a federation, in process ----------------------------------------------------------------


def federation(members: int, load_balancer: str = "rendezvous") -> FederationConfig:
    """``members`` members on loopback URLs (never contacted), weights 10..16, m0000 prime."""
    return parse_config(
        {
            "check": {"period": CHECK_PERIOD},
            "load_balancer": load_balancer,
            "members": {
                f"m{i:04d}": {
                    "url": f"http://127.0.{1 + i // 250}.{1 + i % 250}:8000",
                    "weight": 10 + i % 7,
                    "prime": i == 0,
                }
                for i in range(members)
            },
        }
    )


def observations(config: FederationConfig, now: float) -> dict[str, MemberObservation]:
    return {
        name: MemberObservation(
            member=name,
            checked_at=now,
            health=HealthObservation("ok", (), i % 50, QUOTA, now),
            versions=dict(VERSIONS),
            versions_at=now,
        )
        for i, name in enumerate(config.members)
    }


def synthetic_view(members: int, load_balancer: str = "rendezvous") -> View:
    now = time.time()
    config = federation(members, load_balancer)
    heartbeat = CheckerHeartbeat("bench", now, fence=1)
    view = evaluate(config, observations(config, now), {}, heartbeat, now)
    assert len(view.targets) == members, len(view.targets)
    return view


# --- 1. in process -----------------------------------------------------------------------------

# A launch's request headers as Firefox sends them through a TLS-terminating proxy.
BROWSER_REQUEST = """\
host: mybinder.org
user-agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0
accept: text/event-stream
accept-language: en-GB,en;q=0.7,de;q=0.3
accept-encoding: gzip, deflate, br, zstd
referer: https://mybinder.org/v2/gh/org/repo/HEAD
cache-control: no-cache
sec-fetch-dest: empty
sec-fetch-mode: cors
sec-fetch-site: same-origin
x-forwarded-proto: https
x-forwarded-for: 192.0.2.7
"""
BROWSER_HEADERS = [
    (name.encode(), value.encode())
    for name, _, value in (line.partition(": ") for line in BROWSER_REQUEST.splitlines())
]


def scopes(count: int, headers: list[tuple[bytes, bytes]], prefix: str = "repo") -> list[Any]:
    out = []
    for i in range(count):
        path = f"/build/gh/org/{prefix}{i}/HEAD"
        out.append(
            {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "GET",
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "query_string": b"",
                "headers": headers,
                "client": ("127.0.0.1", 50000),
                "server": ("127.0.0.1", 8080),
            }
        )
    return out


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    pass


def router_app(view: View, clock: Callable[[], float] | None = None) -> RedirectApp:
    """The app as ``fedredirect router`` builds it, serving ``view``'s federation alone,
    judging by ``clock`` (default: the instant the view was evaluated, standing still)."""
    now = view.evaluated_at
    snapshot = Snapshot(view.config, observations(view.config, now), view.heartbeat)
    return create_app(snapshot=snapshot, clock=clock or (lambda: now))


def answers_307(app: Any, scope: dict[str, Any], cookie_member: str | None) -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, _receive, send))
    assert sent[0]["status"] == 307, sent
    if cookie_member is not None:
        assert dict(sent[0]["headers"])[b"location"].startswith(cookie_member.encode()), sent


def time_asgi(app: Any, all_scopes: list[Any], n: int) -> float:
    """Nanoseconds per call of ``app`` over ``n`` calls (one event loop, gc off)."""
    k = len(all_scopes)

    async def batch() -> int:
        t0 = time.perf_counter_ns()
        for i in range(n):
            await app(all_scopes[i % k], _receive, _send)
        return time.perf_counter_ns() - t0

    gc.collect()
    gc.disable()
    try:
        return asyncio.run(batch()) / n
    finally:
        gc.enable()


def in_process(n: int, repeats: int) -> dict[str, list[float]]:
    """ns per redirect for each case (see the module docstring)."""
    views = {m: synthetic_view(m) for m in (3, 100, 1000)}
    cookie_url = {m: views[m].targets[1].url for m in views}
    plain = scopes(REPOSITORIES, [(b"host", b"127.0.0.1:8080"), (b"accept", b"*/*")])
    cases: dict[str, Callable[[], float]] = {}
    calls: dict[str, int] = {}

    def case(name: str, app: Any, all_scopes: list[Any], fraction: float = 1.0, cookie=None):  # type: ignore[no-untyped-def]
        answers_307(app, all_scopes[0], cookie)
        calls[name] = max(200, int(n * fraction))
        cases[name] = lambda: time_asgi(app, all_scopes, calls[name])

    case("bare ASGI 307 app (the harness's floor)", bare_asgi, plain)
    for m in (3, 100, 1000):
        case(f"router, {m} members", router_app(views[m]), plain)
    for m in (3, 100):
        headers = [*BROWSER_HEADERS, (b"cookie", f"_xsrf=2|ab; host={cookie_url[m]}".encode())]
        browser = scopes(REPOSITORIES, headers)
        case(
            f"router, {m} members, browser headers + cookie",
            router_app(views[m]),
            browser,
            cookie=cookie_url[m],
        )
    for m in (3, 100):
        case(
            f"router, {m} members, random balancing", router_app(synthetic_view(m, "random")), plain
        )
    for m in (3, 100):
        bounded = router_app(synthetic_view(m, "bounded"), clock=time.time)
        case(f"router, {m} members, bounded balancing", bounded, plain)
    for m, fraction in ((3, 0.2), (100, 0.05), (1000, 0.005)):
        app = router_app(views[m])
        table = app.routing()
        assert table is not None
        table.max_paths = 1  # keeps one path: every call (on another path) a miss
        case(f"router, {m} members, route not kept (miss)", app, plain, fraction)
    results: dict[str, list[float]] = {name: [] for name in cases}
    for name in cases:  # warm up: every kept route in place
        cases[name]()
    for rep in range(repeats):  # interleaved, alternating direction
        for name in list(cases) if rep % 2 == 0 else list(reversed(cases)):
            results[name].append(cases[name]())
    return results


def evaluate_cost(members: int = 1000, repeats: int = 30) -> dict[str, float]:
    """ms to evaluate a ``members``-member view, and to build its routing table."""
    now = time.time()
    config = federation(members)
    obs = observations(config, now)
    heartbeat = CheckerHeartbeat("bench", now, fence=1)

    def timed(fn: Callable[[], object]) -> list[float]:
        out = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1000)
        return out

    evaluations = timed(lambda: evaluate(config, obs, {}, heartbeat, now))
    view = evaluate(config, obs, {}, heartbeat, now)
    later = evaluate(config, obs, {}, heartbeat, now + 0.5)
    table = RoutingTable(view)
    return {
        "members": members,
        "evaluate_ms_min": min(evaluations),
        "evaluate_ms_median": statistics.median(evaluations),
        "new_table_ms_median": statistics.median(timed(lambda: RoutingTable(view))),
        "same_generation_ms_median": statistics.median(
            timed(lambda: (setattr(table, "view", view), table.for_view(later)))
        ),
    }


# --- 3. over the wire ------------------------------------------------------------------------

# What the replaced redirector's /build/ handler did per request, on tornado as it ran:
# hosts in a module-level dict, the cookie read, rendezvous_rank over the hosts with
# BLAKE2b, the cookie set path-scoped, a 307 to host + URI.
TORNADO_APP = """
import asyncio
import math
import sys
from hashlib import blake2b

import tornado.web

CONFIG = {
    "hosts": {
        "alpha": {"url": "http://127.0.0.1:9001", "weight": 50},
        "beta": {"url": "http://127.0.0.1:9002", "weight": 40},
        "gamma": {"url": "http://127.0.0.1:9003", "weight": 30},
    },
    "host_cookie_age_hours": 4,
}
HEALTHY = {"alpha", "beta", "gamma"}


def blake2b_hash_as_int(b):
    return int.from_bytes(blake2b(b, digest_size=8).digest(), "big")


def rendezvous_rank(buckets, key):
    ranking = []
    for bucket, weight in buckets:
        x = blake2b_hash_as_int(f"{key}-{bucket}".encode()) / 0xFFFFFFFFFFFFFFFF
        score = weight * (1 / -math.log(x))
        ranking.append((score, bucket))
    return [b for (s, b) in sorted(ranking, reverse=True)]


def cache_key(uri):
    key = uri.lower()
    if key.startswith("/build/gh"):
        return key.rsplit("/", 1)[0]
    return key


class RedirectHandler(tornado.web.RequestHandler):
    def get(self, path):
        host_name = self.get_cookie("host")
        hosts = CONFIG["hosts"]
        urls = {hosts[name]["url"] for name in HEALTHY}
        if host_name not in urls:
            buckets = [(n, hosts[n]["weight"]) for n in HEALTHY if hosts[n]["weight"] > 0]
            chosen = rendezvous_rank(buckets, cache_key(self.request.path))[0]
            host_name = hosts[chosen]["url"]
            self.set_cookie(
                "host",
                host_name,
                path=self.request.path.rsplit("/", 1)[0],
                max_age=CONFIG["host_cookie_age_hours"] * 3600,
                httponly=True,
            )
        self.redirect(host_name + self.request.uri, status=307)


async def main():
    app = tornado.web.Application([(r"/build/(.*)", RedirectHandler)])
    app.listen(int(sys.argv[1]), address="127.0.0.1")
    await asyncio.Event().wait()


asyncio.run(main())
"""

NGINX_CONF = """
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 307 http://127.0.0.1:9$request_uri; }}
    }}
}}
"""

RANDOM_REPOS = f"""
math.randomseed(1)
request = function()
  return wrk.format("GET", "/build/gh/org/repo" .. math.random({WIRE_REPOSITORIES}) .. "/HEAD")
end
"""

EVERY_REPO = f"""
local counter = 0
request = function()
  counter = counter % {WIRE_REPOSITORIES} + 1
  return wrk.format("GET", "/build/gh/org/repo" .. counter .. "/HEAD")
end
"""

DISTINCT_REPOS = """
local counter = 0
init = function(args)
  counter = tonumber(args[1]) or 0
end
request = function()
  counter = counter + 1
  return wrk.format("GET", "/build/gh/distinct/repo" .. counter .. "/HEAD")
end
"""


@dataclass
class Server:
    name: str
    url: str
    pid: int
    runs: list[dict[str, Any]] = field(default_factory=list)


def ensure_module(module: str, package: str) -> None:
    """pip-install ``package`` into this virtualenv if ``module`` is missing (bench only)."""
    if importlib.util.find_spec(module) is None:
        print(f"installing {package} into {sys.prefix} for the benchmark", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)


def need(tool: str) -> str:
    found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if found is None:
        raise SystemExit(f"router_bench: {tool} not found; apt-get install wrk nginx-light")
    return found


#: The cores the servers and wrk run on (see the docstring); None: not pinned.
PINS: dict[str, str] | None = None


def pin_cores(enabled: bool) -> str:
    """Pin servers and wrk to different cores when asked and possible; says what it did."""
    global PINS
    cores = sorted(os.sched_getaffinity(0))
    if not enabled or len(cores) < 2 or shutil.which("taskset") is None:
        PINS = None
        return "servers and wrk share the cores"
    PINS = {"server": str(cores[0]), "wrk": str(cores[1])}
    return f"servers on core {cores[0]}, wrk on core {cores[1]}"


def pinned(cmd: list[str], role: str) -> list[str]:
    return cmd if PINS is None else ["taskset", "-c", PINS[role], *cmd]


def run_wrk(url: str, seconds: float, script: Path, *script_args: str) -> dict[str, Any]:
    duration = f"-d{max(1, round(seconds))}s"  # wrk takes whole seconds only
    cmd = [need("wrk"), "-t1", "-c50", duration, "--latency", "-s", str(script), url]
    cmd = pinned(cmd, "wrk")
    cmd += script_args  # after the URL: wrk passes them to the script's init()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout

    def number(pattern: str) -> float:
        found = re.search(pattern, out)
        if found is None:
            raise SystemExit(f"router_bench: cannot read wrk's output:\n{out}")
        return float(found.group(1))

    def percentile(p: str) -> float:
        found = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out)
        if found is None:
            raise SystemExit(f"router_bench: cannot read wrk's output:\n{out}")
        return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]

    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests": int(number(r"(\d+) requests in")),
        "requests_per_s": number(r"Requests/sec:\s+([\d.]+)"),
        "p50_ms": percentile("50"),
        "p99_ms": percentile("99"),
        "non_3xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else None,
    }


def redirects_counted(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("fedredirect_redirects_total{")
    )


async def publish(redis_url: str, prefix: str, members: int) -> None:
    """A snapshot as a checker publishes it: config, every member eligible, a heartbeat."""
    config = federation(members)
    records = observations(config, time.time())
    await publish_snapshot(redis_url, prefix, config, records, "bench", 3 * CHECK_PERIOD)


class Republisher(threading.Thread):
    """Publishes like a checker of a ``members``-member federation with period 10 s: each
    member's record anew every period, in publishes 100 ms apart (so 10 records each at
    1,000 members), with the heartbeat. Each makes the router read those records and
    evaluate the whole view again."""

    def __init__(self, redis_url: str, prefix: str, members: int) -> None:
        super().__init__(daemon=True)
        self.redis_url, self.prefix, self.members = redis_url, prefix, members
        self.stop = threading.Event()
        self.publishes = 0

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        store = Store(connect(self.redis_url), self.prefix)
        started = time.time()
        config = federation(self.members)
        records = observations(config, started)
        names = list(config.members)
        per_publish = max(1, self.members // 100)
        try:
            while not self.stop.is_set():
                fence = await store.hold_lease("bench", 3 * CHECK_PERIOD)
                assert fence is not None
                now = time.time()
                batch = [
                    names[(self.publishes * per_publish + i) % len(names)]
                    for i in range(per_publish)
                ]
                for name in batch:
                    old = records[name]
                    health = dataclasses.replace(old.health, observed_at=now)  # type: ignore[arg-type]
                    records[name] = dataclasses.replace(
                        old, checked_at=now, health=health, versions_at=now
                    )
                heartbeat = CheckerHeartbeat("bench", now, fence=fence)
                await store.publish(config, records, heartbeat, changed=batch)
                self.publishes += 1
                await asyncio.sleep(0.1)
        finally:
            await store.client.aclose()


@contextlib.contextmanager
def servers(workdir: Path) -> Iterator[list[Server]]:
    """Every server of the comparison, started and answering 307; stopped at the end."""
    need("wrk")
    nginx = need("nginx")
    ensure_module("tornado", "tornado")
    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(redis_server(workdir))
        for prefix, members in (("bench3", 3), ("bench1000", 1000)):
            asyncio.run(publish(redis_url, prefix, members))
        started: list[tuple[str, list[str], int, int | None]] = []
        port = free_port()
        (workdir / "nginx.conf").write_text(NGINX_CONF.format(dir=workdir, port=port))
        started.append(("nginx return 307", [nginx, "-c", str(workdir / "nginx.conf")], port, None))
        port = free_port()
        bare = [sys.executable, str(Path(__file__).with_name("bare_app.py")), str(port)]
        started.append(("bare ASGI 307 app", bare, port, None))
        port = free_port()
        again = [sys.executable, str(Path(__file__).with_name("bare_app.py")), str(port)]
        started.append((SECOND_BARE, again, port, None))
        for members in (3, 1000):
            port = free_port()
            cmd = fedredirect_command(
                "router", "--port", str(port), "--redis-url", redis_url,
                "--key-prefix", f"bench{members}",
            )  # fmt: skip
            started.append((f"fedredirect router, {members} members", cmd, port, members))
        port = free_port()
        (workdir / "tornado_app.py").write_text(TORNADO_APP)
        tornado = [sys.executable, str(workdir / "tornado_app.py"), str(port)]
        started.append(("replaced redirector (tornado)", tornado, port, None))
        out = []
        for name, cmd, port, members in started:
            log = workdir / (re.sub(r"\W+", "-", name) + ".log")
            proc = stack.enter_context(child(pinned(cmd, "server"), log=log))
            url = f"http://127.0.0.1:{port}"
            if members is not None:
                wait_until(
                    lambda u=url, m=members: (
                        len(httpx.get(f"{u}/status.json", timeout=5).json()["targets"]) == m
                    ),
                    60,
                    f"{name} serving its members",
                )
            wait_until(
                lambda u=url: (
                    httpx.get(f"{u}/build/gh/org/repo1/HEAD", timeout=5).status_code == 307
                ),
                30,
                f"{name} answering 307 (log: {log})",
            )
            out.append(Server(name, url, proc.pid))
        republisher = Republisher(redis_url, "bench1000", 1000)
        republisher.start()
        try:
            yield out
        finally:
            republisher.stop.set()
            republisher.join(timeout=10)
            print(f"  ({republisher.publishes} publishes to the 1,000-member router)")


#: The same bare app again: the drift of the machine alone, as a ratio to the first.
SECOND_BARE = "bare ASGI 307 app, again"
#: Who is measured side by side with the bare app (see the module docstring).
SIDE_BY_SIDE = (SECOND_BARE, "fedredirect router, 3 members", "fedredirect router, 1000 members")


def measured(server: Server, seconds: float, script: Path) -> dict[str, Any]:
    """One wrk run against ``server``, with the CPU it used per redirect and its cores."""
    before = cpu_seconds(server.pid)
    run = run_wrk(server.url, seconds, script)
    used = cpu_seconds(server.pid) - before
    run["cpu_us_per_request"] = used / max(1, run["requests"]) * 1e6
    run["cores"] = used / seconds
    return run


def side_by_side(
    reference: Server, others: list[Server], rounds: int, seconds: float, script: Path
) -> dict[str, list[dict[str, Any]]]:
    """Each of ``others`` loaded at the same time as ``reference``, ``rounds`` times in
    turn: per round both wrk runs, and the other's redirects, p99 and CPU per redirect as
    ratios to the reference's."""
    out: dict[str, list[dict[str, Any]]] = {s.name: [] for s in others}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for r in range(rounds):
            for server in others[r % len(others) :] + others[: r % len(others)]:
                ours = pool.submit(measured, reference, seconds, script)
                theirs = measured(server, seconds, script)
                ref = ours.result()
                out[server.name].append(
                    {
                        "reference": ref,
                        "run": theirs,
                        "ratio": theirs["requests"] / max(1, ref["requests"]),
                        "p99_ratio": theirs["p99_ms"] / ref["p99_ms"],
                        "cpu_ratio": theirs["cpu_us_per_request"] / ref["cpu_us_per_request"],
                    }
                )
            print(
                f"  side by side, round {r + 1}/{rounds}: "
                + ", ".join(f"{name} {runs[-1]['ratio']:.2f}" for name, runs in out.items()),
                flush=True,
            )
    return out


def over_the_wire(
    workdir: Path,
    rounds: int,
    seconds: float,
    launches: int,
    profile: float,
    pairs: int = 0,
    pair_seconds: float = 2.0,
) -> dict[str, Any]:
    script = workdir / "random-repos.lua"
    script.write_text(RANDOM_REPOS)
    distinct = workdir / "distinct-repos.lua"
    distinct.write_text(DISTINCT_REPOS)
    every = workdir / "every-repo.lua"
    every.write_text(EVERY_REPO)
    with servers(workdir) as started:
        by_name = {s.name: s for s in started}
        router3 = by_name["fedredirect router, 3 members"]
        memory: dict[str, Any] = {"router, 3 members, ready": rss_mb(router3.pid)}
        for server in started:  # warm up: every repository's route kept, caches filled
            while run_wrk(server.url, 3, every)["requests"] < WIRE_REPOSITORIES:
                pass  # a slow start (routes computed, a view evaluated) is not measured
        for r in range(rounds):
            order = started[r % len(started) :] + started[: r % len(started)]
            for server in order:
                server.runs.append(measured(server, seconds, script))
                print(
                    f"  round {r + 1}/{rounds} {server.name:<34} "
                    f"{server.runs[-1]['requests_per_s']:>9,.0f}/s "
                    f"p99 {server.runs[-1]['p99_ms']:.2f} ms",
                    flush=True,
                )
        paired = [by_name[name] for name in SIDE_BY_SIDE]
        together = side_by_side(by_name["bare ASGI 307 app"], paired, pairs, pair_seconds, script)
        memory["router, 3 members, after the rounds"] = rss_mb(router3.pid)
        router1000 = by_name["fedredirect router, 1000 members"]
        memory["router, 1000 members, after the rounds"] = rss_mb(router1000.pid)
        profiled = py_spy(router3, script, profile, workdir) if profile else None
        # Distinct repositories until ``launches`` more were redirected.
        before = redirects_counted(router3.url)
        sent = 0
        t0 = time.monotonic()
        while redirects_counted(router3.url) - before < launches:
            remaining = launches - (redirects_counted(router3.url) - before)
            chunk = max(2.0, min(30.0, remaining / 15_000))
            sent += run_wrk(router3.url, chunk, distinct, str(sent + 1_000_000_000))["requests"]
        counted = redirects_counted(router3.url) - before
        memory["router, 3 members, after distinct launches"] = {
            **rss_mb(router3.pid),
            "launches": counted,
            "seconds": round(time.monotonic() - t0, 1),
        }
        return {
            "servers": {s.name: s.runs for s in started},
            "side_by_side": together,
            "memory": memory,
            "profile": profiled,
        }


def py_spy(server: Server, script: Path, seconds: float, workdir: Path) -> dict[str, Any]:
    """Sample the router under wrk load with py-spy: the share of samples per function."""
    ensure_module("py_spy", "py-spy")  # ships the py-spy binary next to this interpreter
    binary = Path(sys.executable).with_name("py-spy")
    raw = workdir / "py-spy.txt"
    sampler = subprocess.Popen(
        [str(binary), "record", "--nonblocking", "--rate", "500", "--format", "raw",
         "-o", str(raw), "-d", f"{seconds:g}", "-p", str(server.pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    time.sleep(0.5)
    run_wrk(server.url, seconds - 1, script)
    sampler.wait(timeout=seconds + 60)
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = [_short(f) for f in stack.split(";")]
        total += n
        self_time[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    return {
        "samples": total,
        "self": [(f, n / total * 100) for f, n in self_time.most_common(15)],
        "inclusive": [(f, n / total * 100) for f, n in inclusive.most_common(25)],
    }


def _short(frame: str) -> str:
    """``func (path/to/module.py:123)`` -> ``module.py:func``."""
    found = re.match(r"(.*) \((.*?):\d+\)$", frame)
    if found is None:
        return frame
    return f"{Path(found.group(2)).name}:{found.group(1)}"


# --- report ----------------------------------------------------------------------------------


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def wire_table(wire: dict[str, Any]) -> list[str]:
    runs = wire["servers"]
    bare = runs["bare ASGI 307 app"]  # on the router's own server and event loop
    tornado = runs["replaced redirector (tornado)"]
    lines = [
        "| server | redirects/s | p50 | p99 | x bare ASGI app | by round | x tornado "
        "| CPU us/redirect | cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, server_runs in runs.items():
        rps = [r["requests_per_s"] for r in server_runs]
        to_bare = [
            a["requests_per_s"] / b["requests_per_s"]
            for a, b in zip(server_runs, bare, strict=True)
        ]
        to_tornado = [
            a["requests_per_s"] / b["requests_per_s"]
            for a, b in zip(server_runs, tornado, strict=True)
        ]
        lines.append(
            f"| {name} | {statistics.median(rps):,.0f} ({min(rps):,.0f}-{max(rps):,.0f}) "
            f"| {statistics.median(r['p50_ms'] for r in server_runs):.2f} ms "
            f"| {statistics.median(r['p99_ms'] for r in server_runs):.2f} ms "
            f"| {statistics.median(to_bare):.2f} | {min(to_bare):.2f}-{max(to_bare):.2f} "
            f"| {statistics.median(to_tornado):.1f} "
            f"| {statistics.median(r['cpu_us_per_request'] for r in server_runs):.1f} "
            f"| {statistics.median(r['cores'] for r in server_runs):.2f} |"
        )
    problems = [
        f"{name}: {r['non_3xx']} non-3xx, socket errors {r['socket_errors']}"
        for name, server_runs in runs.items()
        for r in server_runs
        if r["non_3xx"] or r["socket_errors"]
    ]
    return lines + [f"  ! {p}" for p in problems]


def side_by_side_table(wire: dict[str, Any]) -> list[str]:
    """Each server side by side with the bare app: medians of the rounds' ratios."""
    lines = [
        "| side by side with the bare app | x bare ASGI app | by round | p99 x bare "
        "| CPU us/redirect | bare's | rounds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rounds in wire["side_by_side"].items():
        if not rounds:
            continue
        ratios = [r["ratio"] for r in rounds]
        lines.append(
            f"| {name} | {statistics.median(ratios):.2f} | {min(ratios):.2f}-{max(ratios):.2f} "
            f"| {statistics.median(r['p99_ratio'] for r in rounds):.2f} "
            f"| {statistics.median(r['run']['cpu_us_per_request'] for r in rounds):.1f} "
            f"| {statistics.median(r['reference']['cpu_us_per_request'] for r in rounds):.1f} "
            f"| {len(rounds)} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    p = arguments(__doc__, quick="a short smoke run of every part", json=True)
    p.add_argument("--n", type=int, default=200_000, help="in-process calls per repeat")
    p.add_argument("--repeats", type=int, default=5, help="in-process repeats per case")
    p.add_argument("--rounds", type=int, default=5, help="wrk rounds over every server")
    p.add_argument("--seconds", type=float, default=3.0, help="seconds per wrk run")
    p.add_argument("--pairs", type=int, default=8, help="rounds side by side with the bare app")
    p.add_argument("--pair-seconds", type=float, default=2.0, help="seconds per side-by-side run")
    p.add_argument("--launches", type=int, default=1_000_000, help="distinct launches for RSS")
    p.add_argument("--profile", type=float, default=0.0, help="seconds of py-spy (0: none)")
    p.add_argument("--no-wire", action="store_true", help="in process only")
    p.add_argument("--no-pin", action="store_true", help="let servers and wrk share cores")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.repeats, args.rounds, args.seconds, args.launches = 20_000, 2, 1, 3, 50_000
        args.pairs, args.pair_seconds = 1, 1.0
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"router_bench, {when}; {machine()}; load average at start {load()}", flush=True)

    results = in_process(args.n, args.repeats)
    print(f"\nIn process: µs per redirect, min of {args.repeats} repeats (calls per repeat)")
    floor = min(results["bare ASGI 307 app (the harness's floor)"])
    for name, values in results.items():
        print(
            f"  {name:<52} {min(values) / 1000:>7.2f} µs   "
            f"(median {statistics.median(values) / 1000:.2f})"
        )
    print(f"  (the harness alone, a bare ASGI app's two sends included: {floor / 1000:.2f} µs)")
    for m in (3, 100):  # within each repeat, then the median: drift hits both alike
        bounded, plain_case = (
            results[f"router, {m} members, bounded balancing"],
            results[f"router, {m} members"],
        )
        ratios = [b / r for b, r in zip(bounded, plain_case, strict=True)]
        print(
            f"  bounded / rendezvous, {m} members: {statistics.median(ratios):.2f}x "
            f"(median of the repeats' ratios; min {min(ratios):.2f}x)"
        )

    cost = evaluate_cost()
    print(
        f"\nevaluate, {cost['members']} members: {cost['evaluate_ms_median']:.1f} ms median "
        f"(min {cost['evaluate_ms_min']:.1f}); "
        f"a new routing table {cost['new_table_ms_median']:.1f} ms; "
        f"a re-evaluated view of the same generation {cost['same_generation_ms_median']:.2f} ms"
    )
    doc: dict[str, Any] = {
        "when": when,
        "machine": machine(),
        "load_at_start": load(),
        "in_process_ns": results,
        "evaluate": cost,
    }
    if not args.no_wire:
        pins = pin_cores(not args.no_pin)
        print(
            f"\nOver the wire: wrk -t1 -c50, {args.seconds:g} s a run, {args.rounds} rounds; "
            f"{pins}",
            flush=True,
        )
        with tempfile.TemporaryDirectory(prefix="fedredirect-router-bench-") as tmp:
            wire = over_the_wire(
                Path(tmp), args.rounds, args.seconds, args.launches, args.profile,
                args.pairs, args.pair_seconds,
            )  # fmt: skip
        doc["over_the_wire"] = wire
        doc["pins"] = pins
        print()
        print("\n".join(wire_table(wire)))
        if args.pairs:
            print(f"\nSide by side: {args.pair_seconds:g} s a run, {args.pairs} rounds")
            print("\n".join(side_by_side_table(wire)))
        print("\nMemory (RSS, peak in brackets):")
        for name, m in wire["memory"].items():
            extra = (
                f" ({m['launches']:,.0f} launches in {m['seconds']} s)" if "launches" in m else ""
            )
            print(f"  {name:<46} {m['rss_mb']:6.1f} MB  [{m['peak_mb']:.1f}]{extra}")
        if wire["profile"]:
            prof = wire["profile"]
            print(f"\npy-spy, router with 3 members under wrk ({prof['samples']} samples)")
            print("  self time:")
            for frame, share in prof["self"]:
                print(f"    {share:5.1f}%  {frame}")
            print("  inclusive:")
            for frame, share in prof["inclusive"]:
                print(f"    {share:5.1f}%  {frame}")
    doc["load_at_end"] = load()
    print(f"\nload average at end {doc['load_at_end']}")
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
