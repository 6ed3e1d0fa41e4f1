"""Deprecated alias of :mod:`asgi_llmguard.cache.admin` (moved in 0.2.0; this path goes in 0.3.0)."""

from ._moved import moved
from .cache import admin as _admin
from .cache.admin import *  # noqa: F403

__getattr__ = moved(__name__, _admin)
