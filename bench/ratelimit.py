"""What a rate-limit decision costs: in memory, and on Redis against a bare PING round trip.

    .venv/bin/python bench/ratelimit.py [--redis-url redis://127.0.0.1:6379/15] [--samples 4000]

One decision is what a guarded request pays: one call charging three limits at
once (the identity's requests and tokens, the global ceiling). The bench prints,
for one caller awaiting in a loop, the p50 / p99 latency of

- ``PING`` through the same redis-py client (the floor: one round trip),
- a decision in the in-memory store, and on Redis (one ``EVALSHA``); on Redis
  also a decision over one limit (requests per minute alone),
- ``RateLimiter.admit`` on a parsed request (token estimate + decision),

with the Redis decision as a multiple of PING (goal: at most 1.5x), then the
decisions per second with 1 and 64 concurrent callers. The operations take
turns call by call so machine noise hits all of them alike. Keys live
under a fresh prefix and are deleted at the end; nothing else is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis  # noqa: E402

from asgi_llmguard.config import Settings  # noqa: E402
from asgi_llmguard.core.exchange import Exchange  # noqa: E402
from asgi_llmguard.core.openai_protocol import parse_request  # noqa: E402
from asgi_llmguard.ratelimit.limiter import RateLimiter  # noqa: E402
from asgi_llmguard.ratelimit.store import Charge, RateLimitStore  # noqa: E402
from asgi_llmguard.ratelimit.stores.memory import MemoryRateLimitStore  # noqa: E402
from asgi_llmguard.ratelimit.stores.redis import RedisRateLimitStore  # noqa: E402

BIG = 1_000_000_000  # limits no bench ever reaches: every decision is a full admission
BODY = json.dumps({"model": "gpt-4o-mini", "max_tokens": 200,
                   "messages": [{"role": "system", "content": "You are terse."},
                                {"role": "user", "content": "How do I reset my password?"}]}).encode()

Op = Callable[[], Awaitable[object]]


def charges(identity: str) -> list[Charge]:
    return [Charge("req:" + identity, BIG, 60.0, 1), Charge("tok:" + identity, BIG, 60.0, 230),
            Charge("global", BIG, 60.0, 1)]


async def interleaved(ops: dict[str, Op], samples: int) -> dict[str, list[float]]:
    """Each op ``samples`` times, one call of each in turn (so noise hits all alike), after a warm-up."""
    for op in ops.values():
        for _ in range(200):
            await op()
    results: dict[str, list[float]] = {name: [] for name in ops}
    clock = time.perf_counter
    for _ in range(samples):
        for name, op in ops.items():
            start = clock()
            await op()
            results[name].append(clock() - start)
    return results


def us(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6


async def rate(store: RateLimitStore, callers: int, seconds: float) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def caller(n: int) -> None:
        nonlocal done
        batch = charges(f"caller-{n}")
        while time.perf_counter() < deadline:
            await store.acquire(batch)
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(caller(n) for n in range(callers)))
    return done / (time.perf_counter() - start)


def limiter_op(limiter: RateLimiter) -> Op:
    request = parse_request(BODY, "chat")
    scope = {"type": "http", "path": "/v1/chat/completions", "headers": []}

    exchange = Exchange(scope=scope, request=request, raw_body=BODY, identity="key:bench")  # admit() keeps none

    async def admit() -> object:
        return await limiter.admit(exchange)

    return admit


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--samples", type=int, default=4000, help="timed calls per operation")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each throughput run")
    args = parser.parse_args()

    prefix = f"bench:rl:{uuid.uuid4().hex[:8]}:"
    client = Redis.from_url(args.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
    memory = MemoryRateLimitStore()
    redis_store = RedisRateLimitStore(client, prefix=prefix, timeout=1.0)
    settings = Settings(rate_limit_rpm=BIG, rate_limit_tpm=BIG, global_rpm=BIG, redis_prefix=prefix)
    try:
        memory_batch, redis_batch = charges("memory"), charges("redis")
        ops: dict[str, Op] = {
            "redis PING": client.ping,
            "decision, Redis": lambda: redis_store.acquire(redis_batch),
            "1 limit, Redis": lambda: redis_store.acquire(redis_batch[:1]),
            "decision, memory": lambda: memory.acquire(memory_batch),
            "admit(), Redis": limiter_op(RateLimiter(settings, redis_store)),
            "admit(), memory": limiter_op(RateLimiter(settings, MemoryRateLimitStore())),
        }
        results = await interleaved(ops, args.samples)
        print(f"latency, one caller ({args.samples} calls each, taking turns call by call)")
        print(f"  {'':<18} {'p50 us':>9} {'p99 us':>9} {'p50 / PING':>11}")
        ping = statistics.median(results["redis PING"])
        for name, values in results.items():
            print(f"  {name:<18} {us(values, 0.5):>9.1f} {us(values, 0.99):>9.1f} "
                  f"{statistics.median(values) / ping:>10.2f}x")
        ratio = statistics.median(results["decision, Redis"]) / ping
        print(f"Redis decision / PING p50: {ratio:.2f}x (goal <= 1.5x: {'met' if ratio <= 1.5 else 'NOT met'})")
        print(f"throughput ({args.seconds:g} s each)")
        for name, store in (("memory", memory), ("Redis", redis_store)):
            for callers in (1, 64):
                print(f"  {name:<7} {callers:>3} callers: {await rate(store, callers, args.seconds):>10,.0f} "
                      "decisions/s")
    finally:
        await redis_store.clear()
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
