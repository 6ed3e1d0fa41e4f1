"""Keep this replica's vector index in step with the shared cache in Redis.

Redis holds the entries (the source of truth) and a stream of every addition
and removal (:mod:`asgi_llmguard.cache.stores.redis`). Each replica runs one
:class:`IndexSync` task that

1. bootstraps: loads the newest *snapshot* of the index stored in Redis (the
   usearch graphs and small namespaces' matrices, tagged with the stream id they
   cover) and replays the stream from there; without a usable snapshot it scans
   the entries and builds the index (slow for large namespaces: the HNSW graph is
   built again);
2. follows the stream (``XREAD BLOCK``) and applies ``add`` (fetching the vector
   from the entry), ``del`` (expiry, eviction, invalidation) and ``flush``;
3. checks every second that it missed nothing: a changed epoch key (Redis
   restarted empty, or the cache keys were wiped) or a stream trimmed past its
   position means a gap, and the index is rebuilt in the background while the
   old one keeps serving;
4. prunes expired entries (so their ``del`` events reach every replica) and, in
   one replica at a time, writes a new snapshot when enough has changed.

On Redis Cluster, one task follows each partition of the cache (:mod:`.cluster_sync`): it is
given the partition's store and the namespaces it owns, bootstraps, snapshots and rebuilds only
those, and leaves the other partitions' namespaces in the shared index alone.

Redis slow or down: the task backs off (up to ``MAX_BACKOFF``) and retries; requests are served as
misses meanwhile (the store fails open). When Redis returns the task carries on
from its position, or rebuilds when the check finds a gap.

The index is rebuilt off to the side and then adopted by the live
:class:`~asgi_llmguard.cache.index.VectorIndex` object in one step (others, like
the metrics, hold that very object). Bulk loading and snapshots use the index's
per-namespace internals; they live here so that the index stays free of I/O.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
import structlog

from .index import VectorIndex, _Approximate, _Exact
from .stores.base import StorageUnavailable
from .stores.redis import RedisCacheStore

if TYPE_CHECKING:
    from redis.asyncio import Redis, RedisCluster

    from ..core.types import LabelledCounter
    from .engine import SemanticCache

__all__ = ["IndexSync"]

log = structlog.get_logger("asgi_llmguard.indexsync")


class SyncMetrics(Protocol):
    """What the sync counts: a failed round as ``degraded{part="redis_sync"}`` (observability's Metrics)."""

    @property
    def degraded(self) -> LabelledCounter: ...


MAX_BACKOFF = 0.5  # seconds between attempts while Redis is away: it is used again this soon after it returns
_CHUNK = 8 * 1024 * 1024  # snapshot pieces: one large value would block Redis and exceed a time budget


class _Gap(Exception):
    """This replica may have missed stream events: rebuild."""


def _stream_text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _stream_id(raw: bytes | str) -> tuple[int, int]:
    ms, _, seq = _stream_text(raw).partition("-")
    return int(ms), int(seq or 0)


class IndexSync:
    """The background task that keeps ``cache.index`` equal to the entries in Redis."""

    def __init__(
        self,
        cache: SemanticCache,
        store: RedisCacheStore,
        *,
        metrics: SyncMetrics | None = None,
        redis_url: str | None = None,
        client: Redis | RedisCluster | None = None,
        owns: Callable[[str], bool] | None = None,
        batch: int = 500,
        check_interval: float = 1.0,
        prune_interval: float = 5.0,
        snapshot_interval: float = 60.0,
        snapshot_min_events: int = 1000,
    ) -> None:
        if cache.index is None:
            raise ValueError("IndexSync needs a cache with a vector index")
        self.index: VectorIndex = cache.index
        # With a URL the task has its own connection with a relaxed budget (10x the requests', at
        # least 1 s) and long blocking reads: a busy moment must not count as an outage. Without
        # one (an app's own client, e.g. Sentinel) it shares the requests' client and budget.
        # ``client``: such a connection, opened by the caller and shared (one per partition's task).
        self._client: Redis | RedisCluster | None = None
        self.owns = owns  # None: every namespace is this task's
        if redis_url is not None or client is not None:
            budget = max(1.0, 10 * store.timeout)
            if client is None:
                from ..core.redis_client import connect

                client = self._client = connect(redis_url or "", timeout=budget)
            store = RedisCacheStore(client, prefix=store.base_prefix, timeout=budget,
                                    max_entries=store.max_entries, max_bytes=store.max_bytes,
                                    stream_maxlen=store.stream_maxlen)
            self._block_ms = max(1, int(min(budget / 2, check_interval) * 1000))  # idle: check every interval
        else:
            self._block_ms = max(1, int(store.timeout * 1000 / 2))  # XREAD must return within the budget
        self.store = store
        self.metrics = metrics
        self.batch = batch
        self.check_interval = check_interval
        self.prune_interval = prune_interval
        self.snapshot_interval = snapshot_interval
        self.snapshot_min_events = snapshot_min_events
        self.position: str | None = None  # the last stream id applied; None: (re)bootstrap
        self.seq = 0  # the last event's number (the stream numbers its events 1, 2, 3...)
        self.epoch: bytes | None = None
        self.ready = asyncio.Event()  # set after the first bootstrap
        self.bootstraps: list[dict[str, Any]] = []  # how each (re)build went: source, entries, seconds
        self.lags_ms: collections.deque[float] = collections.deque(maxlen=10_000)  # write -> applied here
        self.events_applied = 0
        self._events_since_snapshot = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="llmguard-index-sync")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        # A cancellation that lands as a time budget runs out can be taken for the timeout
        # (asyncio.timeout in 3.11): cancel again until the task is really done.
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        with contextlib.suppress(asyncio.CancelledError):
            task.result()
        self._stopping = False
        if self._client is not None:  # closing is idempotent, and the client reconnects if started again
            await self._client.aclose()

    async def _run(self) -> None:
        failures = 0
        next_check = next_prune = 0.0
        next_snapshot = time.monotonic() + self.snapshot_interval
        while not self._stopping:
            try:
                if self.position is None:
                    await self._bootstrap()
                    self.ready.set()
                await self._follow()
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + self.check_interval
                    await self._check()
                if now >= next_prune:
                    next_prune = now + self.prune_interval
                    await self.store.prune(breaker=False)
                if now >= next_snapshot:
                    next_snapshot = now + self.snapshot_interval
                    await self.write_snapshot(force=False)
                if failures:
                    log.info("llmguard.index_sync.recovered", after_failures=failures)
                    failures = 0
            except StorageUnavailable as exc:
                failures += 1
                if failures == 1:
                    log.warning("llmguard.index_sync.redis_unavailable", error=str(exc))
                    if self.metrics is not None:
                        self.metrics.degraded.labels("redis_sync").inc()
                await asyncio.sleep(min(MAX_BACKOFF, 0.05 * 2 ** min(failures, 6)))
            except _Gap as gap:
                log.warning("llmguard.index_sync.gap", reason=str(gap))
                self.position = None
            except Exception:  # a bug here must not stop the syncing for good
                log.exception("llmguard.index_sync.failed")
                await asyncio.sleep(1.0)

    # -- following the stream ----------------------------------------------------------------------

    async def _read(self, position: str, block: bool) -> list[tuple[bytes, dict[bytes, bytes]]]:
        store = self.store

        async def xread() -> Any:
            return await store.redis.xread({store.stream_key: position}, count=self.batch,
                                           block=self._block_ms if block else None)

        response = await store.call(xread, budget=store.timeout + self._block_ms / 1000, breaker=False)
        return list(response[0][1]) if response else []

    async def _follow(self) -> None:
        assert self.position is not None
        events = await self._read(self.position, block=True)
        if events:
            self.seq = await self._apply(self.index, events, self.seq)
            self.position = events[-1][0].decode()

    async def _apply(self, index: VectorIndex, events: Sequence[tuple[bytes, dict[bytes, bytes]]], seq: int) -> int:
        """Apply stream events in order and return the last one's ``seq``.

        Raises :class:`_Gap` when ``seq`` skips (events were trimmed before we read them). Adds
        already in the index (this replica's own writes, snapshot rows) need no fetch.
        """
        wanted = [int(f[b"id"]) for _, f in events
                  if f.get(b"op") == b"add" and not _has(index, f[b"ns"].decode(), int(f[b"id"]))]
        vectors = dict(zip(wanted, await self.store.vectors(wanted, breaker=False), strict=True))
        now_ms = time.time() * 1000
        for count, (event_id, fields) in enumerate(events):
            number = int(fields.get(b"seq", 0))
            if number != seq + 1:
                raise _Gap(f"missed stream events {seq + 1} to {number - 1} (trimmed before they were read)")
            seq = number
            op = fields.get(b"op")
            if op == b"add":
                found = vectors.get(int(fields[b"id"]))
                if found is not None:  # None: already indexed, or gone again since
                    with contextlib.suppress(ValueError):  # a zero vector has no direction: not indexable
                        index.add(found[0], int(fields[b"id"]), found[1])
                    self.lags_ms.append(now_ms - _stream_id(event_id)[0])
            elif op == b"del":
                index.remove(fields[b"ns"].decode(), int(fields[b"id"]))
            elif op == b"flush":
                _clear(index, self.owns)
            if count % 64 == 63:  # adds into an HNSW graph take a while: let requests in
                await asyncio.sleep(0)
        self.events_applied += len(events)
        self._events_since_snapshot += len(events)
        return seq

    async def _check(self) -> None:
        """Raise :class:`_Gap` when Redis lost the cache (restart without persistence, wiped keys)."""
        store = self.store
        epoch = await store.call(partial(store.redis.get, store.key("epoch")), breaker=False)
        if epoch != self.epoch:
            raise _Gap("the cache's epoch changed: Redis restarted empty or its keys were wiped")

    # -- building ----------------------------------------------------------------------------------

    async def _ensure_epoch(self) -> bytes:
        store = self.store

        async def epoch() -> Any:
            pipe = store.redis.pipeline(transaction=False)
            pipe.set(store.key("epoch"), uuid.uuid4().hex, nx=True)
            pipe.get(store.key("epoch"))
            return (await pipe.execute())[1]

        value: bytes = await store.call(epoch, breaker=False)
        return value

    async def _bootstrap(self) -> None:
        """Build the index from the snapshot (or a scan), replay the stream since, then adopt it."""
        started = time.perf_counter()
        self.epoch = await self._ensure_epoch()
        built = await self._from_snapshot()
        source, caught_up = "snapshot", None
        if built is not None:
            try:
                caught_up = await self._catch_up(*built)
            except _Gap as gap:  # the stream no longer reaches back to the snapshot
                log.info("llmguard.index_sync.snapshot_too_old", reason=str(gap))
        if built is None or caught_up is None:
            source = "scan"
            built = await self._from_scan()
            caught_up = await self._catch_up(*built)
        fresh = built[0]
        self.position, self.seq, replayed = caught_up
        _adopt(self.index, fresh, self.owns)
        report = {"source": source, "entries": len(fresh), "replayed": replayed,
                  "seconds": round(time.perf_counter() - started, 3)}
        self.bootstraps.append(report)
        log.info("llmguard.index_sync.bootstrapped", **report)
        if source == "scan" and any(self.index.uses_usearch(ns) for ns in self.index.namespaces()):
            await self.write_snapshot()  # spare the next replica the graph building we just did

    async def _catch_up(self, fresh: VectorIndex, position: str, seq: int) -> tuple[str, int, int]:
        """Replay the stream from ``position`` into ``fresh``: (position, seq) at its end, events replayed."""
        replayed = 0
        while True:
            events = await self._read(position, block=False)
            if not events:
                return position, seq, replayed
            seq = await self._apply(fresh, events, seq)
            replayed += len(events)
            position = events[-1][0].decode()

    async def _from_scan(self) -> tuple[VectorIndex, str, int]:
        """Every live entry's vector, read from Redis; the stream from before the scan replays what changed."""
        position, seq = await self.store.head(breaker=False)
        groups: dict[str, tuple[list[int], list[npt.NDArray[np.float32]]]] = {}
        async for batch in self.store.live_ids(breaker=False):
            ids = [entry_id for entry_id, _ in batch]
            for entry_id, found in zip(ids, await self.store.vectors(ids, breaker=False), strict=True):
                if found is not None:
                    keys, vectors = groups.setdefault(found[0], ([], []))
                    keys.append(entry_id)
                    vectors.append(found[1])
        fresh = self.index.empty_like()
        for namespace, (keys, vectors) in groups.items():
            await _load(fresh, namespace, keys, np.stack(vectors))
        return fresh, position, seq

    # -- snapshots ---------------------------------------------------------------------------------

    async def write_snapshot(self, *, force: bool = True) -> bool:
        """Store this replica's index in Redis for joining replicas; one writer at a time.

        Unless ``force``, only when enough events arrived since the last one. True if written.
        """
        store = self.store
        if self.position is None or self.epoch is None:
            return False
        if not force and self._events_since_snapshot < self.snapshot_min_events:
            return False
        lock_ms = max(1000, int(self.snapshot_interval * 1000))
        lock = partial(store.redis.set, store.key("snap:lock"), store.origin, nx=True, px=lock_ms)
        if not await store.call(lock, breaker=False):
            return False
        started = time.perf_counter()
        position, seq, (header, payload) = self.position, self.seq, _serialise(self.index, self.owns)
        generation = uuid.uuid4().hex[:12]
        budget = max(store.timeout, 5.0)
        pieces = [payload[i:i + _CHUNK] for i in range(0, len(payload), _CHUNK)] or [b""]
        for number, piece in enumerate(pieces):
            key = store.key(f"snap:{generation}:{number}")
            await store.call(partial(store.redis.set, key, piece), budget=budget, breaker=False)
        header.update(epoch=self.epoch.decode(), position=position, seq=seq, generation=generation, chunks=len(pieces),
                      size=len(payload), dims=self.index.dimensions)
        previous = await store.call(lambda: store.redis.getset(store.key("snap"), json.dumps(header)), breaker=False)
        if previous:
            old = json.loads(previous)
            for number in range(int(old.get("chunks", 0))):  # readers of the old one get a minute
                name = store.key(f"snap:{old['generation']}:{number}")
                await store.call(partial(store.redis.pexpire, name, 60_000), breaker=False)
        self._events_since_snapshot = 0
        log.info("llmguard.index_sync.snapshot_written", entries=len(self.index), bytes=len(payload),
                 seconds=round(time.perf_counter() - started, 3))
        return True

    async def _from_snapshot(self) -> tuple[VectorIndex, str, int] | None:
        store = self.store
        raw = await store.call(lambda: store.redis.get(store.key("snap")), breaker=False)
        if raw is None:
            return None
        header = json.loads(raw)
        if header.get("epoch") != (self.epoch or b"").decode() or header.get("dims") != self.index.dimensions:
            return None
        budget = max(store.timeout, 5.0)
        parts: list[bytes] = []
        for number in range(int(header["chunks"])):
            key = store.key(f"snap:{header['generation']}:{number}")
            piece = await store.call(partial(store.redis.get, key), budget=budget, breaker=False)
            if piece is None:  # replaced and expired while we read: scan instead
                return None
            parts.append(piece if isinstance(piece, bytes) else piece.encode())
        payload = b"".join(parts)
        if len(payload) != header["size"]:
            return None
        fresh = self.index.empty_like()
        try:
            await asyncio.to_thread(_deserialise, fresh, header["spaces"], payload)
        except Exception as exc:  # a snapshot that does not load: build from the entries instead
            log.warning("llmguard.index_sync.snapshot_unusable", error=repr(exc))
            return None
        return fresh, str(header["position"]), int(header["seq"])


