"""The incident that fedredirect exists to prevent, replayed end to end.

Real members on 127.0.0.1, a real redis-server, and `fedredirect checker` and
`fedredirect router` run as subprocesses. Launches are real HTTP requests to the router;
the member that receives each is read from the Location header.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fedredirect.simulator import MemberServer, MemberSimState
from tests.support.members import running_members
from tests.support.procs import launch, status, wait_for
from tests.support.stack import THREE, running_stack

V1 = "1.0.0-0.dev.git.3520.h1234abcd"
V2 = "1.0.0-0.dev.git.3600.h5678ef90"


def launches(router_url: str, servers: dict[str, MemberServer], seconds: float) -> Counter[str]:
    """Fire launches of distinct repos for ``seconds``; count them by receiving member."""
    by_port = {f"127.0.0.1:{s.port}": name for name, s in servers.items()}
    got: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    i = 0
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            response = launch(client, router_url, f"/build/gh/org/repo{i}/HEAD")
            i += 1
            if response.status_code != 307:
                got[f"HTTP {response.status_code}"] += 1
                continue
            host = httpx.URL(response.headers["location"]).netloc.decode()
            got[by_port.get(host, f"elsewhere:{host}")] += 1
    return got


def states(router_url: str) -> dict[str, str]:
    return {name: m["state"] for name, m in status(router_url)["members"].items()}


@pytest.fixture
def federation() -> Iterator[dict[str, MemberServer]]:
    alpha = MemberSimState("alpha", binderhub_version=V1)
    beta = MemberSimState("beta", binderhub_version=V1)
    gamma = MemberSimState("gamma", binderhub_version=V1)
    with running_members(alpha, beta, gamma) as servers:
        yield dict(zip(("alpha", "beta", "gamma"), servers, strict=True))


def test_full_prime_does_not_freeze_the_reference(
    federation: dict[str, MemberServer], redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """Incident 1: the prime is full; a new version is deployed on all three members.

    The replaced redirector kept the prime's old version as the reference and excluded
    every upgraded member. Here the non-prime members keep receiving launches throughout,
    and the prime (full) receives none.
    """
    federation["alpha"].state.total_pods = 100  # the prime is full
    with running_stack(
        federation, redis_url, key_prefix, tmp_path, weights=THREE, eligible=0
    ) as stack:
        url = stack.router
        wait_for(
            lambda: states(url) == {"alpha": "full", "beta": "eligible", "gamma": "eligible"},
            what="prime full, others eligible",
        )
        before = launches(url, federation, 1.0)
        for server in federation.values():  # deploy the new version everywhere
            server.state.binderhub_version = V2
        during = launches(url, federation, 2.0)  # spans the checker noticing the rollout
        wait_for(
            lambda: status(url)["reference"]["versions"]["binderhub"] == V2,
            what="reference follows the full prime's new version",
        )
        after = launches(url, federation, 1.0)
        view = status(url)

    total = before + during + after
    print(f"incident 1 launches: before={dict(before)} during={dict(during)} after={dict(after)}")
    assert set(total) <= {"beta", "gamma"}, total  # never the full prime, never a failure
    assert after["beta"] > 0 and after["gamma"] > 0
    assert view["reference"]["stale"] is False
    assert view["members"]["alpha"]["state"] == "full"
    assert view["members"]["beta"]["state"] == "eligible"
    assert view["members"]["gamma"]["state"] == "eligible"


def test_unreachable_prime_makes_the_reference_stale_not_exclusive(
    federation: dict[str, MemberServer], redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """Incident 2: the prime is unreachable while the others upgrade.

    The others keep receiving launches, and the view says the reference is stale.
    """
    with running_stack(
        federation, redis_url, key_prefix, tmp_path, weights=THREE, eligible=0
    ) as stack:
        url = stack.router
        wait_for(lambda: set(states(url).values()) == {"eligible"}, what="all eligible")
        before = launches(url, federation, 0.5)
        federation["alpha"].stop()  # the prime goes away: connection refused from now on
        wait_for(lambda: states(url)["alpha"] == "unreachable", what="prime seen unreachable")
        federation["beta"].state.binderhub_version = V2
        federation["gamma"].state.binderhub_version = V2
        during = launches(url, federation, 2.0)
        view = wait_for(
            lambda: (doc := status(url))["reference"]["stale"] and doc,
            what="reference reported stale",
        )
        after = launches(url, federation, 1.0)

    total = during + after
    print(f"incident 2 launches: before={dict(before)} during={dict(during)} after={dict(after)}")
    assert set(total) <= {"beta", "gamma"}, total
    assert after["beta"] > 0 and after["gamma"] > 0
    assert view["reference"]["stale_reason"]
    assert view["version_gate"]["suspended"] is True
    assert view["members"]["alpha"]["state"] == "unreachable"
    assert {view["members"][n]["state"] for n in ("beta", "gamma")} == {"eligible"}
