"""How soon every router acts on what the checker saw: from the member's answer to the view.

Usage::

    python bench/propagation.py                 # 20 changes, period 1 s, 2 routers
    python bench/propagation.py --changes 50 --routers 3

It starts, on 127.0.0.1: a redis-server of its own, three simulated members, one
``fedredirect checker`` (period ``--period``) and ``--routers`` router processes. Then,
``--changes`` times, it makes member beta full (or not full again) and records:

- t_fetch: when beta first *answered* /health with the new pod count (the simulator
  notes the time of every answer), so the wait for the next check is not counted;
- t_router: for each router, when its /status.json first shows beta in the new state
  (polled every ``--poll`` seconds, so each sample is late by at most that).

It prints the latency t_router - t_fetch (p50, p95, max, over every router and change)
beside the goal (every router within 100 ms of the checker's fetch).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml
from common import redis_server

from fedredirect.dev import child, fedredirect_command, free_port
from fedredirect.simulator import MemberServer, MemberSimState


class Watched(MemberServer):
    """A simulated member that notes when each /health answer leaves with each pod count."""

    def __init__(self, state: MemberSimState) -> None:
        super().__init__(state)
        self.answered: list[tuple[float, int]] = []  # (time, total_pods) per /health answer
        app = self._server.config.app
        lock = threading.Lock()

        async def noting(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
            pods = self.state.total_pods

            async def send_noted(message: dict) -> None:  # type: ignore[type-arg]
                if message["type"] == "http.response.start" and scope.get("path") == "/health":
                    with lock:
                        self.answered.append((time.time(), pods))
                await send(message)  # type: ignore[operator]

            await app(scope, receive, send_noted)

        self._server.config.app = noting
        self._server.config.loaded = False

    def first_answer_with(self, pods: int, after: float) -> float | None:
        return next((at for at, p in list(self.answered) if at >= after and p == pods), None)


def state_of(client: httpx.Client, router: str, member: str) -> str | None:
    with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
        return str(client.get(f"{router}/status.json").json()["members"][member]["state"])
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--routers", type=int, default=2)
    parser.add_argument("--period", type=float, default=1.0)
    parser.add_argument("--poll", type=float, default=0.005)
    args = parser.parse_args()
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="fedredirect-propagation-") as tmp:
        workdir = Path(tmp)
        members = [Watched(MemberSimState(name)) for name in ("alpha", "beta", "gamma")]
        with contextlib.ExitStack() as stack:
            for member in members:
                stack.enter_context(member)
            beta = members[1]
            redis_url = stack.enter_context(redis_server(workdir))
            config = workdir / "federation.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        "check": {"period": args.period, "jitter": 0.0, "timeout": 1},
                        "members": {
                            m.state.name: {"url": m.url, "weight": 10, "prime": i == 0}
                            for i, m in enumerate(members)
                        },
                    }
                )
            )
            common = ["--redis-url", redis_url]
            stack.enter_context(
                child(fedredirect_command("checker", "--config", str(config), *common), quiet=True)
            )
            routers = []
            for _ in range(args.routers):
                port = free_port()
                stack.enter_context(
                    child(fedredirect_command("router", "--port", str(port), *common), quiet=True)
                )
                routers.append(f"http://127.0.0.1:{port}")
            client = stack.enter_context(httpx.Client(timeout=2))
            deadline = time.monotonic() + 30
            while any(state_of(client, r, "beta") != "eligible" for r in routers):
                if time.monotonic() > deadline:
                    raise SystemExit("the stack did not come up")
                time.sleep(0.05)
            for change in range(args.changes):
                full = change % 2 == 0
                pods = (beta.state.quota or 100) if full else 10
                want = "full" if full else "eligible"
                changed_at = time.time()
                beta.state.total_pods = pods
                seen: dict[str, float] = {}
                deadline = time.monotonic() + 10 * args.period + 5
                while len(seen) < len(routers) and time.monotonic() < deadline:
                    for router in routers:
                        if router not in seen and state_of(client, router, "beta") == want:
                            seen[router] = time.time()
                    time.sleep(args.poll)
                fetched = beta.first_answer_with(pods, changed_at)
                if fetched is None or len(seen) < len(routers):
                    print(f"change {change}: not seen by every router", file=sys.stderr)
                    continue
                latencies += [at - fetched for at in seen.values()]
                time.sleep(args.period * 0.37)  # the next change lands at another phase
    if not latencies:
        print("no change was seen")
        return 1
    ms = sorted(1000 * x for x in latencies)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    print(
        f"{args.changes} changes x {args.routers} routers, period {args.period:g} s, "
        f"polled every {1000 * args.poll:g} ms"
    )
    print(
        f"fetch -> router view: p50 {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, "
        f"max {ms[-1]:.1f} ms (goal: every router within 100 ms)"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
