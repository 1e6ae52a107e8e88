"""The checker judging members by their launches: real members on 127.0.0.1 serving
BinderHub's /metrics text, a real Redis, the checker in-process on a real event loop; what
it publishes is read back from the store and evaluated as a router does."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from prometheus_client import generate_latest

from checker.service import Checker
from shared.config import FederationConfig, parse_config
from shared.evaluate import View
from shared.store import Store
from tests.support.checker_loop import eventually, running_checker
from tests.support.launch_member import LaunchMember

pytestmark = pytest.mark.anyio

REASON = re.compile(
    r"launches failing: \d+ of \d+ failed in the last [\d.]+s \([\d.]+% > 25%\); "
    r"ejected for 1s, ejection 1 in a row"
)

PERIOD = 0.3
#: Judged over about 3 reads; ejected for 1 s, then 2 s in a row.
OUTCOMES = {"window": 1.0, "min_launches": 10, "base_ejection": 1.0, "max_ejection": 2.0}


@contextlib.contextmanager
def launch_members(*names: str) -> Iterator[dict[str, LaunchMember]]:
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(LaunchMember()) for name in names}


def config_for(
    members: dict[str, LaunchMember], member: dict[str, Any] | None = None, **settings: Any
) -> FederationConfig:
    """Every member of weight 10, the first prime; ``member`` settings go to each."""
    check = {"period": PERIOD, "timeout": 1.0, "jitter": 0.0, "retries": 0, "failed_period": 60}
    return parse_config(
        {
            "check": check,
            "outcomes": OUTCOMES,
            **settings,
            "members": {
                name: {"url": m.url, "weight": 10, "prime": i == 0, **(member or {})}
                for i, (name, m) in enumerate(members.items())
            },
        }
    )


class Traffic:
    """Launches on every member, 2 every 50 ms; a member in ``failing`` fails one of two."""

    def __init__(self, members: dict[str, LaunchMember]) -> None:
        self.members = members
        self.failing: set[str] = set()

    async def run(self) -> None:
        while True:
            for name, member in self.members.items():
                failures = 1 if name in self.failing else 0
                member.launches.launches(successes=2 - failures, failures=failures)
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def traffic(members: dict[str, LaunchMember]) -> AsyncIterator[Traffic]:
    flow = Traffic(members)
    task = asyncio.create_task(flow.run())
    try:
        yield flow
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def three_launching(
    redis_url: str, prefix: str
) -> AsyncIterator[tuple[Checker, Store, Traffic]]:
    """alpha, beta and gamma under a checker, with launches on each (none failing yet)."""
    with launch_members("alpha", "beta", "gamma") as members:
        async with (
            running_checker(config_for(members), redis_url, prefix) as (checker, store),
            traffic(members) as flow,
        ):
            yield checker, store, flow


async def published_view(store: Store) -> View | None:
    snapshot = await store.read()
    return snapshot.evaluate(time.time()) if snapshot else None


def states(view: View | None) -> dict[str, str]:
    return {m.name: m.state for m in view.members} if view else {}


async def watch(
    store: Store,
    until: Callable[[View], bool],
    every: Callable[[View], None] = lambda view: None,
    timeout: float = 15.0,
) -> View:
    """Evaluate what is published every 20 ms, checking ``every`` view, until one meets
    ``until``; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = await published_view(store)
        if view is not None:
            every(view)
            if until(view):
                return view
        await asyncio.sleep(0.02)
    raise AssertionError(f"not met within {timeout}s; last states {states(view)}")


async def test_a_member_failing_half_its_launches_is_ejected_then_comes_back(
    redis_url: str, key_prefix: str
) -> None:
    async with three_launching(redis_url, key_prefix) as (checker, store, flow):
        seen: list[dict[str, str]] = []

        def healthy_ones_stay(view: View) -> None:
            now = states(view)
            seen.append(now)
            assert now["alpha"] == now["gamma"] == "eligible", now

        await watch(store, lambda v: states(v)["beta"] == "eligible", healthy_ones_stay)
        flow.failing.add("beta")
        view = await watch(store, lambda v: states(v)["beta"] == "failing", healthy_ones_stay)
        beta = next(m for m in view.members if m.name == "beta")
        assert REASON.fullmatch(beta.reasons[0]), beta.reasons
        assert "beta" not in [m.name for m in view.eligible]
        # alpha's ratio is published once a check has counted its launches in the window
        alpha_ratio = 'fedredirect_member_launch_failure_ratio{member="alpha"} '
        await eventually(lambda: alpha_ratio in generate_latest(checker.metrics.registry).decode())
        scraped = generate_latest(checker.metrics.registry).decode()
        assert 'fedredirect_member_ejections_total{member="beta"} 1.0' in scraped
        assert 'fedredirect_member_ejections_total{member="alpha"} 0.0' in scraped
        assert 'fedredirect_member_launch_failure_ratio{member="beta"} ' in scraped
        assert 'fedredirect_member_launch_failure_ratio{member="alpha"} 0.0' in scraped
        assert 'fedredirect_member_launches_in_window{member="alpha"} ' in scraped

        flow.failing.clear()  # it comes back once the ejection is over
        await watch(store, lambda v: states(v)["beta"] == "eligible", healthy_ones_stay)
        record = await store.read()
        assert record is not None
        outcomes = record.observations["beta"].outcomes
        assert outcomes is not None and outcomes.ejections == 1
        assert outcomes.ejected_until is not None and outcomes.ejected_until <= time.time()
        assert all(s["alpha"] == s["gamma"] == "eligible" for s in seen)


