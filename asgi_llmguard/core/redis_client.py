"""The Redis client the stack opens from ``LLMGUARD_REDIS_URL``, and what a failure of it means.

redis-py's asyncio pool keeps connections across a Redis restart; each one fails on its first
use afterwards ("Connection closed by server"). The client is told to retry such a call once, on
a fresh connection, with no pause (redis-py's own ``Retry``), so a restart costs no request a
miss. Only connection errors are retried: a call that timed out may have run on the server
(a rate-limit charge, a write), and its time budget is spent anyway. Idle connections are
checked with a ``PING`` before use after ``HEALTH_CHECK_SECONDS`` (redis-py's
``health_check_interval``).

Imported only when Redis is configured (``guard.BACKENDS``).
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

__all__ = ["HEALTH_CHECK_SECONDS", "connect", "is_outage", "retry_once"]

HEALTH_CHECK_SECONDS = 10


def retry_once() -> Retry:
    """One more attempt, at once, on a fresh connection, for a connection error only."""
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


def connect(url: str, *, timeout: float) -> Redis:
    """A client for ``url`` (bytes replies) whose socket calls give up after ``timeout`` seconds.

    It connects on first use, so a Redis that is down at startup does not stop the app.
    """
    client: Redis = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                   retry=retry_once(), health_check_interval=HEALTH_CHECK_SECONDS)
    return client


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says Redis is unreachable (refused, reset, closed) rather than slow or refusing one call.

    A time budget running out (``TimeoutError``, an ``OSError`` since Python 3.3) is slowness;
    redis-py's ``TimeoutError`` is not a ``ConnectionError``.
    """
    if isinstance(exc, RedisConnectionError):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, TimeoutError)
