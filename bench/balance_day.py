"""Issue 18's Load-bound and Affinity goals: one synthetic day of launches through two real
routers under ``bounded``, ``rendezvous`` and ``random``, side by side.

Usage (run every benchmark under the shared lock, so two never run at once)::

    flock -x /tmp/fedredirect-bench.lock .venv/bin/python bench/balance_day.py
    python bench/balance_day.py --day 60 --rate 500 --window 5 --json out.json
    python bench/balance_day.py --quick       # a short smoke run

Everything runs on 127.0.0.1: a redis-server of its own holding, per policy, a published
snapshot of three members of different weights (250, 60 and 20, as mybinder.org's quotas
of 250, 60 and 20 pods; every member eligible; their URLs are never contacted), and two
``fedredirect router`` processes reading it. Launches are ``GET /build/gh/org/repoN/HEAD``
sent to either router at random, without cookies, on one schedule that every policy gets
alike; each is read as the 307 it gets (the member its Location names).

**The day, compressed.** A day of launches is played in ``--day`` seconds (default 60),
and ``bounded_load.window`` is ``--window`` seconds (default 5), so the window is to the
compressed day what a few minutes are to a real one. Launches arrive as a Poisson stream
whose rate follows the day (from half to one and a half times ``--rate``, default 500 a
second); each is of one of 10,000 repositories, Zipf-distributed (exponent 1: the top
repository takes about a tenth of all launches, as a few repositories carry most of
mybinder.org's); from 35 % to 60 % of the day a workshop takes half of all launches to one
ordinary repository: the first one, from the 500th most popular on, whose own member (the
first of its rendezvous order) is the smallest, the hardest case for the bound.

Printed per policy, from the launches as the routers answered them:

- **peak load**: the highest (a member's launches / its weighted share of all launches)
  over every window of ``--window`` seconds (shared.replay.peak_load_ratio); the goal for
  ``bounded``: at most factor + 0.1;
- **affinity**: the share of each repository's launches that went to its most-used
  member, weighted by launches (shared.replay.affinity); the goal for ``bounded``: at least
  0.85 (``rendezvous`` 1.0, ``random`` about 1/N and more for rare repositories);
- launches passed over by the bound (the routers' /status.json), and errors (anything
  but a 307 to a member).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import arguments, publish_snapshot, redis_server  # noqa: E402

from fedredirect.dev import child, fedredirect_command, free_port, wait_until  # noqa: E402
from shared.balance import Target, cache_key  # noqa: E402
from shared.bounded import rendezvous_order  # noqa: E402
from shared.config import parse_config  # noqa: E402
from shared.records import HealthObservation, MemberObservation  # noqa: E402
from shared.replay_summary import affinity, peak_load_ratio, weighted_shares  # noqa: E402

MEMBERS = {"alpha": 250.0, "beta": 60.0, "gamma": 20.0}
POLICIES = ("bounded", "rendezvous", "random")
REPOSITORIES = 10_000
BURST = (0.35, 0.60)  # the workshop, as shares of the day
CHECK_PERIOD = 600.0  # the published records stay fresh for the whole run
CONNECTIONS = 8  # per router
QUICK_DAY = (15.0, 200.0)  # --quick: the day's seconds and mean launches a second


def path_of(repo: int) -> str:
    return f"/build/gh/org/repo{repo}/HEAD"


# --- the day ------------------------------------------------------------------------------


def burst_repository(targets: list[Target]) -> int:
    """The workshop's repository: the first from the 500th on whose own member is the
    smallest."""
    smallest = min(targets, key=lambda t: t.weight).name
    for repo in range(500, REPOSITORIES + 1):
        if rendezvous_order(cache_key(path_of(repo)), targets)[0].name == smallest:
            return repo
    raise AssertionError("no repository falls to the smallest member")


def schedule(day: float, rate: float, burst: int, seed: int) -> list[tuple[float, int, int]]:
    """(offset in seconds, repository, router 0 or 1) of every launch of the day."""
    rng = random.Random(seed)
    cum = list(itertools.accumulate(1.0 / k for k in range(1, REPOSITORIES + 1)))
    repos = range(1, REPOSITORIES + 1)
    launches: list[tuple[float, int, int]] = []
    t = 0.0
    while True:
        t += rng.expovariate(rate * (1.0 - 0.5 * math.cos(2 * math.pi * t / day)))
        if t >= day:
            return launches
        workshop = BURST[0] * day <= t < BURST[1] * day and rng.random() < 0.5
        repo = burst if workshop else rng.choices(repos, cum_weights=cum)[0]
        launches.append((t, repo, rng.randrange(2)))


# --- the federation -------------------------------------------------------------------------


def federation(policy: str, factor: float, window: float) -> Any:
    return parse_config(
        {
            "check": {"period": CHECK_PERIOD},
            "load_balancer": policy,
            "bounded_load": {"factor": factor, "window": window},
            "members": {
                name: {"url": f"http://127.0.0.{i + 1}:1", "weight": w, "prime": i == 0}
                for i, (name, w) in enumerate(MEMBERS.items())
            },
        }
    )


async def publish(redis_url: str, prefix: str, config: Any) -> None:
    """A snapshot as a checker publishes it: config, every member eligible, a heartbeat.
    No member reports a quota: the records are never refreshed, so the launches a router
    counts since them would fill any quota, and the day measures the balancers alone."""
    now = time.time()
    observations = {
        name: MemberObservation(
            member=name,
            checked_at=now,
            health=HealthObservation("ok", (), None, None, now),
            versions={"binderhub": "1.0"},
            versions_at=now,
        )
        for name in config.members
    }
    await publish_snapshot(redis_url, prefix, config, observations, "balance-day", 3 * CHECK_PERIOD)


# --- the launches ---------------------------------------------------------------------------


@dataclass
class Answered:
    at: list[float]  # when each launch was sent, seconds from the start of the day
    member: list[str | None]  # where its 307 went (None: an error)
    errors: Counter[str]


async def _connection(
    port: int, queue: asyncio.Queue[tuple[int, int] | None], urls: dict[str, str], out: Answered
) -> None:
    """One keep-alive HTTP/1.1 connection to a router, sending the launches it is given."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (item := await queue.get()) is not None:
            index, repo = item
            path = path_of(repo)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            fields = (line.partition(": ") for line in head[1:])
            headers = {name.lower(): value for name, _, value in fields}
            length = int(headers.get("content-length", "0"))
            if length:
                await reader.readexactly(length)
            status = head[0].split(" ")[1]
            location = headers.get("location", "")
            found = [m for m, url in urls.items() if location == url + path]
            if status == "307" and found:
                out.member[index] = found[0]
            else:
                out.errors[f"HTTP {status}"] += 1
    finally:
        writer.close()


