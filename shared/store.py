"""The Redis store adapter: the only place that knows the key layout.

Layout under a key prefix (default ``fedredirect``), so several federations can share one
Redis. Writes carry only what changed, so the cost of a publish does not grow with the
federation:

- ``PREFIX:config``: hash ``schema``, ``hash`` (SHA-256 of the canonical JSON) and
  ``json`` of the federation config, written when it changes (a checker's first publish);
  a full read (``Store.read``) validates it every time; a change notification that names
  the same hash keeps the config already read (``Store.read_change``);
- ``PREFIX:members``: hash member -> JSON observation record, written member by member;
- ``PREFIX:heartbeat``: JSON of the checker heartbeat, written by every publish;
- ``PREFIX:drains``: hash member -> JSON drain record, written by ``fedredirect drain``;
- ``PREFIX:history``: stream of JSON events (field ``e``): transitions, drains, observations
  at a bounded rate, routers' launch counts; capped by entries and age (docs/history.md).
  Losing it loses history only: nothing routes from it;
- ``PREFIX:generation``: counter bumped by every write above; readers poll it cheaply;
- channel ``PREFIX:changed``: ``GENERATION CONFIG_HASH NAMES`` on every write, NAMES the
  members written (comma-separated), ``*`` for a whole rewrite, ``-`` for none, so a
  reader one generation behind reads just those members; any gap means a full read.
  Each publish is one fenced Lua script, so a reader never sees half of one;
- ``PREFIX:leader`` (``CHECKER_ID|FENCE``, with a TTL) and ``PREFIX:fence``: the writer
  lease of highly available checkers. Only the holder of the lease, with the newest fencing
  token, can publish a snapshot: a paused old leader that wakes up is refused;
- ``PREFIX:routers``: sorted set of the live router processes (``HOST:PID``), each scored
  with the Redis server's time of its last registration: how many routers share the
  federation's launches (:mod:`shared.capacity`). Entries not renewed in time are dropped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

from shared.capacity import NO_LAUNCHES, SentLaunches
from shared.config import FederationConfig, config_from_json, config_to_json
from shared.evaluate import View, evaluate
from shared.records import CheckerHeartbeat, Drain, MemberObservation

SCHEMA = 2
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

# Publish only under the current lease and the newest fencing token. ARGV[5] is "full"
# (config and every member rewritten) or "delta" (the members given, if the stored config
# is the one named by hash ARGV[6]; else -2: the caller must publish in full).
_FENCED_PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] .. '|' .. ARGV[2] then return -1 end
if tonumber(redis.call('GET', KEYS[2])) ~= tonumber(ARGV[2]) then return -1 end
local names = {}
if ARGV[5] == 'delta' then
  if redis.call('HGET', KEYS[3], 'hash') ~= ARGV[6] then return -2 end
else
  redis.call('DEL', KEYS[3], KEYS[4])
  redis.call('HSET', KEYS[3], 'schema', ARGV[8], 'hash', ARGV[6], 'json', ARGV[7])
end
for i = 9, #ARGV, 2 do
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
  names[#names + 1] = ARGV[i]
end
redis.call('SET', KEYS[5], ARGV[4])
local generation = redis.call('INCR', KEYS[6])
local changed = '-'
if ARGV[5] == 'full' then
  changed = '*'
elseif #names > 0 then
  changed = table.concat(names, ',')
end
redis.call('PUBLISH', ARGV[3], generation .. ' ' .. ARGV[6] .. ' ' .. changed)
return generation
"""

# Mark router ARGV[1] live at the server's time, drop those not marked within ARGV[2]
# seconds, count the rest: one clock for every router, one round trip. The set expires
# with its last router.
_REGISTER_ROUTER = """
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%.6f', now - ARGV[2]))
redis.call('PEXPIRE', KEYS[1], math.ceil(ARGV[2] * 1000))
return redis.call('ZCARD', KEYS[1])
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
    config_hash: str = ""

    def evaluate(self, now: float, sent: SentLaunches = NO_LAUNCHES) -> View:
        """The view a router serves from this snapshot at ``now``, with the launches it
        ``sent`` since each member's report counted against its free pods."""
        return evaluate(self.config, self.observations, self.drains, self.heartbeat, now, sent)


@dataclass(frozen=True)
class Change:
    """One publish as announced on the channel: what a reader one generation behind needs."""

    generation: int
    config_hash: str
    members: tuple[str, ...] | None  # None: everything was rewritten (read it all)

    @classmethod
    def parse(cls, message: bytes | str) -> Change | None:
        """The channel message, or None if it is not one (a reader then reads everything)."""
        text = message.decode() if isinstance(message, bytes) else message
        parts = text.split(" ")
        if len(parts) != 3 or not parts[0].isdigit():
            return None
        names = parts[2]
        members = None if names == "*" else () if names == "-" else tuple(names.split(","))
        return cls(int(parts[0]), parts[1], members)


