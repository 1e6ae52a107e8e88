"""Fixtures shared by every kind of test: a real redis-server, started once per session, and
a federation started on it for a test."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_server import redis_server
from tests.support.stack import StartStack, weighted_stack

_prefixes = itertools.count()


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """The event loop of every async test: asyncio, as the checker and router run on."""
    return "asyncio"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server on 127.0.0.1 for the whole session (never a mock)."""
    with redis_server() as url:
        yield url


@pytest.fixture
def key_prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix of its own for each test, so tests sharing the Redis never collide."""
    return f"test{next(_prefixes)}-{request.node.name[:40]}"


@pytest.fixture
def start_stack(redis_url: str, key_prefix: str, tmp_path: Path) -> StartStack:
    """``weighted_stack(weights, **settings)`` on this test's store, prefix and directory."""
    return functools.partial(weighted_stack, redis_url=redis_url, prefix=key_prefix, tmp=tmp_path)
