"""How long does the event loop stall when a namespace outgrows exact search?

A namespace that reaches ``brute_force_below`` entries (4096 in the middleware)
moves to an HNSW graph. Built inline, the build blocks the event loop: every
request in flight, streams included, waits. With ``background_moves`` (what the
middleware uses) the graph is built on a worker thread from a copy while the
namespace is searched exactly, then swapped in.

For each mode, several rounds: fill a namespace to one below the limit, then,
while a ticker task measures the event loop's longest gap (it asks to wake every
millisecond), add entries at a steady rate across the limit until the graph is in.
Printed: the crossing add's own duration, the longest loop gap, and how long
until the graph served searches, with the longest gap of an idle loop measured
in the same run as the baseline.

Usage: python bench/index_move.py [--size 4096] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import fastembed  # noqa: F401  (usearch must not be imported before onnxruntime: see ../shared/models/README.md)
import numpy as np

from asgi_llmguard.cache.index import VectorIndex

DIMS = 384


async def longest_gap(stop: asyncio.Event) -> float:
    """The longest time between wake-ups of a task asking to wake every millisecond."""
    worst, last = 0.0, time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        worst, last = max(worst, now - last), now
    return worst


async def one_round(size: int, background: bool, vectors: np.ndarray) -> tuple[float, float, float]:
    """(crossing add in ms, longest loop gap in ms, ms until the graph serves searches)."""
    index = VectorIndex(DIMS, brute_force_below=size, background_moves=background)
    for key in range(size - 1):
        index.add("ns", key, vectors[key])
    stop = asyncio.Event()
    ticker = asyncio.create_task(longest_gap(stop))
    await asyncio.sleep(0.02)
    start = time.perf_counter()
    index.add("ns", size - 1, vectors[size - 1])
    crossing = time.perf_counter() - start
    key = size
    while not index.uses_usearch("ns"):  # traffic goes on: one add and one search per millisecond
        index.add("ns", key, vectors[key % len(vectors)])
        index.search("ns", vectors[key % 97], k=4)
        key += 1
        await asyncio.sleep(0.001)
    ready = time.perf_counter() - start
    await asyncio.sleep(0.02)
    stop.set()
    gap = await ticker
    return crossing * 1e3, gap * 1e3, ready * 1e3


async def idle_gap() -> float:
    stop = asyncio.Event()
    ticker = asyncio.create_task(longest_gap(stop))
    await asyncio.sleep(1.0)
    stop.set()
    return await ticker * 1e3


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=4096, help="brute_force_below (the middleware uses 4096)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.size + 4096, DIMS)).astype(np.float32)

    baseline = statistics.median([await idle_gap() for _ in range(3)])
    print(f"namespace crossing {args.size} entries, {args.rounds} rounds per mode (medians)")
    print(f"idle event loop: longest gap {baseline:.1f} ms (the baseline)")
    gaps = {}
    for background in (False, True):
        rounds = [await one_round(args.size, background, vectors) for _ in range(args.rounds)]
        crossing, gap, ready = (statistics.median(r[i] for r in rounds) for i in range(3))
        gaps[background] = gap
        name = "background build" if background else "inline build"
        print(f"{name:17s} crossing add {crossing:8.2f} ms   longest loop gap {gap:7.1f} ms "
              f"({gap / baseline:5.1f}x idle)   graph serving after {ready:7.1f} ms")
    print(f"longest loop gap, inline / background: {gaps[False] / gaps[True]:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
