"""Keep this replica's index in step with a cache spread over Redis Cluster: one sync per partition.

Each partition of :class:`~asgi_llmguard.cache.stores.cluster.ClusterCacheStore` has its own
change log, epoch and index snapshot, in its own slot. This replica runs one
:class:`~asgi_llmguard.cache.index_sync.IndexSync` task per partition, all on one cluster
connection of their own (relaxed time budget, blocking reads), each owning the namespaces of its
partition: it bootstraps them from the partition's snapshot (or a scan), follows the partition's
stream, and on a gap (the master lost its data, the stream was trimmed past it) rebuilds only
them, while the other partitions' tasks go on. A master that is down stalls only its partitions'
tasks, which back off and carry on (or rebuild) when it is back.

A replica that serves only some namespaces would run only their partitions' tasks
(``partitions=`` below): see docs/scaling.md, "Following only some namespaces".
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .index_sync import IndexSync, SyncMetrics
from .stores.cluster import ClusterCacheStore

if TYPE_CHECKING:
    from redis.asyncio import RedisCluster

    from .engine import SemanticCache

__all__ = ["ClusterIndexSync"]


class ClusterIndexSync:
    """One :class:`IndexSync` per partition of a cluster store, started and stopped together."""

    def __init__(
        self,
        cache: SemanticCache,
        store: ClusterCacheStore,
        *,
        metrics: SyncMetrics | None = None,
        redis_url: str | None = None,
        client: RedisCluster | None = None,
        partitions: Iterable[int] | None = None,
        **options: Any,
    ) -> None:
        self._client: RedisCluster | None = None
        if client is None:
            from ..core.redis_cluster import connect_cluster

            if redis_url is None:
                raise ValueError("ClusterIndexSync needs redis_url or client")
            client = self._client = connect_cluster(redis_url, timeout=max(1.0, 10 * store.timeout))
        chosen = range(len(store.partitions)) if partitions is None else partitions
        self.syncs: dict[int, IndexSync] = {
            p: IndexSync(cache, store.partitions[p], metrics=metrics, client=client, owns=store.owns(p), **options)
            for p in chosen}
        self.ready = asyncio.Event()  # set once every partition has bootstrapped
        self._waiter: asyncio.Task[None] | None = None

    def start(self) -> None:
        for sync in self.syncs.values():
            sync.start()
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_task(self._wait_ready(), name="llmguard-sync-ready")

    async def _wait_ready(self) -> None:
        await asyncio.gather(*(sync.ready.wait() for sync in self.syncs.values()))
        self.ready.set()

    async def stop(self) -> None:
        if self._waiter is not None:
            self._waiter.cancel()
            self._waiter = None
        await asyncio.gather(*(sync.stop() for sync in self.syncs.values()))
        if self._client is not None:
            await self._client.aclose()

    async def write_snapshot(self, *, force: bool = True) -> bool:
        written = await asyncio.gather(*(sync.write_snapshot(force=force) for sync in self.syncs.values()))
        return any(written)

    @property
    def bootstraps(self) -> list[dict[str, Any]]:
        return [dict(report, partition=p) for p, sync in self.syncs.items() for report in sync.bootstraps]

    @property
    def events_applied(self) -> int:
        return sum(sync.events_applied for sync in self.syncs.values())

    @property
    def lags_ms(self) -> collections.deque[float]:
        merged: collections.deque[float] = collections.deque(maxlen=10_000)
        for sync in self.syncs.values():
            merged.extend(sync.lags_ms)
        return merged
