"""Deprecated alias of :mod:`asgi_llmguard.ratelimit.stores.memory` (moved in 0.2.0; this path goes in 0.3.0)."""

from .._moved import moved
from ..ratelimit.stores import memory as _memory
from ..ratelimit.stores.memory import *  # noqa: F403

__getattr__ = moved(__name__, _memory)
