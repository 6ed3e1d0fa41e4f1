"""Deprecated alias of :mod:`asgi_llmguard.routing.complexity` (moved in 0.2.0; this path goes in 0.3.0)."""

from ._moved import moved
from .routing import complexity as _complexity
from .routing.complexity import *  # noqa: F403

__getattr__ = moved(__name__, _complexity)