async def test_of_three_members_failing_at_most_one_is_ejected_at_once(
    redis_url: str, key_prefix: str
) -> None:
    async with three_launching(redis_url, key_prefix) as (_checker, store, flow):
        flow.failing.update(flow.members)
        ejected: set[str] = set()

        def one_at_most(view: View) -> None:
            failing = [name for name, state in states(view).items() if state == "failing"]
            assert len(failing) <= 1, failing
            ejected.update(failing)

        # ejections end after 1 s and another member takes the room: over a few seconds
        # more than one member has been ejected, never two at once
        await watch(store, lambda v: len(ejected) >= 2, one_at_most)


async def test_unreadable_metrics_are_a_note_never_an_exclusion(
    redis_url: str, key_prefix: str
) -> None:
    with launch_members("alpha", "beta") as members:
        members["alpha"].metrics_answer = (404, b"404: Not Found")
        members["beta"].metrics_answer = (200, b"<html><body>a login page</body></html>")
        config = config_for(members)
        async with running_checker(config, redis_url, key_prefix) as (checker, store):

            async def noted() -> dict[str, str | None] | None:
                snapshot = await store.read()
                if snapshot is None or len(snapshot.observations) < 2:
                    return None
                errors = {
                    name: obs.outcomes.error if obs.outcomes else None
                    for name, obs in snapshot.observations.items()
                }
                return errors if all(errors.values()) else None

            errors = await eventually(noted)
            assert errors["alpha"] == "metrics answered HTTP 404"
            assert (errors["beta"] or "").startswith("not in Prometheus's text format (")
            view = await published_view(store)
            assert states(view) == {"alpha": "eligible", "beta": "eligible"}
            scraped = generate_latest(checker.metrics.registry).decode()
            failure = 'endpoint="metrics",member="alpha",reason="http_status"'
            assert f"fedredirect_check_failures_total{{{failure}}} " in scraped
            assert 'fedredirect_member_launch_failure_ratio{member="alpha"}' not in scraped

            members["alpha"].metrics_answer = None  # readable again: the note goes
            await eventually(lambda: _no_error(store, "alpha"))


async def _no_error(store: Store, name: str) -> bool:
    snapshot = await store.read()
    outcomes = snapshot.observations[name].outcomes if snapshot else None
    return outcomes is not None and outcomes.error is None


@pytest.mark.parametrize(
    ("settings", "metrics"),
    [
        ({}, True),
        ({"outcomes": {"enabled": False}}, False),
        ({"member": {"metrics": False}}, False),
    ],
    ids=["metrics-on", "outcomes-off", "member-metrics-false"],
)
async def test_three_requests_per_member_per_period_with_metrics_two_without(
    redis_url: str, key_prefix: str, settings: dict[str, Any], metrics: bool
) -> None:
    with launch_members("alpha", "beta") as members:
        config = config_for(members, **settings)
        paths = {"/health", "/versions", *(["/metrics"] if metrics else [])}
        started = time.monotonic()
        async with running_checker(config, redis_url, key_prefix):

            async def rounds() -> int | None:
                for member in members.values():
                    assert set(member.hits) <= paths, member.hits
                    counts = [member.count(path) for path in paths]
                    assert max(counts) - min(counts) <= 1, member.hits  # one each a round
                if all(m.count("/health") >= 6 for m in members.values()):  # one a round
                    return min(m.count("/health") for m in members.values())
                return None

            done = await eventually(rounds)
        elapsed = time.monotonic() - started
        assert done <= elapsed / PERIOD + 1  # a round a period, no more
        for member in members.values():
            assert set(member.hits) == paths


async def test_a_checker_taking_over_carries_the_ejection_on(
    redis_url: str, key_prefix: str
) -> None:
    with launch_members("alpha", "beta", "gamma") as members:
        config = config_for(
            members, outcomes={**OUTCOMES, "base_ejection": 30.0, "max_ejection": 60.0}
        )
        async with traffic(members) as flow:
            flow.failing.add("beta")
            async with running_checker(config, redis_url, key_prefix, "first") as (_first, store):
                view = await watch(store, lambda v: states(v)["beta"] == "failing")
                snapshot = await store.read()
                assert snapshot is not None
                ejection = snapshot.observations["beta"].outcomes
                assert ejection is not None and ejection.ejected_until is not None
            flow.failing.clear()  # the new checker's own reads find nothing wrong with beta
            async with running_checker(config, redis_url, key_prefix, "second") as (second, store):

                async def taken_over() -> View | None:
                    read = await store.read()
                    if read is None or read.heartbeat is None:
                        return None
                    return (
                        await published_view(store)
                        if read.heartbeat.checker_id == "second"
                        else None
                    )

                view = await eventually(taken_over)
                assert states(view)["beta"] == "failing"
                carried = second.observations["beta"].outcomes
                assert carried is not None
                assert (carried.ejected_until, carried.ejection_reason, carried.ejections) == (
                    ejection.ejected_until,
                    ejection.ejection_reason,
                    1,
                )
