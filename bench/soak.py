"""A bounded soak: the whole stack under HTTP load while members flap and Redis restarts.

Usage::

    python bench/soak.py                      # 5 minutes
    python bench/soak.py --duration 60 --seed 7 --json soak.json --log-dir /tmp/soak-logs
    python bench/soak.py --load-balancer bounded    # or random; default rendezvous

It starts, all on 127.0.0.1: a redis-server of its own, four simulated members (one
prime), one ``fedredirect checker`` and two ``fedredirect router`` processes. For
``--duration`` seconds it then

- sends launches (``GET /build/gh/org/repoN/HEAD``, a quarter of them with a ``host``
  cookie naming a random member) to both routers from ``--concurrency`` workers;
- flips a random member every few seconds between eligible, full, unhealthy, another
  binderhub version, and down (server stopped, later restarted on the same port);
- restarts Redis with ``kill -9`` about every 60 s, at once or after ``--redis-downtime``
  seconds (the checker must republish);
- samples each router's ``/status.json`` every 100 ms.

Then it stops everything and prints: requests, errors, redirects to members that were not
eligible at that moment (judged two ways, see :func:`ground_truth_violations` and
:func:`own_view_violations`), and how stale the routers' views got. The exit status is 0
if and only if there were no errors and no violations.

Fair ground truth. The chaos keeps the federation such that the product *can* be right:
at least one other member has been eligible for longer than the recovery budget whenever a
member is made ineligible (so nobody-eligible fallback is never legitimate); only non-prime
members get another version, and never while the prime is (or just was) down (a down prime
makes the reference stale, which suspends version gating by design); and no member changes
while a Redis restart is being recovered from, nor in the grace before one.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import http.cookiejar
import json
import math
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

from fedredirect.dev import (
    child,
    fedredirect_command,
    find_redis_server,
    free_port,
    start_redis,
    wait_until,
)
from fedredirect.simulator import IDLE_PODS, MemberServer, MemberSimState

MEMBERS = (
    ("alpha", 50.0, True),
    ("beta", 40.0, False),
    ("gamma", 30.0, False),
    ("delta", 20.0, False),
)
OTHER_VERSION = "9.9.9-soak"
MEMBERS_PRIME = next(name for name, _, prime in MEMBERS if prime)
BAD_KINDS = ("full", "unhealthy", "version", "down")
SAMPLE_EVERY = 0.1
MAX_BROKEN = 12.0  # seconds a member stays broken at most
REPOS = 1000
# Pods a member may run: more than the launches of a check period can take up. The soak's
# launches start no pods, but a router counts each against its member's quota until the
# next report (issue 18's capacity); with BinderHub's 100, every member would look full.
QUOTA = 100_000


# --- the processes ------------------------------------------------------------------------


class RedisServer:
    """Our own redis-server (via ``fedredirect.dev.start_redis``), killable with SIGKILL."""

    def __init__(self, workdir: Path) -> None:
        self.binary = find_redis_server()
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._stack: contextlib.ExitStack | None = None

    def start(self) -> None:
        stack = contextlib.ExitStack()
        self.url = stack.enter_context(start_redis(self.binary, self.port, self.workdir))
        self._stack = stack

    def kill9(self) -> None:
        """SIGKILL the server we started (its pid checked against our port), then reap it."""
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        try:
            pid = int(client.info("server")["process_id"])
        finally:
            client.close()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()  # redis rewrites its title
        if b"redis" not in cmdline or f":{self.port}".encode() not in cmdline:
            raise RuntimeError(f"pid {pid} is not our redis-server on port {self.port}")
        os.kill(pid, signal.SIGKILL)
        self.stop()

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None


def fetch_status(url: str) -> dict[str, Any]:
    doc: dict[str, Any] = httpx.get(f"{url}/status.json", timeout=2).json()
    return doc


# --- ground truth and chaos ---------------------------------------------------------------


@dataclass
class Interval:
    """A member made ineligible at ``start`` (monotonic) until ``end``."""

    member: str
    kind: str
    start: float
    end: float = math.inf


@dataclass
class Budgets:
    """The time the product promises to need, derived from the check settings."""

    period: float
    timeout: float
    rise: int
    fall: int
    failed_period: float

    @property
    def grace(self) -> float:
        """Detection: a member made ineligible is out of every view within this."""
        return (self.fall + 1) * self.period + self.timeout + 1.0

    @property
    def recovery(self) -> float:
        """Recovery: a member made eligible again is back in every view within this."""
        return self.failed_period + (self.rise + 1) * self.period + self.timeout + 1.0


@dataclass
class ChaosLog:
    intervals: dict[str, list[Interval]] = field(default_factory=dict)
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (t, member, what)
    flaps: Counter[str] = field(default_factory=Counter)
    restarts: list[tuple[float, float, float]] = field(default_factory=list)  # kill, up, fresh
    skipped: int = 0
    error: str | None = None


class Chaos(threading.Thread):
    """Flips members and restarts Redis on a seeded schedule; logs every change it makes."""

    def __init__(
        self,
        servers: dict[str, MemberServer],
        prime: str,
        redis_server: RedisServer,
        routers: list[str],
        budgets: Budgets,
        rng: random.Random,
        stop: threading.Event,
        redis_every: float = 60.0,
        redis_downtime: float = 0.0,
    ) -> None:
        super().__init__(name="soak-chaos", daemon=True)
        self.servers = servers
        self.prime = prime
        self.redis = redis_server
        self.routers = routers
        self.budgets = budgets
        self.rng = rng
        self.deadline = math.inf  # set when the load starts
        self.stop_event = stop
        self.redis_every = redis_every
        self.redis_downtime = redis_downtime
        names = [name for name, _, _ in MEMBERS]
        self.log = ChaosLog(intervals={name: [] for name in names})
        self.state: dict[str, str] = dict.fromkeys(names, "ok")
        now = time.monotonic()
        self.ok_since: dict[str, float] = dict.fromkeys(names, now - budgets.recovery)
        self.prime_up_since = now - budgets.recovery
        self.last_change = now - budgets.grace

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported in the summary; stops the soak
            self.log.error = f"{type(exc).__name__}: {exc}"
            self.stop_event.set()

    def _run(self) -> None:
        start = time.monotonic()
        next_restart = start + min(30.0, (self.deadline - start) / 2)
        steps = 0
        while not self.stop_event.is_set() and steps < 10_000:
            steps += 1
            if self.stop_event.wait(self.rng.uniform(2.0, 4.0)):
                return
            now = time.monotonic()
            if now >= self.deadline:
                return
            if now >= next_restart and now + 15 + self.redis_downtime < self.deadline:
                self.restart_redis()
                next_restart += self.redis_every * self.rng.uniform(0.9, 1.1)
                continue
            if next_restart - now < self.budgets.grace:
                continue  # quiet before a restart: let every change propagate first
            self.flip()

    # --- members ---

    def flip(self) -> None:
        """Restore a member broken for longer than MAX_BROKEN, else flip a random one."""
        now = time.monotonic()
        broken = [(self.log.intervals[n][-1].start, n) for n, s in self.state.items() if s != "ok"]
        if broken and now - min(broken)[0] > MAX_BROKEN:
            self.restore(min(broken)[1])
            return
        name = self.rng.choice(sorted(self.servers))
        if self.state[name] != "ok":
            self.restore(name)
            return
        now = time.monotonic()
        others_stable = any(
            s == "ok" and now - self.ok_since[n] >= self.budgets.recovery
            for n, s in self.state.items()
            if n != name
        )
        if not others_stable:
            self.log.skipped += 1
            return
        kinds = list(BAD_KINDS)
        if name == self.prime:
            kinds.remove("version")  # the prime *is* the reference
            if "version" in self.state.values():
                kinds.remove("down")  # a down prime suspends version gating
        elif self.state[self.prime] == "down" or now - self.prime_up_since < self.budgets.recovery:
            kinds.remove("version")
        self.break_member(name, self.rng.choice(kinds))

    def break_member(self, name: str, kind: str) -> None:
        server = self.servers[name]
        start = time.monotonic()
        self.log.intervals[name].append(Interval(name, kind, start))
        self.state[name] = kind
        if kind == "full":
            server.state.total_pods = server.state.quota or 100
        elif kind == "unhealthy":
            server.state.hub_ok = False
        elif kind == "version":
            server.state.binderhub_version = OTHER_VERSION
        else:
            server.stop()
        self.last_change = start
        self.log.events.append((start, name, kind))
        self.log.flaps[kind] += 1

    def restore(self, name: str) -> None:
        kind = self.state[name]
        server = self.servers[name]
        if kind == "full":
            server.state.total_pods = IDLE_PODS
        elif kind == "unhealthy":
            server.state.hub_ok = True
        elif kind == "version":
            server.state.binderhub_version = MemberSimState.binderhub_version
        else:
            self.servers[name] = self._restart_member(server)
        now = time.monotonic()
        self.log.intervals[name][-1].end = now
        self.state[name] = "ok"
        self.ok_since[name] = now
        if name == self.prime and kind == "down":
            self.prime_up_since = now
        self.last_change = now
        self.log.events.append((now, name, "ok"))

    def _restart_member(self, old: MemberServer) -> MemberServer:
        for attempt in range(20):
            try:
                return MemberServer(old.state, port=old.port).start()
            except OSError:
                time.sleep(0.1 * (attempt + 1))
        raise RuntimeError(f"cannot restart member {old.state.name} on port {old.port}")

    def stop_all_members(self) -> None:
        for name, server in list(self.servers.items()):
            if self.state.get(name) != "down":
                server.stop()

    # --- redis ---

    def restart_redis(self) -> None:
        killed = time.monotonic()
        self.redis.kill9()
        self.stop_event.wait(self.redis_downtime)
        self.redis.start()
        up = time.monotonic()
        fresh = self._wait_fresh(after=up, timeout=30.0)
        self.log.restarts.append((killed, up, fresh))
        self.last_change = time.monotonic()

    def _wait_fresh(self, after: float, timeout: float) -> float:
        """When every router reads the store again and serves a heartbeat newer than ``after``."""
        deadline = after + timeout
        while time.monotonic() < deadline and not self.stop_event.is_set():
            now = time.monotonic()
            fresh = 0
            for url in self.routers:
                with contextlib.suppress(Exception):
                    doc = fetch_status(url)
                    age = doc["checker"]["heartbeat_age_seconds"]
                    if doc["router"]["store_error"] is None and age is not None:
                        fresh += age < now - after
            if fresh == len(self.routers):
                return time.monotonic()
            time.sleep(0.1)
        return math.inf


# --- load and sampling --------------------------------------------------------------------


class Requests:
    """Every launch sent, in compact columns: ~20 bytes per request."""

    def __init__(self) -> None:
        self.sent = array("d")
        self.answered = array("d")
        self.router = array("b")
        self.status = array("h")  # 0: exception
        self.member = array("b")  # index into the member names, -1: none / unknown
        self.errors: Counter[str] = Counter()
        self.error_examples: list[str] = []

    def __len__(self) -> int:
        return len(self.sent)


@dataclass(frozen=True)
class Sample:
    router: int
    sent: float
    answered: float
    targets: frozenset[str] | None  # None: the router served no view
    view_age: float | None
    heartbeat_age: float | None
    fallback: bool
    outage: bool
    store_error: bool
    stale: int = 0  # members the router shows as "stale"


async def load_worker(
    worker: int,
    client: httpx.AsyncClient,
    routers: list[str],
    member_urls: list[str],
    rng: random.Random,
    deadline: float,
    stop: threading.Event,
    out: Requests,
    max_requests: int,
) -> None:
    n = 0
    while not stop.is_set() and time.monotonic() < deadline and n < max_requests:
        n += 1
        r = (worker + n) % len(routers)
        path = f"/build/gh/org/repo{rng.randrange(REPOS)}/HEAD"
        headers = {}
        if rng.random() < 0.25:  # a returning user with a sticky cookie for some member
            headers["cookie"] = f"host={rng.choice(member_urls)}"
        sent = time.monotonic()
        status, member = 0, -1
        try:
            response = await client.get(routers[r] + path, headers=headers)
            status = response.status_code
            location = response.headers.get("location", "")
            for i, url in enumerate(member_urls):
                if location == url + path:
                    member = i
            if status == 307 and member < 0:
                status = 1  # a 307 whose Location is not a member URL + the request path
                out.errors["bad Location"] += 1
                if len(out.error_examples) < 10:
                    out.error_examples.append(f"bad Location {location!r} for {path}")
        except httpx.HTTPError as exc:
            out.errors[type(exc).__name__] += 1
            if len(out.error_examples) < 10:
                out.error_examples.append(f"{type(exc).__name__} from {routers[r]}: {exc}")
        answered = time.monotonic()
        out.sent.append(sent)
        out.answered.append(answered)
        out.router.append(r)
        out.status.append(status)
        out.member.append(member)


async def sampler(
    client: httpx.AsyncClient,
    routers: list[str],
    deadline: float,
    stop: threading.Event,
    out: list[Sample],
) -> None:
    async def one(r: int) -> None:
        sent = time.monotonic()
        try:
            response = await client.get(f"{routers[r]}/status.json")
            doc = response.json()
        except (httpx.HTTPError, ValueError):
            return
        answered = time.monotonic()
        if response.status_code != 200:
            out.append(Sample(r, sent, answered, None, None, None, False, False, True))
            return
        out.append(
            Sample(
                r,
                sent,
                answered,
                frozenset(doc["targets"]),
                doc["router"]["view_age_seconds"],
                doc["checker"]["heartbeat_age_seconds"],
                bool(doc["fallback"]["active"]),
                bool(doc["outage"]["active"]),
                doc["router"]["store_error"] is not None,
                sum(m["state"] == "stale" for m in doc["members"].values()),
            )
        )

    tick = time.monotonic()
    for _ in range(int((deadline - tick) / SAMPLE_EVERY) + 10):
        if stop.is_set() or time.monotonic() >= deadline:
            return
        await asyncio.gather(*(one(r) for r in range(len(routers))))
        tick += SAMPLE_EVERY
        await asyncio.sleep(max(0.0, tick - time.monotonic()))


async def drive(
    routers: list[str],
    member_urls: list[str],
    concurrency: int,
    duration: float,
    seed: int,
    stop: threading.Event,
    requests: Requests,
    samples: list[Sample],
) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    deadline = time.monotonic() + duration
    no_cookies = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    limits = httpx.Limits(
        max_connections=2 * concurrency, max_keepalive_connections=2 * concurrency
    )
    max_requests = int(duration * 5000)
    async with (
        httpx.AsyncClient(timeout=5.0, limits=limits, cookies=no_cookies) as load,
        httpx.AsyncClient(timeout=2.0) as status,
    ):
        tasks = [
            load_worker(
                i,
                load,
                routers,
                member_urls,
                random.Random(seed * 1000 + i),
                deadline,
                stop,
                requests,
                max_requests,
            )
            for i in range(concurrency)
        ]
        await asyncio.gather(sampler(status, routers, deadline, stop, samples), *tasks)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)


# --- analysis -----------------------------------------------------------------------------


def ground_truth_violations(
    requests: Requests, names: list[str], log: ChaosLog, grace: float, started: float = 0.0
) -> tuple[int, int, list[str]]:
    """Redirects to member M sent at t while M had been made ineligible at c < t - grace
    (and not made eligible again before t). Also counts redirects inside the grace."""
    starts = {n: [iv.start for iv in log.intervals[n]] for n in names}
    violations = within_grace = 0
    examples: list[str] = []
    for i in range(len(requests)):
        m = requests.member[i]
        if requests.status[i] != 307 or m < 0:
            continue
        name, t = names[m], requests.sent[i]
        k = bisect.bisect_left(starts[name], t) - 1
        if k < 0:
            continue
        iv = log.intervals[name][k]
        if t >= iv.end:
            continue
        if t > iv.start + grace:
            violations += 1
            if len(examples) < 10:
                examples.append(
                    f"t={t - started:.2f}s: {name} ({iv.kind} since {t - iv.start:.2f}s) got a "
                    f"redirect from router {requests.router[i]}"
                )
        else:
            within_grace += 1
    return violations, within_grace, examples


def own_view_violations(
    requests: Requests, names: list[str], samples: list[Sample], n_routers: int
) -> tuple[int, list[str]]:
    """Redirects to a member that the router's own /status.json excluded both in the last
    sample answered before the request was sent and in the first sample sent after it was
    answered."""
    per: list[list[Sample]] = [
        sorted((s for s in samples if s.router == r), key=lambda s: s.answered)
        for r in range(n_routers)
    ]
    answered = [[s.answered for s in ss] for ss in per]
    by_sent = [sorted(ss, key=lambda s: s.sent) for ss in per]
    sent = [[s.sent for s in ss] for ss in by_sent]
    violations = 0
    examples: list[str] = []
    for i in range(len(requests)):
        m = requests.member[i]
        if requests.status[i] != 307 or m < 0:
            continue
        r, name = requests.router[i], names[m]
        k = bisect.bisect_left(answered[r], requests.sent[i]) - 1
        j = bisect.bisect_right(sent[r], requests.answered[i])
        if k < 0 or j >= len(sent[r]):
            continue
        before, after = per[r][k], by_sent[r][j]
        if before.targets is None or after.targets is None:
            continue
        if name not in before.targets and name not in after.targets:
            violations += 1
            if len(examples) < 10:
                examples.append(
                    f"router {r} sent a launch to {name}; its targets were "
                    f"{sorted(before.targets)} before and {sorted(after.targets)} after"
                )
    return violations, examples


def detection_lags(
    samples: list[Sample], log: ChaosLog, n_routers: int
) -> tuple[dict[str, float], int, int]:
    """Per kind, the longest time from a change until every router's view excluded the
    member (an upper bound, at the sampling resolution). Only changes of a member that
    every router still listed as a target just before count; also returns how many changes
    were skipped so, and how many were undone before every router excluded the member."""
    per = [
        sorted((s for s in samples if s.router == r), key=lambda s: s.sent)
        for r in range(n_routers)
    ]
    sent = [[s.sent for s in ss] for ss in per]
    worst: dict[str, float] = {}
    already = unseen = 0
    for ivs in log.intervals.values():
        for iv in ivs:
            lag = 0.0
            for r in range(n_routers):
                k = bisect.bisect_left(sent[r], iv.start)
                previous = per[r][k - 1].targets if k > 0 else None
                if previous is None or iv.member not in previous:
                    lag = -1.0  # not a target before the change: nothing to detect
                    break
                seen = None
                while k < len(per[r]) and per[r][k].sent < iv.end:
                    s = per[r][k]
                    if s.targets is not None and iv.member not in s.targets:
                        seen = s.answered - iv.start
                        break
                    k += 1
                if seen is None:
                    lag = math.inf
                    break
                lag = max(lag, seen)
            if lag < 0:
                already += 1
            elif lag == math.inf:
                unseen += 1
            else:
                worst[iv.kind] = max(worst.get(iv.kind, 0.0), lag)
    return worst, already, unseen


def in_windows(t: float, windows: list[tuple[float, float]]) -> bool:
    return any(a <= t <= b for a, b in windows)


def nobody_eligible_episodes(
    samples: list[Sample], n_routers: int, started: float = 0.0
) -> tuple[int, int, list[str]]:
    """(samples, episodes, first examples) in which a router had nobody eligible: fallback
    active or no target."""
    count = episodes = 0
    examples: list[str] = []
    for r in range(n_routers):
        previous = False
        for s in sorted((s for s in samples if s.router == r), key=lambda s: s.sent):
            nobody = s.targets is not None and (s.fallback or not s.targets)
            count += nobody
            episodes += nobody and not previous
            if nobody and len(examples) < 10:
                examples.append(
                    f"router {r} at t={s.sent - started:.2f}s: targets {sorted(s.targets or ())}"
                    f" (fallback), {s.stale} members stale, heartbeat age "
                    f"{s.heartbeat_age or 0:.2f}s, outage policy {'on' if s.outage else 'off'}"
                )
            previous = nobody
    return count, episodes, examples


def _max(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def summarize(
    args: argparse.Namespace,
    names: list[str],
    requests: Requests,
    samples: list[Sample],
    log: ChaosLog,
    budgets: Budgets,
    started: float,
    elapsed: float,
    n_routers: int,
) -> dict[str, Any]:
    total = len(requests)
    statuses = Counter(requests.status)
    ok = statuses[307]
    errors = total - ok
    latencies = sorted((requests.answered[i] - requests.sent[i]) * 1000 for i in range(total))
    per_member = Counter(names[m] for m in requests.member if m >= 0)
    gt, within, gt_examples = ground_truth_violations(requests, names, log, budgets.grace, started)
    own, own_examples = own_view_violations(requests, names, samples, n_routers)
    lags, already, unseen = detection_lags(samples, log, n_routers)
    windows = [(kill, fresh + 1.0) for kill, _, fresh in log.restarts]
    during = [s for s in samples if in_windows(s.sent, windows)]
    outside = [s for s in samples if not in_windows(s.sent, windows)]
    nobody_samples, nobody_episodes, nobody_examples = nobody_eligible_episodes(
        samples, n_routers, started
    )
    nobody_during, _, _ = nobody_eligible_episodes(during, n_routers)
    recoveries = [fresh - kill for kill, _, fresh in log.restarts]
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [math.nan] * 99
    return {
        "seed": args.seed,
        "load_balancer": args.load_balancer,
        "duration_s": round(elapsed, 1),
        "concurrency": args.concurrency,
        "check_period_s": args.period,
        "requests": total,
        "requests_per_s": round(total / elapsed, 1) if elapsed else 0.0,
        "redirects_307": ok,
        "errors": errors,
        "errors_503_nobody_eligible": statuses[503],
        "errors_other_status": {
            str(k): v for k, v in sorted(statuses.items()) if k not in (0, 1, 307, 503)
        },
        "errors_exceptions": dict(requests.errors),
        "error_examples": requests.error_examples,
        "nobody_eligible_samples": nobody_samples,
        "nobody_eligible_episodes": nobody_episodes,
        "nobody_eligible_samples_during_redis_restarts": nobody_during,
        "nobody_eligible_examples": nobody_examples,
        "latency_ms_p50": round(q[49], 2),
        "latency_ms_p99": round(q[98], 2),
        "latency_ms_max": round(latencies[-1], 2) if latencies else None,
        "redirects_per_member": {n: per_member[n] for n in names},
        "grace_s": budgets.grace,
        "violations_ground_truth": gt,
        "violations_ground_truth_examples": gt_examples,
        "redirects_within_grace": within,
        "violations_own_view": own,
        "violations_own_view_examples": own_examples,
        "detection_lag_max_s": {k: round(v, 2) for k, v in sorted(lags.items())},
        "changes_ended_before_every_router_saw_them": unseen,
        "changes_of_a_member_already_excluded": already,
        "status_samples": len(samples),
        "max_view_age_s": {
            "outside_redis_restarts": _max([s.view_age for s in outside]),
            "during_redis_restarts": _max([s.view_age for s in during]),
        },
        "max_heartbeat_age_s": {
            "outside_redis_restarts": _max([s.heartbeat_age for s in outside]),
            "during_redis_restarts": _max([s.heartbeat_age for s in during]),
        },
        "outage_policy_samples": sum(s.outage for s in samples),
        "stale_member_samples": {
            "outside_redis_restarts": sum(s.stale > 0 for s in outside),
            "during_redis_restarts": sum(s.stale > 0 for s in during),
        },
        "redis_restarts": len(log.restarts),
        "redis_downtime_s": args.redis_downtime,
        "redis_recovery_s_max": round(max(recoveries), 2) if recoveries else None,
        "member_flaps": sum(log.flaps.values()),
        "member_flaps_by_kind": dict(sorted(log.flaps.items())),
        "flaps_skipped_to_keep_one_eligible": log.skipped,
        "chaos_error": log.error,
        "chaos_events": [
            {"t": round(t - started, 2), "member": member, "change": what}
            for t, member, what in log.events
        ],
        "redis_restart_times": [
            {
                "kill": round(k - started, 2),
                "up": round(u - started, 2),
                "fresh": round(f - started, 2),
            }
            for k, u, f in log.restarts
        ],
    }


def print_summary(s: dict[str, Any]) -> None:
    def fmt(v: object) -> str:
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    mva, mhb = s["max_view_age_s"], s["max_heartbeat_age_s"]
    lines = [
        "",
        "=== fedredirect soak summary ===",
        f"duration              {s['duration_s']} s  (seed {s['seed']}, concurrency "
        f"{s['concurrency']}, check period {s['check_period_s']} s, "
        f"load balancer {s['load_balancer']})",
        f"requests              {s['requests']}  ({s['requests_per_s']}/s)",
        f"errors                {s['errors']}  (503 nobody eligible: "
        f"{s['errors_503_nobody_eligible']}, other statuses: {s['errors_other_status'] or 0}, "
        f"exceptions: {s['errors_exceptions'] or 0})",
        f"nobody eligible       {s['nobody_eligible_episodes']} episodes "
        f"({s['nobody_eligible_samples']} status samples, "
        f"{s['nobody_eligible_samples_during_redis_restarts']} of them during Redis restarts)",
        f"latency               p50 {s['latency_ms_p50']} ms, p99 {s['latency_ms_p99']} ms, "
        f"max {s['latency_ms_max']} ms",
        "redirects per member  "
        + ", ".join(f"{k} {v}" for k, v in s["redirects_per_member"].items()),
        f"violations            ground truth: {s['violations_ground_truth']} "
        f"(grace {s['grace_s']:g} s; {s['redirects_within_grace']} redirects inside the grace), "
        f"own view: {s['violations_own_view']}",
        "detection lag (max)   "
        + (", ".join(f"{k} {v} s" for k, v in s["detection_lag_max_s"].items()) or "-")
        + f"  (not measured: {s['changes_ended_before_every_router_saw_them']} changes undone "
        f"before every router saw them, {s['changes_of_a_member_already_excluded']} of a "
        "member not yet back in the views)",
        f"max view age          {fmt(mva['outside_redis_restarts'])} s outside Redis restarts, "
        f"{fmt(mva['during_redis_restarts'])} s during",
        f"max heartbeat age     {fmt(mhb['outside_redis_restarts'])} s outside Redis restarts, "
        f"{fmt(mhb['during_redis_restarts'])} s during",
        f"redis restarts        {s['redis_restarts']} (dead for {s['redis_downtime_s']:g} s each; "
        "slowest recovery from kill to fresh views: "
        f"{s['redis_recovery_s_max']} s; outage policy active in {s['outage_policy_samples']} "
        "samples)",
        f"stale members         in {s['stale_member_samples']['outside_redis_restarts']} samples "
        f"outside Redis restarts, {s['stale_member_samples']['during_redis_restarts']} during",
        f"member flaps          {s['member_flaps']} {s['member_flaps_by_kind']} "
        f"({s['flaps_skipped_to_keep_one_eligible']} skipped to keep one member eligible)",
    ]
    for key in (
        "error_examples",
        "nobody_eligible_examples",
        "violations_ground_truth_examples",
        "violations_own_view_examples",
    ):
        lines += [f"  {key}: {e}" for e in s[key][:3]]
    if s["chaos_error"]:
        lines.append(f"chaos stopped early: {s['chaos_error']}")
    print("\n".join(lines), flush=True)


# --- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=float, default=300.0, help="seconds of load (default 300)")
    p.add_argument("--concurrency", type=int, default=8, help="load workers (default 8)")
    p.add_argument("--period", type=float, default=1.0, help="checker period (default 1.0)")
    p.add_argument(
        "--load-balancer",
        choices=("rendezvous", "random", "bounded"),
        default="rendezvous",
        help="the routers' load_balancer (default rendezvous; bounded: window 5 s)",
    )
    p.add_argument("--seed", type=int, default=None, help="chaos and load seed (default: random)")
    p.add_argument(
        "--redis-downtime",
        type=float,
        default=0.0,
        help="seconds Redis stays dead before it is restarted (default 0: at once)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the summary here")
    p.add_argument("--log-dir", type=Path, default=None, help="keep checker/router logs here")
    args = p.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1_000_000)
    if not 1 <= args.concurrency <= 64 or args.duration <= 0 or args.period <= 0:
        p.error("need 1 <= concurrency <= 64, duration > 0 and period > 0")
    if not 0 <= args.redis_downtime <= 30:
        p.error("need 0 <= redis-downtime <= 30")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    budgets = Budgets(args.period, 0.5, 2, 2, 2 * args.period)
    stop = threading.Event()
    requests = Requests()
    samples: list[Sample] = []
    names = [name for name, _, _ in MEMBERS]
    with (
        tempfile.TemporaryDirectory(prefix="fedredirect-soak-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        logs = args.log_dir or workdir
        logs.mkdir(parents=True, exist_ok=True)
        redis_server = RedisServer(workdir)
        redis_server.start()
        stack.callback(redis_server.stop)
        servers: dict[str, MemberServer] = {}
        chaos = Chaos(
            servers,
            MEMBERS_PRIME,
            redis_server,
            [],
            budgets,
            random.Random(args.seed),
            stop,
            redis_downtime=args.redis_downtime,
        )
        stack.callback(chaos.stop_all_members)
        for name in names:
            servers[name] = MemberServer(MemberSimState(name=name, quota=QUOTA)).start()
        config = {
            "load_balancer": args.load_balancer,
            # a window a few times shorter than the soak, so that members leave it
            "bounded_load": {"factor": 1.25, "window": 5.0},
            "check": {
                "period": args.period,
                "timeout": budgets.timeout,
                "rise": budgets.rise,
                "fall": budgets.fall,
                "failed_period": budgets.failed_period,
            },
            "members": {
                name: {"url": servers[name].url, "weight": weight, "prime": prime}
                for name, weight, prime in MEMBERS
            },
        }
        config_path = workdir / "federation.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        common = ["--redis-url", redis_server.url]
        stack.enter_context(
            child(
                fedredirect_command("checker", "--config", str(config_path), *common),
                log=logs / "checker.log",
            )
        )
        routers = []
        for i in range(2):
            port = free_port()
            stack.enter_context(
                child(
                    fedredirect_command("router", "--port", str(port), *common),
                    log=logs / f"router{i}.log",
                )
            )
            routers.append(f"http://127.0.0.1:{port}")
        member_urls = [servers[name].url for name in names]
        for url in routers:

            def all_targets(url: str = url) -> bool:
                return sorted(fetch_status(url)["targets"]) == sorted(names)

            wait_until(all_targets, 30, f"router {url} with every member eligible")
        print(
            f"soak: seed {args.seed}, {args.duration:g} s, concurrency {args.concurrency}, "
            f"period {args.period:g} s, grace {budgets.grace:g} s, recovery budget "
            f"{budgets.recovery:g} s; redis {redis_server.url}, routers {', '.join(routers)}; "
            f"logs in {logs}",
            flush=True,
        )
        started = time.monotonic()
        chaos.routers = routers
        chaos.deadline = started + args.duration
        chaos.start()
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                drive(
                    routers,
                    member_urls,
                    args.concurrency,
                    args.duration,
                    args.seed,
                    stop,
                    requests,
                    samples,
                )
            )
        elapsed = time.monotonic() - started
        stop.set()
        chaos.join(timeout=40)
        print("soak: stopping...", flush=True)
    summary = summarize(
        args, names, requests, samples, chaos.log, budgets, started, elapsed, len(routers)
    )
    print_summary(summary)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    bad = summary["errors"] + summary["violations_ground_truth"] + summary["violations_own_view"]
    return 0 if bad == 0 and summary["chaos_error"] is None else 1


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # during start-up; everything started is already stopped
        print("soak: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
