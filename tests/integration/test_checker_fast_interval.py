"""The checker's schedule against real members and a real Redis: a healthy member's /health
(in its round) and /versions come half a period apart, one each a period; a /versions that
reaches nobody brings /health forward; a failed /health of a healthy member is checked again
at the fast interval (/health alone) until ``fall`` or a pass. Requests are counted on the
members' side, checks in the checker's metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from itertools import pairwise
from typing import Any

import pytest

from checker.service import Checker
from fedredirect.simulator import MemberServer, MemberSimState
from shared.config import parse_config
from shared.store import Store
from tests.support.checker_loop import eventually, running_checker
from tests.support.members import running_members

pytestmark = pytest.mark.anyio


async def published_state(store: Store, name: str) -> str | None:
    """The member's state in the view a router would serve from the store now."""
    snapshot = await store.read()
    if snapshot is None or name not in snapshot.observations:
        return None
    member = snapshot.evaluate(time.time()).member(name)
    return member.state if member else None


async def until_published(store: Store, name: str, state: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while await published_state(store, name) != state:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} not published {state} within {timeout}s")
        await asyncio.sleep(0.01)


def checking(
    servers: dict[str, MemberServer], redis_url: str, prefix: str, **check: Any
) -> contextlib.AbstractAsyncContextManager[tuple[Checker, Store]]:
    """A checker of ``servers`` (``check`` settings over a period of 1 s, no jitter, fall 2,
    retries 2, failed_period 60) and the store it publishes to."""
    settings = {"period": 1.0, "jitter": 0.0, "timeout": 1.0, "retries": 2, "failed_period": 60}
    config = parse_config(
        {
            "check": {**settings, **check},
            "members": {
                name: {"url": s.url, "weight": 10, "prime": i == 0}
                for i, (name, s) in enumerate(servers.items())
            },
        }
    )
    return running_checker(config, redis_url, prefix)


def failures(checker: Checker, member: str, endpoint: str, reason: str) -> float:
    """The checker's fedredirect_check_failures_total: one per check of an endpoint."""
    labels = {"member": member, "endpoint": endpoint, "reason": reason}
    value = checker.metrics.registry.get_sample_value("fedredirect_check_failures_total", labels)
    return value or 0.0


def unreached(checker: Checker, member: str, endpoint: str) -> float:
    """Checks of an endpoint that reached nobody (refused, reset, timed out)."""
    return sum(failures(checker, member, endpoint, r) for r in ("connect", "transport", "timeout"))


def fetched(checker: Checker, member: str, endpoint: str) -> float:
    """Fetches of an endpoint the checker has finished (fedredirect_check_duration_seconds)."""
    labels = {"member": member, "endpoint": endpoint}
    name = "fedredirect_check_duration_seconds_count"
    return checker.metrics.registry.get_sample_value(name, labels) or 0.0


async def arrivals(member: MemberServer, rounds: int) -> list[tuple[float, str]]:
    """When each request for /health or /versions reached ``member`` (looked at every 5 ms),
    until ``rounds`` more /health requests have come."""
    seen, got = Counter(member.hits), list[tuple[float, str]]()
    deadline = time.monotonic() + 30
    while sum(path == "/health" for _, path in got) < rounds:
        for path in ("/health", "/versions"):
            got += [(time.monotonic(), path)] * (member.hits[path] - seen[path])
            seen[path] = member.hits[path]
        assert time.monotonic() < deadline, got
        await asyncio.sleep(0.005)
    return got


@pytest.mark.parametrize(
    ("fault", "fall"),
    [
        ({"hub_ok": False}, 3),  # a 503 naming the failed check: an answer
        ({"fault": "http502"}, 2),  # a bare 5xx, the kind a check retries
    ],
    ids=["unhealthy", "bare-502"],
)
async def test_a_member_turned_unhealthy_is_excluded_after_fall_fast_checks_within_one_round(
    redis_url: str, key_prefix: str, fault: dict[str, Any], fall: int
) -> None:
    state = MemberSimState("sick")
    with running_members(MemberSimState("well"), state) as (well, sick):
        servers = {"well": well, "sick": sick}
        async with checking(
            servers, redis_url, key_prefix, period=2.0, fast_interval=0.2, fall=fall
        ) as (_, store):
            await until_published(store, "sick", "eligible", 10)
            hits = sick.hits
            # just after a half-round: a /versions more than /health (the first period has two)
            await eventually(lambda: hits["/versions"] == hits["/health"] + 1, 5)
            health, versions = hits["/health"], hits["/versions"]
            for key, value in fault.items():
                setattr(state, key, value)
            await until_published(store, "sick", "unhealthy", 10)
            # the round after the half-round saw the first failure, fall - 1 checks of
            # /health alone the others, each one request (a retry would not end within the
            # fast interval), all before the next half-round: fall rounds would take 2 s each
            assert hits["/versions"] == versions
            assert hits["/health"] - health == fall
            assert await published_state(store, "well") == "eligible"


