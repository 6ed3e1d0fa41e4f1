"""Rate-limit storage: one protocol, GCRA as the one algorithm, and two twins that implement it.

The algorithm is GCRA (the generic cell rate algorithm), a token bucket kept as
one number per limit: the *theoretical arrival time* (TAT) at which the bucket
would be full again. A limit of ``limit`` per ``window`` refills one unit every
``interval = window / limit`` and holds at most ``limit`` units. A charge of
``cost`` units is admitted when ``max(TAT, now) + cost * interval - now <= limit * interval``
and then moves the TAT by ``cost * interval``. There is no window edge to burst
across: capacity comes back continuously, one unit per interval.

All arithmetic is on integer microseconds (``interval`` is rounded up to a whole
microsecond), so the twins agree bit for bit and a burst of exactly ``limit``
fits — floats would let the last one fall a rounding error short.

One decision covers several limits at once (requests, tokens, the global
ceiling) and is all-or-nothing: a request refused by one limit is charged to
none. :class:`MemoryRateLimitStore` and :class:`RedisRateLimitStore` (in
``stores/``) pass the same test suite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple, Protocol

from ..errors import LLMGuardError

MICROS = 1_000_000

__all__ = [
    "Charge",
    "Decision",
    "LimitState",
    "RateLimitStore",
    "RateLimitStoreError",
    "gcra_params",
]


class RateLimitStoreError(LLMGuardError):
    """The store could not decide: Redis unreachable (refused, dropped) or slow; the limiter then decides
    without it."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


@dataclass(frozen=True, slots=True)
class Charge:
    """``cost`` units against the limit ``key`` of ``limit`` per ``window`` seconds (cost may be < 0 to refund)."""

    key: str
    limit: int
    window: float
    cost: int


class LimitState(NamedTuple):
    """One limit after a decision: what the ``x-ratelimit-*`` headers and ``Retry-After`` say.

    (Named tuples, not dataclasses: they are built on every guarded request, and cost less.)
    """

    limit: int
    allowed: bool
    remaining: int
    reset_us: int  # until the bucket is full again
    retry_us: int  # until this charge would fit (0 when it fits now)


class Decision(NamedTuple):
    """The verdict over every limit of one request, in the order they were charged."""

    allowed: bool
    states: tuple[LimitState, ...]

    @property
    def retry_us(self) -> int:
        return max((state.retry_us for state in self.states), default=0)


@lru_cache(maxsize=1024)
def gcra_params(limit: int, window: float) -> tuple[int, int]:
    """``(interval_us, capacity_us)`` of a limit: the refill time of one unit, and of a full bucket."""
    interval = max(1, -(-round(window * MICROS) // limit))
    return interval, interval * limit


def states_from(flat: Sequence[int], charges: Sequence[Charge]) -> Decision:
    """A :class:`Decision` from the flat reply both twins produce (four integers per charge)."""
    states = tuple(
        LimitState(charge.limit, not flat[4 * i], max(0, flat[4 * i + 1]), flat[4 * i + 2], flat[4 * i + 3])
        for i, charge in enumerate(charges)
    )
    return Decision(not any(flat[0::4]), states)


class RateLimitStore(Protocol):
    """Where the TATs live: in this process, or in Redis shared by every replica."""

    async def acquire(self, charges: Sequence[Charge]) -> Decision:
        """Charge every limit or none, atomically, and say where each one stands."""
        ...

    async def adjust(self, charges: Sequence[Charge]) -> None:
        """Add (or with a negative cost, give back) units without a check: reconciliation after the fact."""
        ...

    async def clear(self) -> None:
        """Forget every limit (tests and admin)."""
        ...