# -- the index's internals, in bulk -----------------------------------------------------------------


def _has(index: VectorIndex, namespace: str, key: int) -> bool:
    space = index._namespaces.get(namespace)
    if space is None:
        return False
    return key in (space.positions if isinstance(space, _Exact) else space.exact.positions)


def _adopt(target: VectorIndex, source: VectorIndex, owns: Callable[[str], bool] | None = None) -> None:
    """Give ``target`` (the object everyone holds) the contents of ``source``, in one step.

    With ``owns``, only the namespaces it owns are replaced; the others' stay as they are.
    """
    if owns is None:
        target._namespaces = source._namespaces
        target._size = source._size
        return
    kept = {ns: space for ns, space in target._namespaces.items() if not owns(ns)}
    kept.update(source._namespaces)
    target._namespaces = kept
    target._size = sum(len(space) for space in kept.values())


def _clear(index: VectorIndex, owns: Callable[[str], bool] | None) -> None:
    """A ``flush`` event: forget every namespace (of the partition, with ``owns``)."""
    if owns is None:
        index.clear()
        return
    for namespace in [ns for ns in index.namespaces() if owns(ns)]:
        index.clear(namespace)


def _units(matrix: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    norms = np.linalg.norm(matrix, axis=1)
    usable = np.isfinite(norms) & (norms > 0)
    return (matrix[usable] / norms[usable, None]).astype(np.float32), usable


def _exact_space(dimensions: int, keys: list[int], units: npt.NDArray[np.float32]) -> _Exact:
    space = _Exact(dimensions, len(keys))
    space.matrix[: len(keys)] = units
    space.keys = list(keys)
    space.positions = {key: position for position, key in enumerate(keys)}
    return space


async def _load(index: VectorIndex, namespace: str, keys: list[int], matrix: npt.NDArray[np.float32]) -> None:
    """Put a whole namespace into a fresh index; a large one's HNSW graph is built in a thread."""
    units, usable = _units(matrix)
    kept = [key for key, ok in zip(keys, usable.tolist(), strict=True) if ok]
    if not kept:
        return
    unique = dict(zip(kept, range(len(kept)), strict=True))  # the last vector of a repeated key wins
    kept, units = list(unique), units[list(unique.values())]
    exact = _exact_space(index.dimensions, kept, units)
    space: _Exact | _Approximate = exact
    if index.brute_force_below == 0 or len(kept) >= index.brute_force_below:
        space = await asyncio.to_thread(partial(_Approximate, index.dimensions, exact, threads=0,
                                                expansion_search=index.expansion_search))
    index._namespaces[namespace] = space
    index._size += len(kept)


def _serialise(index: VectorIndex, owns: Callable[[str], bool] | None = None) -> tuple[dict[str, Any], bytes]:
    """(header, payload): per namespace its keys, then its unit matrix or its saved usearch graph.

    With ``owns``, only the namespaces it owns (a cluster partition's)."""
    spaces: list[dict[str, Any]] = []
    parts: list[bytes] = []
    offset = 0
    for namespace, space in index._namespaces.items():
        if owns is not None and not owns(namespace):
            continue
        if isinstance(space, _Exact):
            keys = np.asarray(space.keys, dtype=np.uint64).tobytes()
            data = space.matrix[: len(space)].tobytes()
            kind = "exact"
        else:  # the graph, then the exact unit vectors in the order of the keys
            keys = np.asarray(space.exact.keys, dtype=np.uint64).tobytes()
            saved = space.index.save()
            if saved is None:
                raise RuntimeError("usearch returned no bytes for the index")
            graph = bytes(saved)
            data = graph + space.exact.matrix[: len(space)].tobytes()
            kind = "usearch-i8+exact"
        item: dict[str, Any] = {"ns": namespace, "kind": kind, "count": len(space), "keys": [offset, len(keys)],
                                "data": [offset + len(keys), len(data)]}
        if kind != "exact":
            item["graph_bytes"] = len(graph)
        spaces.append(item)
        parts += [keys, data]
        offset += len(keys) + len(data)
    return {"spaces": spaces}, b"".join(parts)


def _deserialise(index: VectorIndex, spaces: list[dict[str, Any]], payload: bytes) -> None:
    from usearch.index import Index

    view = memoryview(payload)
    for item in spaces:
        start, length = item["keys"]
        keys = np.frombuffer(view[start:start + length], dtype=np.uint64).tolist()
        start, length = item["data"]
        data = view[start:start + length]
        space: _Exact | _Approximate
        if item["kind"] == "exact":
            units = np.frombuffer(data, dtype=np.float32).reshape(len(keys), index.dimensions)
            space = _exact_space(index.dimensions, keys, units)
        elif item["kind"] == "usearch-i8+exact":
            graph_bytes = int(item["graph_bytes"])
            restored = Index.restore(bytes(data[:graph_bytes]))
            if restored is None:
                raise ValueError(f"the snapshot's usearch graph for {item['ns']!r} does not load")
            units = np.frombuffer(data[graph_bytes:], dtype=np.float32).reshape(len(keys), index.dimensions)
            restored.expansion_search = index.expansion_search  # type: ignore[misc]  # usearch has a setter; its stub hides it
            space = _Approximate.__new__(_Approximate)
            space.index = restored
            space.exact = _exact_space(index.dimensions, keys, units)
        else:  # a snapshot from another version: the caller rebuilds from the entries
            raise ValueError(f"the snapshot's namespace {item['ns']!r} has an unknown kind {item['kind']!r}")
        index._namespaces[item["ns"]] = space
        index._size += len(keys)