def canonical_config(config: FederationConfig) -> tuple[str, str]:
    """The config's canonical JSON and its SHA-256, which names it in the store."""
    text = json.dumps(config_to_json(config), sort_keys=True, separators=(",", ":"))
    return text, hashlib.sha256(text.encode()).hexdigest()


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
    sentinel = Sentinel(  # type: ignore[no-untyped-call, unused-ignore]  # typed in newer redis-py
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
        self.config_key = f"{prefix}:config"
        self.members_key = f"{prefix}:members"
        self.heartbeat_key = f"{prefix}:heartbeat"
        self.drains_key = f"{prefix}:drains"
        self.generation_key = f"{prefix}:generation"
        self.channel = f"{prefix}:changed"
        self.leader_key = f"{prefix}:leader"
        self.fence_key = f"{prefix}:fence"
        self._canonical: tuple[FederationConfig, str, str] | None = None  # config, text, hash
        self.history_key = f"{prefix}:history"
        self.routers_key = f"{prefix}:routers"

    async def publish(
        self,
        config: FederationConfig,
        observations: Mapping[str, MemberObservation],
        heartbeat: CheckerHeartbeat,
        *,
        changed: Collection[str] | None = None,
    ) -> int | None:
        """Publish, bump the generation and announce it, atomically, if the lease
        ``heartbeat.checker_id|heartbeat.fence`` is still current; else None.

        ``changed`` None rewrites the config and every member; otherwise only the members
        named are written (with the heartbeat). If the store does not hold this config
        (a new writer, Redis restarted empty), the delta becomes a full rewrite."""
        if self._canonical is None or self._canonical[0] is not config:
            self._canonical = (config, *canonical_config(config))
        _, text, digest = self._canonical
        if changed is not None:
            members = {name: observations[name] for name in changed if name in observations}
            result = await self._publish(heartbeat, "delta", digest, "", members)
            if result != -2:
                return None if result < 0 else result
        result = await self._publish(heartbeat, "full", digest, text, observations)
        return None if result < 0 else result

    async def _publish(
        self,
        heartbeat: CheckerHeartbeat,
        mode: str,
        digest: str,
        config_text: str,
        members: Mapping[str, MemberObservation],
    ) -> int:
        keys = [
            self.leader_key,
            self.fence_key,
            self.config_key,
            self.members_key,
            self.heartbeat_key,
            self.generation_key,
        ]
        args: list[str | int] = [
            heartbeat.checker_id,
            heartbeat.fence,
            self.channel,
            json.dumps(heartbeat.to_json(), separators=(",", ":")),
            mode,
            digest,
            config_text,
            SCHEMA,
        ]
        for name, obs in members.items():
            args += [name, json.dumps(obs.to_json(), separators=(",", ":"))]
        return int(await self.client.eval(_FENCED_PUBLISH, len(keys), *keys, *args))

    async def hold_lease(self, checker_id: str, ttl: float) -> int | None:
        """Take or renew the writer lease; the fencing token if held, else None."""
        keys = [self.leader_key, self.fence_key]
        result = await self.client.eval(_LEASE, 2, *keys, checker_id, int(ttl * 1000))
        return None if int(result) < 0 else int(result)

    async def release_lease(self, checker_id: str, fence: int) -> None:
        await self.client.eval(_RELEASE, 1, self.leader_key, f"{checker_id}|{fence}")

    async def register_router(self, name: str, expiry: float) -> int:
        """Mark router ``name`` live now and count the routers marked within the last
        ``expiry`` seconds (itself included), by the Redis server's clock."""
        script = _REGISTER_ROUTER
        return int(await self.client.eval(script, 1, self.routers_key, name, f"{expiry:.6f}"))

    async def unregister_router(self, name: str) -> None:
        """Router ``name`` stops: the others count it out at their next registration."""
        await self.client.zrem(self.routers_key, name)

    async def set_drain(self, drain: Drain) -> int:
        return await self._write_and_bump(
            lambda pipe: pipe.hset(self.drains_key, drain.member, json.dumps(drain.to_json()))
        )

    async def clear_drain(self, member: str) -> int:
        return await self._write_and_bump(lambda pipe: pipe.hdel(self.drains_key, member))

    async def _write_and_bump(self, write: Any) -> int:
        """A drain change: announced as a change of no member, so readers one generation
        behind read just the drains."""
        async with self.client.pipeline(transaction=True) as pipe:
            write(pipe)
            pipe.incr(self.generation_key)
            pipe.hget(self.config_key, "hash")
            results = await pipe.execute()
        generation, digest = int(results[-2]), _text(results[-1] or b"none")
        await self.client.publish(self.channel, f"{generation} {digest} -")
        return generation

    async def read_heartbeat(self) -> CheckerHeartbeat | None:
        """The last writer's heartbeat (None: none yet, or Redis restarted empty)."""
        return _decode_heartbeat(await self.client.get(self.heartbeat_key))

    async def read_drains(self) -> dict[str, Drain]:
        return _decode_drains(await self.client.hgetall(self.drains_key))

    async def generation(self) -> int:
        value = await self.client.get(self.generation_key)
        return int(value) if value is not None else 0

    async def append_history(
        self, events: list[dict[str, Any]], max_entries: int, max_age: float | None = None
    ) -> None:
        """Add events to the history stream, capped at about ``max_entries``; with
        ``max_age``, also drop entries older than that (by the time Redis added them)."""
        if not events and max_age is None:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for event in events:
                fields = {"e": json.dumps(event, separators=(",", ":"))}
                pipe.xadd(self.history_key, fields, maxlen=max_entries, approximate=True)  # type: ignore[arg-type]
            if max_age is not None:
                oldest = int((await self._server_time() - max_age) * 1000)
                pipe.xtrim(self.history_key, minid=f"{max(oldest, 0)}-0", approximate=True)
            await pipe.execute()

    async def _server_time(self) -> float:
        seconds, micros = await self.client.time()
        return float(seconds) + micros / 1e6

    async def read_history(
        self, since: float | None = None, limit: int = 100_000
    ) -> tuple[float | None, list[dict[str, Any]]]:
        """(when the history starts, the events recorded since ``since``, oldest first).
        The start is the time of the oldest event kept (None when there is none)."""
        start = "-" if since is None else f"{int(max(since, 0) * 1000)}-0"
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.xrange(self.history_key, "-", "+", count=1)
            pipe.xrange(self.history_key, start, "+", count=limit)
            first, entries = await pipe.execute()
        events = [json.loads(fields[b"e"]) for _id, fields in entries]
        oldest = json.loads(first[0][1][b"e"]).get("at") if first else None
        return (float(oldest) if oldest is not None else None), events

    async def read(self) -> Snapshot | None:
        """One consistent read of everything; None if nothing was ever published."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.get(self.generation_key)
            pipe.hgetall(self.config_key)
            pipe.hgetall(self.members_key)
            pipe.get(self.heartbeat_key)
            pipe.hgetall(self.drains_key)
            generation, config_raw, members_raw, heartbeat_raw, drains_raw = await pipe.execute()
        if not config_raw:
            return None
        fields = {_text(k): v for k, v in config_raw.items()}
        if _text(fields.get("schema", b"")) != str(SCHEMA):
            raise ValueError(f"store schema {fields.get('schema')!r} is not {SCHEMA}")
        return Snapshot(
            config=config_from_json(json.loads(fields["json"])),
            observations=_decode_members(members_raw),
            heartbeat=_decode_heartbeat(heartbeat_raw),
            drains=_decode_drains(drains_raw),
            generation=int(generation or 0),
            config_hash=_text(fields["hash"]),
        )

    async def read_change(self, snapshot: Snapshot, change: Change) -> Snapshot | None:
        """``snapshot`` with ``change`` applied, reading only the members it names (and the
        heartbeat and drains); None when a full read is needed instead (a gap, another
        config, a whole rewrite)."""
        if (
            change.members is None
            or change.generation != snapshot.generation + 1
            or change.config_hash != snapshot.config_hash
        ):
            return None
        names = list(change.members)
        async with self.client.pipeline(transaction=True) as pipe:
            if names:
                pipe.hmget(self.members_key, names)
            pipe.get(self.heartbeat_key)
            pipe.hgetall(self.drains_key)
            results = await pipe.execute()
        values = results[0] if names else []
        observations = dict(snapshot.observations)
        for name, raw in zip(names, values, strict=True):
            if raw is not None:
                observations[name] = MemberObservation.from_json(json.loads(raw))
        return Snapshot(
            config=snapshot.config,
            observations=observations,
            heartbeat=_decode_heartbeat(results[-2]),
            drains=_decode_drains(results[-1]),
            generation=change.generation,
            config_hash=snapshot.config_hash,
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decode_members(raw: Mapping[bytes | str, bytes | str]) -> dict[str, MemberObservation]:
    return {_text(k): MemberObservation.from_json(json.loads(v)) for k, v in raw.items()}


def _decode_heartbeat(raw: bytes | str | None) -> CheckerHeartbeat | None:
    return CheckerHeartbeat.from_json(json.loads(raw)) if raw else None


def _decode_drains(raw: Mapping[bytes | str, bytes | str]) -> dict[str, Drain]:
    return {_text(key): Drain.from_json(json.loads(value)) for key, value in raw.items()}
