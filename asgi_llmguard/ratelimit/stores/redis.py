"""The shared twin of the rate-limit store: GCRA in Redis, one Lua call per decision.

The scripts (``lua/ratelimit_*.lua``) are read once and registered once; redis-py
runs them by SHA (``EVALSHA``) and loads them on the server only when it does not
know them yet, so a decision is one round trip, atomic on the server, on Redis's
own clock. The scripts' SHA1s are computed here; the first ``EVALSHA`` a server
does not know gets ``NOSCRIPT``, and that caller loads the script and runs it again.

Every call has a time budget; a failure raises :class:`RateLimitStoreError`, which says
whether Redis is down or merely slow. Calls report to a shared
:class:`~asgi_llmguard.core.health.Health`: while Redis is down they fail at once (but for one
probe every short pause) instead of each waiting for a Redis that is not there; a slow call
starts no pause.

redis-py's asyncio pool refuses a command outright when all its connections are
busy, and opening many connections at once is what makes a cold burst slow, so
at most ``MAX_IN_FLIGHT`` calls use the pool at a time; Redis runs scripts one
after another anyway, and the others wait their turn within the same budget.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

from ...core.health import Health
from ...core.redis_client import is_outage
from ..store import Charge, Decision, RateLimitStoreError, gcra_params, states_from

if TYPE_CHECKING:
    from redis.asyncio import Redis

MAX_IN_FLIGHT = 8
LUA = files("asgi_llmguard.ratelimit") / "lua"


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script read once from the package, and its SHA1 for ``EVALSHA``."""

    source: str
    sha: str

    @classmethod
    def read(cls, name: str) -> Script:
        source = (LUA / name).read_text()
        return cls(source, hashlib.sha1(source.encode()).hexdigest())


ACQUIRE = Script.read("ratelimit_acquire.lua")
ADJUST = Script.read("ratelimit_adjust.lua")


class RedisRateLimitStore:
    """GCRA TATs as Redis strings under ``prefix``, with a TTL of their time to full."""

    def __init__(self, redis: Redis, *, prefix: str = "", timeout: float = 0.1, health: Health | None = None) -> None:
        self._redis = redis
        self._prefix = prefix
        self._timeout = timeout
        self.health = health if health is not None else Health()
        pool_size = getattr(redis.connection_pool, "max_connections", 100)
        self._slots = asyncio.Semaphore(max(1, min(MAX_IN_FLIGHT, pool_size // 2)))

    async def acquire(self, charges: Sequence[Charge]) -> Decision:
        if not charges:
            return Decision(True, ())
        args: list[int] = []
        for charge in charges:
            interval, capacity = gcra_params(charge.limit, charge.window)
            args += [interval, capacity, charge.cost]
        reply = await self._run(ACQUIRE, charges, args)
        return states_from([int(value) for value in reply.split()], charges)

    async def adjust(self, charges: Sequence[Charge]) -> None:
        if not charges:
            return
        args: list[int] = []
        for charge in charges:
            args += [gcra_params(charge.limit, charge.window)[0], charge.cost]
        await self._run(ADJUST, charges, args)

    async def clear(self) -> None:
        keys = [key async for key in self._redis.scan_iter(match=self._prefix + "*", count=1000)]
        if keys:
            await self._redis.delete(*keys)

    async def _run(self, script: Script, charges: Sequence[Charge], args: list[int]) -> Any:
        if not self.health.allow():
            raise RateLimitStoreError("Redis is down; failing fast until the next probe",
                                      unreachable=self.health.unreachable)
        keys = [self._prefix + charge.key for charge in charges]
        try:
            async with asyncio.timeout(self._timeout), self._slots:
                try:
                    reply = await self._redis.evalsha(script.sha, len(keys), *keys, *args)
                except NoScriptError:  # first use, or Redis restarted: load it, once per server
                    await self._redis.script_load(script.source)
                    reply = await self._redis.evalsha(script.sha, len(keys), *keys, *args)
        except Exception as exc:
            unreachable = is_outage(exc)
            self.health.failed("ratelimit", exc, unreachable=unreachable)
            raise RateLimitStoreError(f"Redis rate-limit call failed: {type(exc).__name__}: {exc}",
                                      unreachable=unreachable) from exc
        self.health.succeeded()
        return reply
