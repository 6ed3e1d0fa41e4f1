"""Deprecated alias of :mod:`asgi_llmguard.core.observer` (moved in 0.2.0; this path goes in 0.3.0)."""

from ._moved import moved
from .core import observer as _observer
from .core.observer import *  # noqa: F403

__getattr__ = moved(__name__, _observer)
