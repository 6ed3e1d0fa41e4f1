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

On Redis Cluster (``cluster=True``) each identity's keys share one hash tag,
``{prefix}{<identity>}:req`` and ``:tok``, so its decision stays one atomic script in one slot,
and the global ceiling has a slot of its own (``{prefix}{global}``). A decision that charges both
runs one script per slot, at once; if one of them refuses, what the others admitted is given back
(``ADJUST`` with the negative cost), so a refused request is charged to none, as on one Redis. (For
the instant between the two, a concurrent request may see the other limit one unit fuller.)
Calls report to the health of the node that holds their slot: a dead master pauses only its own.

redis-py's asyncio pool refuses a command outright when all its connections are
busy, and opening many connections at once is what makes a cold burst slow, so
at most ``MAX_IN_FLIGHT`` calls use the pool at a time; Redis runs scripts one
after another anyway, and the others wait their turn within the same budget.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

from ...core.health import Health
from ...core.redis_client import is_outage
from ..store import Charge, Decision, LimitState, RateLimitStoreError, gcra_params, states_from

if TYPE_CHECKING:
    from redis.asyncio import Redis, RedisCluster

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

    def __init__(self, redis: Redis | RedisCluster, *, prefix: str = "", timeout: float = 0.1,
                 health: Health | None = None, cluster: bool = False,
                 health_for: Callable[[str], Health] | None = None) -> None:
        self._redis = redis
        self._prefix = prefix
        self._timeout = timeout
        self._cluster = cluster
        self.health = health if health is not None else Health()
        self._health_for = health_for  # on a cluster: the health of the node holding a key's slot
        pool_size = getattr(getattr(redis, "connection_pool", None), "max_connections", 100)
        self._slots = asyncio.Semaphore(max(1, min(MAX_IN_FLIGHT, pool_size // 2)))

    async def acquire(self, charges: Sequence[Charge]) -> Decision:
        if not charges:
            return Decision(True, ())
        args: list[int] = []
        for charge in charges:
            interval, capacity = gcra_params(charge.limit, charge.window)
            args += [interval, capacity, charge.cost]
        if not self._cluster:
            reply = await self._run(ACQUIRE, self._keys(charges), args)
            return states_from([int(value) for value in reply.split()], charges)
        groups = self._groups(charges)
        if len(groups) == 1:
            reply = await self._run(ACQUIRE, self._keys(charges), args)
            return states_from([int(value) for value in reply.split()], charges)
        replies = await asyncio.gather(*(self._run(ACQUIRE, self._keys([charges[i] for i in group]),
                                                   [a for i in group for a in args[3 * i:3 * i + 3]])
                                         for group in groups), return_exceptions=True)
        decisions = [None if isinstance(reply, BaseException)
                     else states_from([int(v) for v in reply.split()], [charges[i] for i in group])
                     for reply, group in zip(replies, groups, strict=True)]
        if all(decision is not None and decision.allowed for decision in decisions):
            return _merge(decisions, groups, len(charges))
        # refused (or failed) somewhere: give back what the other slots admitted
        admitted = [charges[i] for decision, group in zip(decisions, groups, strict=True)
                    if decision is not None and decision.allowed for i in group]
        if admitted:
            await self.adjust([Charge(c.key, c.limit, c.window, -c.cost) for c in admitted])
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        merged = _merge(decisions, groups, len(charges))
        refunded = {id(c) for c in admitted}  # their states as they stand after the refund
        return Decision(False, tuple(_uncharged(state, charge) if id(charge) in refunded else state
                                     for state, charge in zip(merged.states, charges, strict=True)))

    async def adjust(self, charges: Sequence[Charge]) -> None:
        if not charges:
            return
        args: list[int] = []
        for charge in charges:
            args += [gcra_params(charge.limit, charge.window)[0], charge.cost]
        if not self._cluster:
            await self._run(ADJUST, self._keys(charges), args)
            return
        for group in self._groups(charges):
            await self._run(ADJUST, self._keys([charges[i] for i in group]),
                            [a for i in group for a in args[2 * i:2 * i + 2]])

    async def clear(self) -> None:
        keys = [key async for key in self._redis.scan_iter(match=self._prefix + "*", count=1000)]
        if keys and self._cluster:  # one slot at a time
            for key in keys:
                await self._redis.delete(key)
        elif keys:
            await self._redis.delete(*keys)

    def _key(self, name: str) -> str:
        """The Redis key of a limit: on a cluster, tagged with its identity (``req:<id>`` -> ``{<id>}:req``)."""
        if not self._cluster:
            return self._prefix + name
        kind, _, identity = name.partition(":")
        return self._prefix + ("{" + identity + "}:" + kind if identity else "{" + kind + "}")

    def _keys(self, charges: Sequence[Charge]) -> list[str]:
        return [self._key(charge.key) for charge in charges]

    def _groups(self, charges: Sequence[Charge]) -> list[list[int]]:
        """Charge positions by hash tag, in order of first appearance: one script call per slot."""
        groups: dict[str, list[int]] = {}
        for i, charge in enumerate(charges):
            kind, _, identity = charge.key.partition(":")
            groups.setdefault(identity or kind, []).append(i)
        return list(groups.values())

    async def _run(self, script: Script, keys: list[str], args: list[int]) -> Any:
        health = self.health if self._health_for is None else self._health_for(keys[0])
        if not health.allow():
            raise RateLimitStoreError("Redis is down; failing fast until the next probe",
                                      unreachable=health.unreachable)
        try:
            async with asyncio.timeout(self._timeout), self._slots:
                try:
                    reply = await self._redis.evalsha(script.sha, len(keys), *keys, *args)
                except NoScriptError:  # first use, or Redis restarted: load it, once per server
                    await self._redis.script_load(script.source)
                    reply = await self._redis.evalsha(script.sha, len(keys), *keys, *args)
        except Exception as exc:
            unreachable = is_outage(exc)
            health.failed("ratelimit", exc, unreachable=unreachable)
            raise RateLimitStoreError(f"Redis rate-limit call failed: {type(exc).__name__}: {exc}",
                                      unreachable=unreachable) from exc
        health.succeeded()
        return reply


def _uncharged(state: LimitState, charge: Charge) -> LimitState:
    """A limit's state once the charge it admitted was given back."""
    interval = gcra_params(charge.limit, charge.window)[0]
    return state._replace(remaining=state.remaining + charge.cost,
                          reset_us=max(0, state.reset_us - charge.cost * interval))


def _merge(decisions: Sequence[Decision | None], groups: Sequence[Sequence[int]], size: int) -> Decision:
    """One decision from each slot's, in the order the charges came (a failed slot's charges: refused)."""
    states: list[Any] = [None] * size
    for decision, group in zip(decisions, groups, strict=True):
        if decision is None:
            continue
        for state, i in zip(decision.states, group, strict=True):
            states[i] = state
    allowed = all(decision is not None and decision.allowed for decision in decisions)
    return Decision(allowed, tuple(states))
