"""A member that passes /health but fails half its launches is ejected as ``failing`` by
every router within two check periods, and takes its full share again once its failures
stop and its ejection is over; the healthy members are never ejected (issue 19's goal)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import httpx

from fedredirect.simulator import MemberServer, MemberSimState
from tests.support.build_stream import routed_launch
from tests.support.members import running_members
from tests.support.procs import status, wait_for
from tests.support.stack import Stack, running_stack

PERIOD = 2.0
EJECTION = 6.0
NAMES = ("alpha", "beta", "gamma")


class Launches:
    """Real launches from threads: a router's 307, then the member's event stream to its
    end. Keeps (when routed, member, last phase) for every launch."""

    def __init__(self, stack: Stack, workers: int = 4) -> None:
        self.stack = stack
        self.by_url = {m.url: name for name, m in stack.members.items()}
        self.done: list[tuple[float, str, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(workers)]

    def _run(self, worker: int) -> None:
        i = worker
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                router = self.stack.routers[i % len(self.stack.routers)]
                at, member, phase = routed_launch(client, router, f"/build/gh/org/repo{i}/HEAD")
                self.done.append((at, self.by_url[member], phase))
                i += len(self._threads)

    def __enter__(self) -> Launches:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def to(self, start: float, end: float = float("inf")) -> Counter[str]:
        return Counter(member for at, member, _ in self.done if start <= at < end)


class States:
    """Every member's state on every router, polled until the block ends."""

    def __init__(self, routers: tuple[str, ...]) -> None:
        self.routers = routers
        self.seen: list[tuple[float, str, dict[str, str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for router in self.routers:
                doc = status(router)
                states = {name: m["state"] for name, m in doc["members"].items()}
                self.seen.append((time.monotonic(), router, states))

    def __enter__(self) -> States:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def failing_everywhere(self, member: str) -> bool:
        latest = {router: states for _, router, states in self.seen}
        return len(latest) == len(self.routers) and all(
            states[member] == "failing" for states in latest.values()
        )


def set_failure_share(member: MemberServer, share: float) -> None:
    httpx.post(f"{member.url}/_sim", json={"launch_failure_share": share}).raise_for_status()


def state(router: str, member: str) -> str:
    state: str = status(router)["members"][member]["state"]
    return state


def shares(counts: Mapping[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {name: counts[name] / total for name in NAMES}


def test_a_member_failing_half_its_launches_is_ejected_then_takes_its_share_again(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    states = [MemberSimState(name, rate_limit=0, build_delay=0.0) for name in NAMES]
    settings = {
        "check": {"period": PERIOD, "timeout": 1.0, "jitter": 0.0, "failed_period": 1.0},
        "outcomes": {"min_launches": 5, "base_ejection": EJECTION, "max_ejection": 4 * EJECTION},
    }
    with (
        running_members(*states) as servers,
        running_stack(servers, redis_url, key_prefix, tmp_path, routers=2, **settings) as stack,
        Launches(stack) as launches,
        States(stack.routers) as seen,
    ):
        beta = stack.members["beta"]
        wait_for(lambda: min(launches.to(0).get(n, 0) for n in NAMES) >= 20, 30, "launches")
        wait_for(lambda: time.monotonic() - launches.done[0][0] > 2 * PERIOD, 30, "a window")

        failing_from = time.monotonic()
        set_failure_share(beta, 0.5)
        wait_for(lambda: seen.failing_everywhere("beta"), 4 * PERIOD, "beta failing everywhere")
        ejected_after = time.monotonic() - failing_from
        # The failures go on for a while into the ejection, then stop.
        wait_for(lambda: time.monotonic() > failing_from + 2 * PERIOD + 2.0, 10, "some launches")
        set_failure_share(beta, 0.0)
        stopped = time.monotonic()

        # Within two periods of the failures starting (and a second to reach the routers),
        # beta gets less than 5 % of launches until its failures stop.
        during = launches.to(failing_from + 2 * PERIOD + 1.0, stopped)
        assert sum(during.values()) >= 20, during
        assert shares(during)["beta"] < 0.05, (during, ejected_after)

        # Once the ejection is over (its window starting afresh), beta's full share again.
        wait_for(
            lambda: all(state(r, "beta") == "eligible" for r in stack.routers),
            EJECTION + 4 * PERIOD,
            "beta eligible again",
        )
        back = time.monotonic()
        wait_for(lambda: sum(launches.to(back).values()) >= 90, 30, "launches after the return")
        after = shares(launches.to(back))
        assert 0.2 <= after["beta"] <= 0.47, after

    # In the whole run the healthy members were never ejected, and never more than one.
    for _, _, states_seen in seen.seen:
        assert states_seen["alpha"] != "failing" and states_seen["gamma"] != "failing"
        assert sum(state == "failing" for state in states_seen.values()) <= 1
    assert any(states_seen["beta"] == "failing" for _, _, states_seen in seen.seen)
    assert any(member == "beta" and phase == "failed" for _, member, phase in launches.done)
