"""How a shared dependency (Redis) is doing: a short, probed pause when it is down, one log event per change.

Every request-path Redis call of a replica (the cache's lookups and writes, the rate limiter's
decisions) reports to one :class:`Health`, so they share one view of Redis and one pair of log
events, whichever part noticed first:

- **Unreachable** (the connection is refused or dropped, after redis-py's one retry on a fresh
  connection): calls fail at once for ``pause`` seconds instead of each waiting out its time
  budget. When the pause is over, the next call is the *probe*: it goes to Redis while the others
  keep failing fast; its success ends the outage, a failure starts another pause. So a Redis that
  comes back is used again within about ``pause`` seconds, and a dead one costs a request nothing.
- **Slow** (a call over its budget while the connection is fine): that call fails, but starts no
  pause; the next call asks Redis again. A slow call is not an outage. Only when nothing but
  failures came for ``slow_grace`` seconds do calls pause as above (a Redis that answers nothing
  in time is no use, and a host that drops packets looks just like that), but :attr:`unreachable`
  stays False: the callers still know Redis was not refused.
- **Logging follows the state, not the calls**: ``<event>.degraded`` (a warning) once, when calls
  start failing, with the part and the error; ``<event>.recovered`` once, at the first success at
  least ``settle`` seconds after the last failure, with what happened meanwhile: failed calls by
  part, calls that failed fast, and how long it lasted. The metrics still count every call.

The core knows no Redis: the callers say whether a failure means "down" (``is_outage`` in
:mod:`.redis_client` classifies redis-py's errors).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import structlog

log = structlog.get_logger("asgi_llmguard")

__all__ = ["Health"]


class Health:
    """One dependency's state, shared by its callers in one process (one event loop)."""

    def __init__(self, event: str = "llmguard.redis", *, pause: float = 0.25, settle: float = 1.0,
                 slow_grace: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.event = event
        self.pause = pause
        self.settle = settle
        self.slow_grace = slow_grace
        self._clock = clock
        self.down = False  # calls fail fast, but for one probe per pause
        self.unreachable = False  # the last failure was a refused or dropped connection
        self.degraded = False  # a degraded event was logged and no recovered one yet
        self._paused_until = 0.0
        self._first_failure = 0.0
        self._last_failure = 0.0
        self._last_success = 0.0
        self._failures: Counter[str] = Counter()
        self._fail_fast = 0

    def allow(self) -> bool:
        """True when a call may go to the dependency; False: fail at once (paused, or another call probes)."""
        if not self.down:
            return True
        now = self._clock()
        if now < self._paused_until:
            self._fail_fast += 1
            return False
        self._paused_until = now + self.pause  # this call is the probe; the next one comes a pause later
        return True

    def succeeded(self) -> None:
        now = self._clock()
        self._last_success = now
        self.down = self.unreachable = False
        if self.degraded and now - self._last_failure >= self.settle:
            log.info(self.event + ".recovered", seconds=round(now - self._first_failure, 3),
                     failures=dict(self._failures), fail_fast=self._fail_fast)
            self.degraded = False
            self._failures.clear()
            self._fail_fast = 0

    def failed(self, part: str, exc: BaseException, *, unreachable: bool) -> None:
        """A call of ``part`` failed; ``unreachable`` when the connection was refused or dropped (not merely slow)."""
        now = self._clock()
        if not self.degraded:
            self.degraded = True
            self._first_failure = now
            log.warning(self.event + ".degraded", part=part, error=f"{type(exc).__name__}: {exc}",
                        unreachable=unreachable)
        self._failures[part] += 1
        self._last_failure = now
        self.unreachable = unreachable or (self.unreachable and self.down)
        if unreachable or self.down or now - max(self._last_success, self._first_failure) >= self.slow_grace:
            self.down = True
            self._paused_until = now + self.pause
