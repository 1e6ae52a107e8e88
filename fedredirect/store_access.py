"""The store a command names with ``--redis-url`` and ``--key-prefix``: opening it, and
naming it in messages without its password."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from shared.store import Store, connect


@contextlib.asynccontextmanager
async def open_store(redis_url: str, key_prefix: str) -> AsyncIterator[Store]:
    """A store on its own client, closed when the command is done with it."""
    store = Store(connect(redis_url), key_prefix)
    try:
        yield store
    finally:
        await store.client.aclose()


def redacted(url: str) -> str:
    """The Redis URL without its password, for logs."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"
