"""The shared cache store: entries in Redis, the source of truth for every replica.

Keys, all under ``{prefix}cache:`` (the prefix lets several apps share one Redis). On Redis
Cluster, :mod:`.cluster` runs one such store per *partition*, whose prefix is a hash tag
(``{llmguard:c07}:``), so every key of a partition lands in one slot as the Lua scripts need:

- ``e:{id}``   a hash per entry: namespace, exact key, prompt, answer JSON, vector
  bytes (float32), created and expiry times; it expires with the entry (PEXPIREAT).
- ``x:{exact key}``  the exact tier: the id of the entry, same expiry.
- ``ns:{namespace}``  a set of ids, for invalidating a namespace.
- ``m``   a hash id -> ``size:namespace`` of every live entry (count, bytes, pruning).
- ``lru`` a sorted set of ids by last use (a tick counter, so ties cannot reorder).
- ``exp`` a sorted set of ids by expiry time (ms), so expired entries are pruned
  with an event even though Redis drops their hash silently.
- ``bytes``, ``tick``, ``id``: counters.
- ``stream``: every addition and removal (``op`` add/del/flush, ``id``, ``ns``,
  ``origin``, ``seq``), read by each replica's :mod:`asgi_llmguard.cache.index_sync` task;
  ``seq`` counts events (counter ``seq``), so a reader sees when some were trimmed.
- ``epoch``, ``snap``, ``snap:*``: written by the index sync (a marker that Redis
  still holds this cache; the index snapshot for joining replicas).

Every change is one Lua script, so the structures cannot disagree and the
stream event is written with the change. Every call has a time budget; a
timeout or a Redis error raises :class:`StorageUnavailable`, which the cache
turns into a miss (fail open). Request-path calls report to a shared
:class:`~asgi_llmguard.core.health.Health`: when Redis is down they fail fast,
but for one probe every short pause, and the outage is logged once, not per call.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np

from ...core.health import Health
from ...core.openai_protocol import Answer
from ...core.redis_client import is_outage
from .base import CacheEntry, StorageUnavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis, RedisCluster
    from redis.commands.core import AsyncScript

    AnyRedis = Redis | RedisCluster

__all__ = ["RedisCacheStore", "StorageUnavailable"]

T = TypeVar("T")

# Shared by the scripts: ARGV[1] is the key prefix ("{prefix}cache:"), ARGV[2] the stream's MAXLEN.
_REMOVE = """
local P = ARGV[1]
local MAXLEN = ARGV[2]
local function remove(id, why, out)
  local meta = redis.call('HGET', P .. 'm', id)
  redis.call('ZREM', P .. 'lru', id)
  redis.call('ZREM', P .. 'exp', id)
  if not meta then return end
  local sep = string.find(meta, ':', 1, true)
  local size = tonumber(string.sub(meta, 1, sep - 1))
  local ns = string.sub(meta, sep + 1)
  local ekey = P .. 'e:' .. id
  local fields = redis.call('HGETALL', ekey)
  if #fields > 0 then
    local xk = redis.call('HGET', ekey, 'xk')
    if xk and redis.call('GET', P .. 'x:' .. xk) == id then redis.call('DEL', P .. 'x:' .. xk) end
    redis.call('DEL', ekey)
    out[#out + 1] = id
    out[#out + 1] = fields
  end
  redis.call('SREM', P .. 'ns:' .. ns, id)
  redis.call('HDEL', P .. 'm', id)
  redis.call('DECRBY', P .. 'bytes', size)
  redis.call('XADD', P .. 'stream', 'MAXLEN', '~', MAXLEN, '*', 'op', 'del', 'id', id, 'ns', ns, 'why', why,
             'seq', redis.call('INCR', P .. 'seq'))
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function prune(limit, out)
  local ids = redis.call('ZRANGEBYSCORE', P .. 'exp', '-inf', now_ms(), 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do remove(id, 'expired', out) end
  return #ids
end
"""

# ARGV: 3 id, 4 namespace, 5 exact key, 6 expires (ms), 7 size, 8 max entries, 9 max bytes, 10 origin,
#       then field/value pairs of the entry hash.
_PUT = _REMOVE + """
local id, ns, xk, expires, size = ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local max_entries, max_bytes, origin = tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10]
local out = {}
prune(100, out)
local previous = redis.call('GET', P .. 'x:' .. xk)
if previous and previous ~= id then remove(previous, 'replaced', out) end
if redis.call('HEXISTS', P .. 'm', id) == 1 then remove(id, 'replaced', out) end
local ekey = P .. 'e:' .. id
local fields = {}
for i = 11, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', ekey, unpack(fields))
redis.call('PEXPIREAT', ekey, expires)
redis.call('SET', P .. 'x:' .. xk, id, 'PXAT', expires)
redis.call('SADD', P .. 'ns:' .. ns, id)
redis.call('ZADD', P .. 'lru', redis.call('INCR', P .. 'tick'), id)
redis.call('ZADD', P .. 'exp', expires, id)
redis.call('HSET', P .. 'm', id, size .. ':' .. ns)
redis.call('INCRBY', P .. 'bytes', size)
redis.call('XADD', P .. 'stream', 'MAXLEN', '~', MAXLEN, '*', 'op', 'add', 'id', id, 'ns', ns, 'origin', origin,
           'seq', redis.call('INCR', P .. 'seq'))
while true do
  local count = redis.call('HLEN', P .. 'm')
  local held = tonumber(redis.call('GET', P .. 'bytes') or '0')
  if count <= max_entries and held <= max_bytes then break end
  local oldest = redis.call('ZRANGE', P .. 'lru', 0, 0)[1]
  if not oldest then break end
  remove(oldest, 'evicted', out)
end
return out
"""

# ARGV: 3 id, 4 "1" to mark it used. Returns the entry's fields.
_GET = """
local P = ARGV[1]
local fields = redis.call('HGETALL', P .. 'e:' .. ARGV[3])
if #fields == 0 then return false end
if ARGV[4] == '1' then redis.call('ZADD', P .. 'lru', 'XX', redis.call('INCR', P .. 'tick'), ARGV[3]) end
return fields
"""

# ARGV: 3 id. Marks a live entry used.
_TOUCH = """
local P = ARGV[1]
redis.call('ZADD', P .. 'lru', 'XX', redis.call('INCR', P .. 'tick'), ARGV[3])
return 1
"""

# ARGV: 3 exact key. Returns {id, fields} and marks the entry used.
_GET_EXACT = """
local P = ARGV[1]
local id = redis.call('GET', P .. 'x:' .. ARGV[3])
if not id then return false end
local fields = redis.call('HGETALL', P .. 'e:' .. id)
if #fields == 0 then return false end
redis.call('ZADD', P .. 'lru', 'XX', redis.call('INCR', P .. 'tick'), id)
return {id, fields}
"""

# ARGV: 3 id
_DELETE = _REMOVE + """
local out = {}
remove(ARGV[3], 'invalidated', out)
return out
"""

# ARGV: 3 namespace
_DELETE_NAMESPACE = _REMOVE + """
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', P .. 'ns:' .. ARGV[3])) do remove(id, 'invalidated', out) end
return out
"""

# ARGV: 3 limit. Removes expired entries (with their events); returns how many were looked at.
_PRUNE = _REMOVE + """
local out = {}
return prune(tonumber(ARGV[3]), out)
"""

# ARGV: 3 origin
_FLUSH_EVENT = """
redis.call('XADD', ARGV[1] .. 'stream', 'MAXLEN', '~', ARGV[2], '*', 'op', 'flush', 'origin', ARGV[3],
           'seq', redis.call('INCR', ARGV[1] .. 'seq'))
return 1
"""

# (last stream id, seq), read together: a reader that starts from there misses nothing and sees no gap.
_HEAD = """
local last = redis.call('XREVRANGE', ARGV[1] .. 'stream', '+', '-', 'COUNT', 1)
return {redis.call('GET', ARGV[1] .. 'seq') or '0', last[1] and last[1][1] or '0-0'}
"""

# Ids stay unique across a Redis restart that lost the counter: a new counter starts at the
# server's clock in ms times 1024, above every id handed out before (and below 2**53).
_NEXT_ID = """
local key = ARGV[1] .. 'id'
if redis.call('EXISTS', key) == 0 then
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('SET', key, string.format('%.0f', ms * 1024))
end
return redis.call('INCR', key)
"""


class RedisCacheStore:
    """:class:`~asgi_llmguard.cache.stores.base.CacheStore` on Redis, shared by every replica.

    ``redis`` must return bytes (no ``decode_responses``). The store does not own the
    client: :meth:`close` leaves it open for its owner (the Guard) to close.
    """

    def __init__(
        self,
        redis: AnyRedis,
        *,
        prefix: str = "llmguard:",
        timeout: float = 0.1,
        max_entries: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        stream_maxlen: int = 100_000,
        health: Health | None = None,
        health_for: Callable[[str], Health] | None = None,
    ) -> None:
        from redis.exceptions import RedisError

        self.redis = redis
        self.base_prefix = prefix
        self.prefix = prefix + "cache:"
        self.timeout = timeout
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.stream_maxlen = stream_maxlen
        self._health = health if health is not None else Health()
        self._health_for = health_for  # on a cluster: the health of the node that holds this store's slot
        self.origin = uuid.uuid4().hex[:16]  # tells this process's own stream events from others'
        self.stream_key = self.prefix + "stream"
        self.failures = 0
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
        self._scripts: dict[str, AsyncScript] = {}
        for name, source in (("put", _PUT), ("get", _GET), ("touch", _TOUCH), ("get_exact", _GET_EXACT),
                             ("delete", _DELETE),
                             ("delete_namespace", _DELETE_NAMESPACE), ("prune", _PRUNE), ("next_id", _NEXT_ID),
                             ("flush_event", _FLUSH_EVENT), ("head", _HEAD)):
            self._scripts[name] = redis.register_script(source)

    def key(self, name: str) -> str:
        return self.prefix + name

    @property
    def health(self) -> Health:
        """What calls report to: the one Redis's health, or on a cluster the current node's."""
        return self._health if self._health_for is None else self._health_for(self.key("m"))

    # -- the time budget ---------------------------------------------------------------------------

    async def call(self, make: Callable[[], Awaitable[T]], *, budget: float | None = None,
                   breaker: bool = True) -> T:
        """Run one Redis call within its budget; any Redis trouble becomes :class:`StorageUnavailable`.

        ``breaker=False`` (the background sync, which has its own backoff and log events) neither
        fails fast nor reports to the health: a slow background read must not turn requests into misses.
        """
        if breaker and not self.health.allow():
            raise StorageUnavailable("Redis is down; failing fast until the next probe")
        try:
            async with asyncio.timeout(self.timeout if budget is None else budget):
                result = await make()
        except self._errors as exc:
            self.failures += 1
            if breaker:
                self.health.failed("cache", exc, unreachable=is_outage(exc))
            raise StorageUnavailable(f"Redis call failed: {type(exc).__name__}: {exc}") from exc
        if breaker:
            self.health.succeeded()
        return result

    async def _script(self, name: str, *args: Any, breaker: bool = True) -> Any:
        script = self._scripts[name]
        # One declared key (for Cluster routing); the scripts reach the others through the prefix.
        return await self.call(lambda: script(keys=[self.key("m")], args=[self.prefix, self.stream_maxlen, *args]),
                               breaker=breaker)

    # -- CacheStore --------------------------------------------------------------------------------

    async def next_id(self, namespace: str | None = None) -> int:
        return int(await self._script("next_id"))

    async def put(self, entry: CacheEntry) -> list[CacheEntry]:
        fields: list[Any] = ["ns", entry.namespace, "xk", entry.exact_key,
                             "answer", json.dumps(entry.answer.to_dict(), separators=(",", ":")),
                             "created", repr(entry.created_at), "expires", repr(entry.expires_at)]
        if entry.prompt is not None:
            fields += ["prompt", entry.prompt]
        if entry.vector is not None:
            fields += ["vec", np.asarray(entry.vector, dtype=np.float32).tobytes()]
        removed = await self._script("put", entry.id, entry.namespace, entry.exact_key,
                                     int(entry.expires_at * 1000), entry.size, self.max_entries, self.max_bytes,
                                     self.origin, *fields)
        return _entries(removed)

    async def get(self, entry_id: int, *, touch: bool = True) -> CacheEntry | None:
        fields = await self._script("get", entry_id, "1" if touch else "0")
        return _entry(entry_id, fields) if fields else None

    async def touch(self, entry_id: int) -> None:
        await self._script("touch", entry_id)

    async def get_exact(self, exact_key: str) -> CacheEntry | None:
        found = await self._script("get_exact", exact_key)
        return _entry(int(found[0]), found[1]) if found else None

    async def delete(self, entry_id: int) -> CacheEntry | None:
        removed = _entries(await self._script("delete", entry_id))
        return removed[0] if removed else None

    async def delete_namespace(self, namespace: str) -> list[CacheEntry]:
        return _entries(await self._script("delete_namespace", namespace))

    async def flush(self) -> None:
        """Forget every entry (not the id counter) and tell the replicas with one ``flush`` event."""
        for pattern in ("e:*", "x:*", "ns:*"):
            async for keys in self._scan(self.prefix + pattern):
                await self.call(partial(self.redis.unlink, *keys))
        names = [self.key(name) for name in ("m", "lru", "exp", "bytes")]
        await self.call(lambda: self.redis.unlink(*names))
        await self._script("flush_event", self.origin)

    async def count(self) -> int:
        await self.prune()
        return int(await self.call(lambda: self.redis.hlen(self.key("m"))))

    async def close(self) -> None:
        return None

    # -- for the index sync ------------------------------------------------------------------------

    async def prune(self, limit: int = 1000, *, breaker: bool = True) -> int:
        """Remove expired entries, with a ``del`` event each; returns how many were due."""
        return int(await self._script("prune", limit, breaker=breaker))

    async def vectors(self, ids: Sequence[int], *, breaker: bool = True) -> list[tuple[str, np.ndarray] | None]:
        """(namespace, vector) of each id, None where the entry is gone or has no vector."""
        if not ids:
            return []

        async def fetch() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            for entry_id in ids:
                pipe.hmget(self.prefix + f"e:{entry_id}", "ns", "vec")
            return list(await pipe.execute())

        rows = await self.call(fetch, budget=self.timeout * (1 + len(ids) / 500), breaker=breaker)
        return [None if ns is None or vec is None else (ns.decode(), np.frombuffer(vec, dtype=np.float32))
                for ns, vec in rows]

    async def live_ids(self, batch: int = 2000, *, breaker: bool = True) -> AsyncIterator[list[tuple[int, str]]]:
        """Every live entry as (id, namespace), in batches (HSCAN of the ``m`` hash)."""
        cursor = 0

        async def hscan() -> tuple[int, dict[bytes, bytes]]:
            return cast("tuple[int, dict[bytes, bytes]]", await self.redis.hscan(self.key("m"), cursor, count=batch))

        while True:
            cursor, found = await self.call(hscan, breaker=breaker)
            if found:
                yield [(int(k), v.decode().split(":", 1)[1]) for k, v in found.items()]
            if cursor == 0:
                return

    async def head(self, *, breaker: bool = True) -> tuple[str, int]:
        """(last stream id, its seq), read together; ("0-0", seq) when the stream is empty."""
        seq, last = await self._script("head", breaker=breaker)
        return (last.decode() if isinstance(last, bytes) else str(last)), int(seq)

    async def _scan(self, pattern: str) -> AsyncIterator[list[Any]]:
        cursor = 0

        async def scan() -> tuple[int, list[bytes]]:
            return cast("tuple[int, list[bytes]]", await self.redis.scan(cursor, match=pattern, count=1000))

        while True:
            cursor, keys = await self.call(scan)
            if keys:
                yield keys
            if cursor == 0:
                return


def _entries(flat: Any) -> list[CacheEntry]:
    """Entries from a script's ``{id, fields, id, fields, ...}``."""
    if not flat:
        return []
    return [_entry(int(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2)]


def _entry(entry_id: int, flat: Sequence[bytes]) -> CacheEntry:
    fields = {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}
    vec = fields.get("vec")
    prompt = fields.get("prompt")
    return CacheEntry(
        id=entry_id,
        namespace=fields["ns"].decode(),
        exact_key=fields["xk"].decode(),
        prompt=None if prompt is None else prompt.decode(),
        answer=Answer.from_dict(json.loads(fields["answer"])),
        vector=None if vec is None else np.frombuffer(vec, dtype=np.float32).copy(),
        created_at=float(fields["created"]),
        expires_at=float(fields["expires"]),
    )
