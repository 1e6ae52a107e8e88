"""The checker against real members and a real Redis, run in-process on a real event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import generate_latest

from checker.service import Checker
from fedredirect.shapes import SHAPES, shapes_for
from fedredirect.simulator import MemberServer, MemberSimState
from shared.config import parse_config
from shared.payloads import parse_versions
from shared.records import MemberObservation
from shared.status import view_to_json
from shared.store import Change, Store, connect
from tests.support.checker_loop import eventually, running_checker
from tests.support.members import running_members

pytestmark = pytest.mark.anyio


def config_for(servers: dict[str, MemberServer], **check: Any) -> Any:
    settings = {"period": 0.3, "timeout": 1.5, "jitter": 0.0, "retries": 2, "failed_period": 60}
    settings.update(check)
    return parse_config(
        {
            "check": settings,
            "members": {
                name: {"url": s.url, "weight": 10, "prime": i == 0}
                for i, (name, s) in enumerate(servers.items())
            },
        }
    )


class Running:
    def __init__(self, checker: Checker, store: Store) -> None:
        self.checker = checker
        self.store = store

    def obs(self, name: str) -> MemberObservation | None:
        return self.checker.observations.get(name)


@contextlib.asynccontextmanager
async def run_checker(
    servers: dict[str, MemberServer], redis_url: str, prefix: str, **check: Any
) -> AsyncIterator[Running]:
    config = config_for(servers, **check)
    async with running_checker(config, redis_url, prefix) as (checker, store):
        yield Running(checker, store)


def _members(*states: MemberSimState) -> Any:
    return running_members(*states)


@pytest.mark.parametrize(
    ("fault", "status", "reason"),
    [
        ("http500", "unhealthy", "HTTP 500"),
        ("http503", "unhealthy", "HTTP 503"),
        ("not_json", "unhealthy", "not JSON"),
        ("wrong_shape", "unhealthy", "no 'ok'"),
        ("redirect", "unreachable", "connection failed"),  # followed, to a closed port
        ("huge", "unhealthy", "larger than"),
        ("hang", "unreachable", "no complete answer"),
        ("drip", "unreachable", "no complete answer"),
        ("reset", "unreachable", ""),
    ],
)
async def test_a_broken_member_gets_a_reason_and_others_are_unaffected(
    redis_url: str, key_prefix: str, fault: str, status: str, reason: str
) -> None:
    with _members(MemberSimState("good"), MemberSimState("bad", fault=fault)) as (good, bad):
        servers = {"good": good, "bad": bad}
        async with run_checker(servers, redis_url, key_prefix) as run:
            obs = await eventually(lambda: (o := run.obs("bad")) and o.health and o)
            assert obs.health.status == status, obs
            assert reason in "; ".join(obs.health.reasons), obs.health.reasons
            # the good member's checks keep their pace despite the bad one (its first round
            # may end after the bad one's: they run side by side)
            first = await eventually(lambda: (o := run.obs("good")) and o.health and o)
            assert first.health is not None and first.health.status == "ok"
            t0 = first.checked_at
            await eventually(lambda: (o := run.obs("good")) and o.checked_at >= t0 + 0.25, 3)


_QUOTA = '{"service": "Pod quota", "ok": true, "_ignore_failure": true'


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ('{"checks": []}', "unhealthy", "no 'ok'"),
        ('{"ok": "yes", "checks": []}', "ok", ""),
        ('{"ok": true, "checks": {}}', "unhealthy", "'checks' is not a list"),
        ('{"ok": true, "checks": [{"service": "x"}]}', "unhealthy", "without 'ok'"),
        (
            '{"ok": true, "checks": [' + _QUOTA + ', "total_pods": -3, "quota": 10}]}',
            "unhealthy",
            "'total_pods' is negative",
        ),
        (
            '{"ok": true, "checks": [' + _QUOTA + ', "total_pods": "7", "quota": 10}]}',
            "unhealthy",
            "'total_pods' is not an integer",
        ),
        (
            '{"ok": true, "checks": [' + _QUOTA + ', "total_pods": null, "quota": 10}]}',
            "unhealthy",
            "'total_pods' is not an integer",
        ),
        ('{"ok": true, "checks": [' + _QUOTA + ', "total_pods": 0, "quota": 0}]}', "ok", ""),
        ('{"ok": true, "checks": [' + _QUOTA + ', "total_pods": 5, "quota": null}]}', "ok", ""),
        ("null", "unhealthy", "no 'ok'"),
    ],
    ids=[
        "missing-ok",
        "ok-truthy",
        "checks-not-list",
        "check-without-ok",
        "negative-pods",
        "string-pods",
        "null-pods",
        "quota-0",
        "quota-null",
        "null-body",
    ],
)
async def test_wrong_shapes_from_a_real_member(
    redis_url: str, key_prefix: str, body: str, status: str, reason: str
) -> None:
    with _members(MemberSimState("odd", health_body=body)) as (odd,):
        async with run_checker({"odd": odd}, redis_url, key_prefix) as run:
            obs = await eventually(lambda: (o := run.obs("odd")) and o.health and o)
            assert obs.health.status == status, obs.health
            assert reason in "; ".join(obs.health.reasons)


async def test_connection_refused_is_unreachable(redis_url: str, key_prefix: str) -> None:
    with _members(MemberSimState("gone")) as (gone,):
        gone.stop()  # nothing listens on its port any more
        async with run_checker({"gone": gone}, redis_url, key_prefix) as run:
            obs = await eventually(lambda: (o := run.obs("gone")) and o.health and o)
            assert obs.health.status == "unreachable"
            assert "connection failed" in obs.health.reasons[0]


async def test_a_503_with_a_body_is_an_answer_and_names_the_failed_check(
    redis_url: str, key_prefix: str
) -> None:
    with _members(MemberSimState("down", hub_ok=False)) as (down,):
        async with run_checker({"down": down}, redis_url, key_prefix, retries=3) as run:
            obs = await eventually(lambda: (o := run.obs("down")) and o.health and o)
            assert obs.health.status == "unhealthy"
            assert obs.health.reasons == ("check failed: JupyterHub API",)
            assert down.hits["/health"] == 1  # a real answer is never retried


async def test_transport_errors_and_bare_5xx_are_retried_until_success(
    redis_url: str, key_prefix: str
) -> None:
    with _members(MemberSimState("flaky", fault="http502")) as (flaky,):
        async with run_checker({"flaky": flaky}, redis_url, key_prefix, period=5, retries=3) as run:
            await eventually(lambda: flaky.hits["/health"] >= 4)  # 1 try + 3 retries
            obs = await eventually(lambda: (o := run.obs("flaky")) and o.health and o)
            assert obs.health.status == "unhealthy" and "HTTP 502" in obs.health.reasons[0]
            assert flaky.hits["/health"] == 4  # and no more: failed_period holds the next try


async def test_a_successful_check_is_not_repeated(redis_url: str, key_prefix: str) -> None:
    with _members(MemberSimState("ok")) as (ok,):
        async with run_checker({"ok": ok}, redis_url, key_prefix, period=5, retries=5) as run:
            await eventually(lambda: (o := run.obs("ok")) and o.health)
            await asyncio.sleep(0.3)  # give a wrongly repeated check the chance to show up
            assert ok.hits["/health"] == 1 and ok.hits["/versions"] == 1


async def test_failing_member_waits_failed_period_but_versions_keep_flowing(
    redis_url: str, key_prefix: str
) -> None:
    with _members(MemberSimState("sick", hub_ok=False)) as (sick,):
        async with run_checker({"sick": sick}, redis_url, key_prefix, retries=0) as run:
            await eventually(lambda: sick.hits["/versions"] >= 4)
            assert sick.hits["/health"] == 1  # failed_period 60 s: not rechecked yet
            obs = run.obs("sick")
            assert obs is not None and obs.versions_at is not None and obs.health is not None
            assert obs.versions_at > obs.health.observed_at


async def test_versions_are_observed_while_full(redis_url: str, key_prefix: str) -> None:
    state = MemberSimState("prime", total_pods=100)
    with _members(state) as (prime,):
        async with run_checker({"prime": prime}, redis_url, key_prefix) as run:
            await eventually(lambda: (o := run.obs("prime")) and o.versions)
            state.binderhub_version = "2.0.0"
            await eventually(
                lambda: (o := run.obs("prime")) and (o.versions or {}).get("binderhub") == "2.0.0"
            )


async def test_first_snapshot_is_whole_then_changes_are_announced(
    redis_url: str, key_prefix: str
) -> None:
    with _members(MemberSimState("a"), MemberSimState("b")) as (a, b):
        async with run_checker({"a": a, "b": b}, redis_url, key_prefix) as run:
            snap = None

            async def read() -> Any:
                nonlocal snap
                snap = await run.store.read()
                return snap

            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not (await read()):
                await asyncio.sleep(0.05)
            assert snap is not None
            assert set(snap.observations) == {"a", "b"}  # the first snapshot has everyone
            assert snap.heartbeat is not None and time.time() - snap.heartbeat.at < 2
            first = snap.generation
            pubsub = run.store.client.pubsub()
            await pubsub.subscribe(run.store.channel)
            message = None
            deadline = time.monotonic() + 5
            while message is None and time.monotonic() < deadline:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            await pubsub.aclose()
            assert message is not None
            change = Change.parse(message["data"])
            assert change is not None and change.generation > first
            assert change.config_hash == snap.config_hash
            assert change.members is not None and set(change.members) <= {"a", "b"}


async def test_tls_failure_is_unreachable_with_the_reason(redis_url: str, key_prefix: str) -> None:
    with _members(MemberSimState("plain")) as (plain,):
        store = Store(connect(redis_url), key_prefix)
        url = plain.url.replace("http://", "https://")  # a TLS client against a plain server
        config = parse_config(
            {"members": {"plain": {"url": url, "weight": 1}}, "check": {"timeout": 1, "retries": 0}}
        )
        checker = Checker(config, store)
        async with checker.clients:
            await checker.check_member("plain")
        await store.client.aclose()
        obs = checker.observations["plain"]
        assert obs.health is not None and obs.health.status == "unreachable"
        assert "connection failed" in obs.health.reasons[0]
        assert "SSL" in obs.health.reasons[0] or "ssl" in obs.health.reasons[0].lower()


_DNS_PROBE = """
import asyncio
from checker.service import Checker
from shared.config import parse_config
from shared.payloads import parse_versions
from shared.store import Store, connect

