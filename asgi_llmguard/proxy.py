"""Deprecated alias of :mod:`asgi_llmguard.routing.proxy` (moved in 0.2.0; this path goes in 0.3.0)."""

from ._moved import moved
from .routing import proxy as _proxy
from .routing.proxy import *  # noqa: F403

__getattr__ = moved(__name__, _proxy)
