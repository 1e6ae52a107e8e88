"""What the bench scripts share: their options' help, a redis-server of their own, a checker
and routers on it or a snapshot published by hand, and what a process costs (CPU time and
memory, read from /proc)."""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from fedredirect.dev import child, fedredirect_command, find_redis_server, free_port, start_redis
from shared.config import FederationConfig
from shared.records import CheckerHeartbeat, MemberObservation
from shared.store import Store, connect

#: The checkout the benches run from.
ROOT = Path(__file__).resolve().parents[1]


def git(*args: str) -> str:
    """What ``git ARGS`` prints, run in this checkout."""
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout


def tree_at(rev: str, into: Path) -> Path:
    """The product and its benches as they were at ``rev``, extracted into ``into``: what a
    bench measures this tree against."""
    into.mkdir(parents=True, exist_ok=True)
    paths = ["bench", "checker", "fedredirect", "router", "shared"]
    archive = subprocess.run(
        ["git", "archive", rev, *paths], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def arguments(
    doc: str | None, *, quick: str | None = None, json: bool = False
) -> argparse.ArgumentParser:
    """A bench's option parser, its module docstring ``doc`` as its --help, line breaks
    kept: the docstring says how to run it and what it prints. ``quick``: the help of its
    --quick smoke run, if it has one; ``json``: it takes --json, a file for its results."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    if quick:
        p.add_argument("--quick", action="store_true", help=quick)
    if json:
        p.add_argument("--json", type=Path, default=None, help="also write the results here")
    return p


def redis_server(workdir: Path, port: int = 0) -> contextlib.AbstractContextManager[str]:
    """A redis-server in ``workdir`` (port 0: a free one); the context yields its URL."""
    return start_redis(find_redis_server(), port, workdir)


def checker_and_routers(
    stack: contextlib.ExitStack,
    workdir: Path,
    config: Path,
    store: tuple[str, ...],
    routers: int = 2,
    checker_args: tuple[str, ...] = (),
) -> list[str]:
    """A ``fedredirect checker`` on ``config`` and ``routers`` routers, all on the store
    ``store`` names (its CLI options), logging into ``workdir``, stopped with ``stack``;
    the routers' URLs."""
    checker = fedredirect_command("checker", "--config", str(config), *checker_args, *store)
    stack.enter_context(child(checker, log=workdir / "checker.log"))
    urls = []
    for i in range(routers):
        port = free_port()
        cmd = fedredirect_command("router", "--port", str(port), *store)
        stack.enter_context(child(cmd, log=workdir / f"router{i + 1}.log"))
        urls.append(f"http://127.0.0.1:{port}")
    return urls


async def publish_snapshot(
    redis_url: str,
    prefix: str,
    config: FederationConfig,
    observations: Mapping[str, MemberObservation],
    checker_id: str,
    lease: float,
) -> None:
    """Publish ``config`` and ``observations`` once under ``prefix``, as the checker
    ``checker_id`` does holding the lease for ``lease`` seconds: what the routers of a bench
    serve from, with no checker running."""
    store = Store(connect(redis_url), prefix)
    try:
        fence = await store.hold_lease(checker_id, lease)
        assert fence is not None
        heartbeat = CheckerHeartbeat(checker_id, time.time(), fence=fence)
        assert await store.publish(config, observations, heartbeat) is not None
    finally:
        await store.client.aclose()


def rss_mb(pid: int) -> dict[str, float]:
    """Process ``pid``'s resident memory now (``rss_mb``) and at its peak (``peak_mb``)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return {"rss_mb": fields["VmRSS"], "peak_mb": fields["VmHWM"]}


def cpu_seconds(pid: int) -> float:
    """User and system CPU of process ``pid`` (every thread) and of its children (nginx's
    worker, say)."""
    total = 0.0
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for each in [pid, *map(int, children)]:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total
