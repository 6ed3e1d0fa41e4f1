"""Deprecated alias of :mod:`asgi_llmguard.observability.dashboard` (moved in 0.2.0; this path goes in 0.3.0)."""

from ._moved import moved
from .observability import dashboard as _dashboard
from .observability.dashboard import *  # noqa: F403

__getattr__ = moved(__name__, _dashboard)
