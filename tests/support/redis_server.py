"""A real redis-server of a test's own (never a mock), in a temporary folder."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fedredirect.dev import find_redis_server, start_redis


@contextlib.contextmanager
def redis_server(prefix: str = "fedredirect-test-redis-") -> Iterator[str]:
    """Start redis-server on a free port of 127.0.0.1; yield its URL; stop it at the end."""
    with (
        tempfile.TemporaryDirectory(prefix=prefix) as tmp,
        start_redis(find_redis_server(), 0, Path(tmp)) as url,
    ):
        yield url
