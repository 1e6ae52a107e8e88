"""The running stack shared by the end-to-end tests of one module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import THREE, Stack, named_members, running_stack


@pytest.fixture(scope="module")
def stack(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    """Three members, one checker and two router replicas, shared by this module's tests."""
    tmp = tmp_path_factory.mktemp("router-stack")
    prefix = f"e2e-{request.module.__name__}"
    with (
        named_members(*THREE) as members,
        running_stack(
            members, redis_url, prefix, tmp, weights=THREE, routers=2, host_cookie_age_hours=2
        ) as running,
    ):
        yield running
