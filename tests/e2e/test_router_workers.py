"""`fedredirect router --workers 3`: three processes on one port, and /metrics still adds up.

A real redis-server, three simulated members and a checker; the router runs as a subprocess
with its prometheus-client multiprocess directory in the test's own tmp_path, so the test can
see which worker counted what. Every launch and every scrape is a new connection, so the
kernel hands them to whichever worker accepts first.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from fedredirect.dev import fedredirect_command
from tests.support.procs import wait_for
from tests.support.stack import running_workers

WORKERS = 3
LAUNCHES = 600


def redirect_total(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "fedredirect_redirects_total"
    )


def new_connections(url: str) -> httpx.Client:
    """A client whose every request is a new connection, so the kernel hands each to
    whichever worker accepts first; one client, so no request pays for a new SSL context
    (a tenth of a second on a busy machine)."""
    return httpx.Client(base_url=url, timeout=5, headers={"connection": "close"})


def scrape(client: httpx.Client) -> float:
    """fedredirect_redirects_total summed over members and reasons, on a new connection."""
    response = client.get("/metrics")
    response.raise_for_status()
    return redirect_total(response.text)


def workers_of(pid: int) -> set[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {int(c) for c in children}


def counted_by_worker(directory: Path) -> dict[int, float]:
    """Redirects per worker pid, read from each worker's own multiprocess file."""
    out: dict[int, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.removeprefix("counter_"))
        for metric in MultiProcessCollector.merge([str(path)]):
            out[pid] = out.get(pid, 0) + sum(
                s.value for s in metric.samples if s.name == "fedredirect_redirects_total"
            )
    return out


def test_three_workers_serve_one_port_and_metrics_add_up(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    weights = {"alpha": 50.0, "beta": 40.0, "gamma": 30.0}
    with (
        running_workers(weights, redis_url, key_prefix, tmp_path, WORKERS) as (stack, router),
        new_connections(stack.router) as client,
    ):
        metrics_dir, router_log = stack.workdir / "metrics", stack.router_log()
        workers = wait_for(
            lambda: len(workers_of(router.pid)) == WORKERS and workers_of(router.pid),
            20,
            "three worker processes",
        )
        assert scrape(client) == 0

        locations = set()
        for i in range(LAUNCHES):
            response = client.get(f"/build/gh/org/repo{i}/HEAD")
            assert response.status_code == 307, response.text
            locations.add(response.headers["location"].split("/build/")[0])
        assert locations == stack.member_urls()

        # Each worker shares its counts within a second, and before it answers a
        # scrape: once all have, every scrape, whoever answers it, sees them all.
        wait_for(
            lambda: sum(counted_by_worker(metrics_dir).values()) == LAUNCHES,
            10,
            "every worker's counts in its file",
        )
        per_worker = counted_by_worker(metrics_dir)
        assert set(per_worker) <= workers
        assert sum(1 for n in per_worker.values() if n > 0) >= 2, per_worker
        totals = [scrape(client) for _ in range(4 * WORKERS)]
        assert totals == [LAUNCHES] * len(totals), (totals, per_worker)

        # A worker that dies is replaced; what it counted stays in the total.
        victim = max(per_worker, key=lambda pid: per_worker[pid])
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: victim not in workers_of(router.pid) and len(workers_of(router.pid)) == WORKERS,
            20,
            "a new worker in place of the killed one",
        )
        assert router.poll() is None
        for i in range(30):  # the new worker read its view before it took any
            response = client.get(f"/build/gh/org/again{i}/HEAD")
            assert response.status_code == 307, response.text
        wait_for(lambda: scrape(client) == LAUNCHES + 30, 10, "the total after a restart")
        assert {scrape(client) for _ in range(2 * WORKERS)} == {LAUNCHES + 30}

        router.terminate()
        assert router.wait(timeout=15) == 0, router_log.read_text()
        # Each worker stopped on its own: its requests and its lifespan finished, exit 0.
        assert "stopped with" not in router_log.read_text()
    assert not workers_of_alive(workers | set(per_worker))


def workers_of_alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (not zombies of another parent)."""
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def test_workers_must_be_at_least_one() -> None:
    result = subprocess.run(
        [*fedredirect_command("router", "--workers", "0")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--workers: must be 1 or more, got 0" in result.stderr
