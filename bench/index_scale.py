"""How the shared cache's index scales: search, bootstrap of a joining replica, sync lag.

    python bench/index_scale.py                 # full size: search at 100k and 1M, bootstrap at 100k
    python bench/index_scale.py --quick         # scaled down (CI): 10k entries everywhere
    python bench/index_scale.py --sizes 100000 --bootstrap-entries 100000 --json out.json

Parts (each prints one line of figures and goes into the JSON report):

1. search: one namespace of N vectors in :class:`VectorIndex` (usearch HNSW above the Guard's
   brute-force cut-off, loaded in bulk as a rebuild does); p50/p99 of ``search(k=4)`` and
   recall@1 against brute force for queries that are stored vectors plus noise (cosine ~0.95,
   like a rewording). Goal: p50 <= 1 ms at 1M, recall@1 >= 0.99.
2. bootstrap: a redis-server of our own (spare port, no persistence) filled with N entries;
   replica A bootstraps by scanning the entries (the path after a gap) and writes a snapshot;
   replica B joins and bootstraps from the snapshot plus the stream. Goal: B <= 10 s at 100k.
   Also Redis memory per entry (INFO used_memory before and after, divided by N).
3. lag: A writes entries at a steady rate; B's sync task applies them; p50/p99 of the time from
   the stream event (its id is the Redis clock in ms) to the vector being in B's index.

Vectors are synthetic (clusters in 384 dimensions, like all-MiniLM-L6-v2's), so that 1M entries
need no hour of embedding; both replicas run in this process, each with its own Redis client and
sync task, so the lag includes one shared event loop's scheduling.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asgi_llmguard.cache.engine import SemanticCache
from asgi_llmguard.cache.index import EXPANSION_SEARCH, VectorIndex
from asgi_llmguard.cache.index_sync import IndexSync, _load
from asgi_llmguard.cache.stores.base import CacheEntry
from asgi_llmguard.cache.stores.redis import RedisCacheStore
from asgi_llmguard.config import Settings
from asgi_llmguard.core.openai_protocol import Answer

DIMS = 384
BRUTE_FORCE_BELOW = 4096  # what the Guard uses
NAMESPACE = "bench"


def clustered(n: int, seed: int) -> npt.NDArray[np.float32]:
    """Unit vectors in clusters: neighbours within a cluster at cosine ~0.6-0.8, like real prompts."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 100), DIMS)).astype(np.float32)
    vectors = centres[rng.integers(0, len(centres), n)] + 0.8 * rng.standard_normal((n, DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    result: npt.NDArray[np.float32] = vectors.astype(np.float32)
    return result


def rewordings(stored: npt.NDArray[np.float32], count: int, seed: int) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    picked = stored[rng.integers(0, len(stored), count)]
    noisy = picked + 0.33 * rng.standard_normal(picked.shape).astype(np.float32) / np.sqrt(DIMS)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    result: npt.NDArray[np.float32] = noisy.astype(np.float32)
    return result


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


# -- 1. search ---------------------------------------------------------------------------------------


async def bench_search(size: int, queries: int, expansions: list[int]) -> list[dict[str, Any]]:
    """One index of ``size`` vectors, searched at each ``expansion_search`` (the graph is built once)."""
    vectors = clustered(size, seed=size)
    index = VectorIndex(DIMS, brute_force_below=BRUTE_FORCE_BELOW)
    started = time.perf_counter()
    await _load(index, NAMESPACE, list(range(1, size + 1)), vectors)
    build_s = time.perf_counter() - started
    asks = rewordings(vectors, queries, seed=7)
    truth = [int(np.argmax(vectors @ query)) + 1 for query in asks]
    results = []
    for expansion in expansions:
        index.expansion_search = expansion
        for query in asks[:50]:  # warm up
            index.search(NAMESPACE, query, k=4)
        latencies: list[float] = []
        agree = 0
        for query, best in zip(asks, truth, strict=True):
            t0 = time.perf_counter()
            found = index.search(NAMESPACE, query, k=4)
            latencies.append((time.perf_counter() - t0) * 1000)
            agree += bool(found) and found[0].key == best
        results.append({"entries": size, "usearch": index.uses_usearch(NAMESPACE), "build_s": round(build_s, 1),
                        "expansion_search": expansion,
                        "search_p50_ms": round(percentile(latencies, 50), 3),
                        "search_p99_ms": round(percentile(latencies, 99), 3),
                        "recall_at_1": round(agree / queries, 4), "queries": queries})
    return results


# -- Redis of our own --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def own_redis() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        with redis.Redis(port=port) as probe:
            for _ in range(200):
                with contextlib.suppress(redis.ConnectionError):
                    probe.ping()
                    break
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()  # ours, by its PID
        proc.wait(timeout=10)


def replica(url: str, *, max_entries: int) -> tuple[SemanticCache, RedisCacheStore, IndexSync]:
    from redis.asyncio import Redis

    settings = Settings(redis_url=url, cache_max_entries=max_entries, cache_max_bytes=2**40)
    store = RedisCacheStore(Redis.from_url(url, socket_timeout=5), timeout=5.0, max_entries=max_entries,
                            max_bytes=2**40, stream_maxlen=max(100_000, 2 * max_entries))
    cache = SemanticCache(settings, store, index=VectorIndex(DIMS, brute_force_below=BRUTE_FORCE_BELOW), threshold=0.9)
    return cache, store, IndexSync(cache, store, redis_url=url, snapshot_interval=3600)


def entry(entry_id: int, vector: npt.NDArray[np.float32], number: int) -> CacheEntry:
    now = time.time()
    prompt = f"benchmark prompt number {number} about a topic"
    return CacheEntry(id=entry_id, namespace=NAMESPACE, exact_key=f"{NAMESPACE}:{number}", prompt=prompt,
                      answer=Answer(text=f"An answer of typical length for prompt {number}. " * 6, model="m"),
                      vector=vector, created_at=now, expires_at=now + 3600)


async def fill(store: RedisCacheStore, vectors: npt.NDArray[np.float32], first: int = 0) -> None:
    for start in range(0, len(vectors), 50):  # within redis-py's pool of 100 connections
        chunk = range(start, min(start + 50, len(vectors)))
        ids = [await store.next_id() for _ in chunk]
        await asyncio.gather(*(store.put(entry(i, vectors[n], first + n)) for i, n in zip(ids, chunk, strict=True)))


# -- 2. bootstrap ------------------------------------------------------------------------------------


async def bench_bootstrap(size: int) -> dict[str, Any]:
    import redis

    with own_redis() as url:
        with redis.Redis.from_url(url) as r:
            before = int(r.info("memory")["used_memory"])
        _, store_a, sync_a = replica(url, max_entries=size * 2)
        started = time.perf_counter()
        await fill(store_a, clustered(size, seed=1))
        fill_s = time.perf_counter() - started
        with redis.Redis.from_url(url) as r:
            after = int(r.info("memory")["used_memory"])
            keys = [k for _, k in zip(range(200), r.scan_iter("llmguard:cache:e:*", count=1000), strict=False)]
            sample = sum(r.memory_usage(k, samples=0) or 0 for k in keys) / max(1, len(keys))
            stream_bytes = r.memory_usage("llmguard:cache:stream") or 0
        sync_a.start()
        await sync_a.ready.wait()
        scan = sync_a.bootstraps[0]
        with redis.Redis.from_url(url) as r:
            r.delete("llmguard:cache:snap:lock")  # A wrote one after its scan; time one more
        t0 = time.perf_counter()
        assert await sync_a.write_snapshot()
        snapshot_s = time.perf_counter() - t0
        with redis.Redis.from_url(url) as r:
            header = json.loads(r.get("llmguard:cache:snap") or b"{}")
        await fill(store_a, clustered(200, seed=2), first=size)  # written after the snapshot: from the stream
        cache_b, store_b, sync_b = replica(url, max_entries=size * 2)
        t0 = time.perf_counter()
        sync_b.start()
        await sync_b.ready.wait()
        join_s = time.perf_counter() - t0
        joined = sync_b.bootstraps[0]
        assert cache_b.index is not None
        result = {
            "entries": size, "fill_s": round(fill_s, 1),
            "scan_bootstrap_s": scan["seconds"], "snapshot_write_s": round(snapshot_s, 2),
            "snapshot_bytes_per_entry": round(header.get("size", 0) / size),
            "join_source": joined["source"], "join_s": round(join_s, 2), "join_replayed": joined["replayed"],
            "joined_entries": len(cache_b.index),
            "redis_bytes_per_entry": round((after - before) / size),
            "entry_hash_bytes": round(sample), "stream_bytes_per_event": round(stream_bytes / max(1, size)),
        }
        for sync, store in ((sync_a, store_a), (sync_b, store_b)):
            await sync.stop()
            await store.redis.aclose()
        return result


# -- 3. lag ------------------------------------------------------------------------------------------


async def bench_lag(writes: int, rate: float, preload: int) -> dict[str, Any]:
    with own_redis() as url:
        _, store_a, sync_a = replica(url, max_entries=10 * (writes + preload))
        if preload:
            await fill(store_a, clustered(preload, seed=3))
        cache_b, store_b, sync_b = replica(url, max_entries=10 * (writes + preload))
        for sync in (sync_a, sync_b):
            sync.start()
            await sync.ready.wait()
        vectors = clustered(writes, seed=4)
        interval = 1.0 / rate
        next_at = time.perf_counter()
        for n in range(writes):
            await store_a.put(entry(await store_a.next_id(), vectors[n], preload + n))
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        assert cache_b.index is not None
        for _ in range(3000):  # up to 30 s for the last writes to arrive
            if len(cache_b.index) >= preload + writes:
                break
            await asyncio.sleep(0.01)
        lags = list(sync_b.lags_ms)[-writes:]
        result = {"writes": writes, "rate_per_s": rate, "preloaded": preload, "applied": len(cache_b.index),
                  "lag_p50_ms": round(percentile(lags, 50), 2), "lag_p99_ms": round(percentile(lags, 99), 2),
                  "lag_max_ms": round(max(lags), 2) if lags else None}
        for sync, store in ((sync_a, store_a), (sync_b, store_b)):
            await sync.stop()
            await store.redis.aclose()
        return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="scaled down for CI: 10k entries everywhere")
    parser.add_argument("--sizes", help="comma-separated index sizes to search (default 100000,1000000)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--expansions", default=str(EXPANSION_SEARCH),
                        help="comma-separated usearch expansion_search values to search with "
                             f"(default: the shipped {EXPANSION_SEARCH})")
    parser.add_argument("--bootstrap-entries", type=int, help="entries in the cache a replica joins (default 100000)")
    parser.add_argument("--lag-writes", type=int, help="entries written while measuring lag (default 2000)")
    parser.add_argument("--lag-rate", type=float, default=200.0, help="writes per second (default 200)")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: search,bootstrap,lag")
    parser.add_argument("--json", type=Path, help="write the report here too")
    args = parser.parse_args()
    sizes = [int(s) for s in (args.sizes or ("10000" if args.quick else "100000,1000000")).split(",")]
    bootstrap_entries = args.bootstrap_entries or (10_000 if args.quick else 100_000)
    lag_writes = args.lag_writes or (300 if args.quick else 2000)
    skip = set(filter(None, args.skip.split(",")))
    expansions = [int(e) for e in args.expansions.split(",")]
    report: dict[str, Any] = {"search": [], "bootstrap": None, "lag": None}
    if "search" not in skip:
        for size in sizes:
            for result in await bench_search(size, args.queries, expansions):
                report["search"].append(result)
                print("search   ", json.dumps(result), flush=True)
    if "bootstrap" not in skip:
        report["bootstrap"] = await bench_bootstrap(bootstrap_entries)
        print("bootstrap", json.dumps(report["bootstrap"]), flush=True)
    if "lag" not in skip:
        report["lag"] = await bench_lag(lag_writes, args.lag_rate, preload=min(bootstrap_entries, 10_000))
        print("lag      ", json.dumps(report["lag"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
