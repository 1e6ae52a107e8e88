"""Fixtures shared by every kind of test: a real redis-server, started once per session."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.support.redis_server import redis_server

_prefixes = itertools.count()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server on 127.0.0.1 for the whole session (never a mock)."""
    with redis_server() as url:
        yield url


@pytest.fixture
def key_prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix of its own for each test, so tests sharing the Redis never collide."""
    return f"test{next(_prefixes)}-{request.node.name[:40]}"
