"""What one redirect costs, and whether counting redirects slows the redirect path.

Usage::

    python bench/redirect_bench.py                 # in-process numbers, then over the wire
    python bench/redirect_bench.py --n 200000 --repeats 5 --wire-seconds 10
    python bench/redirect_bench.py --no-wire --json out.json

In-process (no network, no Redis): the router's ASGI app from ``router.app.create_app``,
its view set directly from a hand-built config and observations (``shared.evaluate``), is
called ``--n`` times per repeat with ``GET /build/gh/org/repoI/HEAD`` scopes and a no-op
``receive``/``send``. Reported per redirect: the minimum over ``--repeats`` interleaved
repeats, and the spread of the repeats ((max - min) / min) as the noise. Variants:

- *as shipped*: ``RedirectApp`` counting on the route of each launch (an attribute
  increment, folded into per-(member, reason) counts when the routing table is replaced);
- *counting line removed*: ``RedirectApp.__call__`` recompiled from its own source with the
  one counting statement replaced by ``pass``, so everything else is the shipped code.

The scopes cycle over 5,000 repository paths, fewer than the routing table keeps, so after
the first round every launch finds its route cached (``bench/router_bench.py`` measures the
cost of a miss too).

Also measured alone: the counting statement, ``View.pick`` and ``cache_key``.

Over the wire: a redis-server, three simulated members, a ``fedredirect checker`` and one
``fedredirect router`` on 127.0.0.1; after the router serves all three members, ``wrk``
(if installed) and a Python asyncio httpx load each run for ``--wire-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gc
import http.cookiejar
import inspect
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

import router.redirect
from fedredirect.dev import (
    child,
    fedredirect_command,
    find_redis_server,
    free_port,
    start_redis,
    wait_until,
)
from fedredirect.simulator import MemberServer, MemberSimState
from router.app import create_app
from router.redirect import RedirectApp
from router.routes import Route
from shared.balance import cache_key
from shared.config import parse_config
from shared.evaluate import View, evaluate
from shared.records import CheckerHeartbeat, HealthObservation, MemberObservation
from shared.store import Store, connect

MEMBERS = (("alpha", 50.0, True), ("beta", 40.0, False), ("gamma", 30.0, False))
VERSIONS = {"binderhub": "1.0.0", "builder": "quay.io/jupyterhub/repo2docker:2024.07.0"}
DISTINCT_PATHS = 5_000
COUNT_LINE = "route.count += 1"


# --- in-process ---------------------------------------------------------------------------


def hand_built_view(now: float) -> View:
    """Three eligible members, as a router would evaluate them from a fresh snapshot."""
    config = parse_config(
        {
            "members": {
                name: {"url": f"http://127.0.0.1:{9000 + i}", "weight": weight, "prime": prime}
                for i, (name, weight, prime) in enumerate(MEMBERS)
            }
        }
    )
    observations = {
        name: MemberObservation(
            member=name,
            checked_at=now,
            health=HealthObservation("ok", (), 10, 100, now),
            healthy_at=now,
            versions=dict(VERSIONS),
            versions_at=now,
        )
        for name, _, _ in MEMBERS
    }
    heartbeat = CheckerHeartbeat("bench", now, now, 1)
    view = evaluate(config, observations, {}, heartbeat, now)
    assert len(view.targets) == len(MEMBERS), view.targets
    return view


def shipped_app(view: View) -> RedirectApp:
    """The app as ``fedredirect router`` builds it; its Store's client is never used."""
    app = create_app(Store(connect("redis://127.0.0.1:1/0")))
    app.holder.view = view
    return app


def without_counting_class() -> type[RedirectApp]:
    """``RedirectApp`` whose ``__call__`` is the shipped source minus the counting line."""
    source = textwrap.dedent(inspect.getsource(RedirectApp.__call__))
    if source.count(COUNT_LINE) != 1:
        raise SystemExit(f"redirect_bench: {COUNT_LINE!r} not found once in RedirectApp.__call__")
    namespace = dict(vars(router.redirect))
    exec(compile(source.replace(COUNT_LINE, "pass"), "<uncounted>", "exec"), namespace)
    return type("UncountedRedirectApp", (RedirectApp,), {"__call__": namespace["__call__"]})


def scopes() -> list[dict[str, Any]]:
    out = []
    for i in range(DISTINCT_PATHS):
        path = f"/build/gh/org/repo{i}/HEAD"
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
                "headers": [
                    (b"host", b"127.0.0.1:8080"),
                    (b"user-agent", b"bench/1.0"),
                    (b"accept", b"*/*"),
                ],
                "client": ("127.0.0.1", 50000),
                "server": ("127.0.0.1", 8080),
            }
        )
    return out


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    pass


