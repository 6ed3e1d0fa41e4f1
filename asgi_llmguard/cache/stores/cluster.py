"""The shared cache store on Redis Cluster: namespaces spread over hash-tagged partitions.

A Lua script touches one slot only, and a replica follows a change log with one read per
stream, so the cache is cut into ``partitions`` (``LLMGUARD_REDIS_CLUSTER_PARTITIONS``, 64 by
default). Each partition is a whole :class:`~.redis.RedisCacheStore` (entries, exact keys,
namespace sets, LRU, expiry, counters, change log, index snapshot) whose prefix is one hash tag,
``{<prefix>c07}:``, so its scripts and its stream stay in one slot. A namespace belongs to one
partition (a hash of its name), so all its keys share that tag; namespaces spread over the
partitions, and the partitions over the cluster: partition ``p``'s tag is picked to fall in slot
range ``p/partitions`` of the 16 384 slots, so with masters holding even ranges (as
``redis-cli --cluster create`` makes them) each master holds about as many partitions.

Ids carry their partition: ``id = counter * partitions + p``, the counter being the partition's
own (ids stay below 2**63), so ``get``/``delete`` by id find the partition without a lookup; an
exact key (``namespace:digest``, :func:`~asgi_llmguard.cache.keys.exact_key_of`) names its
namespace. ``next_id`` therefore needs the namespace.

Bounds: ``max_entries`` and ``max_bytes`` are the whole cache's; each partition enforces its
share (``max / partitions``, at least 1 entry), so one huge namespace cannot use the whole bound.
A master that is down costs only the partitions whose slots it holds: their calls fail (a miss,
fail open), the others go on.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...core.health import Health
from .base import CacheEntry
from .redis import RedisCacheStore

if TYPE_CHECKING:
    from redis.asyncio import RedisCluster

__all__ = ["ClusterCacheStore", "partition_tags"]

SLOTS = 16384


def partition_tags(prefix: str, partitions: int) -> list[str]:
    """The hash tag of each partition (``{llmguard:c07}``), partition ``p``'s in slot range ``p/partitions``."""
    from redis.crc import key_slot

    base = prefix.replace("{", "").replace("}", "")
    width = len(str(partitions - 1))
    tags: list[str] = []
    for p in range(partitions):
        low, high = p * SLOTS // partitions, (p + 1) * SLOTS // partitions
        attempt = 0
        while True:
            tag = "{" + f"{base}c{p:0{width}d}" + (f"-{attempt}" if attempt else "") + "}"
            if low <= key_slot(tag.encode()) < high:
                break
            attempt += 1
        tags.append(tag)
    return tags


def partition_of(namespace: str, partitions: int) -> int:
    """The partition a namespace's keys live in."""
    return int.from_bytes(hashlib.blake2b(namespace.encode(), digest_size=8).digest(), "big") % partitions


class ClusterCacheStore:
    """:class:`~asgi_llmguard.cache.stores.base.CacheStore` over a Redis Cluster, one partition per hash tag."""

    def __init__(
        self,
        redis: RedisCluster,
        *,
        prefix: str = "llmguard:",
        partitions: int = 64,
        timeout: float = 0.1,
        max_entries: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        stream_maxlen: int = 100_000,
        health_for: Callable[[str], Health] | None = None,
    ) -> None:
        self.redis = redis
        self.base_prefix = prefix
        self.timeout = timeout
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.tags = partition_tags(prefix, partitions)
        self._tag_index = {tag: p for p, tag in enumerate(self.tags)}
        self.partitions: list[RedisCacheStore] = [
            RedisCacheStore(redis, prefix=tag + ":", timeout=timeout, max_entries=max(1, max_entries // partitions),
                            max_bytes=max(1, max_bytes // partitions), stream_maxlen=stream_maxlen,
                            health_for=health_for)
            for tag in self.tags]

    @property
    def failures(self) -> int:
        return sum(part.failures for part in self.partitions)

    def index_of(self, namespace: str) -> int:
        return partition_of(namespace, len(self.partitions))

    def owns(self, p: int) -> Callable[[str], bool]:
        """Whether a namespace belongs to partition ``p`` (what its index sync rebuilds)."""
        return lambda namespace: self.index_of(namespace) == p

    def partition(self, namespace: str) -> RedisCacheStore:
        return self.partitions[self.index_of(namespace)]

    def _by_id(self, entry_id: int) -> RedisCacheStore:
        return self.partitions[entry_id % len(self.partitions)]

    # -- CacheStore --------------------------------------------------------------------------------

    async def next_id(self, namespace: str | None = None) -> int:
        if namespace is None:
            raise ValueError("the cluster store numbers entries per partition: next_id needs the namespace")
        p = self.index_of(namespace)
        return await self.partitions[p].next_id() * len(self.partitions) + p

    async def put(self, entry: CacheEntry) -> list[CacheEntry]:
        p = self.index_of(entry.namespace)
        if entry.id % len(self.partitions) != p:
            raise ValueError(f"entry {entry.id} was not numbered for namespace {entry.namespace!r} (next_id)")
        return await self.partitions[p].put(entry)

    async def get(self, entry_id: int, *, touch: bool = True) -> CacheEntry | None:
        return await self._by_id(entry_id).get(entry_id, touch=touch)

    async def touch(self, entry_id: int) -> None:
        await self._by_id(entry_id).touch(entry_id)

    async def get_exact(self, exact_key: str) -> CacheEntry | None:
        return await self.partition(exact_key.rpartition(":")[0]).get_exact(exact_key)

    async def delete(self, entry_id: int) -> CacheEntry | None:
        return await self._by_id(entry_id).delete(entry_id)

    async def delete_namespace(self, namespace: str) -> list[CacheEntry]:
        return await self.partition(namespace).delete_namespace(namespace)

    async def flush(self) -> None:
        """Forget every entry of every partition; each partition's replicas hear one ``flush`` event."""
        found: dict[int, list[Any]] = defaultdict(list)
        for pattern in ("e:*", "x:*", "ns:*"):
            async def keys(pattern: str = pattern) -> list[Any]:
                return [key async for key in self.redis.scan_iter(match="{*}:cache:" + pattern, count=1000)]

            for key in await self.partitions[0].call(keys, budget=max(self.timeout, 5.0), breaker=False):
                tag = key.decode().partition(":cache:")[0] if isinstance(key, bytes) else key.partition(":cache:")[0]
                if tag in self._tag_index:
                    found[self._tag_index[tag]].append(key)
        for p, names in found.items():
            part = self.partitions[p]
            for i in range(0, len(names), 1000):
                chunk = names[i:i + 1000]
                await part.call(lambda chunk=chunk: self.redis.unlink(*chunk))  # type: ignore[misc]
        await asyncio.gather(*(self._flush_partition(part) for part in self.partitions))

    async def _flush_partition(self, part: RedisCacheStore) -> None:
        names = [part.key(name) for name in ("m", "lru", "exp", "bytes")]
        await part.call(lambda: self.redis.unlink(*names))
        await part._script("flush_event", part.origin)

    async def count(self) -> int:
        return sum(await asyncio.gather(*(part.count() for part in self.partitions)))

    async def close(self) -> None:
        return None

    async def prune(self, limit: int = 1000, *, breaker: bool = True) -> int:
        return sum(await asyncio.gather(*(part.prune(limit, breaker=breaker) for part in self.partitions)))
