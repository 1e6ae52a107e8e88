"""Highly available checkers: exactly one writer, takeover within lease + period, fencing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from fedredirect.simulator import MemberSimState
from tests.support.members import running_members
from tests.support.procs import checker, wait_for, write_config

PERIOD = 0.3
LEASE = 1.5


class SnapshotWatcher:
    """Records (time, checker_id, fence) of every snapshot published, from pub/sub."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self.client = redis.Redis.from_url(redis_url)
        self.prefix = prefix
        self.seen: list[tuple[float, str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        pubsub = self.client.pubsub()
        pubsub.subscribe(f"{self.prefix}:changed")
        while not self._stop.is_set():
            message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message is None:
                continue
            raw = self.client.get(f"{self.prefix}:heartbeat")
            if raw:
                heartbeat = json.loads(raw)
                self.seen.append((time.monotonic(), heartbeat["checker_id"], heartbeat["fence"]))
        pubsub.close()

    def __enter__(self) -> SnapshotWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.client.close()

    def writers_since(self, t: float) -> set[str]:
        return {who for at, who, _ in self.seen if at >= t}


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[Path]:
    with running_members(MemberSimState("alpha"), MemberSimState("beta")) as (a, b):
        yield write_config(
            tmp_path / "f.yaml",
            {"alpha": (a, 10.0, True), "beta": (b, 10.0, False)},
            check={"period": PERIOD, "timeout": 0.5, "jitter": 0.0, "lease": LEASE},
        )


def leader(redis_url: str, prefix: str) -> str | None:
    with redis.Redis.from_url(redis_url) as client:
        value = client.get(f"{prefix}:leader")
    return value.decode() if value else None


@dataclass
class Pair:
    """Two checkers on one federation, a watcher of what gets published, who leads first."""

    watch: SnapshotWatcher
    leader: subprocess.Popen[bytes]
    standby: subprocess.Popen[bytes]
    leader_log: Path


@pytest.fixture
def pair(federation: Path, redis_url: str, key_prefix: str, tmp_path: Path) -> Iterator[Pair]:
    with (
        SnapshotWatcher(redis_url, key_prefix) as watch,
        checker(federation, redis_url, key_prefix, tmp_path / "c1.log") as c1,
        checker(federation, redis_url, key_prefix, tmp_path / "c2.log") as c2,
    ):
        first = wait_for(lambda: leader(redis_url, key_prefix), what="a leader")
        pid = int(first.split("|")[0].rsplit(":", 1)[1])
        assert pid in (c1.pid, c2.pid)
        if c1.pid == pid:
            yield Pair(watch, c1, c2, tmp_path / "c1.log")
        else:
            yield Pair(watch, c2, c1, tmp_path / "c2.log")


def test_one_writer_and_takeover_when_the_leader_dies(pair: Pair) -> None:
    watch = pair.watch
    wait_for(lambda: len(watch.seen) >= 5, what="snapshots flowing")
    steady = time.monotonic()
    wait_for(lambda: len([s for s in watch.seen if s[0] > steady]) >= 5, what="more")
    assert len(watch.writers_since(0)) == 1  # never two writers
    os.kill(pair.leader.pid, signal.SIGKILL)  # dies without releasing its lease
    killed = time.monotonic()
    wait_for(
        lambda: watch.writers_since(killed),
        timeout=LEASE + 5 * PERIOD + 2,
        what="the standby takes over",
    )
    takeover = next(at for at, _, _ in watch.seen if at >= killed) - killed
    print(f"takeover after leader SIGKILL: {takeover:.2f}s (lease {LEASE}s, period {PERIOD}s)")
    assert takeover <= LEASE + 2 * PERIOD + 0.5
    new_writer = watch.writers_since(killed)
    assert len(new_writer) == 1 and str(pair.standby.pid) in next(iter(new_writer))
    fences = [fence for _, _, fence in watch.seen]
    assert fences == sorted(fences) and fences[-1] > fences[0]


def test_a_paused_old_leader_cannot_overwrite_the_new_one(pair: Pair) -> None:
    watch, old, other = pair.watch, pair.leader, pair.standby
    os.kill(old.pid, signal.SIGSTOP)  # paused, not dead: it still believes it leads
    try:
        paused = time.monotonic()
        wait_for(
            lambda: any(str(other.pid) in w for w in watch.writers_since(paused)),
            timeout=LEASE + 5,
            what="the other checker takes over",
        )
    finally:
        os.kill(old.pid, signal.SIGCONT)
    resumed = time.monotonic()
    # let the old leader run several of its periods; none of its writes may land
    wait_for(lambda: len([s for s in watch.seen if s[0] > resumed]) >= 8, what="snapshots")
    writers = watch.writers_since(resumed)
    assert len(writers) == 1 and str(old.pid) not in next(iter(writers))
    fences = [fence for _, _, fence in watch.seen]
    assert fences == sorted(fences)
    assert "no longer the writer" in pair.leader_log.read_text()


def test_clean_stop_hands_over_at_once(pair: Pair) -> None:
    stopped = time.monotonic()
    pair.leader.terminate()  # SIGTERM: the checker releases its lease on the way out
    pair.leader.wait(10)
    standby = str(pair.standby.pid)

    def taken_over() -> float | None:
        # The leader may still publish between `stopped` and its exit: wait for the standby.
        seen = pair.watch.seen
        return next((at for at, writer, _ in seen if at >= stopped and standby in writer), None)

    handover = wait_for(taken_over, timeout=LEASE + 2, what="handover") - stopped
    print(f"handover after a clean stop: {handover:.2f}s")
    assert handover < LEASE  # released, not expired
