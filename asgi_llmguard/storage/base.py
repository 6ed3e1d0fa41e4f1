"""Deprecated alias of :mod:`asgi_llmguard.cache.stores.base` (moved in 0.2.0; this path goes in 0.3.0)."""

from .._moved import moved
from ..cache.stores import base as _base
from ..cache.stores.base import *  # noqa: F403

__getattr__ = moved(__name__, _base)
