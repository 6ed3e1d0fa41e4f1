"""Deprecated alias of :mod:`asgi_llmguard.cache.keys` (moved in 0.2.0; this path goes in 0.3.0)."""

from ._moved import moved
from .cache import keys as _keys
from .cache.keys import *  # noqa: F403

__getattr__ = moved(__name__, _keys)
