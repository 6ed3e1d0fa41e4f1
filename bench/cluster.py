"""One Redis vs a 3-master Redis Cluster: cache hits/s, index sync lag, memory per entry.

    python bench/cluster.py               # 200 namespaces, 4 000 entries, 10 s of hits per target
    python bench/cluster.py --quick       # smaller and shorter

Starts its own redis-server processes on spare ports (one single, three cluster masters; no
persistence) and stops them by PID. For each target, in this process:

1. fill: ``entries`` answers over ``namespaces`` namespaces through the store the Guard uses
   (:class:`RedisCacheStore`, or :class:`ClusterCacheStore` with 64 partitions);
2. hits/s: ``clients`` coroutines read exact hits (``get_exact``, the exact tier's one Lua call)
   for ``seconds``;
3. lag: a follower replica (its own client and index sync: one task, or one per partition) while a
   writer adds 200 entries/s; p50/p99 from the change-log event to the vector in its index;
4. memory: Redis ``used_memory`` per entry (all masters), and what the follower's index holds per
   entry (tracemalloc while it bootstraps).

Caveat: this machine has 2 cores shared by the redis-servers and this one Python process, so the
cluster's extra masters add little: the client side is the bottleneck. On separate hosts each
master adds its own CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from redis_cluster import LocalCluster, cluster_port  # noqa: E402  (the tests' cluster starter)

from asgi_llmguard.cache.engine import SemanticCache  # noqa: E402
from asgi_llmguard.cache.index import VectorIndex  # noqa: E402
from asgi_llmguard.cache.stores.base import CacheEntry  # noqa: E402
from asgi_llmguard.config import Settings  # noqa: E402
from asgi_llmguard.core.openai_protocol import Answer  # noqa: E402

DIMS = 384


def entry(entry_id: int, namespace: str, number: int, vector: np.ndarray) -> CacheEntry:
    now = time.time()
    return CacheEntry(id=entry_id, namespace=namespace, exact_key=f"{namespace}:{number}",
                      prompt=f"benchmark prompt number {number}", vector=vector, created_at=now, expires_at=now + 3600,
                      answer=Answer(text=f"An answer of typical length for prompt {number}. " * 6, model="m"))


def open_store(url: str, cluster: bool, entries: int) -> Any:
    if cluster:
        from asgi_llmguard.cache.stores.cluster import ClusterCacheStore
        from asgi_llmguard.core.redis_cluster import connect_cluster

        return ClusterCacheStore(connect_cluster(url, timeout=5.0), timeout=5.0, max_entries=entries * 100,
                                 max_bytes=2**40)
    from asgi_llmguard.cache.stores.redis import RedisCacheStore
    from asgi_llmguard.core.redis_client import connect

    return RedisCacheStore(connect(url, timeout=5.0), timeout=5.0, max_entries=entries * 100, max_bytes=2**40)


def follower(url: str, cluster: bool, store: Any) -> tuple[SemanticCache, Any]:
    cache = SemanticCache(Settings(), store, index=VectorIndex(DIMS, brute_force_below=4096), threshold=0.9)
    if cluster:
        from asgi_llmguard.cache.cluster_sync import ClusterIndexSync

        return cache, ClusterIndexSync(cache, store, redis_url=url, snapshot_interval=3600)
    from asgi_llmguard.cache.index_sync import IndexSync

    return cache, IndexSync(cache, store, redis_url=url, snapshot_interval=3600)


def used_memory(ports: list[int]) -> int:
    import redis

    total = 0
    for port in ports:
        with redis.Redis(port=port) as node:
            total += int(node.info("memory")["used_memory"])
    return total


async def run(url: str, ports: list[int], cluster: bool, args: argparse.Namespace) -> dict[str, float]:
    rng = np.random.default_rng(1)
    store = open_store(url, cluster, args.entries)
    before = used_memory(ports)
    keys: list[str] = []
    for start in range(0, args.entries, 50):
        made = []
        for n in range(start, min(start + 50, args.entries)):
            ns = f"namespace-{n % args.namespaces}"
            made.append(entry(await store.next_id(ns), ns, n, rng.standard_normal(DIMS).astype(np.float32)))
            keys.append(f"{ns}:{n}")
        await asyncio.gather(*(store.put(e) for e in made))
    redis_per_entry = (used_memory(ports) - before) / args.entries

    # hits/s
    done = 0
    stop_at = time.monotonic() + args.seconds

    async def reader(seed: int) -> None:
        nonlocal done
        local = np.random.default_rng(seed)
        while time.monotonic() < stop_at:
            found = await store.get_exact(keys[int(local.integers(len(keys)))])
            assert found is not None
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(reader(seed) for seed in range(args.clients)))
    hits_per_s = done / (time.monotonic() - started)

    # a follower: memory per entry while it bootstraps, then the lag of new writes
    cache, sync = follower(url, cluster, open_store(url, cluster, args.entries))
    tracemalloc.start()
    sync.start()
    await asyncio.wait_for(sync.ready.wait(), 120)
    index_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert cache.index is not None and len(cache.index) == args.entries, len(cache.index or ())
    for sub in getattr(sync, "syncs", {"one": sync}).values():  # the bootstrap's replay is no lag
        sub.lags_ms.clear()
    for n in range(args.entries, args.entries + args.lag_entries):
        ns = f"namespace-{n % args.namespaces}"
        await store.put(entry(await store.next_id(ns), ns, n, rng.standard_normal(DIMS).astype(np.float32)))
        await asyncio.sleep(1 / 200)
    await asyncio.sleep(1.0)
    lags = sorted(sync.lags_ms)
    await sync.stop()
    return {"hits_per_s": hits_per_s, "lag_p50_ms": statistics.median(lags) if lags else float("nan"),
            "lag_p99_ms": lags[int(len(lags) * 0.99) - 1] if lags else float("nan"), "lag_events": len(lags),
            "redis_bytes_per_entry": redis_per_entry, "replica_bytes_per_entry": index_bytes / args.entries}


def single_redis() -> tuple[Any, int]:
    import shutil
    import subprocess

    import redis

    port = cluster_port()
    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
                             "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            redis.Redis(port=port).ping()
            break
        except redis.ConnectionError:
            time.sleep(0.02)
    return proc, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--namespaces", type=int, default=200)
    parser.add_argument("--entries", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--lag-entries", type=int, default=1000)
    args = parser.parse_args()
    if args.quick:
        args.entries, args.seconds, args.lag_entries = 1000, 3.0, 300
    proc, port = single_redis()
    cluster = LocalCluster(masters=3)
    try:
        cluster.start()
        one = asyncio.run(run(f"redis://127.0.0.1:{port}/0", [port], False, args))
        three = asyncio.run(run(cluster.url, cluster.ports, True, args))
    finally:
        proc.kill()
        proc.wait(timeout=10)
        cluster.stop()
    print(f"{'':24}{'1 Redis':>12}{'3-master cluster':>18}{'ratio':>8}")
    for name in ("hits_per_s", "lag_p50_ms", "lag_p99_ms", "redis_bytes_per_entry", "replica_bytes_per_entry"):
        ratio = three[name] / one[name] if one[name] else float("nan")
        print(f"{name:24}{one[name]:>12.1f}{three[name]:>18.1f}{ratio:>8.2f}")
    print(f"({args.entries} entries over {args.namespaces} namespaces, {args.clients} clients for {args.seconds} s, "
          f"{args.lag_entries} writes at 200/s for the lag; 2 cores shared by every server and this process)")


if __name__ == "__main__":
    main()
