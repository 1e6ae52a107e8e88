"""Fixtures shared by every kind of test: a real redis-server, started once per session."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedredirect.dev import find_redis_server, start_redis

_prefixes = itertools.count()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server on 127.0.0.1 for the whole session (never a mock)."""
    with (
        tempfile.TemporaryDirectory(prefix="fedredirect-test-redis-") as tmp,
        start_redis(find_redis_server(), 0, Path(tmp)) as url,
    ):
        yield url


@pytest.fixture
def key_prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix of its own for each test, so tests sharing the Redis never collide."""
    return f"test{next(_prefixes)}-{request.node.name[:40]}"
