"""The shared twin of the rate-limit store: GCRA in Redis, one Lua call per decision.

The scripts (``lua/ratelimit_*.lua``) are read once and registered once; redis-py
runs them by SHA (``EVALSHA``) and loads them on the server only when it does not
know them yet, so a decision is one round trip, atomic on the server, on Redis's
own clock. The first call loads both scripts in one ``SCRIPT LOAD`` round trip
behind a lock, so a cold burst does not send every caller through ``NOSCRIPT``.

Every call has a time budget; a failure raises :class:`RateLimitStoreError`, and
after a connection failure (Redis down, not merely slow) calls fail at once for
``cooldown`` seconds instead of each waiting for a Redis that is not there.

redis-py's asyncio pool refuses a command outright when all its connections are
busy, and opening many connections at once is what makes a cold burst slow, so
at most ``MAX_IN_FLIGHT`` calls use the pool at a time; Redis runs scripts one
after another anyway, and the others wait their turn within the same budget.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from redis.exceptions import ConnectionError

from ..ratelimit_store import Charge, Decision, RateLimitStoreError, gcra_params, states_from

if TYPE_CHECKING:
    from redis.asyncio import Redis

MAX_IN_FLIGHT = 8
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
        self._slots = asyncio.Semaphore(max(1, min(MAX_IN_FLIGHT, pool_size // 2)))
        self._loaded = False
        self._loading = asyncio.Lock()
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
            async with asyncio.timeout(self._timeout):
                if not self._loaded:
                    await self._load()
                async with self._slots:
                    return await script(keys=keys, args=args)
        except Exception as exc:
            if isinstance(exc, ConnectionError | OSError):
                self._down_until = time.monotonic() + self._cooldown
            raise RateLimitStoreError(f"Redis rate-limit call failed: {type(exc).__name__}: {exc}") from exc

    async def _load(self) -> None:
        """Load both scripts once (redis-py then runs them by SHA)."""
        async with self._loading:
            if self._loaded:
                return
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.script_load(ACQUIRE_SCRIPT)
                pipe.script_load(ADJUST_SCRIPT)
                await pipe.execute()
            self._loaded = True