async def play(
    ports: list[int], launches: list[tuple[float, int, int]], urls: dict[str, str]
) -> Answered:
    """Send every launch at its time (open loop) to its router; read where each went."""
    out = Answered([0.0] * len(launches), [None] * len(launches), Counter())
    queues: list[asyncio.Queue[tuple[int, int] | None]] = [asyncio.Queue() for _ in ports]
    workers = [
        asyncio.create_task(_connection(port, queue, urls, out))
        for port, queue in zip(ports, queues, strict=True)
        for _ in range(CONNECTIONS)
    ]
    start = time.monotonic()
    for index, (offset, repo, router) in enumerate(launches):
        delay = start + offset - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        out.at[index] = time.monotonic() - start
        queues[router].put_nowait((index, repo))
    for queue in queues:
        for _ in range(CONNECTIONS):
            queue.put_nowait(None)
    await asyncio.gather(*workers)
    return out


def passed_over(url: str) -> int:
    doc = httpx.get(f"{url}/status.json", timeout=5).json()
    return sum((m["recent_launches"] or {}).get("passed_over", 0) for m in doc["members"].values())


def run_policy(
    policy: str,
    redis_url: str,
    workdir: Path,
    launches: list[tuple[float, int, int]],
    factor: float,
    window: float,
) -> dict[str, Any]:
    config = federation(policy, factor, window)
    asyncio.run(publish(redis_url, policy, config))
    urls = {name: m.url for name, m in config.members.items()}
    with contextlib.ExitStack() as stack:
        ports = []
        for i in range(2):
            port = free_port()
            cmd = fedredirect_command(
                "router", "--port", str(port), "--redis-url", redis_url, "--key-prefix", policy
            )
            stack.enter_context(child(cmd, log=workdir / f"{policy}-router{i + 1}.log"))
            url = f"http://127.0.0.1:{port}"
            wait_until(
                lambda u=url: len(httpx.get(f"{u}/status.json", timeout=5).json()["targets"]) == 3,
                60,
                f"router {url} serving {policy}",
            )
            ports.append(port)
        answered = asyncio.run(play(ports, launches, urls))
        over = sum(passed_over(f"http://127.0.0.1:{port}") for port in ports)
    shares = weighted_shares([Target(n, urls[n], w) for n, w in MEMBERS.items()])
    stream = [(at, member, shares) for at, member in zip(answered.at, answered.member, strict=True)]
    peak = peak_load_ratio(stream, window)
    repos = [repo for _, repo, _ in launches]
    spread = Counter(m for m in answered.member if m is not None)
    return {
        "policy": policy,
        "launches": len(launches),
        "errors": sum(answered.errors.values()),
        "error_kinds": dict(answered.errors),
        "peak_load_ratio": None if peak is None else peak[0],
        "peak_load_member": None if peak is None else peak[1],
        "affinity": affinity(zip(repos, answered.member, strict=True)),
        "passed_over": over,
        "shares": {m: spread[m] / max(1, sum(spread.values())) for m in MEMBERS},
    }