config = parse_config({"members": {"ghost": {"url": "http://member.does-not-exist.invalid",
                       "weight": 1}}, "check": {"timeout": 1, "retries": 1, "period": 5}})
checker = Checker(config, Store(connect("redis://127.0.0.1:1/0")))

async def main():
    async with checker.clients:
        await checker.check_member("ghost")
    obs = checker.observations["ghost"]
    print(obs.health.status, "|", obs.health.reasons[0])

asyncio.run(main())
"""


def test_a_name_that_does_not_resolve_is_unreachable() -> None:
    """Run in a fresh network namespace with no route out (`unshare --net`), so the DNS
    lookup fails on this machine and no query can leave it."""
    import shutil
    import subprocess
    import sys

    unshare = shutil.which("unshare")
    assert unshare, "util-linux's unshare is needed for the DNS failure test"
    proc = subprocess.run(
        [unshare, "--net", sys.executable, "-c", _DNS_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    status, reason = proc.stdout.strip().split(" | ", 1)
    assert status == "unreachable"
    assert "connection failed" in reason and ("resolution" in reason or "known" in reason), reason


@pytest.mark.parametrize(("hops", "status"), [(1, "ok"), (3, "ok"), (4, "unhealthy")])
async def test_a_member_that_moved_is_followed_a_few_hops(
    redis_url: str, key_prefix: str, hops: int, status: str
) -> None:
    with _members(MemberSimState("moved")) as (moved,):
        config = parse_config(
            {
                "check": {"period": 0.3, "timeout": 1.5, "jitter": 0.0, "retries": 0},
                "members": {
                    "moved": {
                        "url": moved.url,
                        "weight": 10,
                        "health": f"{moved.url}/_moved/{hops}/health",
                        "versions": f"{moved.url}/_moved/{hops}/versions",
                    }
                },
            }
        )
        async with running_checker(config, redis_url, key_prefix) as (checker, _store):
            obs = await eventually(lambda: (o := checker.observations.get("moved")) and o.health)
            view = await eventually(checker.current_view)
    obs = checker.observations["moved"]
    assert obs.health is not None and obs.health.status == status, obs.health
    member = view.member("moved")
    if status == "ok":
        assert member.state == "eligible"
        assert (member.health_url, member.versions_url) == (
            f"{moved.url}/health",
            f"{moved.url}/versions",
        )
        assert view_to_json(view)["members"]["moved"]["health_url"] == f"{moved.url}/health"
    else:
        assert obs.health.reasons == ("more than 3 redirects",)
        assert obs.versions_error == "more than 3 redirects"


SHAPE_STATES = {
    "health-ok": ("eligible", ""),
    "health-full": ("full", "101 pods"),
    "health-pre2023-full": ("full", "103 pods"),
    "health-closed": ("full", "quota 0"),
    "health-no-quota": ("eligible", ""),
    "health-idle": ("eligible", ""),
    "health-truthy": ("eligible", ""),
    "health-soft-without-ok": ("eligible", ""),
    "health-no-registry": ("eligible", ""),
    "health-down": ("unhealthy", "check failed: JupyterHub API"),
    "health-down-two": ("unhealthy", "check failed: Docker registry"),
    "health-unknown-check": ("unhealthy", "check failed: Build cluster"),
    "health-500": ("unhealthy", "HTTP 500"),
}


@pytest.mark.parametrize("shape", sorted(SHAPE_STATES))
async def test_every_recorded_health_shape_served_by_a_real_member(
    redis_url: str, key_prefix: str, shape: str
) -> None:
    state, reason = SHAPE_STATES[shape]
    with _members(MemberSimState("m", health_shape=shape)) as servers:
        async with run_checker({"m": servers[0]}, redis_url, key_prefix, retries=0) as run:
            view = await eventually(
                lambda: (v := run.checker.current_view()) and v.member("m").state != "stale" and v
            )
    member = view.member("m")
    assert member.state == state, member
    assert reason in "; ".join(member.reasons)


@pytest.mark.parametrize("shape", shapes_for("versions"))
async def test_every_recorded_versions_shape_served_by_a_real_member(
    redis_url: str, key_prefix: str, shape: str
) -> None:
    with _members(MemberSimState("m", versions_shape=shape)) as servers:
        async with run_checker({"m": servers[0]}, redis_url, key_prefix) as run:
            obs = await eventually(lambda: (o := run.obs("m")) and o.versions_at and o)
    assert obs.versions == parse_versions(200, SHAPES[shape].body())
    assert obs.versions_error is None


async def test_an_idle_federation_is_evaluated_once_and_a_change_at_once(
    redis_url: str, key_prefix: str
) -> None:
    """Records refreshed with the same content only move the deadline: the checker's view
    (its logs, history and metrics) is evaluated when a verdict may change, not every
    publish; a metrics scrape evaluates nothing; a member going down is evaluated at once."""
    hub = MemberSimState("b")
    with _members(MemberSimState("a"), hub) as (a, b):
        async with run_checker({"a": a, "b": b}, redis_url, key_prefix, period=0.2) as run:
            keeper = run.checker.keeper
            await eventually(
                lambda: (v := keeper.view) and all(m.state == "eligible" for m in v.members)
            )
            settled = keeper.evaluations
            published = run.checker.last_published_at
            # ten periods of unchanged answers, each published with a new heartbeat
            await eventually(lambda: a.hits["/health"] >= 12 and b.hits["/health"] >= 12)
            for _ in range(5):
                generate_latest(run.checker.metrics.registry)
            assert run.checker.last_published_at != published
            assert keeper.evaluations == settled
            hub.hub_ok = False
            view = await eventually(
                lambda: (v := keeper.view) and v.member("b").state == "unhealthy" and v,
                timeout=5,
            )
            assert keeper.evaluations > settled
            assert view.member("a").state == "eligible"