async def test_a_member_killed_after_its_round_is_excluded_by_its_half_round_and_a_fast_health(
    redis_url: str, key_prefix: str
) -> None:
    with running_members(MemberSimState("well"), MemberSimState("gone")) as (well, gone):
        servers = {"well": well, "gone": gone}
        async with checking(servers, redis_url, key_prefix, period=4.0, fast_interval=0.2) as (
            checker,
            store,
        ):
            await until_published(store, "gone", "eligible", 10)
            rounds = fetched(checker, "gone", "health")
            await eventually(lambda: fetched(checker, "gone", "health") > rounds, 5)
            await asyncio.to_thread(gone.stop)  # just after its round: refused from now on
            await until_published(store, "gone", "unreachable", 10)
            # the versions half-round, 2 s later, reached nobody: /health at once, then a fast
            # /health, both refused; no round since the kill (it reads /metrics), so the
            # member was out before a period and a fast interval could have passed
            assert unreached(checker, "gone", "versions") == 1
            assert unreached(checker, "gone", "health") == 2
            assert unreached(checker, "gone", "metrics") == 0
            assert await published_state(store, "well") == "eligible"


async def test_a_healthy_members_health_and_versions_come_half_a_period_apart_once_each(
    redis_url: str, key_prefix: str
) -> None:
    with running_members(MemberSimState("a"), MemberSimState("b")) as (a, b):
        async with checking({"a": a, "b": b}, redis_url, key_prefix, period=2.0, fast_interval=0.2):
            await eventually(lambda: a.hits["/versions"] >= 2, 10)  # past the first period
            seen = await arrivals(a, rounds=4)
            rounds = [at for at, path in seen if path == "/health"]
            # between two rounds one /versions, midway (a first check would read both at once)
            for start, end in pairwise(rounds):
                versions = [at for at, path in seen if path == "/versions" and start < at < end]
                assert len(versions) == 1, seen
                assert abs(versions[0] - (start + end) / 2) < 0.5, seen
            assert all(abs(end - start - 2.0) < 0.5 for start, end in pairwise(rounds)), seen
        # 2 requests a period each (3 with /metrics, read in the rounds): never one more
        for member in (a, b):
            counts = [member.hits[p] for p in ("/health", "/versions", "/metrics")]
            assert max(counts) - min(counts) <= 1, member.hits


async def test_a_member_that_fails_once_and_passes_goes_back_to_the_period(
    redis_url: str, key_prefix: str
) -> None:
    state = MemberSimState("blip")
    with running_members(MemberSimState("well"), state) as (well, blip):
        servers = {"well": well, "blip": blip}
        async with checking(servers, redis_url, key_prefix, fast_interval=0.3) as (
            checker,
            store,
        ):
            await until_published(store, "blip", "eligible", 10)
            hits = blip.hits
            state.hub_ok = False
            await eventually(lambda: failures(checker, "blip", "health", "member_unhealthy"), 5)
            state.hub_ok = True
            health, versions = hits["/health"], hits["/versions"]
            # the fast check, 0.3 s after the round that failed: /health alone, before the
            # versions half-round (0.5 s after it), and it passes
            await eventually(lambda: hits["/health"] == health + 1, 5)
            assert hits["/versions"] == versions
            # then rounds and half-rounds only, once a period, the member never excluded
            while hits["/versions"] < versions + 4:
                assert await published_state(store, "blip") == "eligible"
                await asyncio.sleep(0.01)
            assert hits["/health"] == health + 4  # a round each period since the fast check
            assert failures(checker, "blip", "health", "member_unhealthy") == 1
