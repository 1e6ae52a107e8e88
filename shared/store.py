"""The Redis store adapter: the only place that knows the key layout.

Layout under a key prefix (default ``fedredirect``), so several federations can share one
Redis:

- ``PREFIX:snapshot``: JSON of the config, every member's observation and the checker
  heartbeat, written whole in one transaction, so a reader never sees half a cycle;
- ``PREFIX:drains``: hash member -> JSON drain record, written by ``fedredirect drain``;
- ``PREFIX:generation``: counter bumped by every write above; readers poll it cheaply;
- channel ``PREFIX:changed``: the new generation, published on every write, so readers
  learn of a change at once;
- ``PREFIX:leader`` (``CHECKER_ID|FENCE``, with a TTL) and ``PREFIX:fence``: the writer
  lease of highly available checkers. Only the holder of the lease, with the newest fencing
  token, can publish a snapshot: a paused old leader that wakes up is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

from shared.config import FederationConfig, config_from_json, config_to_json
from shared.records import CheckerHeartbeat, Drain, MemberObservation

SCHEMA = 1
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PREFIX = "fedredirect"


# Take the lease if free (SET PX with a new fencing token), renew it if ours; else -1.
_LEASE = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local sep = string.find(cur, '|', 1, true)
  if sep and string.sub(cur, 1, sep - 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(string.sub(cur, sep + 1))
  end
  return -1
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'NX', 'PX', ARGV[2])
return token
"""

# Publish only under the current lease and the newest fencing token.
_FENCED_PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] .. '|' .. ARGV[2] then return -1 end
if tonumber(redis.call('GET', KEYS[2])) ~= tonumber(ARGV[2]) then return -1 end
redis.call('SET', KEYS[3], ARGV[3])
local generation = redis.call('INCR', KEYS[4])
redis.call('PUBLISH', ARGV[4], generation)
return generation
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Snapshot:
    """Everything a router evaluates: one consistent read of the store."""

    config: FederationConfig
    observations: dict[str, MemberObservation]
    heartbeat: CheckerHeartbeat | None
    drains: dict[str, Drain] = field(default_factory=dict)
    generation: int = 0


def connect(url: str, timeout: float = 2.0) -> aioredis.Redis:
    """A client with bounded timeouts: a hung Redis must never hang a caller forever.

    Besides ``redis://`` and ``rediss://`` URLs, a Sentinel form is accepted:
    ``redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB]``; the client
    then asks the sentinels for the current master, and again after a failover.
    """
    if url.startswith("redis+sentinel://"):
        return _sentinel_master(url, timeout)
    return aioredis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=False
    )


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str, int, str | None]:
    """``redis+sentinel://[:pw@]h1:p1,h2:p2/master/db`` -> (sentinels, master, db, password)."""
    rest = url.removeprefix("redis+sentinel://")
    password = None
    if "@" in rest:
        auth, _, rest = rest.rpartition("@")
        password = unquote(auth.partition(":")[2] or auth) or None
    hosts, _, path = rest.partition("/")
    parts = [p for p in path.split("/") if p]
    if not hosts or not parts or len(parts) > 2:
        raise ValueError(
            "a Sentinel URL looks like redis+sentinel://HOST:PORT[,HOST:PORT]/MASTER_NAME[/DB]"
        )
    sentinels = []
    for item in hosts.split(","):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"sentinel address {item!r} is not HOST:PORT")
        sentinels.append((host.strip("[]"), int(port)))
    db = int(parts[1]) if len(parts) == 2 else 0
    return sentinels, parts[0], db, password


def _sentinel_master(url: str, timeout: float) -> aioredis.Redis:
    sentinels, master, db, password = parse_sentinel_url(url)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        sentinels,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout},
    )
    client: aioredis.Redis = sentinel.master_for(
        master,
        db=db,
        password=password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=False,
    )
    return client


class Store:
    def __init__(self, client: aioredis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self.snapshot_key = f"{prefix}:snapshot"
        self.drains_key = f"{prefix}:drains"
        self.generation_key = f"{prefix}:generation"
        self.channel = f"{prefix}:changed"
        self.leader_key = f"{prefix}:leader"
        self.fence_key = f"{prefix}:fence"

    async def publish(
        self,
        config: FederationConfig,
        observations: dict[str, MemberObservation],
        heartbeat: CheckerHeartbeat,
    ) -> int | None:
        """Write the whole snapshot, bump the generation and notify, atomically, if the
        lease ``heartbeat.checker_id|heartbeat.fence`` is still current; else None."""
        doc = {
            "schema": SCHEMA,
            "config": config_to_json(config),
            "observations": {name: obs.to_json() for name, obs in observations.items()},
            "heartbeat": heartbeat.to_json(),
        }
        keys = [self.leader_key, self.fence_key, self.snapshot_key, self.generation_key]
        args: list[str | int] = [
            heartbeat.checker_id,
            heartbeat.fence,
            json.dumps(doc, separators=(",", ":")),
            self.channel,
        ]
        result = await self.client.eval(_FENCED_PUBLISH, len(keys), *keys, *args)
        return None if int(result) < 0 else int(result)

    async def hold_lease(self, checker_id: str, ttl: float) -> int | None:
        """Take or renew the writer lease; the fencing token if held, else None."""
        keys = [self.leader_key, self.fence_key]
        result = await self.client.eval(_LEASE, 2, *keys, checker_id, int(ttl * 1000))
        return None if int(result) < 0 else int(result)

    async def release_lease(self, checker_id: str, fence: int) -> None:
        await self.client.eval(_RELEASE, 1, self.leader_key, f"{checker_id}|{fence}")

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
