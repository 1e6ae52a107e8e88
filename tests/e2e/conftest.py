"""The running stack shared by the end-to-end tests of one module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fedredirect.simulator import MemberSimState
from tests.support.members import running_members
from tests.support.procs import checker, router, status, wait_for, write_config


@pytest.fixture(scope="module")
def stack(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[dict[str, object]]:
    """Three members, one checker and two router replicas, shared by this module's tests."""
    tmp = tmp_path_factory.mktemp("router-stack")
    prefix = f"e2e-{request.module.__name__}"
    states = [MemberSimState(n) for n in ("alpha", "beta", "gamma")]
    with running_members(*states) as servers:
        members = dict(zip(("alpha", "beta", "gamma"), servers, strict=True))
        config = write_config(
            tmp / "federation.yaml",
            {
                "alpha": (members["alpha"], 50.0, True),
                "beta": (members["beta"], 50.0, False),
                "gamma": (members["gamma"], 30.0, False),
            },
            host_cookie_age_hours=2,
        )
        with (
            checker(config, redis_url, prefix, tmp / "checker.log"),
            router(redis_url, prefix, tmp / "router1.log") as r1,
            router(redis_url, prefix, tmp / "router2.log") as r2,
        ):
            for url in (r1, r2):
                wait_for(lambda u=url: len(status(u)["targets"]) == 3, what=f"{url} sees all")
            yield {"members": members, "routers": (r1, r2), "redis": redis_url, "prefix": prefix}
