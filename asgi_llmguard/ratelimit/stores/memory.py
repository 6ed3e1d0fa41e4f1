"""The in-process twin of the rate-limit store: GCRA over a dict, for one replica alone.

Each call runs without an ``await`` between reading and writing, so on one event
loop it is as atomic as the Redis script. Keys whose bucket is full again are
swept every ``SWEEP_EVERY`` decisions, so idle identities do not pile up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ..store import Charge, Decision, gcra_params, states_from

SWEEP_EVERY = 4096


def _now_us() -> int:
    return time.monotonic_ns() // 1000


class MemoryRateLimitStore:
    """GCRA TATs in a dict; the same arithmetic as ``lua/ratelimit_acquire.lua``."""

    def __init__(self, clock: Callable[[], int] = _now_us) -> None:
        self._tats: dict[str, int] = {}
        self._clock = clock
        self._calls = 0

    async def acquire(self, charges: Sequence[Charge]) -> Decision:
        now = self._clock()
        self._maybe_sweep(now)
        plans: list[tuple[int, int, int, int]] = []
        allowed = True
        for charge in charges:
            interval, capacity = gcra_params(charge.limit, charge.window)
            tat = max(self._tats.get(charge.key, now), now)
            new = tat + charge.cost * interval
            allowed = allowed and new - capacity <= now
            plans.append((interval, capacity, tat, new))
        flat: list[int] = []
        for charge, (interval, capacity, tat, new) in zip(charges, plans, strict=True):
            denies = new - capacity > now
            if allowed:
                tat = new
                if new > now:
                    self._tats[charge.key] = new
            flat += [int(denies), (capacity - (tat - now)) // interval, tat - now,
                     new - capacity - now if denies else 0]
        return states_from(flat, charges)

    async def adjust(self, charges: Sequence[Charge]) -> None:
        now = self._clock()
        for charge in charges:
            interval, _ = gcra_params(charge.limit, charge.window)
            new = max(self._tats.get(charge.key, now), now) + charge.cost * interval
            if new > now:
                self._tats[charge.key] = new
            else:
                self._tats.pop(charge.key, None)

    async def clear(self) -> None:
        self._tats.clear()

    def __len__(self) -> int:
        return len(self._tats)

    def _maybe_sweep(self, now: int) -> None:
        self._calls += 1
        if self._calls % SWEEP_EVERY == 0:
            self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
