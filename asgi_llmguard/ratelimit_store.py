"""Deprecated alias of :mod:`asgi_llmguard.ratelimit.store` (moved in 0.2.0; this path goes in 0.3.0)."""

from ._moved import moved
from .ratelimit import store as _store
from .ratelimit.store import *  # noqa: F403

__getattr__ = moved(__name__, _store)
