"""Deprecated alias of :mod:`asgi_llmguard.routing.balancer` (moved in 0.2.0; this path goes in 0.3.0)."""

from ._moved import moved
from .routing import balancer as _balancer
from .routing.balancer import *  # noqa: F403

__getattr__ = moved(__name__, _balancer)
