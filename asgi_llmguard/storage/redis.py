"""Deprecated alias of :mod:`asgi_llmguard.cache.stores.redis` (moved in 0.2.0; this path goes in 0.3.0)."""

from .._moved import moved
from ..cache.stores import redis as _redis
from ..cache.stores.redis import *  # noqa: F403

__getattr__ = moved(__name__, _redis)
