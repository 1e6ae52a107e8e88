"""How many routers share the federation's launches, counted in a real redis-server
(router/sent.py, shared/store.py): each registers every interval, one not seen for three
intervals is counted out, one that stops cleanly at once; a router that cannot reach the
store keeps the last number."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest

from router.sent import LaunchCounts, count_routers
from shared.store import Store, connect
from tests.support.checker_loop import eventually

pytestmark = pytest.mark.anyio
INTERVAL = 0.5  # counted out after 1.5 s


@pytest.fixture
async def store(redis_url: str, key_prefix: str) -> AsyncIterator[Store]:
    store = Store(connect(redis_url), key_prefix)
    yield store
    await store.client.aclose()


@contextlib.asynccontextmanager
async def registered(store: Store, name: str) -> AsyncIterator[LaunchCounts]:
    """A router named ``name`` registering every INTERVAL until the block ends."""
    counts = LaunchCounts()
    task = asyncio.create_task(count_routers(store, counts, INTERVAL, name))
    try:
        yield counts
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_two_routers_count_two_and_one_that_stops_cleanly_is_counted_out(
    store: Store,
) -> None:
    async with registered(store, "host:1") as first:
        async with registered(store, "host:2") as second:
            await eventually(lambda: first.routers == second.routers == 2)
        await eventually(lambda: first.routers == 1)
    assert await store.client.zcard(store.routers_key) == 0


async def test_a_router_that_stops_registering_is_counted_out_after_three_intervals(
    store: Store, redis_url: str, key_prefix: str
) -> None:
    crashed = Store(connect(redis_url), key_prefix)  # another router's own client
    try:
        async with registered(store, "host:1") as counts:
            await eventually(lambda: store.client.zscore(store.routers_key, "host:1"))
            # registers once, then never again: counted for three intervals, then out
            assert await crashed.register_router("crashed:9", 3 * INTERVAL) == 2
            await eventually(lambda: counts.routers == 2)
            await eventually(lambda: counts.routers == 1, timeout=5.0)
    finally:
        await crashed.client.aclose()
    members = await store.client.zrange(store.routers_key, 0, -1)
    assert members == []


async def test_a_router_that_cannot_reach_the_store_keeps_the_last_number(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unreachable = Store(connect("redis://127.0.0.1:1/0", timeout=0.2), "nowhere")
    counts = LaunchCounts()
    counts.set_routers(3)
    caplog.set_level(logging.WARNING, logger="fedredirect.router")
    task = asyncio.create_task(count_routers(unreachable, counts, INTERVAL, "host:1"))
    try:
        await eventually(lambda: "cannot register in the store" in caplog.text)
        assert counts.routers == 3
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await unreachable.client.aclose()