def table(results: list[dict[str, Any]], factor: float, window: float) -> list[str]:
    lines = [
        f"{'policy':<12}{f'peak load / share ({window:g} s)':>30}{'affinity':>10}"
        f"{'passed over':>13}{'errors':>8}   shares of all launches",
    ]
    for r in results:
        peak = f"{r['peak_load_ratio']:.2f} ({r['peak_load_member']})"
        shares = " ".join(f"{m} {100 * s:.1f}%" for m, s in r["shares"].items())
        lines.append(
            f"{r['policy']:<12}{peak:>30}{r['affinity']:>10.3f}{r['passed_over']:>13}"
            f"{r['errors']:>8}   {shares}"
        )
    bounded = next(r for r in results if r["policy"] == "bounded")
    load_met = bounded["peak_load_ratio"] <= factor + 0.1
    affinity_met = bounded["affinity"] >= 0.85
    lines.append(
        f"goals for bounded: peak load <= {factor + 0.1:g}: {'MET' if load_met else 'NOT met'}; "
        f"affinity >= 0.85: {'MET' if affinity_met else 'NOT met'}; "
        f"errors 0: {'MET' if all(r['errors'] == 0 for r in results) else 'NOT met'}"
    )
    return lines


def run(day: float, rate: float, window: float, factor: float, seed: int) -> list[dict[str, Any]]:
    """Play one synthetic day (see the module docstring) under every policy in turn; their
    results, in the order of POLICIES."""
    targets = [Target(n, f"http://{n}", w) for n, w in MEMBERS.items()]
    burst = burst_repository(targets)
    launches = schedule(day, rate, burst, seed)
    print(
        f"balance_day: {len(launches):,} launches in {day:g} s (a day, compressed), "
        f"mean {rate:g}/s over {REPOSITORIES:,} repositories (Zipf), workshop on repo"
        f"{burst} ({rendezvous_order(cache_key(path_of(burst)), targets)[0].name}'s) from "
        f"{BURST[0]:.0%} to {BURST[1]:.0%} of the day; members "
        + ", ".join(f"{n} {w:g}" for n, w in MEMBERS.items())
        + f"; 2 routers; bounded_load factor {factor:g}, window {window:g} s",
        flush=True,
    )
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="fedredirect-balance-day-") as tmp,
        redis_server(Path(tmp)) as redis_url,
    ):
        for policy in POLICIES:
            results.append(run_policy(policy, redis_url, Path(tmp), launches, factor, window))
            print(f"  {policy}: done", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    p = arguments(__doc__, quick="a short smoke run", json=True)
    p.add_argument("--day", type=float, default=60.0, help="seconds a day lasts (default 60)")
    p.add_argument("--rate", type=float, default=500.0, help="mean launches a second")
    p.add_argument("--window", type=float, default=5.0, help="bounded_load.window, seconds")
    p.add_argument("--factor", type=float, default=1.25, help="bounded_load.factor")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if args.quick:
        args.day, args.rate = QUICK_DAY
    results = run(args.day, args.rate, args.window, args.factor, args.seed)
    print()
    print("\n".join(table(results, args.factor, args.window)))
    if args.json:
        args.json.write_text(
            json.dumps({"args": vars(args), "results": results}, indent=2, default=str)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
