"""The router's part of history: its launch counts kept every minute, and /history.json.

Neither is on the redirect path: the counts are read from memory once a minute, and
/history.json reads the store when asked (a Redis outage makes it 503, nothing else).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from router.sent import router_name
from shared.history import parse_since, select
from shared.store import Store

log = logging.getLogger("fedredirect.router")

#: How often a router adds its launch counts to history (seconds).
LAUNCHES_EVERY = 60.0
DEFAULT_SINCE = "24h"


def launches_event(
    router: str, started_at: float, counts: Counter[tuple[str, str]], now: float
) -> dict[str, Any]:
    """This router's launches per member since it started (all reasons together)."""
    per_member: Counter[str] = Counter()
    for (member, _reason), count in counts.items():
        per_member[member] += count
    return {
        "event": "launches",
        "router": router,
        "at": now,
        "started_at": started_at,
        "counts": dict(sorted(per_member.items())),
    }


async def record_launches(
    store: Store,
    counts: Callable[[], Counter[tuple[str, str]]],
    max_entries: Callable[[], int],
    every: float = LAUNCHES_EVERY,
    clock: Callable[[], float] = time.time,
) -> None:
    """Forever: every ``every`` seconds, add this router's launch counts to history."""
    router = router_name()
    started_at = clock()
    while True:
        await asyncio.sleep(every)
        try:
            event = launches_event(router, started_at, counts(), clock())
            await store.append_history([event], max_entries())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # history is for people: never a reason to stop
            log.warning("cannot write launch counts to history: %s", exc)


async def history_doc(
    store: Store, since: str | None, member: str | None, now: float
) -> tuple[int, dict[str, Any]]:
    """The /history.json answer: status and document."""
    try:
        start = parse_since(since or DEFAULT_SINCE, now)
    except ValueError as exc:
        return 400, {"error": str(exc)}
    try:
        available_since, events = await store.read_history(start)
    except Exception as exc:
        return 503, {"error": f"cannot read history from the store: {exc}"}
    return 200, {
        "since": start,
        "member": member,
        "available_since": available_since,
        "events": select(events, start, member),
    }
