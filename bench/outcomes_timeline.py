"""Issue 19's goal as a timeline: a member that passes /health but fails half its launches.

Usage (run every benchmark under the shared lock, so two never run at once)::

    flock /tmp/fedredirect-bench.lock .venv/bin/python bench/outcomes_timeline.py
    python bench/outcomes_timeline.py --period 15 --workers 6   # mybinder.org's period

Three simulated members (alpha, beta, gamma, equal weights) behind a ``fedredirect
checker`` and two ``fedredirect router`` processes reading one redis-server, with the
``outcomes`` defaults (window 2 periods, ejected above 25 % of at least 10 launches, for
30 s the first time). Worker threads launch for real, as a browser does: a router's 307,
then the member's event stream to ``ready`` or ``failed``. After 3 periods beta starts
failing half its launches (``POST /_sim {"launch_failure_share": 0.5}``); 4 periods later
its failures stop. The script prints, per period-half, where launches went and beta's state
on each router, then the figures the issue asks for. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import arguments, checker_and_routers, redis_server  # noqa: E402

from fedredirect.dev import wait_until  # noqa: E402
from fedredirect.simulator import MemberServer, MemberSimState  # noqa: E402
from tests.support.build_stream import routed_launch  # noqa: E402

NAMES = ("alpha", "beta", "gamma")


class Launches:
    """Real launches from worker threads: (when routed, member, last phase) of each."""

    def __init__(self, routers: list[str], by_url: dict[str, str], workers: int) -> None:
        self.routers = routers
        self.by_url = by_url
        self.done: list[tuple[float, str, str]] = []
        self.errors = 0
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self.run, args=(i, workers)) for i in range(workers)
        ]

    def run(self, i: int, step: int) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                try:
                    self.done.append(self.launch(client, i))
                except (httpx.HTTPError, KeyError):
                    self.errors += 1
                i += step

    def launch(self, client: httpx.Client, i: int) -> tuple[float, str, str]:
        router = self.routers[i % len(self.routers)]
        at, member, phase = routed_launch(client, router, f"/build/gh/org/repo{i}/HEAD")
        return at, self.by_url[member], phase

    def between(self, start: float, end: float) -> Counter[str]:
        return Counter(member for at, member, _ in self.done if start <= at < end)

    def failed(self, start: float, end: float) -> Counter[str]:
        return Counter(m for at, m, phase in self.done if start <= at < end and phase == "failed")


class States:
    """Every member's state on every router, every 0.1 s: (when, router index, states)."""

    def __init__(self, routers: list[str]) -> None:
        self.routers = routers
        self.seen: list[tuple[float, int, dict[str, str]]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self.stop.wait(0.1):
                for index, router in enumerate(self.routers):
                    with contextlib.suppress(httpx.HTTPError):
                        doc = client.get(f"{router}/status.json").json()
                        states = {n: m["state"] for n, m in doc["members"].items()}
                        self.seen.append((time.monotonic(), index, states))

    def state_at(self, index: int, member: str, t: float) -> str:
        state = "-"
        for at, i, states in self.seen:
            if at > t:
                break
            if i == index:
                state = states[member]
        return state

    def first(self, member: str, state: str, after: float, every: bool = True) -> float | None:
        """When ``member`` first showed ``state`` on every router (or on none, every=False)."""
        latest: dict[int, str] = {}
        for at, i, states in self.seen:
            latest[i] = states[member]
            if at >= after and len(latest) == len(self.routers):
                shown = [s == state for s in latest.values()]
                if all(shown) if every else not any(shown):
                    return at
        return None


def share(counts: Counter[str], member: str) -> float:
    total = sum(counts.values())
    return counts[member] / total if total else float("nan")


def write_config(path: Path, members: dict[str, MemberServer], period: float) -> Path:
    doc: dict[str, Any] = {
        "check": {"period": period, "timeout": 2.0},
        "members": {
            n: {"url": m.url, "weight": 10, "prime": n == "alpha"} for n, m in members.items()
        },
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def run(args: argparse.Namespace, workdir: Path) -> int:
    period = args.period
    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(redis_server(workdir))
        members = {
            n: stack.enter_context(MemberServer(MemberSimState(n, rate_limit=0, build_delay=0.0)))
            for n in NAMES
        }
        config = write_config(workdir / "federation.yaml", members, period)
        store = ("--redis-url", redis_url, "--key-prefix", "outcomes")
        routers = checker_and_routers(stack, workdir, config, store)
        for url in routers:
            wait_until(
                lambda u=url: len(httpx.get(f"{u}/status.json", timeout=5).json()["targets"]) == 3,
                60,
                f"{url} sending launches to all three members",
            )
        hits_before = {n: dict(m.hits) for n, m in members.items()}
        launches = Launches(routers, {m.url: n for n, m in members.items()}, args.workers)
        states = States(routers)
        t0 = time.monotonic()
        states.thread.start()
        for thread in launches.threads:
            thread.start()
        beta = members["beta"]
        try:
            time.sleep(3 * period)
            failing_from = time.monotonic()
            httpx.post(f"{beta.url}/_sim", json={"launch_failure_share": 0.5}).raise_for_status()
            time.sleep(4 * period)
            stopped = time.monotonic()
            httpx.post(f"{beta.url}/_sim", json={"launch_failure_share": 0.0}).raise_for_status()
            wait_until(
                lambda: states.first("beta", "failing", stopped, every=False) is not None,
                300 + 4 * period,  # outcomes.max_ejection's default, and a margin
                "beta eligible again",
            )
            back = states.first("beta", "failing", stopped, every=False)
            assert back is not None
            time.sleep(6 * period)
        finally:
            launches.stop.set()
            states.stop.set()
            for thread in [*launches.threads, states.thread]:
                thread.join(15)
        end = time.monotonic()
        hits = {n: Counter(m.hits) - Counter(hits_before[n]) for n, m in members.items()}

    ejected = states.first("beta", "failing", failing_from)
    step = period / 2
    print(
        f"\nTimeline (s from the first launch; beta fails half its launches from "
        f"{failing_from - t0:.1f} s to {stopped - t0:.1f} s):"
    )
    print(
        f"  {'t':>6}  {'alpha':>5} {'beta':>5} {'gamma':>5}  {'beta failed':>11}  "
        "beta on router 1 / 2"
    )
    t = t0
    while t < end:
        c = launches.between(t, t + step)
        f = launches.failed(t, t + step)
        mid = t + step
        print(
            f"  {t - t0:6.1f}  {c['alpha']:5d} {c['beta']:5d} {c['gamma']:5d}  {f['beta']:11d}  "
            f"{states.state_at(0, 'beta', mid)} / {states.state_at(1, 'beta', mid)}"
        )
        t += step

    before = launches.between(t0 + period, failing_from)
    kept_out = launches.between(failing_from + 2 * period, back)
    returned = launches.between(back, end)
    worst = max((sum(s == "failing" for s in st.values()) for _, _, st in states.seen), default=0)
    healthy_out = sum(
        st["alpha"] == "failing" or st["gamma"] == "failing" for _, _, st in states.seen
    )
    periods = (end - t0) / period
    print(f"\nperiod {period:g} s; {len(launches.done):,} launches, {launches.errors} errors")
    print(f"  beta's share before its failures:                 {share(before, 'beta'):6.1%}")
    if ejected is not None:
        lag = ejected - failing_from
        print(
            f"  failing on both routers after                     {lag:6.1f} s "
            f"({lag / period:.2f} periods)"
        )
    print(
        f"  beta's share from 2 periods after the failures started to its return: "
        f"{share(kept_out, 'beta'):.1%} of {sum(kept_out.values()):,} (goal < 5 %)"
    )
    print(f"  eligible again on both routers after its failures stopped: {back - stopped:.1f} s")
    print(
        f"  beta's share after its return:                    {share(returned, 'beta'):6.1%} "
        f"(its weight: 33.3 %)"
    )
    print(f"  healthy members seen failing: {healthy_out} times; most failing at once: {worst}")
    for name in NAMES:
        per = {path: round(n / periods, 2) for path, n in sorted(hits[name].items())}
        print(f"  {name} checked per period: {per} ({sum(per.values()):.2f} requests)")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = arguments(__doc__)
    p.add_argument("--period", type=float, default=5.0, help="check.period, seconds")
    p.add_argument("--workers", type=int, default=4, help="threads launching in a loop")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fedredirect-outcomes-") as tmp:
        return run(args, Path(tmp))


if __name__ == "__main__":
    raise SystemExit(main())
