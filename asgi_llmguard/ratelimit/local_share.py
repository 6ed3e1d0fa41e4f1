"""Rate limits when the shared store cannot decide: each replica enforces its local share.

With ``LLMGUARD_REDIS_URL`` the replicas share one set of counters in Redis. When a decision
cannot be had from Redis (down, or over its time budget), a replica does not admit freely: it
decides in memory, against limits of ``share`` times the configured ones (``LLMGUARD_RATE_LIMIT_LOCAL_SHARE``,
at least one unit each). With ``share = 1 / replicas`` the fleet as a whole still admits no
more than the limit, if the load balancer spreads an identity's requests (the bound is the share
times the number of replicas, whatever the spread).

While Redis decides, every admission is also charged here (each limit up to full), so when Redis
stops answering a replica goes on from what it admitted lately rather than from a fresh, empty
bucket: an outage hands out no new burst.

A charge larger than its local share but within the real limit (a long prompt's token
estimate) takes the whole local bucket instead of being refused as too large for ever.
"""

from __future__ import annotations

from collections.abc import Sequence

from .store import Charge, Decision
from .stores.memory import MemoryRateLimitStore

__all__ = ["LocalShare", "local_limit"]


def local_limit(limit: int, share: float) -> int:
    """One replica's part of ``limit``: ``floor(limit * share)``, at least 1."""
    return max(1, int(limit * share))


class LocalShare:
    """This replica's share of every limit, in memory; the same GCRA as the shared store."""

    def __init__(self, share: float, store: MemoryRateLimitStore | None = None) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"the local share must be in (0, 1], got {share!r}")
        self.share = share
        self.store = store if store is not None else MemoryRateLimitStore()

    def scaled(self, charges: Sequence[Charge]) -> tuple[Charge, ...]:
        """``charges`` against this replica's share of their limits."""
        scaled: list[Charge] = []
        for charge in charges:
            limit = local_limit(charge.limit, self.share)
            cost = min(charge.cost, limit) if charge.cost <= charge.limit else charge.cost
            scaled.append(Charge(charge.key, limit, charge.window, cost))
        return tuple(scaled)

    async def acquire(self, charges: Sequence[Charge]) -> tuple[tuple[Charge, ...], Decision]:
        """Decide here, all or nothing, as the shared store would; the scaled charges and the decision."""
        scaled = self.scaled(charges)
        return scaled, await self.store.acquire(scaled)

    async def record(self, charges: Sequence[Charge]) -> None:
        """Charge what the shared store admitted to this replica's share, each limit up to full."""
        for charge in self.scaled(charges):
            await self.store.acquire((charge,))

    async def adjust(self, charges: Sequence[Charge]) -> None:
        """Reconcile a request decided here (``charges`` are the scaled ones it was charged)."""
        await self.store.adjust(charges)
