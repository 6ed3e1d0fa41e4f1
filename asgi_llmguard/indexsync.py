"""Deprecated alias of :mod:`asgi_llmguard.cache.index_sync` (moved in 0.2.0; this path goes in 0.3.0)."""

from ._moved import moved
from .cache import index_sync as _index_sync
from .cache.index_sync import *  # noqa: F403

__getattr__ = moved(__name__, _index_sync)
