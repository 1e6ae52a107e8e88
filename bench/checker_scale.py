"""How the checker scales: CPU, memory and check regularity at 100, 1,000 and 5,000 members.

Usage::

    python bench/checker_scale.py                       # sizes 100,1000,5000, period 10 s
    python bench/checker_scale.py --sizes 100,1000 --periods 3 --json out.json

Each member is its own origin, as real members are their own hosts: member i is
``http://127.0.X.Y:PORT`` (every 127.0.0.0/8 address is loopback), all answered by one
nginx (from Debian) serving BinderHub's /health, /versions and /metrics samples (the
metrics of a member that has launched 300 repositories), so the members cost
the checker exactly what real ones would and cost the machine almost nothing. For each
size the script starts a redis-server of its own, nginx and one ``fedredirect checker``
process (period ``--period``), waits for the first round (every member eligible in the
store; it opens every connection, so it is slower than the steady state) and one more
period, then measures ``--periods`` periods:

- the checker's CPU (user + system, from /proc) as a share of one core, and per member;
- its RSS at the end;
- from nginx's access log: requests per member per period (must be 3: /health, /versions
  and /metrics, the launch outcomes), and the longest gap between two checks of one member
  (every member checked every period means at most period x (1 + jitter) plus a little);
- from the store, sampled every few seconds: members that were ever not eligible (all
  are healthy here, so any is a false report, e.g. "unreachable" from a late check).

It prints a table and, with --json, writes the numbers. Nothing here is a test: the goals
(issue "Fast at any size") are printed beside the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml
from common import cpu_seconds, redis_server, rss_mb

from fedredirect.dev import child, fedredirect_command, free_port
from fedredirect.launchmetrics import LaunchMetrics
from shared.evaluate import evaluate
from shared.store import Store, connect

SAMPLES = Path(__file__).resolve().parents[1] / "fedredirect" / "samples"
JITTER = 0.1


def member_address(i: int) -> str:
    """A loopback address of its own for member i: 127.0.X.Y, Y in 2..251."""
    return f"127.0.{i // 250}.{i % 250 + 2}"


def metrics_sample(workdir: Path, repositories: int = 300) -> Path:
    """A busy member's /metrics as BinderHub serves it: one launch of each repository."""
    metrics = LaunchMetrics()
    for i in range(repositories):
        metrics.launch_time.labels(status="success", retries=0).observe(5.0)
        metrics.launch_count.labels(status="success", provider="GitHub", repo=f"org/r{i}").inc()
    path = workdir / "metrics.txt"
    path.write_bytes(metrics.exposition())
    return path