def check_redirects(app: RedirectApp, scope: dict[str, Any]) -> None:
    """One call must answer 307 to a member: the bench measures real redirects."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, _receive, send))
    assert sent[0]["status"] == 307, sent
    location = dict(sent[0]["headers"])[b"location"].decode()
    assert location.startswith("http://127.0.0.1:9") and location.endswith(scope["path"])


def time_asgi(app: RedirectApp, all_scopes: list[dict[str, Any]], n: int) -> float:
    """Nanoseconds per call of ``app`` over ``n`` calls (one asyncio.run, gc off)."""
    k = len(all_scopes)

    async def batch() -> int:
        t0 = time.perf_counter_ns()
        for i in range(n):
            await app(all_scopes[i % k], _receive, _send)
        return time.perf_counter_ns() - t0

    return _gc_off(lambda: asyncio.run(batch())) / n


def time_loop(body: Callable[[int], object], n: int) -> float:
    """Nanoseconds per iteration of ``body(i)``, loop overhead included."""

    def run() -> int:
        t0 = time.perf_counter_ns()
        for i in range(n):
            body(i)
        return time.perf_counter_ns() - t0

    return _gc_off(run) / n


def _gc_off(run: Callable[[], int]) -> int:
    gc.collect()
    gc.disable()
    try:
        return run()
    finally:
        gc.enable()


def in_process(n: int, repeats: int) -> dict[str, list[float]]:
    view = hand_built_view(time.time())
    all_scopes = scopes()
    paths = [s["path"] for s in all_scopes]
    shipped = shipped_app(view)
    uncounted = shipped_app(view)
    uncounted.__class__ = without_counting_class()
    for app in (shipped, uncounted):
        check_redirects(app, all_scopes[0])
    assert not uncounted.counts and shipped.counts
    routes = [
        Route(f"http://127.0.0.1:{9000 + i}".encode(), (m, "balancer"))
        for i, (m, _, _) in enumerate(MEMBERS)
    ]

    def count(i: int) -> None:
        route = routes[i % 3]
        route.count += 1

    def bare(i: int) -> None:
        route = routes[i % 3]  # noqa: F841 - count()'s setup alone

    k = len(paths)
    cases: dict[str, Callable[[], float]] = {
        "redirect, as shipped (counting)": lambda: time_asgi(shipped, all_scopes, n),
        "redirect, counting line removed": lambda: time_asgi(uncounted, all_scopes, n),
        "counting statement alone": lambda: time_loop(count, n),
        "  its loop and setup alone": lambda: time_loop(bare, n),
        "View.pick alone": lambda: time_loop(lambda i: view.pick(paths[i % k], None, 0.5), n),
        "cache_key alone": lambda: time_loop(lambda i: cache_key(paths[i % k]), n),
        "empty loop (overhead of the above)": lambda: time_loop(lambda i: None, n),
    }
    results: dict[str, list[float]] = {name: [] for name in cases}
    cases[next(iter(cases))]()  # warm up
    for rep in range(repeats):  # interleaved, so drift of the machine hits every case alike
        order = list(cases) if rep % 2 == 0 else list(reversed(cases))  # and no case goes first
        for name in order:
            results[name].append(cases[name]())
    return results


def spread(values: list[float]) -> float:
    return (max(values) - min(values)) / min(values) * 100


# --- over the wire ------------------------------------------------------------------------


@contextlib.contextmanager
def wire_stack(workdir: Path) -> Iterator[str]:
    """Redis, three members, a checker and one router; yields the router's URL."""
    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(start_redis(find_redis_server(), 0, workdir))
        servers = [stack.enter_context(MemberServer(MemberSimState(name=n))) for n, _, _ in MEMBERS]
        config = {
            "check": {"period": 2.0, "timeout": 1.0},
            "members": {
                name: {"url": server.url, "weight": weight, "prime": prime}
                for (name, weight, prime), server in zip(MEMBERS, servers, strict=True)
            },
        }
        path = workdir / "federation.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        common = ["--redis-url", redis_url]
        stack.enter_context(
            child(
                fedredirect_command("checker", "--config", str(path), *common),
                log=workdir / "checker.log",
            )
        )
        port = free_port()
        stack.enter_context(
            child(
                fedredirect_command("router", "--port", str(port), *common),
                log=workdir / "router.log",
            )
        )
        url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: len(httpx.get(f"{url}/status.json", timeout=2).json()["targets"]) == 3,
            30,
            "router serving three eligible members",
        )
        yield url


WRK_SCRIPT = """
math.randomseed(1)
request = function()
  return wrk.format("GET", "/build/gh/org/repo" .. math.random(1000) .. "/HEAD")
end
"""


