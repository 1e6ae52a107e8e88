"""Redis Sentinel: a master, a replica and three sentinels on 127.0.0.1; the master dies."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis

from fedredirect.dev import child, find_redis_server, redis_command
from tests.support.load import Load
from tests.support.procs import free_port, status, wait_for
from tests.support.stack import named_members, running_stack

MASTER = "fedmaster"


class SentinelCluster:
    def __init__(self, workdir: Path, stack: ExitStack) -> None:
        binary = find_redis_server()
        self.master_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.master = stack.enter_context(
            child(redis_command(binary, self.master_port, workdir), quiet=True)
        )
        replica_dir = workdir / "replica"
        replica_dir.mkdir()
        replica = redis_command(binary, self.replica_port, replica_dir)
        replica += ["--replicaof", "127.0.0.1", str(self.master_port)]
        stack.enter_context(child(replica, quiet=True))
        for port in self.sentinel_ports:
            conf = workdir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 1000\n"
                f"sentinel failover-timeout {MASTER} 5000\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            stack.enter_context(child([binary, str(conf), "--sentinel"], quiet=True))
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        self.url = f"redis+sentinel://{hosts}/{MASTER}/0"

    def sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=1, decode_responses=True)

    def master_address(self) -> tuple[str, int]:
        host, port = self.sentinel(self.sentinel_ports[0]).sentinel_get_master_addr_by_name(MASTER)
        return host, int(port)

    def ready(self) -> bool:
        """Every sentinel sees the master, the replica and the two other sentinels."""
        for port in self.sentinel_ports:
            info = self.sentinel(port).sentinel_master(MASTER)
            if int(info["num-other-sentinels"]) < 2 or int(info["num-slaves"]) < 1:
                return False
        replica = redis.Redis(port=self.replica_port, socket_timeout=1, decode_responses=True)
        return bool(replica.info("replication")["master_link_status"] == "up")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    with ExitStack() as stack:
        cluster = SentinelCluster(tmp_path, stack)
        # Sentinels find each other by hellos every 2 s: allow for a loaded machine.
        wait_for(cluster.ready, 60, "sentinels, master and replica to know each other")
        yield cluster


def test_failover_keeps_routers_serving_and_the_checker_publishing(
    cluster: SentinelCluster, tmp_path: Path
) -> None:
    with (
        named_members("alpha", "beta") as members,
        running_stack(members, cluster.url, "sentinel", tmp_path, routers=2, timeout=20) as stack,
    ):
        r1, r2 = stack.routers
        with Load(stack.routers, members) as load:
            killed = time.monotonic()
            cluster.master.kill()  # the master dies
            cluster.master.wait()
            wait_for(
                lambda: cluster.master_address()[1] == cluster.replica_port,
                30,
                "sentinels promote the replica",
            )
            failover = time.monotonic() - killed
            for r in (r1, r2):
                wait_for(
                    lambda r=r: (
                        status(r)["checker"]["heartbeat_age_seconds"] < 1.0
                        and status(r)["router"]["store_error"] is None
                    ),
                    30,
                    "checker publishing to the new master, router reading it",
                )
            resumed = time.monotonic() - killed
        outcomes = load.since(killed)
    print(
        f"sentinel failover: promoted after {failover:.1f}s, publishing again after "
        f"{resumed:.1f}s; launches during: {dict(outcomes)}"
    )
    assert set(outcomes) <= {"alpha", "beta"}, outcomes
    assert sum(outcomes.values()) > 50
