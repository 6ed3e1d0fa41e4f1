"""The shared twin of the rate-limit store: GCRA in Redis, one Lua call per decision.

The scripts (``lua/ratelimit_*.lua``) are read once and registered once; redis-py
runs them by SHA (``EVALSHA``) and loads them on the server only when it does not
know them yet, so a decision is one round trip, atomic on the server, on Redis's
own clock. Every call has a time budget; a failure raises
:class:`RateLimitStoreError` and, for ``cooldown`` seconds after, calls fail at once
instead of each waiting for a Redis that is down.

redis-py's asyncio pool refuses a command outright when all its connections are
busy (100 by default), so calls in flight are held to half the pool — the other
half stays free for the cache — and wait their turn within the same time budget.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from ..ratelimit_store import Charge, Decision, RateLimitStoreError, gcra_params, states_from

if TYPE_CHECKING:
    from redis.asyncio import Redis

LUA = files("asgi_llmguard.storage") / "lua"
ACQUIRE_SCRIPT = (LUA / "ratelimit_acquire.lua").read_text()
ADJUST_SCRIPT = (LUA / "ratelimit_adjust.lua").read_text()


class RedisRateLimitStore:
    """GCRA TATs as Redis strings under ``prefix``, with a TTL of their time to full."""

    def __init__(self, redis: Redis, *, prefix: str = "", timeout: float = 0.1, cooldown: float = 1.0) -> None:
        self._redis = redis
        self._prefix = prefix
        self._timeout = timeout
        self._cooldown = cooldown
        self._down_until = 0.0
        pool_size = getattr(redis.connection_pool, "max_connections", 100)
        self._slots = asyncio.Semaphore(max(1, pool_size // 2))
        self._acquire = redis.register_script(ACQUIRE_SCRIPT)
        self._adjust = redis.register_script(ADJUST_SCRIPT)

    async def acquire(self, charges: Sequence[Charge]) -> Decision:
        args: list[int] = []
        for charge in charges:
            interval, capacity = gcra_params(charge.limit, charge.window)
            args += [interval, capacity, charge.cost]
        reply = await self._run(self._acquire, charges, args)
        return states_from([int(value) for value in reply], charges)

    async def adjust(self, charges: Sequence[Charge]) -> None:
        args: list[int] = []
        for charge in charges:
            args += [gcra_params(charge.limit, charge.window)[0], charge.cost]
        await self._run(self._adjust, charges, args)

    async def clear(self) -> None:
        keys = [key async for key in self._redis.scan_iter(match=self._prefix + "*", count=1000)]
        if keys:
            await self._redis.delete(*keys)

    async def _run(self, script: Any, charges: Sequence[Charge], args: list[int]) -> Any:
        if not charges:
            return []
        if time.monotonic() < self._down_until:
            raise RateLimitStoreError("Redis failed moments ago; not asking again yet")
        keys = [self._prefix + charge.key for charge in charges]
        try:
            async with asyncio.timeout(self._timeout), self._slots:
                return await script(keys=keys, args=args)
        except Exception as exc:
            self._down_until = time.monotonic() + self._cooldown
            raise RateLimitStoreError(f"Redis rate-limit call failed: {type(exc).__name__}: {exc}") from exc