def run_wrk(url: str, seconds: float, connections: int, workdir: Path) -> dict[str, Any] | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    script = workdir / "paths.lua"
    script.write_text(WRK_SCRIPT)
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)

    def pct(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {
        "tool": f"wrk -t1 -c{connections}",
        "requests": total,
        "requests_per_s": rps,
        "p50_ms": pct("50"),
        "p99_ms": pct("99"),
        "non_3xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else None,
    }


async def httpx_load(url: str, seconds: float, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = time.monotonic() + seconds

    async def worker(w: int, client: httpx.AsyncClient) -> None:
        for i in range(10_000_000):
            if time.monotonic() >= deadline:
                return
            t0 = time.perf_counter()
            response = await client.get(f"{url}/build/gh/org/repo{(w * 7919 + i) % 1000}/HEAD")
            latencies.append((time.perf_counter() - t0) * 1000)
            statuses[response.status_code] += 1

    limits = httpx.Limits(max_connections=concurrency)
    started = time.monotonic()
    # Keep no cookies: a jar of one sticky cookie per repository makes every request slower.
    no_cookies = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    async with httpx.AsyncClient(timeout=5.0, limits=limits, cookies=no_cookies) as client:
        await asyncio.gather(*(worker(w, client) for w in range(concurrency)))
    elapsed = time.monotonic() - started
    q = statistics.quantiles(latencies, n=100)
    return {
        "tool": f"Python asyncio httpx, {concurrency} workers",
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(q[49], 2),
        "p99_ms": round(q[98], 2),
        "non_3xx": sum(v for k, v in statuses.items() if not 300 <= k < 400),
        "socket_errors": None,
    }


def over_the_wire(seconds: float, connections: int) -> list[dict[str, Any]]:
    with (
        tempfile.TemporaryDirectory(prefix="fedredirect-bench-") as tmp,
        wire_stack(Path(tmp)) as url,
    ):
        results = []
        wrk = run_wrk(url, seconds, connections, Path(tmp))
        if wrk is not None:
            results.append(wrk)
        results.append(asyncio.run(httpx_load(url, seconds, connections)))
        return results


# --- report -------------------------------------------------------------------------------


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; load average at start {load}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=200_000, help="calls per repeat (default 200000)")
    p.add_argument("--repeats", type=int, default=5, help="repeats per case (default 5)")
    p.add_argument("--wire-seconds", type=float, default=10.0, help="load duration (default 10)")
    p.add_argument("--connections", type=int, default=8, help="wire concurrency (default 8)")
    p.add_argument("--no-wire", action="store_true", help="skip the over-the-wire part")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    if not 1_000 <= args.n <= 10_000_000 or not 1 <= args.repeats <= 50:
        p.error("need 1000 <= n <= 10000000 and 1 <= repeats <= 50")
    if not 1 <= args.wire_seconds <= 120 or not 1 <= args.connections <= 64:
        p.error("need 1 <= wire-seconds <= 120 and 1 <= connections <= 64")

    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"redirect_bench, {when}; {machine()}", flush=True)
    results = in_process(args.n, args.repeats)
    print(f"\nIn process: ns per call, min of {args.repeats} repeats of {args.n} calls")
    print(f"{'case':<40} {'min ns':>9} {'median ns':>10} {'spread':>8}")
    for name, values in results.items():
        print(
            f"{name:<40} {min(values):>9.0f} {statistics.median(values):>10.0f} "
            f"{spread(values):>7.1f}%"
        )
    shipped = results["redirect, as shipped (counting)"]
    uncounted = results["redirect, counting line removed"]
    diff = (min(shipped) - min(uncounted)) / min(uncounted) * 100
    noise = max(spread(shipped), spread(uncounted))
    # Each round ran both variants back to back: their ratio cancels slow drift of the machine.
    paired = sorted((a - b) / b * 100 for a, b in zip(shipped, uncounted, strict=True))
    counting = min(results["counting statement alone"]) - min(results["  its loop and setup alone"])
    print(
        f"\ncounting, min vs min: {diff:+.1f}% per redirect (repeats spread up to {noise:.1f}%)"
        f"\ncounting, paired by round: median {statistics.median(paired):+.1f}%, "
        f"range {paired[0]:+.1f}% .. {paired[-1]:+.1f}% over {len(paired)} rounds"
        f"\ncounting statement alone: {counting:.0f} ns of {min(shipped):.0f} ns per redirect "
        f"({counting / min(shipped) * 100:.1f}%)"
    )
    wire: list[dict[str, Any]] = []
    if not args.no_wire:
        wire = over_the_wire(args.wire_seconds, args.connections)
        print(f"\nOver the wire: one router on 127.0.0.1, {args.wire_seconds:g} s per tool")
        print(f"{'load generator':<40} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
        for row in wire:
            print(
                f"{row['tool']:<40} {row['requests']:>9} {row['requests_per_s']:>9.0f} "
                f"{row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f}"
                + (f"  non-3xx {row['non_3xx']}" if row["non_3xx"] else "")
                + (f"  socket errors {row['socket_errors']}" if row["socket_errors"] else "")
            )
    if args.json:
        doc = {
            "when": when,
            "machine": machine(),
            "n": args.n,
            "repeats": args.repeats,
            "in_process_ns": results,
            "counting_cost_percent": diff,
            "noise_percent": noise,
            "counting_cost_percent_paired": paired,
            "counting_statement_ns": counting,
            "over_the_wire": wire,
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
