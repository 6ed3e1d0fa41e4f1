"""Deprecated alias of :mod:`asgi_llmguard.cache.verify` (moved in 0.2.0; this path goes in 0.3.0)."""

from ._moved import moved
from .cache import verify as _verify
from .cache.verify import *  # noqa: F403

__getattr__ = moved(__name__, _verify)
