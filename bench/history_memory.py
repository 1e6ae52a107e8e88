"""Redis memory a day of history takes, for 10 and 100 members (defaults: one full record
per member every 5 minutes, a few transitions, and each router's launch counts a minute).

Usage::

    python bench/history_memory.py                 # 10 and 100 members, one day each
    python bench/history_memory.py --members 10,100,1000 --routers 4 --interval 60

It fills the history stream of a redis-server of its own exactly as the checker would
(observation events built from BinderHub's sample answers by the real parsers, a few
transitions per member a day, and the ``launches`` event each router process adds every
minute) and prints MEMORY USAGE of the stream, per day and per
14 days, with the number of entries (compare with history.max_entries).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import redis
from common import redis_server

from fedredirect.shapes import SHAPES
from router.history import LAUNCHES_EVERY, launches_event
from shared.history import observation_event
from shared.observe import next_observation
from shared.payloads import parse_health, parse_versions
from shared.store import Store, connect

T0 = 1_700_000_000.0
TRANSITIONS_A_DAY = 4  # per member: e.g. full and back, twice


def day_of_events(members: int, interval: float, routers: int) -> list[dict[str, Any]]:
    health = SHAPES["health-ok"]
    versions = parse_versions(200, SHAPES["versions"].body())
    events: list[dict[str, Any]] = []
    for i in range(members):
        name = f"member-{i:04d}"
        record = None
        for k in range(int(86400 / interval)):
            at = T0 + k * interval
            obs = parse_health(health.status, health.body(), at)
            record, _ = next_observation(
                record, name, at, health=obs, versions=versions, versions_error=None
            )
            events.append(observation_event(record))
        for k in range(TRANSITIONS_A_DAY):
            events.append(
                {
                    "event": "member_state_changed",
                    "member": name,
                    "old": "eligible",
                    "new": "full",
                    "reasons": ["full: 95 pods + headroom 10 >= quota 100"],
                    "at": T0 + k * 3600,
                }
            )
    counts = Counter({(f"member-{i:04d}", "balancer"): 1000 * i for i in range(members)})
    for r in range(routers):
        for k in range(int(86400 / LAUNCHES_EVERY)):
            events.append(launches_event(f"router-{r}", T0, counts, T0 + k * LAUNCHES_EVERY))
    return events


async def fill(url: str, prefix: str, events: list[dict[str, Any]]) -> None:
    store = Store(connect(url), prefix)
    try:
        for start in range(0, len(events), 5000):
            await store.append_history(events[start : start + 5000], max_entries=10**9)
    finally:
        await store.client.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", default="10,100")
    parser.add_argument("--interval", type=float, default=300.0, help="observation_interval")
    parser.add_argument("--routers", type=int, default=2, help="router processes (Helm: 2)")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="fedredirect-history-") as tmp,
        redis_server(Path(tmp)) as url,
    ):
        client = redis.Redis.from_url(url)
        print("members  entries/day  MB/day  MB/14 days  bytes/entry")
        for n in (int(x) for x in args.members.split(",")):
            prefix = f"h{n}"
            events = day_of_events(n, args.interval, args.routers)
            asyncio.run(fill(url, prefix, events))
            used = client.memory_usage(f"{prefix}:history", samples=0) or 0
            print(
                f"{n:7d}  {len(events):11d}  {used / 1e6:6.1f}  {14 * used / 1e6:10.0f}"
                f"  {used / len(events):11.0f}"
            )
        client.close()
    print(
        f"observation_interval {args.interval:g} s; {TRANSITIONS_A_DAY} transitions/member/day;"
        f" {args.routers} router processes, launch counts every {LAUNCHES_EVERY:g} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
