"""check.fast_interval against real members and a real Redis: a failed /health of a healthy
member is checked again at the fast interval (/health alone) until ``fall`` or a pass, and a
healthy member costs one round a period. Requests are counted on the members' side."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

from checker.service import Checker
from fedredirect.simulator import MemberServer, MemberSimState
from shared.config import parse_config
from shared.store import Store
from tests.support.checker_loop import eventually, running_checker
from tests.support.members import running_members

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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
            servers, redis_url, key_prefix, period=5.0, fast_interval=0.2, fall=fall
        ) as (_, store):
            await until_published(store, "sick", "eligible", 10)
            health, versions = sick.hits["/health"], sick.hits["/versions"]
            for key, value in fault.items():
                setattr(state, key, value)
            await until_published(store, "sick", "unhealthy", 10)
            # one round saw the first failure, fall - 1 checks of /health alone the others,
            # each one request (a retry would not end within the fast interval): a period
            # of 5 s would have taken fall rounds
            assert sick.hits["/versions"] - versions == 1
            assert sick.hits["/health"] - health == fall
            assert await published_state(store, "well") == "eligible"


async def test_a_killed_member_is_excluded_within_one_round(
    redis_url: str, key_prefix: str
) -> None:
    with running_members(MemberSimState("well"), MemberSimState("gone")) as (well, gone):
        servers = {"well": well, "gone": gone}
        async with checking(servers, redis_url, key_prefix, period=5.0, fast_interval=0.2) as (
            checker,
            store,
        ):
            await until_published(store, "gone", "eligible", 10)
            gone.stop()  # connections refused from now on
            await until_published(store, "gone", "unreachable", 10)
            # one round (/versions failed once) saw the first refusal, one check of /health
            # alone the second
            assert failures(checker, "gone", "versions", "connect") == 1
            assert failures(checker, "gone", "health", "connect") == 2
            assert await published_state(store, "well") == "eligible"


async def test_a_healthy_member_is_checked_exactly_once_a_period(
    redis_url: str, key_prefix: str
) -> None:
    with running_members(MemberSimState("a"), MemberSimState("b")) as (a, b):
        async with checking({"a": a, "b": b}, redis_url, key_prefix, period=0.5, fast_interval=0.1):
            await eventually(lambda: a.hits["/health"] and b.hits["/health"], 10)
            started = time.monotonic()
            await eventually(lambda: min(a.hits["/versions"], b.hits["/versions"]) >= 10, 10)
            # rounds only: /health, /versions and /metrics once each (read together, so
            # counted once the round in flight has ended), never one of them in between
            paths = ("/health", "/versions", "/metrics")
            for member in (a, b):
                await eventually(lambda m=member: len({m.hits[p] for p in paths}) == 1, 2)
            elapsed = time.monotonic() - started
            for member in (a, b):
                rounds = member.hits["/versions"]
                assert elapsed / 0.5 / 2 <= rounds <= elapsed / 0.5 + 2, (rounds, elapsed)


async def test_a_member_that_fails_once_and_passes_goes_back_to_the_period(
    redis_url: str, key_prefix: str
) -> None:
    state = MemberSimState("blip")
    with running_members(MemberSimState("well"), state) as (well, blip):
        servers = {"well": well, "blip": blip}
        async with checking(servers, redis_url, key_prefix, fast_interval=0.3) as (_, store):
            await until_published(store, "blip", "eligible", 10)
            hits = blip.hits
            await eventually(lambda: hits["/health"] == hits["/versions"], 2)  # between rounds
            health, versions = hits["/health"], hits["/versions"]
            state.hub_ok = False
            await eventually(lambda: hits["/health"] > health, 5)  # a round saw it
            state.hub_ok = True
            await eventually(lambda: hits["/versions"] > versions, 2)
            # the fast check, 0.3 s after the round started: /health alone, and it passes
            await eventually(lambda: hits["/health"] == health + 2, 5)
            assert hits["/versions"] == versions + 1
            # then rounds only, once a period, and the member was never excluded
            while hits["/versions"] < versions + 4:
                assert await published_state(store, "blip") == "eligible"
                await asyncio.sleep(0.01)
            await eventually(lambda: hits["/health"] - hits["/versions"] == 1, 2)
