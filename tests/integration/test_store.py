"""The store layout against a real redis-server of its own: a publish writes only the
members that changed, announces them, and a reader one generation behind reads only them.
Command counts come from the server's own INFO commandstats."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis

from router.snapshot import SnapshotHolder
from shared.config import FederationConfig, parse_config
from shared.records import CheckerHeartbeat, HealthObservation, MemberObservation
from shared.store import Change, Store, canonical_config, connect
from tests.support.redis_server import redis_server

pytestmark = pytest.mark.anyio
NAMES = [f"m{i}" for i in range(50)]
T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def own_redis() -> Iterator[str]:
    with redis_server("fedredirect-store-") as url:  # commands counted: no other test's
        yield url


@pytest.fixture
async def store(own_redis: str, key_prefix: str) -> AsyncIterator[Store]:
    store = Store(connect(own_redis), key_prefix)
    assert await store.hold_lease("c1", 30) is not None
    yield store
    await store.client.aclose()


def federation(names: list[str] = NAMES) -> FederationConfig:
    return parse_config(
        {
            "members": {
                n: {"url": f"http://127.0.0.1:{9000 + i}", "weight": 1} for i, n in enumerate(names)
            }
        }
    )


def observation(name: str, at: float, pods: int = 1) -> MemberObservation:
    health = HealthObservation("ok", (), pods, 100, at)
    return MemberObservation(name, at, health, versions={"binderhub": "1"}, versions_at=at)


async def heartbeat(store: Store, at: float) -> CheckerHeartbeat:
    fence = await store.hold_lease("c1", 30)
    assert fence is not None
    return CheckerHeartbeat("c1", at, fence=fence)


def calls(url: str, command: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def test_a_delta_writes_and_announces_only_the_changed_members(
    store: Store, own_redis: str
) -> None:
    config = federation()
    observations = {n: observation(n, T0) for n in NAMES}
    pubsub = store.client.pubsub()
    await pubsub.subscribe(store.channel)
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    first = await store.publish(config, observations, await heartbeat(store, T0))
    observations["m7"] = observation("m7", T0 + 1, pods=9)
    hsets = calls(own_redis, "hset")
    second = await store.publish(
        config, observations, await heartbeat(store, T0 + 1), changed={"m7"}
    )
    assert calls(own_redis, "hset") - hsets == 1  # one member written, not fifty
    messages = [await pubsub.get_message(ignore_subscribe_messages=True, timeout=2) for _ in "12"]
    await pubsub.aclose()
    changes = [Change.parse(m["data"]) for m in messages if m]
    digest = canonical_config(config)[1]
    assert changes == [Change(first or 0, digest, None), Change(second or 0, digest, ("m7",))]
    snapshot = await store.read()
    assert snapshot is not None and snapshot.observations["m7"].health.total_pods == 9  # type: ignore[union-attr]


async def test_a_reader_one_generation_behind_reads_only_what_changed(
    store: Store, own_redis: str
) -> None:
    config = federation()
    observations = {n: observation(n, T0) for n in NAMES}
    await store.publish(config, observations, await heartbeat(store, T0))
    holder = SnapshotHolder(store, clock=lambda: T0 + 2)
    assert await holder.sync_once()
    assert holder.snapshot is not None
    observations["m3"] = observation("m3", T0 + 1, pods=33)
    generation = await store.publish(
        config, observations, await heartbeat(store, T0 + 1), changed={"m3"}
    )
    assert generation is not None
    digest = canonical_config(config)[1]
    full_reads = calls(own_redis, "hgetall")
    hmgets = calls(own_redis, "hmget")
    assert await holder.sync_once(Change(generation, digest, ("m3",)))
    assert calls(own_redis, "hmget") - hmgets == 1
    assert calls(own_redis, "hgetall") - full_reads == 1  # the drains only, not the members
    assert holder.snapshot.generation == generation
    assert holder.snapshot.observations["m3"].health.total_pods == 33  # type: ignore[union-attr]
    assert holder.snapshot.heartbeat is not None and holder.snapshot.heartbeat.at == T0 + 1
    assert holder.snapshot.observations == (await store.read()).observations  # type: ignore[union-attr]


@pytest.mark.parametrize("why", ["gap", "other-config", "rewrite"])
async def test_anything_but_the_next_generation_is_a_full_read(store: Store, why: str) -> None:
    config = federation()
    observations = {n: observation(n, T0) for n in NAMES}
    await store.publish(config, observations, await heartbeat(store, T0))
    holder = SnapshotHolder(store, clock=lambda: T0 + 2)
    await holder.sync_once()
    assert holder.snapshot is not None
    ours = holder.snapshot
    observations["m1"] = observation("m1", T0 + 1, pods=11)
    generation = await store.publish(
        config, observations, await heartbeat(store, T0 + 1), changed={"m1"}
    )
    assert generation is not None
    change = {
        "gap": Change(generation + 1, ours.config_hash, ("m1",)),
        "other-config": Change(generation, "another-hash", ("m1",)),
        "rewrite": Change(generation, ours.config_hash, None),
    }[why]
    assert await store.read_change(ours, change) is None
    assert await holder.sync_once(change)  # the holder falls back to a full read
    assert holder.snapshot.generation == generation
    assert holder.snapshot.observations["m1"].health.total_pods == 11  # type: ignore[union-attr]


async def test_a_delta_on_another_config_becomes_a_full_rewrite(store: Store) -> None:
    """A new writer with another config, or Redis restarted empty: the store does not hold
    the config the delta names, so the publish rewrites everything."""
    old = {n: observation(n, T0) for n in NAMES}
    await store.publish(federation(), old, await heartbeat(store, T0))
    fewer = NAMES[:5]
    new = {n: observation(n, T0 + 1, pods=5) for n in fewer}
    await store.publish(federation(fewer), new, await heartbeat(store, T0 + 1), changed={"m0"})
    snapshot = await store.read()
    assert snapshot is not None
    assert list(snapshot.config.members) == fewer
    assert set(snapshot.observations) == set(fewer)  # the others' records are gone
    await store.client.flushdb()
    await store.publish(federation(fewer), new, await heartbeat(store, T0 + 2), changed={"m0"})
    again = await store.read()
    assert again is not None and set(again.observations) == set(fewer)


async def test_records_written_by_the_previous_version_still_read(store: Store) -> None:
    # a rolling update: Redis holds what the previous checker wrote, with fields this
    # version no longer publishes, and a router of this version reads it all the same
    config = federation(["m0"])
    record, beat = observation("m0", T0), await heartbeat(store, T0)
    await store.publish(config, {"m0": record}, beat)
    raw = await store.client.get(store.heartbeat_key)
    assert raw is not None
    written = json.loads(raw)
    assert isinstance(written["started_at"], float)  # what the previous version's reader needs
    health = HealthObservation("ok", (), 1, 100, T0)
    retired = {"raw_health": health.to_json(), "health_streak": 4, "healthy_at": T0}
    old = record.to_json() | retired | {"last_error_at": None}
    await store.client.hset(store.members_key, "m0", json.dumps(old))
    await store.client.set(store.heartbeat_key, json.dumps(written | {"started_at": T0 - 60}))
    snapshot = await store.read()
    assert snapshot is not None and snapshot.observations == {"m0": record}
    assert snapshot.heartbeat == beat


async def test_a_publish_without_the_lease_writes_nothing(store: Store) -> None:
    await store.publish(federation(), {"m0": observation("m0", T0)}, await heartbeat(store, T0))
    before = await store.read()
    stale = CheckerHeartbeat("c2", T0 + 5, fence=999)
    assert await store.publish(federation(), {"m0": observation("m0", T0 + 5)}, stale) is None
    assert await store.read() == before


@pytest.mark.parametrize(
    ("message", "change"),
    [
        (b"7 abc m1,m2", Change(7, "abc", ("m1", "m2"))),
        (b"8 abc -", Change(8, "abc", ())),
        (b"9 abc *", Change(9, "abc", None)),
        (b"12", None),
        (b"x abc m1", None),
        ("10 abc m1", Change(10, "abc", ("m1",))),
    ],
)
def test_channel_messages(message: bytes | str, change: Change | None) -> None:
    assert Change.parse(message) == change


async def test_drains_are_announced_and_read_with_a_delta(store: Store) -> None:
    from shared.records import Drain

    await store.publish(federation(), {"m0": observation("m0", T0)}, await heartbeat(store, T0))
    holder = SnapshotHolder(store, clock=lambda: T0 + 2)
    await holder.sync_once()
    pubsub = store.client.pubsub()
    await pubsub.subscribe(store.channel)
    await pubsub.get_message(timeout=1)
    await store.set_drain(Drain("m0", "upgrade", T0 + 1))
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
    await pubsub.aclose()
    assert message is not None
    change = Change.parse(message["data"])
    assert change is not None and change.members == ()
    assert holder.snapshot is not None
    assert await store.read_change(holder.snapshot, change) is not None  # a delta, not a full read
    await holder.sync_once(change)
    assert "m0" in holder.snapshot.drains


def _events(n: int, at: float) -> list[dict[str, Any]]:
    return [{"event": "observation", "member": "a", "at": at + i, "record": {}} for i in range(n)]


async def test_history_is_capped_by_entries(store: Store) -> None:
    for start in range(0, 2000, 500):
        await store.append_history(_events(500, T0 + start), max_entries=500)
    kept = await store.client.xlen(store.history_key)
    assert 500 <= kept <= 600  # Redis trims whole nodes of 100 entries
    available_since, events = await store.read_history()
    assert events[-1]["at"] == T0 + 1999
    assert available_since == events[0]["at"] >= T0 + 1400


async def test_history_is_capped_by_age(store: Store) -> None:
    await store.append_history(_events(1000, T0), max_entries=10**6)
    written = await store._server_time()

    async def aged() -> bool:
        return await store._server_time() > written + 1.2

    deadline = time.monotonic() + 10
    while not await aged():
        assert time.monotonic() < deadline, "Redis's clock did not move"
        await asyncio.sleep(0.05)
    await store.append_history(_events(10, T0 + 5000), max_entries=10**6, max_age=1.0)
    _, events = await store.read_history()
    # Every whole node of the old entries is gone; the new ones are all kept.
    assert len(events) <= 10 + 100
    assert [e["at"] for e in events][-10:] == [T0 + 5000 + i for i in range(10)]