def nginx_conf(workdir: Path, port: int) -> Path:
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
worker_rlimit_nofile 65536;
events {{ worker_connections 32768; }}
http {{
  log_format checks '$msec $server_addr $uri';
  access_log {workdir}/access.log checks;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  server {{
    listen {port} reuseport backlog=4096;
    default_type application/json;
    location = /health {{ alias {SAMPLES}/health-ok.json; }}
    location = /versions {{ alias {SAMPLES}/versions.json; }}
    location = /metrics {{ alias {metrics_sample(workdir)}; default_type text/plain; }}
  }}
}}
"""
    )
    return conf


def read_log(path: Path, since: float, until: float) -> dict[str, list[tuple[float, str]]]:
    """address -> [(time, uri)] for requests logged in [since, until)."""
    hits: dict[str, list[tuple[float, str]]] = defaultdict(list)
    with path.open() as log:
        for line in log:
            parts = line.split()
            if len(parts) != 3:
                continue
            at = float(parts[0])
            if since <= at < until:
                hits[parts[1]].append((at, parts[2]))
    return hits


async def not_eligible(redis_url: str, prefix: str) -> set[str]:
    store = Store(connect(redis_url, timeout=10), prefix)
    try:
        snap = await store.read()
    finally:
        await store.client.aclose()
    if snap is None:
        return {"<nothing published>"}
    view = evaluate(snap.config, snap.observations, snap.drains, snap.heartbeat, time.time())
    return {m.name for m in view.members if not m.eligible}


def run_size(n: int, period: float, periods: int, workdir: Path) -> dict[str, Any]:
    port = free_port()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    conf = nginx_conf(workdir, port)
    config = workdir / "federation.yaml"
    members = {
        f"m{i}": {"url": f"http://{member_address(i)}:{port}", "weight": 1, "prime": i == 0}
        for i in range(n)
    }
    config.write_text(
        yaml.safe_dump(
            {
                "check": {"period": period, "jitter": JITTER, "timeout": 2, "retries": 2},
                "members": members,
            },
            sort_keys=False,
        )
    )
    prefix = f"scale{n}"
    with (
        redis_server(workdir) as redis_url,
        child([nginx, "-c", str(conf)], quiet=True),
    ):
        time.sleep(0.3)  # nginx binds its port; the checker retries anyway
        args = ["checker", "--config", str(config), "--redis-url", redis_url]
        with child(
            fedredirect_command(*args, "--key-prefix", prefix), log=workdir / f"checker-{n}.log"
        ) as proc:
            # the first round (every member checked once: new connections, so slower than
            # the steady state), then one whole period before measuring
            first_round = time.monotonic()
            while asyncio.run(not_eligible(redis_url, prefix)):
                if time.monotonic() - first_round > 20 * period:
                    raise SystemExit(f"{n} members: the first round did not finish")
                time.sleep(1)
            first_round = time.monotonic() - first_round
            time.sleep(period)
            bad: set[str] = set()
            t0, c0 = time.time(), cpu_seconds(proc.pid)
            end = t0 + periods * period
            samples = 0
            while time.time() < end:
                bad |= asyncio.run(not_eligible(redis_url, prefix))
                samples += 1
                time.sleep(min(period / 2, max(0.0, end - time.time())))
            t1, c1 = time.time(), cpu_seconds(proc.pid)
            rss = rss_mb(proc.pid)["rss_mb"]
    hits = read_log(workdir / "access.log", t0, t1)
    window = t1 - t0
    per_member = [len(hits.get(member_address(i), [])) for i in range(n)]
    gaps = []
    for i in range(n):
        times = sorted(at for at, uri in hits.get(member_address(i), []) if uri == "/versions")
        gaps.extend(b - a for a, b in itertools.pairwise(times))
    cpu = (c1 - c0) / window
    return {
        "members": n,
        "cpu_core_share": cpu,
        "cpu_ms_per_member_per_period": 1000 * (c1 - c0) / n / (window / period),
        "rss_mb": rss,
        "requests_per_member_per_period_min": min(per_member) / (window / period),
        "requests_per_member_per_period_max": max(per_member) / (window / period),
        "members_never_checked": sum(1 for c in per_member if c == 0),
        "longest_gap_s": max(gaps) if gaps else float("nan"),
        "gap_p99_s": sorted(gaps)[int(0.99 * (len(gaps) - 1))] if gaps else float("nan"),
        "ever_not_eligible": len(bad),
        "store_samples": samples,
        "window_s": window,
        "first_round_s": first_round,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--period", type=float, default=10.0)
    parser.add_argument("--periods", type=int, default=3, help="periods measured per size")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix=f"fedredirect-scale-{n}-") as tmp:
            print(f"... {n} members", file=sys.stderr, flush=True)
            rows.append(run_size(n, args.period, args.periods, Path(tmp)))
    head = ["members", "CPU (core)", "ms/member/period", "RSS MB", "req/member/period"]
    head += ["gap p99/max s", "never checked", "ever not eligible", "first round s"]
    table = [head]
    for r in rows:
        table.append(
            [
                str(r["members"]),
                f"{100 * r['cpu_core_share']:.1f} %",
                f"{r['cpu_ms_per_member_per_period']:.3f}",
                f"{r['rss_mb']:.0f}",
                f"{r['requests_per_member_per_period_min']:.2f}-"
                f"{r['requests_per_member_per_period_max']:.2f}",
                f"{r['gap_p99_s']:.1f}/{r['longest_gap_s']:.1f}",
                str(r["members_never_checked"]),
                str(r["ever_not_eligible"]),
                f"{r['first_round_s']:.0f}",
            ]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    by_size = {r["members"]: r for r in rows}
    print(f"\nperiod {args.period:g} s, jitter {JITTER}, {args.periods} periods measured per size")
    if 1000 in by_size:
        r = by_size[1000]
        print(
            f"goal 1,000 members: < 25 % of a core, nobody falsely out: "
            f"{100 * r['cpu_core_share']:.1f} %, {r['ever_not_eligible']} out, "
            f"RSS {r['rss_mb']:.0f} MB (goal <= 150)"
        )
    if 5000 in by_size:
        r = by_size[5000]
        print(
            f"goal 5,000 members: < 1 core, every member every period: "
            f"{100 * r['cpu_core_share']:.1f} %, longest gap {r['longest_gap_s']:.1f} s, "
            f"{r['members_never_checked']} never checked"
        )
    if 100 in by_size and 5000 in by_size:
        ratio = (
            by_size[5000]["cpu_ms_per_member_per_period"]
            / by_size[100]["cpu_ms_per_member_per_period"]
        )
        print(f"goal cost per member at 5,000 / at 100 <= 1.5: {ratio:.2f}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
