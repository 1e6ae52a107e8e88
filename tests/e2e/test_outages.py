"""Redis and checker outages: routers keep redirecting, say what is happening, and resync."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fedredirect.dev import find_redis_server, redis_command
from fedredirect.simulator import MemberServer
from tests.support.load import Load
from tests.support.procs import checker, free_port, router, status, wait_for, write_config
from tests.support.stack import named_members, running_stack


class Redis:
    """A redis-server of the test's own, which the test may kill, pause and restart."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            redis_command(find_redis_server(), self.port, self.workdir),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        wait_for(lambda: redis.Redis(port=self.port, socket_timeout=0.5).ping(), 10, "redis up")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)


@pytest.fixture
def own_redis() -> Iterator[Redis]:
    with tempfile.TemporaryDirectory() as tmp:
        server = Redis(Path(tmp))
        server.start()
        try:
            yield server
        finally:
            if server.proc and server.proc.poll() is None:
                server.signal(signal.SIGCONT)
                server.kill()


@pytest.fixture
def members() -> Iterator[dict[str, MemberServer]]:
    with named_members("alpha", "beta") as members:
        yield members


def test_routers_ride_out_a_redis_kill_and_a_pause(
    own_redis: Redis, members: dict[str, MemberServer], tmp_path: Path
) -> None:
    with running_stack(
        members, own_redis.url, "outage", tmp_path, routers=2, outage={"policy": "keep"}
    ) as stack:
        r1, r2 = stack.routers
        with Load(stack.routers, members) as load:
            start = time.monotonic()
            own_redis.kill()
            for r in (r1, r2):
                health = wait_for(
                    lambda r=r: (h := httpx.get(f"{r}/health")).status_code == 503 and h.json(),
                    what="router health reports the lost store",
                )
                assert health["store_error"]
                assert httpx.get(f"{r}/livez").status_code == 200  # still serving
                doc = wait_for(
                    lambda r=r: status(r)["outage"]["active"] and status(r), what="outage reported"
                )
                assert "heartbeat" in doc["outage"]["reason"]
                assert doc["router"]["store_error"]
            own_redis.start()  # back, empty: the checker must republish
            for r in (r1, r2):
                wait_for(
                    lambda r=r: httpx.get(f"{r}/health").status_code == 200,
                    20,
                    "router resynced after the restart",
                )
                wait_for(lambda r=r: not status(r)["outage"]["active"], what="outage over")
            killed_phase = load.since(start)

            paused = time.monotonic()
            own_redis.signal(signal.SIGSTOP)
            try:
                wait_for(lambda: status(r1)["outage"]["active"], what="outage during pause")
            finally:
                own_redis.signal(signal.SIGCONT)
            for r in (r1, r2):
                wait_for(
                    lambda r=r: httpx.get(f"{r}/health").status_code == 200,
                    20,
                    "router resynced after the pause",
                )
            paused_phase = load.since(paused)

    print(f"redis kill+restart: {dict(killed_phase)}; redis pause: {dict(paused_phase)}")
    assert set(killed_phase) <= {"alpha", "beta"}, killed_phase
    assert set(paused_phase) <= {"alpha", "beta"}, paused_phase
    assert sum(killed_phase.values()) > 50 and sum(paused_phase.values()) > 50


@pytest.mark.parametrize(("policy", "expected"), [("keep", {"alpha"}), ("all", {"alpha", "beta"})])
def test_checker_outage_applies_the_outage_policy(
    redis_url: str,
    key_prefix: str,
    members: dict[str, MemberServer],
    tmp_path: Path,
    policy: str,
    expected: set[str],
) -> None:
    config = write_config(
        tmp_path / "f.yaml",
        {"alpha": (members["alpha"], 10.0, True), "beta": (members["beta"], 10.0, False)},
        outage={"policy": policy},
    )
    members["beta"].state.total_pods = 100  # beta full: 'keep' keeps it out, 'all' sends to it
    with router(redis_url, key_prefix, tmp_path / "r.log") as r:
        with checker(config, redis_url, key_prefix, tmp_path / "checker.log") as proc:
            wait_for(lambda: status(r)["members"]["beta"]["state"] == "full", what="beta full")
            proc.kill()
        doc = wait_for(lambda: (d := status(r))["outage"]["active"] and d, what="outage")
        assert doc["outage"]["policy"] == policy
        assert "checker heartbeat" in doc["outage"]["reason"]
        with Load([r], members) as load:
            start = time.monotonic()
            wait_for(lambda: sum(load.since(start).values()) >= 200, what="launches")
        got = load.since(start)
        assert set(got) == expected, got
        assert httpx.get(f"{r}/health").status_code == 200  # the router itself is fine
        if policy == "all":
            beta = status(r)["members"]["beta"]
            assert beta["state"] == "stale"  # records aged into stale, launches still flow
