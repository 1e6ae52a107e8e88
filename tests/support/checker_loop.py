"""A checker run in-process as a task on the test's own event loop, against a real Redis,
and waiting on a condition from inside that loop (a blocking wait would stop the checker)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar, cast

from checker.service import Checker
from shared.config import FederationConfig
from shared.store import Store, connect

T = TypeVar("T")


@contextlib.asynccontextmanager
async def running_checker(
    config: FederationConfig,
    redis_url: str,
    prefix: str,
    checker_id: str | None = None,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[tuple[Checker, Store]]:
    """A checker of ``config`` publishing under ``prefix`` (its records and heartbeats
    timed by ``clock``), and a store to read it back; the checker is cancelled and the
    store closed at the end."""
    store = Store(connect(redis_url), prefix)
    checker = Checker(config, store, checker_id=checker_id, clock=clock)
    task = asyncio.create_task(checker.run())
    try:
        yield checker, store
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.client.aclose()


async def eventually(
    check: Callable[[], T | Awaitable[T | None] | None], timeout: float = 10.0
) -> T:
    """Call ``check`` (awaiting what it returns, if it is awaitable) every 20 ms until it
    returns something truthy, and return that; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        result = await value if inspect.isawaitable(value) else value
        if result:
            return cast(T, result)
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout}s")
