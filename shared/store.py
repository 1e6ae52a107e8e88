"""The Redis store adapter: the only place that knows the key layout.

Layout under a key prefix (default ``fedredirect``), so several federations can share one
Redis:

- ``PREFIX:snapshot``: JSON of the config, every member's observation and the checker
  heartbeat, written whole in one transaction, so a reader never sees half a cycle;
- ``PREFIX:drains``: hash member -> JSON drain record, written by ``fedredirect drain``;
- ``PREFIX:generation``: counter bumped by every write above; readers poll it cheaply;
- channel ``PREFIX:changed``: the new generation, published on every write, so readers
  learn of a change at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from shared.config import FederationConfig, config_from_json, config_to_json
from shared.records import CheckerHeartbeat, Drain, MemberObservation

SCHEMA = 1
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PREFIX = "fedredirect"


@dataclass(frozen=True)
class Snapshot:
    """Everything a router evaluates: one consistent read of the store."""

    config: FederationConfig
    observations: dict[str, MemberObservation]
    heartbeat: CheckerHeartbeat | None
    drains: dict[str, Drain] = field(default_factory=dict)
    generation: int = 0


def connect(url: str, timeout: float = 2.0) -> aioredis.Redis:
    """A client with bounded timeouts: a hung Redis must never hang a caller forever."""
    return aioredis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=False
    )


class Store:
    def __init__(self, client: aioredis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self.snapshot_key = f"{prefix}:snapshot"
        self.drains_key = f"{prefix}:drains"
        self.generation_key = f"{prefix}:generation"
        self.channel = f"{prefix}:changed"

    async def publish(
        self,
        config: FederationConfig,
        observations: dict[str, MemberObservation],
        heartbeat: CheckerHeartbeat,
    ) -> int:
        """Write the whole snapshot, bump the generation and notify, atomically."""
        doc = {
            "schema": SCHEMA,
            "config": config_to_json(config),
            "observations": {name: obs.to_json() for name, obs in observations.items()},
            "heartbeat": heartbeat.to_json(),
        }
        return await self._write_and_bump(
            lambda pipe: pipe.set(self.snapshot_key, json.dumps(doc, separators=(",", ":")))
        )

    async def set_drain(self, drain: Drain) -> int:
        return await self._write_and_bump(
            lambda pipe: pipe.hset(self.drains_key, drain.member, json.dumps(drain.to_json()))
        )

    async def clear_drain(self, member: str) -> int:
        return await self._write_and_bump(lambda pipe: pipe.hdel(self.drains_key, member))

    async def _write_and_bump(self, write: Any) -> int:
        async with self.client.pipeline(transaction=True) as pipe:
            write(pipe)
            pipe.incr(self.generation_key)
            results = await pipe.execute()
        generation = int(results[-1])
        await self.client.publish(self.channel, str(generation))
        return generation

    async def read_drains(self) -> dict[str, Drain]:
        return _decode_drains(await self.client.hgetall(self.drains_key))

    async def generation(self) -> int:
        value = await self.client.get(self.generation_key)
        return int(value) if value is not None else 0

    async def read(self) -> Snapshot | None:
        """One consistent read of snapshot, drains and generation; None if never published."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.get(self.generation_key)
            pipe.get(self.snapshot_key)
            pipe.hgetall(self.drains_key)
            generation, raw, drains_raw = await pipe.execute()
        if raw is None:
            return None
        return decode_snapshot(raw, drains_raw, int(generation or 0))


def decode_snapshot(
    raw: bytes, drains_raw: Mapping[bytes | str, bytes | str], generation: int
) -> Snapshot:
    doc = json.loads(raw)
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"snapshot schema {doc.get('schema')!r} is not {SCHEMA}")
    heartbeat = doc.get("heartbeat")
    drains = _decode_drains(drains_raw)
    return Snapshot(
        config=config_from_json(doc["config"]),
        observations={
            name: MemberObservation.from_json(obs) for name, obs in doc["observations"].items()
        },
        heartbeat=CheckerHeartbeat.from_json(heartbeat) if heartbeat else None,
        drains=drains,
        generation=generation,
    )


def _decode_drains(raw: Mapping[bytes | str, bytes | str]) -> dict[str, Drain]:
    return {
        key.decode() if isinstance(key, bytes) else key: Drain.from_json(json.loads(value))
        for key, value in raw.items()
    }
